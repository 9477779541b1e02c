// `pigen bake`: bake the golden images of an inventory with Packer (images/*.pkr.hcl), only those
// not baked yet with the same bake key (bake/key.ts): locally a rootfs tarball in the output
// directory, on AWS an AMI tagged pigen:bake-key, with qemu a qcow2 in the output directory.

import { isAbsolute, join, resolve as resolvePath } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { ec2Client, Ec2Error, findBakedImage, findSourceImage, SOURCE_AMIS } from '../bake/ec2.js';
import { bakeFilesDigest, bakeKey, stampOf } from '../bake/key.js';
import { QEMU_SOURCES } from '../bake/qemu.js';
import { stageTree } from '../bake/stage.js';
import { sshPublicKey } from '../secrets/index.js';
import { verifyBundle } from '../bundle/verify.js';
import { compile } from '../compile.js';
import { splitImages, type ImageSpec } from '../emit/images.js';
import { packageName } from '../plan/os.js';
import { fileOnPath, fileSizeOf, findProgram, isDirectory, linkOrCopy, managingOutput, PACKAGE_ROOT, packageVersion, readAssets, readBakeFiles, readFileChunks, readOptionalText, removeIfEmpty, removePath, runProgram, takeLock, writeFileAtomic, writeTree, ensurePaths, type OutputBusy } from '../io.js';
import { INVENTORY_HELP, INVENTORY_OPTIONS, type Command } from './commands.js';
import { diagnosticsToJson, hasErrors, isSystemError, loadInventory, printDiagnostics, systemErrorMessage } from './common.js';
import { UsageError, type CliContext } from './context.js';
import { hideUserinfo } from '../diagnostics.js';
import { urlUserinfo } from '../util/text.js';

/** Packages of Pigsty's own repos that no distro carries (named in the warning of a bake without --bundle). */
const PIGSTY_ONLY = /^(vector|grafana|victoria-logs|victoria-traces|vlogscli|pig)$/;

type Target = 'local' | 'aws' | 'qemu';
const TARGETS: Target[] = ['local', 'aws', 'qemu'];
/** Packer's -only name of each target (build name . source type . source name). */
const PACKER_ONLY: Record<Target, string> = { local: 'local.null.local', aws: 'cloud.amazon-ebs.pigsty', qemu: 'cloud.qemu.pigsty' };

interface Step {
  image: ImageSpec;
  action: 'bake' | 'reuse';
  why: string;
  /** The bake key (bake/key.ts): what reuse is decided by. */
  key: string;
  /** The existing artifact (reuse) or the one the bake makes. */
  artifact: string;
  vars: Record<string, string>;
}

