// `pigen bake --target aws` against a loopback HTTP server speaking EC2's query protocol (form
// POST in, XML out): the exact DescribeImages parameters the SDK sends for the source-AMI lookup
// (newest CreationDate wins, every page read) and the bake-key lookup, reuse of an existing AMI
// (a pending one too), and clear messages with exit 1 for throttling (RequestLimitExceeded, 503)
// and bad credentials (AuthFailure, 401). Retries are capped with AWS_MAX_ATTEMPTS so the test
// stays fast.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { main } from '../generator/cli/main.ts';
import { tmp } from './helpers.ts';

interface Seen {
  params: Record<string, string>;
  auth: string;
  path: string;
}

type Reply = (p: Record<string, string>) => { status: number; body: string };

async function withEc2(reply: Reply, fn: (endpoint: string, seen: Seen[]) => Promise<void>) {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const params = Object.fromEntries(new URLSearchParams(body));
      seen.push({ params, auth: String(req.headers.authorization ?? ''), path: req.url ?? '' });
      const r = reply(params);
      res.writeHead(r.status, { 'content-type': 'text/xml;charset=UTF-8' });
      res.end(r.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

const images = (items: { id: string; name: string; date: string; state?: string }[], next?: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-1</requestId><imagesSet>` +
  items.map((i) => `<item><imageId>${i.id}</imageId><name>${i.name}</name><creationDate>${i.date}</creationDate><imageState>${i.state ?? 'available'}</imageState><architecture>x86_64</architecture></item>`).join('') +
  `</imagesSet>${next ? `<nextToken>${next}</nextToken>` : ''}</DescribeImagesResponse>`;
const SOURCES = [
  { id: 'ami-0aaaaaaaaaaaaaaa1', name: 'debian-12-amd64-20240101-1000', date: '2024-01-01T10:00:00.000Z' },
  { id: 'ami-0bbbbbbbbbbbbbbb2', name: 'debian-12-amd64-20250301-2000', date: '2025-03-01T20:00:00.000Z' },
  { id: 'ami-0ccccccccccccccc3', name: 'debian-12-amd64-20241001-1500', date: '2024-10-01T15:00:00.000Z' },
];
const error = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>req-2</RequestID></Response>`;

const cwd = tmp('pigen-ec2-');
async function bake(endpoint: string, extra: string[] = [], opts: { dry?: boolean; path?: string } = {}) {
  let out = '';
  let err = '';
  const code = await main(['bake', '--target', 'aws', ...(opts.dry === false ? [] : ['--dry-run']), '--aws-endpoint', endpoint, '--aws-region', 'eu-west-1', ...extra], {
    cwd,
    env: { PATH: opts.path ?? process.env.PATH, HOME: cwd, AWS_ACCESS_KEY_ID: 'AKIDPIGENTEST', AWS_SECRET_ACCESS_KEY: 'pigen-test-secret', AWS_MAX_ATTEMPTS: '2', AWS_EC2_METADATA_DISABLED: 'true' },
    stdout: { write: (s) => void (out += s), isTTY: false },
    stderr: { write: (s) => void (err += s), isTTY: false },
    epoch: 0,
  });
  return { code, out, err };
}

/** The one image of the embedded default inventory (its name and hash), from the dry-run JSON. */
async function defaultImage(endpoint: string) {
  const r = await bake(endpoint, ['--json']);
  assert.is(r.code, 0, r.err);
  return JSON.parse(r.out).images[0] as { name: string; hash: string; bakeKey: string; os: string; action: string; why: string; artifact: string };
}

test('no AMI with the bake key: the newest Debian 12 source AMI by owner + name (every page), then the lookup by tag', async () => {
  await withEc2(
    // (The source lookup answers in two pages: the newest AMI is on the second.)
    (p) => (p['Owner.1'] === 'self' ? { status: 200, body: images([]) } : p.NextToken === 'page-2' ? { status: 200, body: images(SOURCES.slice(1)) } : { status: 200, body: images(SOURCES.slice(0, 1), 'page-2') }),
    async (endpoint, seen) => {
      const img = await defaultImage(endpoint);
      assert.is(img.action, 'bake');
      assert.match(img.why, /source ami-0bbbbbbbbbbbbbbb2 \(debian-12-amd64-20250301-2000/);
      assert.match(img.name, new RegExp(`^pigsty-[a-z-]+-d12-${img.hash.slice(0, 12)}$`));
      assert.match(img.bakeKey, /^[0-9a-f]{64}$/);
      assert.is.not(img.bakeKey, img.hash);
      // (The AMI's name carries the bake key: a bake of new inputs for the same content is a new AMI.)
      assert.is(img.artifact, `${img.name}-${img.bakeKey.slice(0, 8)}`);
      assert.is(seen.length, 3, JSON.stringify(seen));
      const source = {
        Action: 'DescribeImages',
        Version: '2016-11-15',
        'Owner.1': '136693071363',
        'Filter.1.Name': 'name',
        'Filter.1.Value.1': 'debian-12-amd64-*',
        'Filter.2.Name': 'architecture',
        'Filter.2.Value.1': 'x86_64',
        'Filter.3.Name': 'state',
        'Filter.3.Value.1': 'available',
      };
      assert.equal(seen[0]!.params, source);
      assert.equal(seen[1]!.params, { ...source, NextToken: 'page-2' });
      assert.equal(seen[2]!.params, {
        Action: 'DescribeImages',
        Version: '2016-11-15',
        'Owner.1': 'self',
        'Filter.1.Name': 'tag:pigen:bake-key',
        'Filter.1.Value.1': img.bakeKey,
        'Filter.2.Name': 'tag:pigen:os',
        'Filter.2.Value.1': 'd12',
      });
      for (const s of seen) {
        assert.is(s.path, '/');
        assert.match(s.auth, /^AWS4-HMAC-SHA256 Credential=AKIDPIGENTEST\/\d{8}\/eu-west-1\/ec2\/aws4_request/);
      }
      // The text plan says the same.
      const t = await bake(endpoint);
      assert.is(t.code, 0, t.err);
      assert.match(t.out, new RegExp(`bake  ${img.name} .*no AMI in eu-west-1 has tag pigen:bake-key=${img.bakeKey.slice(0, 12)}…; source ami-0bbbbbbbbbbbbbbb2`));
    },
  );
});

test('the bake key follows the source AMI: a newer base image is a new key', async () => {
  let newest = SOURCES;
  await withEc2(
    (p) => (p['Owner.1'] === 'self' ? { status: 200, body: images([]) } : { status: 200, body: images(newest) }),
    async (endpoint) => {
      const before = await defaultImage(endpoint);
      newest = [...SOURCES, { id: 'ami-0ddddddddddddddd4', name: 'debian-12-amd64-20260101-0000', date: '2026-01-01T00:00:00.000Z' }];
      const after = await defaultImage(endpoint);
      assert.is(after.hash, before.hash, 'the same content');
      assert.is.not(after.bakeKey, before.bakeKey, 'another bake');
    },
  );
});

test('an AMI tagged with the bake key exists: reuse it; a pending one (another bake is making it) too', async () => {
  for (const state of ['available', 'pending']) {
    await withEc2(
      (p) => (p['Owner.1'] === 'self' ? { status: 200, body: images([{ id: 'ami-0123456789abcdef0', name: 'pigsty-baked', date: '2025-05-01T00:00:00.000Z', state }]) } : { status: 200, body: images(SOURCES) }),
      async (endpoint, seen) => {
        const img = await defaultImage(endpoint);
        assert.is(img.action, 'reuse', state);
        assert.is(img.artifact, 'ami-0123456789abcdef0');
        assert.match(img.why, new RegExp(`AMI ami-0123456789abcdef0 .* has tag pigen:bake-key=${img.bakeKey.slice(0, 12)}…${state === 'pending' ? ' is pending: another bake is making it' : '$'}`));
        assert.is(seen.length, 2);
      },
    );
  }
});

test('a bake runs Packer against the same endpoint, with the AMI name and tag of the bake key', async () => {
  const bin = join(cwd, 'bin-aws');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'packer'), `#!/bin/sh\nprintf '%s\\n' "$@" > "${cwd}/aws-args.txt"\necho "--> cloud.amazon-ebs.pigsty: AMIs were created:"\necho "eu-west-1: ami-0fedcba9876543210"\n`, { mode: 0o755 });
  await withEc2(
    (p) => (p['Owner.1'] === 'self' ? { status: 200, body: images([]) } : { status: 200, body: images(SOURCES) }),
    async (endpoint) => {
      const img = await defaultImage(endpoint);
      const r = await bake(endpoint, ['--json'], { dry: false, path: `${bin}:${process.env.PATH}` });
      assert.is(r.code, 0, r.err);
      const report = JSON.parse(r.out) as { images: { result: string; ami: string }[] };
      assert.equal(report.images.map((i) => [i.result, i.ami]), [['baked', 'ami-0fedcba9876543210']]);
      const args = readFileSync(join(cwd, 'aws-args.txt'), 'utf8').split('\n');
      // (A review found the endpoint used for the lookups only: Packer baked at AWS's default.)
      for (const a of [`aws_endpoint=${endpoint}`, `ami_name=${img.name}-${img.bakeKey.slice(0, 8)}`, `bake_key=${img.bakeKey}`, 'source_ami=ami-0bbbbbbbbbbbbbbb2', 'aws_region=eu-west-1']) assert.ok(args.includes(a), `${a} in ${args.join(' ')}`);
      assert.not.ok(args.includes('-force'), 'no -force for AMIs');
    },
  );
});

// No source AMI visible (another partition, a private endpoint, an account limited to its own
// images): an AMI of this account with the same content is still reused, said so. (A review found
// the missing source blocking a reuse that worked before the bake key.)
test('no source AMI visible: an AMI of this account with the same content hash is reused; none: exit 1', async () => {
  for (const own of [true, false]) {
    await withEc2(
      (p) => (p['Owner.1'] !== 'self' ? { status: 200, body: images([]) } : p['Filter.1.Name'] === 'tag:pigen:content-hash' && own ? { status: 200, body: images([{ id: 'ami-0aaaabbbbccccdddd', name: 'pigsty-old', date: '2025-01-01T00:00:00.000Z' }]) } : { status: 200, body: images([]) }),
      async (endpoint) => {
        const r = await bake(endpoint, ['--json']);
        if (!own) {
          assert.is(r.code, 1, r.err);
          assert.match(r.err, /no source AMI found for d12/);
          return;
        }
        assert.is(r.code, 0, r.err);
        const img = JSON.parse(r.out).images[0] as { action: string; artifact: string; why: string };
        assert.equal([img.action, img.artifact], ['reuse', 'ami-0aaaabbbbccccdddd']);
        assert.match(img.why, /no source AMI found for d12 .*, so no bake key; AMI ami-0aaaabbbbccccdddd .* has this content \(tag pigen:content-hash\)/);
      },
    );
  }
});

test('throttling (RequestLimitExceeded, HTTP 503): retried AWS_MAX_ATTEMPTS times, then a clear message and exit 1', async () => {
  await withEc2(
    () => ({ status: 503, body: error('RequestLimitExceeded', 'Request limit exceeded.') }),
    async (endpoint, seen) => {
      const t0 = Date.now();
      const r = await bake(endpoint);
      assert.is(r.code, 1, r.out + r.err);
      assert.match(r.err, /pigen: looking up the source AMI \(owner 136693071363, name debian-12-amd64-\*\): EC2 is throttling requests \(RequestLimitExceeded \(HTTP 503\)\) and retries ran out/);
      assert.not.match(r.err, /internal error|at .*\.ts:\d+/);
      assert.is(seen.length, 2, 'AWS_MAX_ATTEMPTS=2: one try and one retry');
      assert.ok(Date.now() - t0 < 15000, 'fast');
    },
  );
});

test('bad credentials (AuthFailure, HTTP 401): a clear message and exit 1, no retry', async () => {
  await withEc2(
    () => ({ status: 401, body: error('AuthFailure', 'AWS was not able to validate the provided access credentials') }),
    async (endpoint, seen) => {
      const r = await bake(endpoint);
      assert.is(r.code, 1, r.out + r.err);
      assert.match(r.err, /pigen: looking up the source AMI \(owner 136693071363, name debian-12-amd64-\*\): AWS rejected the credentials \(AuthFailure \(HTTP 401\)\): AWS was not able to validate the provided access credentials; check AWS_ACCESS_KEY_ID/);
      assert.is(seen.length, 1);
    },
  );
});

test('no credentials at all: said so (not "rejected"), exit 1, nothing sent', async () => {
  // (The SDK's default chain reads this process's environment and ~/.aws: only where they hold none.)
  if (process.env.AWS_ACCESS_KEY_ID || process.env.AWS_PROFILE || existsSync(join(homedir(), '.aws'))) return void console.log('\n!!!!!!!! SKIP no-credentials case: this environment has AWS credentials !!!!!!!!\n');
  await withEc2(
    () => ({ status: 500, body: error('InternalError', 'unexpected') }),
    async (endpoint, seen) => {
      let err = '';
      const code = await main(['bake', '--target', 'aws', '--dry-run', '--aws-endpoint', endpoint], {
        cwd,
        env: { PATH: process.env.PATH, HOME: cwd, AWS_EC2_METADATA_DISABLED: 'true', AWS_MAX_ATTEMPTS: '1', AWS_CONFIG_FILE: join(cwd, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(cwd, 'none') },
        stdout: { write: () => {}, isTTY: false },
        stderr: { write: (s) => void (err += s), isTTY: false },
        epoch: 0,
      });
      assert.is(code, 1, err);
      assert.match(err, /no AWS credentials found \(.*\); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE/);
      assert.is(seen.length, 0);
    },
  );
});

// Found by a review: an endpoint that takes the connection and never answers held the bake for
// ever; a --mirror with credentials went into the image and the output; a bake without --bundle
// was planned as fine and failed at apt-get minutes later.
test('an endpoint that never answers: the lookup times out (PIGEN_AWS_TIMEOUT), exit 1, said', async () => {
  const { createServer: netServer } = await import('node:net');
  const sockets: import('node:net').Socket[] = [];
  const server = netServer((s) => void sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as import('node:net').AddressInfo).port;
  let err = '';
  try {
    const code = await main(['bake', '--target', 'aws', '--dry-run', '--aws-endpoint', `http://127.0.0.1:${port}`], {
      cwd,
      env: { PATH: process.env.PATH, HOME: cwd, AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_MAX_ATTEMPTS: '1', PIGEN_AWS_TIMEOUT: '1' },
      stdout: { write: () => {}, isTTY: false },
      stderr: { write: (s) => void (err += s), isTTY: false },
      epoch: 0,
    });
    assert.is(code, 1, err);
    assert.match(err, /looking up the base and baked AMIs in us-east-1 at http:\/\/127\.0\.0\.1:\d+/);
    assert.match(err, /no answer from EC2 in time/);
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
});

test('a --mirror with credentials is refused (exit 2), never printed; a bake without --bundle is warned of in the plan', async () => {
  let err = '';
  let out = '';
  const run = (args: string[]) => {
    err = '';
    out = '';
    return main(args, { cwd, env: { PATH: '/nonexistent' }, stdout: { write: (s) => void (out += s), isTTY: false }, stderr: { write: (s) => void (err += s), isTTY: false }, epoch: 0 });
  };
  assert.is(await run(['bake', '--dry-run', '--mirror', 'http://u:S3cretPW@127.0.0.1:9/debian']), 2);
  assert.match(err, /--mirror http:\/\/\*\*\*\*@127\.0\.0\.1:9\/debian: a mirror URL with credentials/);
  assert.not.match(err + out, /S3cretPW/);
  assert.is(await run(['bake', '--dry-run', '--json']), 0);
  const plan = JSON.parse(out) as { warnings?: string[] };
  assert.match(plan.warnings?.[0] ?? '', /^no --bundle: .* installs? \d+ packages from the Debian mirror's repos alone, which lack Pigsty's own \(.*vector/);
  assert.match(err, /pigen: warning: no --bundle/);
});

test.run();
