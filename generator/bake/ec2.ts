// EC2 lookups for `pigen bake --target aws`: does an AMI with this bake key exist (tag filter), and
// which source AMI to bake on (owner + name pattern, newest CreationDate, per target OS). Every
// page of DescribeImages is read.

// The SDK is loaded on first use (it takes ~0.5 s to import, which every other command would pay).
import type { EC2Client, Image } from '@aws-sdk/client-ec2';
import { loadPackage } from '../util/packages.js';

const sdk = async () => loadPackage<typeof import('@aws-sdk/client-ec2')>('@aws-sdk/client-ec2');

/** The official base images pigen bakes on, per os_profile. */
export const SOURCE_AMIS: Record<string, { owner: string; name: string; sshUser: string }> = {
  // Debian's cloud team account (https://wiki.debian.org/Cloud/AmazonEC2Image/Bookworm).
  d12: { owner: '136693071363', name: 'debian-12-amd64-*', sshUser: 'admin' },
  // Rocky Linux's official account.
  el9: { owner: '792107900819', name: 'Rocky-9-EC2-Base-9.*x86_64*', sshUser: 'rocky' },
};

export interface Ec2Options {
  region: string;
  endpoint?: string;
  maxAttempts?: number;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Each request's time to answer, in ms (default 60 s): an endpoint that never answers fails the lookup, as a closed one does. */
  requestTimeoutMs?: number;
}

export async function ec2Client(o: Ec2Options): Promise<EC2Client> {
  const { EC2Client } = await sdk();
  return new EC2Client({
    region: o.region,
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    ...(o.maxAttempts ? { maxAttempts: o.maxAttempts } : {}),
    ...(o.credentials ? { credentials: o.credentials } : {}),
    // (Without them an endpoint that took the connection and never answered held the bake for ever.)
    requestHandler: { connectionTimeout: Math.min(10_000, o.requestTimeoutMs ?? 10_000), requestTimeout: o.requestTimeoutMs ?? 60_000, throwOnRequestTimeout: true },
  });
}

/** An EC2 failure explained for the user (throttling, credentials, anything else). */
export class Ec2Error extends Error {}

function explain(e: unknown, what: string): Ec2Error {
  const err = e as { name?: string; Code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const code = err.Code ?? err.name ?? 'Error';
  const status = err.$metadata?.httpStatusCode;
  const at = status ? ` (HTTP ${status})` : '';
  if (/TimeoutError|ETIMEDOUT|timed? ?out/i.test(`${code} ${err.message ?? ''}`) && status === undefined) {
    return new Ec2Error(`${what}: no answer from EC2 in time (${code}): is the endpoint up and reachable? (AWS_MAX_ATTEMPTS retries; PIGEN_AWS_TIMEOUT sets each request's seconds)`);
  }
  if (/RequestLimitExceeded|Throttl/i.test(code) || status === 503) {
    return new Ec2Error(`${what}: EC2 is throttling requests (${code}${at}) and retries ran out; wait and run pigen bake again, or raise AWS_MAX_ATTEMPTS`);
  }
  // (No credentials at all is not a rejection: nothing was sent.)
  if (/CredentialsProviderError/i.test(code)) {
    return new Ec2Error(`${what}: no AWS credentials found (${err.message ?? code}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE`);
  }
  if (/AuthFailure|UnauthorizedOperation|InvalidClientTokenId|SignatureDoesNotMatch|ExpiredToken/i.test(code) || status === 401 || status === 403) {
    return new Ec2Error(`${what}: AWS rejected the credentials (${code}${at}): ${err.message ?? ''}`.trim() + '; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the ec2:DescribeImages permission');
  }
  return new Ec2Error(`${what}: ${code}${at}: ${err.message ?? String(e)}`);
}

/** Every image DescribeImages gives for `input`, page by page (NextToken). */
async function describeAll(client: EC2Client, input: import('@aws-sdk/client-ec2').DescribeImagesCommandInput, what: string): Promise<Image[]> {
  const { DescribeImagesCommand } = await sdk();
  const out: Image[] = [];
  let token: string | undefined;
  // (A bound on the pages: an endpoint that always answers with a token must not loop forever.)
  for (let page = 0; page < 1000; page++) {
    let res;
    try {
      res = await client.send(new DescribeImagesCommand({ ...input, ...(token ? { NextToken: token } : {}) }));
    } catch (e) {
      throw explain(e, what);
    }
    out.push(...(res.Images ?? []));
    token = res.NextToken || undefined;
    if (!token) return out;
  }
  throw new Ec2Error(`${what}: DescribeImages gave a next page 1000 times`);
}

/**
 * The AMI (owned by this account) baked with this bake key (or, `tag` given, with that tag's
 * value), if any: the newest available one, else one still pending (another bake is making it).
 */
export async function findBakedImage(client: EC2Client, key: string, os: string, tag = 'pigen:bake-key'): Promise<Image | undefined> {
  const images = await describeAll(
    client,
    {
      Owners: ['self'],
      Filters: [
        { Name: `tag:${tag}`, Values: [key] },
        { Name: 'tag:pigen:os', Values: [os] },
      ],
    },
    'looking up baked images',
  );
  return newest(images.filter((i) => i.State === undefined || i.State === 'available')) ?? newest(images.filter((i) => i.State === 'pending'));
}

/** The newest available source AMI for the OS (owner + name pattern). */
export async function findSourceImage(client: EC2Client, os: string): Promise<Image | undefined> {
  const src = SOURCE_AMIS[os];
  if (!src) throw new Ec2Error(`no source AMI is known for os_profile ${os}`);
  const images = await describeAll(
    client,
    {
      Owners: [src.owner],
      Filters: [
        { Name: 'name', Values: [src.name] },
        { Name: 'architecture', Values: ['x86_64'] },
        { Name: 'state', Values: ['available'] },
      ],
    },
    `looking up the source AMI (owner ${src.owner}, name ${src.name})`,
  );
  return newest(images);
}

function newest(images: Image[]): Image | undefined {
  return [...images].sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? '') || (a.ImageId ?? '').localeCompare(b.ImageId ?? ''))[0];
}