export const bake: Command = {
  name: 'bake',
  summary: 'bake golden images with Packer (only those not baked yet with the same bake key)',
  usage: 'pigen bake [INVENTORY] [--only IMAGE] [--target local|aws|qemu] [--dry-run] [--json] [-o DIR] [--bundle FILE] [--mirror URL] [--cache DIR] [--aws-region R] [--aws-endpoint URL]',
  help: `Splits every node into image content (what all nodes of its role share: packages, units,
rules, configs) and boot content (user-data.baked), names each image by its role, OS and content
hash (pigsty-<role>-<os>-<hash12>, tagged with the pigen version too), and runs Packer with
images/*.pkr.hcl for each image not baked yet. An image is reused only when its bake key matches:
the content hash plus what the bake makes of it (the --bundle's manifest hash, the base image or
debootstrap suite and mirror, pigen's Packer templates and scripts).

  local   a Debian root filesystem from debootstrap (minbase) with cloud-init, the image's
          packages (from --bundle, a file: repo inside it) and files, cleaned with cloud-init clean,
          packed as DIR/<image>.rootfs.tar.gz (needs root, debootstrap and the Debian mirror); its
          bake key in DIR/<image>.rootfs.tar.gz.bake-key
  aws     an AMI (named <image>-<key8>) from the newest source AMI of the OS (owner + name
          pattern); existing AMIs are found by DescribeImages with the tag pigen:bake-key
  qemu    a qcow2 from the OS's cloud image (checked against its checksum list), in
          DIR/<image>.qemu/; Packer logs in as a throwaway user with a key made for the bake,
          removed before the image is shut down

Ctrl-C, SIGTERM or, with a terminal, SIGHUP stops Packer (it cleans up: on AWS it terminates
its instance) and waits for it, the image reported as interrupted (exit 1); a second one is passed
to Packer, still waited for; a third ends pigen at once.

With --json, stdout carries one JSON report: the plan, and each image's result (baked, with its
seconds and AMI; reused; failed, and why; interrupted; not baked); Packer's output goes to stderr.

${INVENTORY_HELP}
  --only IMAGE       bake only this image (full name, name without the hash, role, or a prefix of
                     4+ characters of its content hash); repeatable
  --target T         local (default), aws or qemu
  --dry-run          print the plan (bake or reuse, and why) without running Packer
  -o, --out DIR      where local/qemu artifacts go and Packer works (default: baked)
  --bundle FILE      pigen bundle the packages are installed from (its manifest hash is part of
                     the bake key, and of the content hash of the image that carries the offline
                     repo); it must hold every package a Debian image installs (else exit 2)
  --mirror URL       Debian mirror for debootstrap (default: the host's, else deb.debian.org)
  --cache DIR        keep debootstrap results here between bakes (keyed by suite, variant,
                     packages and mirror)
  --aws-region R     EC2 region (default: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1)
  --aws-endpoint URL EC2 endpoint for the lookups and Packer's bake (also AWS_ENDPOINT_URL_EC2);
                     AWS_MAX_ATTEMPTS sets retries, PIGEN_AWS_TIMEOUT each request's seconds (60)

Exit codes: 0 ok, 1 a lookup or bake failed or was interrupted, 2 bad input or usage.`,
  options: {
    ...INVENTORY_OPTIONS,
    only: { type: 'string', multiple: true },
    target: { type: 'string' },
    'dry-run': { type: 'boolean' },
    out: { type: 'string', short: 'o' },
    bundle: { type: 'string' },
    mirror: { type: 'string' },
    cache: { type: 'string' },
    'aws-region': { type: 'string' },
    'aws-endpoint': { type: 'string' },
  },
  maxArgs: 1,
  async run(ctx, values, args) {
    const target = (values.target ?? 'local') as Target;
    if (!TARGETS.includes(target)) throw new UsageError(`--target must be one of ${TARGETS.join(', ')}, not '${String(values.target)}'`);
    const r = loadInventory(ctx, args[0], (values.set as string[] | undefined) ?? [], values.strict === true);
    if (!values.json) printDiagnostics(ctx, r);
    if (hasErrors(r.diagnostics) || !r.inventory) {
      if (values.json) ctx.stdout.write(JSON.stringify({ ok: false, diagnostics: diagnosticsToJson(r.diagnostics) }, null, 2) + '\n');
      return 2;
    }
    const version = packageVersion();
    // A failure said on stderr, and with --json as {ok: false, error} on stdout (only JSON there).
    const fail = (code: number, message: string) => {
      ctx.stderr.write(`pigen: ${message}\n`);
      if (values.json) ctx.stdout.write(JSON.stringify({ ok: false, error: message }, null, 2) + '\n');
      return code;
    };

    let bundle: string | undefined;
    let bundleSha256: string | undefined;
    let bundlePackages: Set<string> | undefined;
    if (typeof values.bundle === 'string') {
      bundle = abs(ctx, values.bundle);
      if (fileSizeOf(bundle) === undefined || isDirectory(bundle)) return fail(2, `--bundle ${values.bundle}: no such file`);
      // (Bad input, as for pigen build --bundle: exit 2.)
      const v = await verifyBundle(readFileChunks(bundle));
      if (!v.ok) return fail(2, `--bundle ${values.bundle}: not a valid pigen bundle: ${v.error} (make it again: pigen bundle)`);
      bundleSha256 = v.manifestSha256;
      bundlePackages = new Set(v.packages ?? []);
    }

    const c = compile(r.inventory, readAssets(), { version, ...(r.secrets ? { secrets: r.secrets } : {}), ...(bundleSha256 ? { bundleSha256 } : {}) });
    const split = splitImages(c.nodes, { version, ...(bundleSha256 ? { bundleSha256 } : {}) });
    const only = (values.only as string[] | undefined) ?? [];
    const images = only.length ? split.images.filter((i) => only.some((o) => matches(i, o))) : split.images;
    const unmatched = only.filter((o) => !split.images.some((i) => matches(i, o)));
    if (unmatched.length) {
      // (A module of a role, `--only infra` for the role infra-repo or infra-pgsql: those roles offered.)
      const roles = [...new Set(unmatched.flatMap((o) => split.images.filter((i) => i.role.split('-').includes(o)).map((i) => i.role)))].sort();
      throw new UsageError(`no image matches --only ${unmatched.join(', ')}; the images of this inventory: ${split.images.map((i) => `${i.name} (${i.role})`).join(', ')}${roles.length ? `; did you mean ${roles.map((r) => `--only ${r}`).join(' or ')}?` : ''}`);
    }
    // A Debian image installs its packages from the --bundle alone: one the bundle lacks (neither a
    // package nor provided by one) fails the bake at apt-get install, after minutes. Said before.
    if (bundlePackages) {
      // (A word may name a version, an architecture or a release: curl=7.88, htop:amd64, x/bookworm.)
      const lacking = images.filter((i) => i.family === 'deb').flatMap((i) => ((m) => (m.length ? [`${i.name}: ${m.join(', ')}`] : []))(i.packages.filter((p) => !bundlePackages!.has(packageName(p)))));
      if (lacking.length) return fail(2, `--bundle ${values.bundle} lacks packages the images install (apt-get would not find them): ${lacking.join('; ')}; make the bundle with them (repo_packages, pigen bundle --download)`);
    }

    const outDir = abs(ctx, typeof values.out === 'string' ? values.out : 'baked');
    // (-o names a directory: a file there, or on its path, is bad input, found before any work.)
    const blocked = fileOnPath(outDir);
    if (blocked) throw new UsageError(`-o ${values.out ?? 'baked'}: ${blocked === outDir ? 'is' : `${blocked} is`} not a directory`);
    // (Nor inside an output pigen build manages: its next build removes what it did not write.)
    const managed = managingOutput(outDir);
    if (managed) throw new UsageError(`-o ${values.out ?? 'baked'}: it is inside ${rel(ctx, managed)}, an output of pigen build (the next build would remove the bakes); give a directory outside it`);
    const endpoint = (values['aws-endpoint'] as string | undefined) ?? ctx.env.AWS_ENDPOINT_URL_EC2 ?? ctx.env.AWS_ENDPOINT_URL;
    if (target === 'aws' && endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) throw new UsageError(`--aws-endpoint (or AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL): '${hideUserinfo(endpoint)}' is not an http(s) URL`);
    // (What each target can bake is known before any lookup: bad input, also for --dry-run.)
    if (target === 'local') {
      const rpm = images.find((i) => i.family !== 'deb');
      if (rpm) throw new UsageError(`the local bake builds Debian root filesystems; ${rpm.name} is ${rpm.os} (bake it with --target aws or qemu)`);
    }
    if (target === 'qemu') {
      const unknown = images.find((i) => !QEMU_SOURCES[i.os]);
      if (unknown) throw new UsageError(`no qemu cloud image is known for os_profile ${unknown.os} (${unknown.name}); known: ${Object.keys(QEMU_SOURCES).join(', ')}`);
    }
    const mirror = (values.mirror as string | undefined) ?? hostMirror();
    // (A mirror's credentials would be in the image's sources.list, in Packer's lines and in its
    // command line: refused, not carried.)
    if (urlUserinfo(mirror)) throw new UsageError(`--mirror ${hideUserinfo(mirror)}: a mirror URL with credentials would be written into the image's apt sources and shown in the bake's output; use a mirror that needs none`);
    const scripts = bakeFilesDigest(readBakeFiles());
    const keyOf = (img: ImageSpec, source: string) => bakeKey({ content: img.hash, target, source, bundle: bundleSha256 ?? null, scripts });
    const steps: Step[] = [];
    try {
      if (target === 'aws') {
        const region = (values['aws-region'] as string | undefined) ?? ctx.env.AWS_REGION ?? ctx.env.AWS_DEFAULT_REGION ?? 'us-east-1';
        const attempts = Number(ctx.env.AWS_MAX_ATTEMPTS);
        const timeout = Number(ctx.env.PIGEN_AWS_TIMEOUT);
        const key = ctx.env.AWS_ACCESS_KEY_ID;
        const secret = ctx.env.AWS_SECRET_ACCESS_KEY;
        const client = await ec2Client({
          region,
          ...(endpoint ? { endpoint } : {}),
          ...(Number.isInteger(attempts) && attempts > 0 ? { maxAttempts: attempts } : {}),
          ...(Number.isFinite(timeout) && timeout > 0 ? { requestTimeoutMs: timeout * 1000 } : {}),
          ...(key && secret ? { credentials: { accessKeyId: key, secretAccessKey: secret, ...(ctx.env.AWS_SESSION_TOKEN ? { sessionToken: ctx.env.AWS_SESSION_TOKEN } : {}) } } : {}),
        });
        // (Said before the lookups: they may take a while.)
        ctx.stderr.write(`pigen: looking up the base and baked AMIs in ${region}${endpoint ? ` at ${hideUserinfo(endpoint)}` : ''}\n`);
        try {
          const sources = new Map<string, Awaited<ReturnType<typeof findSourceImage>>>();
          for (const img of images) {
            // (The source AMI is part of the bake key: a newer base image bakes the image again.)
            if (!sources.has(img.os)) sources.set(img.os, await findSourceImage(client, img.os));
            const src = sources.get(img.os);
            if (!src?.ImageId) {
              // (No base to bake on here: an AMI of this account with the same content is reused,
              // said so; the public base image may be invisible from this account or region.)
              const same = await findBakedImage(client, img.hash, img.os, 'pigen:content-hash');
              const why = `no source AMI found for ${img.os} (owner ${SOURCE_AMIS[img.os]?.owner}, name ${SOURCE_AMIS[img.os]?.name}) in ${region}`;
              if (!same) throw new Ec2Error(why);
              steps.push({ image: img, action: 'reuse', key: '', why: `${why}, so no bake key; AMI ${same.ImageId} (${same.Name ?? '?'}, ${same.CreationDate ?? '?'}) has this content (tag pigen:content-hash)`, artifact: same.ImageId ?? '', vars: {} });
              continue;
            }
            const key = keyOf(img, src.ImageId);
            const found = await findBakedImage(client, key, img.os);
            if (found) {
              const pending = found.State === 'pending' ? ' is pending: another bake is making it' : '';
              steps.push({ image: img, action: 'reuse', key, why: `AMI ${found.ImageId} (${found.Name ?? '?'}, ${found.CreationDate ?? '?'}) has tag pigen:bake-key=${key.slice(0, 12)}…${pending}`, artifact: found.ImageId ?? '', vars: {} });
              continue;
            }
            steps.push({
              image: img,
              action: 'bake',
              key,
              why: `no AMI in ${region} has tag pigen:bake-key=${key.slice(0, 12)}…; source ${src.ImageId} (${src.Name ?? '?'}, ${src.CreationDate ?? '?'})`,
              artifact: `${img.name}-${key.slice(0, 8)}`,
              vars: { aws_region: region, source_ami: src.ImageId, ssh_username: SOURCE_AMIS[img.os]!.sshUser, ami_name: `${img.name}-${key.slice(0, 8)}`, bake_key: key, ...(endpoint ? { aws_endpoint: endpoint } : {}) },
            });
          }
        } finally {
          client.destroy();
        }
      } else {
        for (const img of images) {
          const artifact = target === 'local' ? join(outDir, `${img.name}.rootfs.tar.gz`) : join(outDir, `${img.name}.qemu`, `${img.name}.qcow2`);
          const q = QEMU_SOURCES[img.os];
          const source = target === 'local' ? `debootstrap ${img.distro} minbase ${mirror} cloud-init` : `${q!.url} ${q!.checksum}`;
          const key = keyOf(img, source);
          const vars: Record<string, string> = { bake_key: key, ...(target === 'qemu' ? { qemu_source_image: q!.url, qemu_source_checksum: q!.checksum } : {}) };
          const exists = fileSizeOf(artifact) !== undefined;
          // (Reused only with the stamp of the same bake key, written after its bake succeeded.)
          const stamp = exists ? (readOptionalText(stampOf(artifact)) ?? '').trim() : '';
          const why = !exists
            ? `no ${rel(ctx, artifact)}`
            : stamp === key
              ? `${rel(ctx, artifact)} exists, baked with this bake key (${key.slice(0, 12)}…)`
              : stamp
                ? `${rel(ctx, artifact)} was baked from other inputs (bake key ${stamp.slice(0, 12)}…, now ${key.slice(0, 12)}…)`
                : `${rel(ctx, artifact)} has no bake key stamp (${rel(ctx, stampOf(artifact))})`;
          steps.push({ image: img, action: exists && stamp === key ? 'reuse' : 'bake', key, why, artifact, vars });
        }
      }
    } catch (e) {
      if (e instanceof Ec2Error) return fail(1, e.message);
      throw e;
    }

    const dry = values['dry-run'] === true;
    // With --json: one JSON document on stdout at the end (the plan, and each bake's result);
    // Packer's lines go to stderr.
    const results = new Map<Step, { result: 'baked' | 'failed' | 'interrupted'; seconds: number; ami?: string; error?: string }>();
    const report = (ok: boolean, extra: Record<string, unknown> = {}) =>
      ctx.stdout.write(
        JSON.stringify(
          {
            ok,
            target,
            ...(warnings.length ? { warnings } : {}),
            ...extra,
            images: steps.map((s) => ({ name: s.image.name, role: s.image.role, os: s.image.os, hash: s.image.hash, bakeKey: s.key, nodes: s.image.nodes, action: s.action, why: s.why, artifact: s.artifact, ...(dry ? {} : (results.get(s) ?? (s.action === 'reuse' ? { result: 'reused' } : { result: 'not baked' }))) })),
          },
          null,
          2,
        ) + '\n',
      );
    // Without --bundle, an image's packages come from the root filesystem's own repos (the Debian
    // mirror's, the base image's), which lack Pigsty's own (vector, grafana, victoria-*): said
    // before any bake, not found by apt-get minutes (or an instance) later.
    const unbundled = bundle ? [] : steps.filter((s) => s.action === 'bake' && s.image.packages.length);
    const warnings = unbundled.length
      ? [`no --bundle: ${unbundled.map((s) => s.image.name).join(', ')} install${unbundled.length === 1 ? 's' : ''} ${unbundled.reduce((n, s) => n + s.image.packages.length, 0)} packages from the ${target === 'local' ? 'Debian mirror' : 'base image'}'s repos alone, which lack Pigsty's own (${[...new Set(unbundled.flatMap((s) => s.image.packages))].filter((p) => PIGSTY_ONLY.test(p)).slice(0, 4).join(', ') || 'vector, grafana'}...): the bake fails at the package install; make a bundle (pigen bundle) and give --bundle FILE`]
      : [];
    for (const w of warnings) ctx.stderr.write(`pigen: warning: ${w}\n`);
    if (values.json && dry) {
      report(true, warnings.length ? { warnings } : {});
      return 0;
    }
    if (!values.json) {
      ctx.stdout.write(`${steps.length} image${steps.length === 1 ? '' : 's'} (target ${target}, pigen ${version}):\n`);
      for (const s of steps) ctx.stdout.write(`  ${s.action.padEnd(5)} ${s.image.name}  ${s.image.nodes.length} node${s.image.nodes.length === 1 ? '' : 's'}, ${s.image.files.length} files, ${s.image.packages.length} packages: ${s.why}\n`);
    }
    if (dry) return 0;

    const todo = steps.filter((s) => s.action === 'bake');
    // (Before any bake: what the bakes need, said as a JSON report too.)
    const cannot = (message: string) => {
      ctx.stderr.write(`pigen: ${message}\n`);
      if (values.json) report(false, { error: message });
      return 1;
    };
    if (!todo.length) {
      if (values.json) report(true);
      return 0;
    }
    const packer = findProgram('packer', ctx.env.PATH ?? '');
    if (!packer) return cannot('bake needs packer on PATH (Debian: apt-get install packer)');
    if (target === 'local') {
      const missing = ['debootstrap', 'chroot', 'tar'].filter((p) => !findProgram(p, ctx.env.PATH ?? ''));
      if (missing.length) return cannot(`the local bake needs ${missing.join(', ')} on PATH (Debian: apt-get install debootstrap)`);
    }
    // (Progress lines: on stdout, or on stderr when stdout carries the JSON report.)
    const say = (line: string) => (values.json ? ctx.stderr : ctx.stdout).write(line);

    // A first SIGINT or SIGTERM stops the bake under way (Packer is asked to stop, and cleans up:
    // on AWS it terminates its instance) and any after it. A second is passed to Packer, and pigen
    // still waits for it (leaving then would orphan it mid-cleanup, its output pipe closed); a
    // third ends pigen at once, the bake's key and lock removed, Packer left running (said so).
    let interrupted = false;
    let running: { pid: number; image: string; key?: string; unlock: () => void } | undefined;
    let again = 0;
    const stop = (
      ctx.interrupted?.((sig) => {
        if (!running) return false;
        if (++again === 1) {
          try {
            process.kill(-running.pid, sig);
          } catch {
            // gone meanwhile
          }
          ctx.stderr.write(`pigen: ${sig} again: passed to Packer (pid ${running.pid}); still waiting for it to clean up (once more ends pigen at once, Packer left running)\n`);
          return true;
        }
        if (running.key) removePath(running.key);
        running.unlock();
        ctx.stderr.write(`pigen: bake of ${running.image} abandoned: Packer (pid ${running.pid}) may still be running and cleaning up${target === 'aws' ? ' (check that its instance is terminated)' : ''}; its lock and bake key removed\n`);
        return false;
      }) ?? new Promise<void>(() => {})
    ).then(() => {
      interrupted = true;
    });
    // -o made before any bake: one that cannot be (under /proc, read-only, no permission) is said
    // once, not as each image's failure.
    try {
      ensurePaths([join(outDir, '.work')]);
    } catch (e) {
      if (!isSystemError(e)) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      return fail(code === 'ENOSPC' || code === 'EIO' || code === 'EDQUOT' ? 1 : 2, `cannot make -o ${values.out ?? 'baked'}: ${systemErrorMessage(e)}`);
    }
    const built = new Map(c.tree.flatMap((e) => ('data' in e ? [[e.path, e.data] as const] : [])));
    let failed = 0;
    for (const s of todo) {
      const img = s.image;
      const t0 = performance.now();
      if (interrupted) {
        results.set(s, { result: 'interrupted', seconds: 0, error: 'not started: the bake was interrupted' });
        continue;
      }
      const work = join(outDir, '.work', img.name);
      const content = join(work, 'content');
      let ours = true;
      let unlock: (() => void) | undefined;
      try {
        // (One bake of an image into one directory at a time, for the whole bake: a second one
        // would remove the first one's root filesystem under it.)
        ensurePaths([work]);
        unlock = takeLock(join(outDir, '.work', `${img.name}.lock`), `${rel(ctx, outDir)} (baking ${img.name})`);
        // qemu: a key pair for this bake only (the seed's user logs in with it; it never leaves
        // the work directory, which is removed after the bake).
        let seedKey: string | undefined;
        if (target === 'qemu') {
          const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
          const pem = pair.privateKey.export({ format: 'pem', type: 'sec1' }).toString();
          seedKey = sshPublicKey(pem, 'pigen-bake');
          s.vars.qemu_ssh_key_file = join(work, 'bake-ssh-key');
          writeFileAtomic(s.vars.qemu_ssh_key_file, new TextEncoder().encode(pem), 0o600);
        }
        writeTree(content, stageTree(img, built, version, seedKey), { marker: 'image.json', spare: false });
        // A VM gets the bundle with the content (images/build.pkr.hcl: /tmp/pigen-content/bundle.tgz);
        // the local bake reads it where it is.
        if (bundle && target !== 'local') linkOrCopy(bundle, join(content, 'bundle.tgz'));
        const vars: Record<string, string> = {
          content_dir: content,
          output_dir: outDir,
          work_dir: work,
          debian_mirror: mirror,
          bundle: bundle ?? '',
          ...(typeof values.cache === 'string' ? { debootstrap_cache: abs(ctx, values.cache) } : {}),
          ...s.vars,
        };
        // (qemu: -force replaces an output directory an earlier bake, of other inputs, left.)
        const packerArgs = ['build', '-color=false', ...(target === 'qemu' ? ['-force'] : []), `-only=${PACKER_ONLY[target]}`, `-var-file=${join(content, 'image.pkrvars.hcl')}`];
        for (const [k, v] of Object.entries(vars)) packerArgs.push('-var', `${k}=${v}`);
        packerArgs.push(join(PACKAGE_ROOT, 'images'));
        say(`[${img.name}] packer ${packerArgs.slice(0, 3).join(' ')} ... (content ${img.hash.slice(0, 12)}, ${img.files.length} files, packages: ${img.packages.join(' ') || '-'})\n`);
        const prefix = linePrefixer(say, img.name, t0);
        // (A stamp of earlier inputs goes first: a bake that fails after its artifact is in place
        // must not leave that artifact looking like the earlier one.)
        if (target !== 'aws') removePath(stampOf(s.artifact));
        const res = await runProgram(packer, packerArgs, {
          env: { ...ctx.env, PACKER_CHECKPOINT_DISABLE: '1' },
          onOutput: prefix.push,
          stop,
          // (In a process group of its own, so that a terminal's Ctrl-C reaches Packer once, from here.)
          group: true,
          onSpawn: (pid) => void (running = { pid, image: img.name, ...(s.vars.qemu_ssh_key_file ? { key: s.vars.qemu_ssh_key_file } : {}), unlock: unlock! }),
        });
        running = undefined;
        prefix.flush();
        const secs = ((performance.now() - t0) / 1000).toFixed(1);
        const made = target !== 'aws' ? fileSizeOf(s.artifact) !== undefined : true;
        if (res.stopped) {
          ctx.stderr.write(`pigen: bake of ${img.name} interrupted after ${secs} s: Packer stopped (exit ${res.code})${target === 'aws' ? '; check that its instance is terminated' : ''}\n`);
          results.set(s, { result: 'interrupted', seconds: Number(secs), error: `interrupted; packer exit ${res.code}` });
          failed++;
        } else if (res.code !== 0 || !made) {
          const why = `packer exit ${res.code}${made ? '' : `, no ${rel(ctx, s.artifact)}`}`;
          ctx.stderr.write(`pigen: bake of ${img.name} failed after ${secs} s (${why}); see the [${img.name}] lines above\n`);
          results.set(s, { result: 'failed', seconds: Number(secs), error: why });
          failed++;
        } else {
          const ami = target === 'aws' ? /ami-[0-9a-f]{8,}/.exec(res.stdout.split('\n').reverse().find((l) => /ami-[0-9a-f]{8,}/.test(l)) ?? '')?.[0] : undefined;
          // (The stamp says what the artifact was baked from: reused only for the same bake key.)
          if (target !== 'aws') writeFileAtomic(stampOf(s.artifact), new TextEncoder().encode(`${s.key}\n`), 0o644);
          say(`[${img.name}] baked in ${secs} s: ${target === 'aws' ? (ami ?? 'AMI') : rel(ctx, s.artifact)}\n`);
          results.set(s, { result: 'baked', seconds: Number(secs), ...(ami ? { ami } : {}) });
        }
      } catch (e) {
        // A full disk, an I/O error while staging: this image failed, said; the next is tried.
        if (isSystemError(e)) {
          running = undefined;
          const message = `cannot stage ${img.name} in ${rel(ctx, work)}: ${systemErrorMessage(e)}`;
          ctx.stderr.write(`pigen: ${message}; not baked\n`);
          results.set(s, { result: 'failed', seconds: Number(((performance.now() - t0) / 1000).toFixed(1)), error: message });
          failed++;
          continue;
        }
        // Another pigen bakes the same image into the same directory: its work is left alone.
        if ((e as OutputBusy).code !== 'EPIGENBUSY') throw e;
        ours = false;
        ctx.stderr.write(`pigen: ${img.name}: ${(e as Error).message}; not baked (run one bake per output directory at a time)\n`);
        results.set(s, { result: 'failed', seconds: Number(((performance.now() - t0) / 1000).toFixed(1)), error: (e as Error).message });
        failed++;
      } finally {
        if (ours) cleanWork(ctx, work);
        unlock?.();
      }
    }
    // (The scratch directory goes when nothing is left in it.)
    removeIfEmpty(join(outDir, '.work'));
    if (interrupted) ctx.stderr.write('pigen: interrupted: the images not baked are baked by the next pigen bake\n');
    if (values.json) report(!failed && !interrupted);
    return failed || interrupted ? 1 : 0;
  },
};

function matches(img: ImageSpec, o: string): boolean {
  // (A hash prefix of at least 4 characters: `--only ''` or `--only 2` matches no image by chance.)
  return img.name === o || img.name.replace(/-[0-9a-f]{12}$/, '') === o || img.role === o || (o.length >= 4 && img.hash.startsWith(o));
}

function abs(ctx: CliContext, p: string): string {
  return isAbsolute(p) ? p : resolvePath(ctx.cwd, p);
}

function rel(ctx: CliContext, p: string): string {
  return p.startsWith(ctx.cwd + '/') ? p.slice(ctx.cwd.length + 1) : p;
}

/** Prefixes every output line with [image +Ns], so parallel or long bakes stay readable. */
function linePrefixer(write: (s: string) => void, name: string, t0: number) {
  let buf = '';
  const emit = (line: string) => write(`[${name} +${Math.round((performance.now() - t0) / 1000)}s] ${line}\n`);
  return {
    push: (s: string) => {
      buf += s;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        emit(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    },
    flush: () => {
      if (buf) emit(buf);
      buf = '';
    },
  };
}

/** The Debian mirror the host's apt uses (deb822 .sources or sources.list), else deb.debian.org. */
function hostMirror(): string {
  const texts = [readOptionalText('/etc/apt/sources.list.d/debian.sources'), readOptionalText('/etc/apt/sources.list')];
  for (const t of texts) {
    if (!t) continue;
    const m = /^URIs:\s*(\S+\/debian)\/?\s*$/m.exec(t) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s+\w+/m.exec(t);
    if (m) return m[1]!;
  }
  return 'http://deb.debian.org/debian';
}

/** Removes a bake's scratch directory, never across a mount left behind (e.g. a proc in the rootfs). */
function cleanWork(ctx: CliContext, work: string) {
  const mounts = (readOptionalText('/proc/mounts') ?? '').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m === work || m.startsWith(work + '/'));
  if (mounts.length) {
    ctx.stderr.write(`pigen: leaving ${work} in place: still mounted: ${mounts.join(', ')}\n`);
    return;
  }
  removePath(work);
}
