// `pigen bundle`: the offline repo bundle (a reproducible .tgz of the local repo with its APT index,
// manifest.size, manifest.sha256 and the repo_complete marker last), `pigen bundle verify FILE`, and the package
// list / download helpers. See generator/bundle/build.ts for the layout.

import { availableParallelism } from 'node:os';
import { isAbsolute, join, resolve as resolvePath } from 'node:path';
import { buildBundle, BundleError, checkInputs, GENERATED, MAX_EPOCH, type BundleInput } from '../bundle/build.js';
import { bundledExtra, bundleFacts, isolatedApt, missingPackages } from '../bundle/packages.js';
import { formatBytes, ProgressReporter } from '../bundle/progress.js';
import { verifyBundle } from '../bundle/verify.js';
import { atomicFileSink, ensurePaths, fileSizeOf, fileStartsWith, findProgram, isDirectory, listDirFiles, makeTempDir, outputFileTarget, primaryPackageCount, readFileChunks, removePath, runProgram, symlinkFile } from '../io.js';
import { INVENTORY_HELP, INVENTORY_OPTIONS, type Command } from './commands.js';
import { diagnosticsToJson, hasErrors, loadInventory, printDiagnostics, systemErrorMessage } from './common.js';
import { UsageError, type CliContext } from './context.js';

export const bundle: Command = {
  name: 'bundle',
  summary: 'build or verify the offline repo bundle (pigsty-pkg-<version>.<os>.<arch>.tgz)',
  usage: 'pigen bundle [INVENTORY] --from DIR [-o FILE] | pigen bundle verify FILE | pigen bundle [INVENTORY] --packages | --download --cache DIR',
  help: `Builds a reproducible .tgz of a local repo, extracted on the repo-serving infra node with
'tar -C /www': one top directory pigsty/ with the packages of DIR, an APT flat-repo index
(Packages, Packages.gz, Release) generated from each .deb's control data, repodata/ from
createrepo_c for .rpm files, manifest.size ('<bytes>  <path>' of every file),
manifest.sha256 (sha256sum -c format, every file including manifest.size) and, as the last
entry, repo_complete holding the sha256 of manifest.sha256. Same inputs and SOURCE_DATE_EPOCH give
the same bytes. Compression runs in parallel (independent gzip members, like pigz).

  pigen bundle verify FILE   checks structure, every checksum and size, the index and the marker;
                             exit 1 naming the first mismatch

${INVENTORY_HELP}
  --from DIR         directory of .deb and/or .rpm files (top level; hidden files ignored), with
                     the Pigsty source tarball (pigsty-<version>.tgz) and the files
                     repo_url_packages names, if there; any other file is left out and named;
                     a package the nodes reading the local repo install that no .deb provides
                     is a warning (lacking in --json)
  -o, --out FILE     output file or directory (default: pigsty-pkg-<version>.<os>.<arch>.tgz from
                     the inventory's version and os_profile)
  --level N          gzip level 1-9 (default 6)
  -j, --jobs N       gzip members compressed at once (default: number of CPUs)
  --packages         print the packages repo_packages + repo_extra_packages resolve to, and
                     those the nodes reading the local repo install at boot (one a line; with
                     --json a list)
  --download         download those packages and their dependencies with an isolated apt-get
                     (Debian build host) into --cache DIR (DIR/archives; reused on later runs)
  --cache DIR        cache directory for --download
  --quiet            no progress output

Exit codes: 0 ok, 1 build/verify/download failed, 2 bad input or usage.`,
  options: {
    ...INVENTORY_OPTIONS,
    from: { type: 'string' },
    out: { type: 'string', short: 'o' },
    level: { type: 'string' },
    jobs: { type: 'string', short: 'j' },
    packages: { type: 'boolean' },
    download: { type: 'boolean' },
    cache: { type: 'string' },
    quiet: { type: 'boolean' },
  },
  maxArgs: 2,
  async run(ctx, values, args) {
    if (args[0] === 'verify') return verifyCommand(ctx, args[1], values.json === true);
    // (Counted, not quoted: a stray word may be a password, `--set pw= secret`.)
    if (args.length > 1) throw new UsageError(`too many arguments: bundle takes at most 1 (the inventory), and ${args.length - 1} more ${args.length === 2 ? 'was' : 'were'} given\nUsage: ${bundle.usage}`);
    const fail = failer(ctx, values.json === true);
    // (The options said before the inventory is read: a usage error is found without that work.)
    const level = intOption(values.level, 'level', 6, 1, 9);
    const jobs = intOption(values.jobs, 'jobs', Math.max(1, availableParallelism()), 1, 256);

    const r = loadInventory(ctx, args[0], (values.set as string[] | undefined) ?? [], values.strict === true);
    if (!values.json) printDiagnostics(ctx, r);
    if (hasErrors(r.diagnostics) || !r.inventory) {
      if (values.json) ctx.stdout.write(JSON.stringify({ ok: false, diagnostics: diagnosticsToJson(r.diagnostics) }, null, 2) + '\n');
      return 2;
    }
    const facts = bundleFacts(r.inventory);
    // (Named: a user who keeps repo_packages short learns why the list is longer.)
    if ((values.packages || values.download) && facts.added.length) {
      ctx.stderr.write(`pigen: note: ${facts.added.length} package${facts.added.length === 1 ? '' : 's'} beyond repo_packages + repo_extra_packages, which the nodes that read the local repo install at boot: ${facts.added.join(' ')}\n`);
    }

    if (values.packages) {
      ctx.stdout.write(values.json ? JSON.stringify(facts.packages, null, 2) + '\n' : facts.packages.map((p) => p + '\n').join(''));
      return 0;
    }
    if (values.download) {
      if (typeof values.cache !== 'string') throw new UsageError(`--download needs --cache DIR\nUsage: ${bundle.usage}`);
      return download(ctx, facts, abs(ctx, values.cache), values.quiet === true, values.json === true);
    }

    if (typeof values.from !== 'string') throw new UsageError(`missing --from DIR (the directory of .deb/.rpm files)\nUsage: ${bundle.usage}`);
    // SOURCE_DATE_EPOCH is the members' mtime: whole seconds up to the tar header's limit, or
    // refused (it was read as 0, or wrapped).
    const sde = ctx.env.SOURCE_DATE_EPOCH;
    if (sde !== undefined && sde !== '' && !(/^\d+$/.test(sde) && Number(sde) <= MAX_EPOCH)) return fail(2, `SOURCE_DATE_EPOCH must be a whole number of seconds from 0 to ${MAX_EPOCH} (the largest a tar header holds), not ${JSON.stringify(sde.slice(0, 40))}`);
    const from = abs(ctx, values.from);
    if (!isDirectory(from)) return fail(2, `--from ${values.from}: not a directory`);
    const listing = listDirFiles(from);
    const ignored = listing.files.filter((f) => GENERATED.has(f.name));
    const candidates = listing.files.filter((f) => !GENERATED.has(f.name));
    const debs = candidates.filter((f) => f.name.endsWith('.deb'));
    const rpms = candidates.filter((f) => f.name.endsWith('.rpm'));
    const isPackage = (n: string) => n.endsWith('.deb') || n.endsWith('.rpm');
    const payloadFiles = candidates.filter((f) => isPackage(f.name) || bundledExtra(f.name, facts.urlFiles));
    const left = candidates.filter((f) => !isPackage(f.name) && !bundledExtra(f.name, facts.urlFiles));
    if (!debs.length && !rpms.length) return fail(2, `--from ${values.from}: no .deb or .rpm files`);
    if (ignored.length) ctx.stderr.write(`pigen: note: regenerating ${ignored.map((f) => f.name).join(', ')} (the copies in ${values.from} are ignored)\n`);
    if (left.length) ctx.stderr.write(`pigen: note: not bundled (only packages, the Pigsty source tarball and repo_url_packages files go into the served repo): ${left.map((f) => f.name).join(', ')}\n`);
    if (listing.skipped.length) ctx.stderr.write(`pigen: note: skipping non-files in ${values.from}: ${listing.skipped.join(', ')}\n`);
    // (A package whose name is no UTF-8 cannot be named in an index or a URL: refused. Any other
    // such file is left out, as the files that are no packages are.)
    const badPackages = listing.notUtf8.filter((n) => /\.(deb|rpm)$/.test(n));
    // (Said with the other problems of the directory's files, all at once, below.)
    const nameProblems = badPackages.length ? [`package file names that are no UTF-8 (an index or a URL cannot name them): ${badPackages.join(', ')}: rename them`] : [];
    const badOthers = listing.notUtf8.filter((n) => !badPackages.includes(n));
    if (badOthers.length) ctx.stderr.write(`pigen: note: not bundled (names that are no UTF-8): ${badOthers.join(', ')}\n`);
    if ((facts.os.family === 'deb' && rpms.length && !debs.length) || (facts.os.family === 'rpm' && debs.length && !rpms.length)) {
      ctx.stderr.write(`pigen: warning: os_profile ${facts.os.code} uses ${facts.os.family} packages, but ${values.from} holds ${debs.length ? '.deb' : '.rpm'} files\n`);
    }

    // -o DIR (or DIR/, made when missing): the default name in it. A link is written through.
    const rawOut = typeof values.out === 'string' ? values.out : undefined;
    let out = rawOut !== undefined ? abs(ctx, rawOut) : join(ctx.cwd, facts.defaultName);
    let shown = rawOut ?? facts.defaultName;
    if (rawOut !== undefined && (rawOut.endsWith('/') || isDirectory(out))) (out = join(out, facts.defaultName)), (shown = join(rawOut, facts.defaultName));
    const target = outputFileTarget(out);
    if ('error' in target) return fail(2, `cannot write ${shown}: ${target.error}`);
    out = target.path;

    // zlib's async gzip runs on libuv's threadpool (4 threads unless told before first use).
    if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = String(Math.max(4, Math.min(jobs, 128)));

    let tmp: string | undefined;
    let repodata: BundleInput[] = [];
    try {
      if (rpms.length) {
        const made = await createrepo(ctx, rpms.map((f) => f.path), ctx.epoch);
        if ('error' in made) return fail(made.badInput ? 2 : 1, made.error);
        tmp = made.tmp;
        repodata = made.files;
      }
      const payload: BundleInput[] = payloadFiles.map((f) => ({ name: f.name, size: f.size, read: () => readFileChunks(f.path) }));
      // Bad inputs (a broken or duplicated .deb, a bad name): every one named, nothing written.
      const provides = new Set<string>();
      const problems = [...nameProblems, ...(await checkInputs(payload, repodata, provides))];
      if (problems.length) {
        for (const p of problems) ctx.stderr.write(`pigen: error: ${p}\n`);
        ctx.stderr.write(`pigen: ${problems.length} problem${problems.length === 1 ? '' : 's'} in --from ${values.from}, nothing written: replace or remove ${problems.length === 1 ? 'that file' : 'those files'} (download them again: pigen bundle --download), then bundle again\n`);
        if (values.json) ctx.stdout.write(JSON.stringify({ ok: false, errors: problems }, null, 2) + '\n');
        return 2;
      }
      // What the nodes that read this repo install and no .deb of it provides: their boot's one
      // package transaction would fail on it (a warning: the bundle may be one part of a repo).
      const lacking = facts.os.family === 'deb' && debs.length ? facts.fleet.filter((p) => !provides.has(p)) : [];
      if (lacking.length) {
        ctx.stderr.write(
          `pigen: warning: ${lacking.length} package${lacking.length === 1 ? '' : 's'} that the nodes reading the local repo install at boot ${lacking.length === 1 ? 'is' : 'are'} in no .deb of --from ${values.from} (as Package or Provides): ${lacking.join(' ')}; their package install would fail on ${lacking.length === 1 ? 'it' : 'them'}: download ${lacking.length === 1 ? 'it' : 'them'} (pigen bundle --download) or add the .deb files\n`,
        );
      }
      // Ctrl-C or SIGTERM: the partial file is removed and the previous one left as it was (a
      // second signal ends pigen at once; the next bundle to this file removes what it left).
      // (Listened for before the partial file exists. A signal's alone: its progress on a pipe
      // that closed is no reason to stop.)
      const stopped = ctx.interrupted?.(undefined, { signalsOnly: true });
      let sink: Awaited<ReturnType<typeof atomicFileSink>>;
      try {
        sink = await atomicFileSink(out);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (!err.code) throw e;
        return fail(1, `cannot write ${shown}: ${err.code === 'EACCES' ? 'permission denied' : err.code === 'ENOENT' ? 'no such directory' : systemErrorMessage(err)}`);
      }
      const reporter = values.quiet ? undefined : new ProgressReporter(ctx.stderr, { now: () => performance.now() });
      const t0 = performance.now();
      const building = buildBundle({ epoch: ctx.epoch, payload, repodata, sink, level, concurrency: jobs, onProgress: (p) => reporter?.update(p) });
      building.catch(() => undefined);
      let res;
      try {
        res = await (stopped ? Promise.race([building, stopped.then(() => Promise.reject(new Interrupted()))]) : building);
        await sink.commit();
      } catch (e) {
        sink.abort();
        reporter?.done();
        if (e instanceof Interrupted) return fail(1, `interrupted: nothing written${fileSizeOf(out) !== undefined ? ` (${shown} is the previous bundle, untouched)` : ''}`);
        // (A broken .deb found past its head: bad input. A file that changed while read, the disk
        // full: the bundle failed.)
        if (e instanceof BundleError) return fail(e.badInput ? 2 : 1, `bundle failed: ${e.message}`);
        const err = e as NodeJS.ErrnoException;
        if (err.code) return fail(1, `bundle failed: ${err.message}`);
        throw e;
      }
      reporter?.done();
      const secs = (performance.now() - t0) / 1000;
      if (values.json) {
        ctx.stdout.write(JSON.stringify({ ok: true, out: shown, ...res, notBundled: left.map((f) => f.name), lacking, seconds: Number(secs.toFixed(3)) }, null, 2) + '\n');
      } else {
        ctx.stdout.write(
          `${shown}: ${res.files} files (${res.debs} .deb, ${res.rpms} .rpm), ${formatBytes(res.bytesIn)} → ${formatBytes(res.bytesOut)} in ${secs.toFixed(1)} s` +
            ` (${formatBytes(secs > 0 ? res.bytesIn / secs : 0)}/s, ${res.members} gzip members)\nrepo_complete: ${res.manifestSha256}\n`,
        );
      }
      return 0;
    } finally {
      if (tmp) removePath(tmp);
    }
  },
};

function abs(ctx: CliContext, p: string): string {
  return isAbsolute(p) ? p : resolvePath(ctx.cwd, p);
}

function intOption(v: unknown, name: string, d: number, min: number, max: number): number {
  if (v === undefined) return d;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not '${String(v)}'`);
  return n;
}

async function verifyCommand(ctx: CliContext, file: string | undefined, json: boolean): Promise<number> {
  if (!file) throw new UsageError(`bundle verify needs a FILE\nUsage: pigen bundle verify FILE`);
  const path = abs(ctx, file);
  if (fileSizeOf(path) === undefined || isDirectory(path)) {
    const why = isDirectory(path) ? 'it is a directory' : 'no such file';
    ctx.stderr.write(`pigen: cannot read ${file}: ${why}\n`);
    if (json) ctx.stdout.write(JSON.stringify({ file, ok: false, error: `cannot read ${file}: ${why}` }, null, 2) + '\n');
    return 2;
  }
  const res = await verifyBundle(readFileChunks(path));
  if (json) {
    ctx.stdout.write(JSON.stringify({ file, ...res }, null, 2) + '\n');
    return res.ok ? 0 : 1;
  }
  if (!res.ok) {
    const more = res.problems > 1 ? ` (and ${res.problems - 1} more problem${res.problems === 2 ? '' : 's'})` : '';
    ctx.stderr.write(`pigen: ${file}: verification failed: ${res.error}${more}\n`);
    return 1;
  }
  ctx.stdout.write(`${file}: ok: ${res.files} files (${res.debs} .deb), ${formatBytes(res.bytes)}; every checksum matches manifest.sha256 and every size manifest.size; repo_complete ${res.manifestSha256}\n`);
  return 0;
}

/** A first SIGINT or SIGTERM while the bundle is written. */
class Interrupted extends Error {}

/** The lead every RPM package starts with (rpm's lead magic). */
const RPM_MAGIC = Buffer.from([0xed, 0xab, 0xee, 0xdb]);

/**
 * createrepo_c over the .rpm files, staged as symlinks in a temp dir so hrefs are flat names.
 * (A file named .rpm that is no package: bad input, named; createrepo_c skipped it quietly.)
 */
async function createrepo(ctx: CliContext, rpms: string[], epoch: number): Promise<{ error: string; badInput?: true } | { tmp: string; files: BundleInput[] }> {
  const tool = findProgram('createrepo_c', ctx.env.PATH ?? '');
  if (!tool) return { error: `.rpm files need createrepo_c to build repodata/, and it is not on PATH (Debian: apt-get install createrepo-c; EL: dnf install createrepo_c)` };
  const notRpm = rpms.filter((p) => !fileStartsWith(p, RPM_MAGIC));
  if (notRpm.length) return { error: `not RPM packages (no RPM lead): ${notRpm.map((p) => p.slice(p.lastIndexOf('/') + 1)).join(', ')}: replace or remove them`, badInput: true };
  const tmp = makeTempDir('pigen-repodata-');
  const stage = join(tmp, 'in');
  const outDir = join(tmp, 'out');
  ensurePaths([stage, outDir]);
  for (const p of rpms) symlinkFile(p, join(stage, p.slice(p.lastIndexOf('/') + 1)));
  const args = ['--no-database', '--revision', String(epoch), '--set-timestamp-to-revision', '-o', outDir, stage];
  const r = await runProgram(tool, args, { env: { ...ctx.env, SOURCE_DATE_EPOCH: String(epoch) } });
  if (r.code !== 0) {
    removePath(tmp);
    return { error: `createrepo_c failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}` };
  }
  const dir = join(outDir, 'repodata');
  const listed = listDirFiles(dir).files;
  // (Every package in the index: one createrepo_c could not read is left out of it, with a warning.)
  const primary = listed.find((f) => /-primary\.xml(\.gz|\.zst|\.xz|\.bz2)?$/.test(f.name) || f.name === 'primary.xml');
  const count = primary ? primaryPackageCount(primary.path) : undefined;
  if (count !== undefined && count !== rpms.length) {
    removePath(tmp);
    return { error: `createrepo_c indexed ${count} of the ${rpms.length} .rpm files: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ') || 'some could not be read'}`, badInput: true };
  }
  const files = listed.map((f) => ({ name: `repodata/${f.name}`, size: f.size, read: () => readFileChunks(f.path) }));
  return { tmp, files };
}

/** A failure said on stderr and, with --json, as {ok: false, error} on stdout; its exit code returned. */
const failer = (ctx: CliContext, json: boolean) => (code: number, message: string) => {
  ctx.stderr.write(`pigen: ${message}\n`);
  if (json) ctx.stdout.write(JSON.stringify({ ok: false, error: message }, null, 2) + '\n');
  return code;
};

/** --download: isolated apt-get update + install --download-only into CACHE/archives. */
async function download(ctx: CliContext, facts: ReturnType<typeof bundleFacts>, cache: string, quiet: boolean, json: boolean): Promise<number> {
  // (Every outcome is one JSON object on stdout with --json; apt-get's lines go to stderr.)
  const report = (v: Record<string, unknown>) => json && ctx.stdout.write(JSON.stringify(v, null, 2) + '\n');
  const fail = (message: string) => failer(ctx, json)(1, message);
  if (facts.os.family !== 'deb') return fail(`--download uses apt-get and supports deb profiles only (os_profile is ${facts.os.code}); on EL use repotrack`);
  const apt = findProgram('apt-get', ctx.env.PATH ?? '');
  if (!apt) return fail('--download needs apt-get (a Debian build host)');
  ensurePaths([join(cache, 'archives', 'partial'), join(cache, 'state', 'lists', 'partial')], [join(cache, 'state', 'status')]);
  const opts = isolatedApt(cache);
  const log = quiet ? undefined : (s: string) => ctx.stderr.write(s);
  // (apt-get reads http_proxy and https_proxy from its environment: proxy_env's, over the caller's.)
  const env = { ...ctx.env, ...facts.proxyEnv };
  const up = await runProgram(apt, [...opts, '-q', 'update'], { onOutput: log, env });
  if (up.code !== 0) return fail(`apt-get update failed (exit ${up.code})`);
  let wanted = [...facts.packages];
  const missing: string[] = [];
  for (let attempt = 0; attempt < 3 && wanted.length; attempt++) {
    const r = await runProgram(apt, [...opts, '-q', '-y', '--no-install-recommends', 'install', '--download-only', ...wanted], { onOutput: log, env });
    if (r.code === 0) {
      wanted = [];
      break;
    }
    const gone = missingPackages(r.stdout + r.stderr).filter((p) => wanted.includes(p));
    if (!gone.length) return fail(`apt-get install --download-only failed (exit ${r.code})`);
    missing.push(...gone);
    wanted = wanted.filter((p) => !gone.includes(p));
  }
  const got = listDirFiles(join(cache, 'archives')).files.filter((f) => f.name.endsWith('.deb'));
  const absent = [...new Set(missing)].sort();
  if (json) report({ ok: absent.length === 0, archives: join(cache, 'archives'), debs: got.length, bytes: got.reduce((n, f) => n + f.size, 0), missing: absent });
  else ctx.stdout.write(`${join(cache, 'archives')}: ${got.length} .deb files (${formatBytes(got.reduce((n, f) => n + f.size, 0))}); bundle them with: pigen bundle --from ${join(cache, 'archives')}\n`);
  if (absent.length) {
    ctx.stderr.write(`pigen: ${absent.length} package${absent.length === 1 ? '' : 's'} not found in the apt sources: ${absent.join(' ')}\n`);
    return 1;
  }
  return 0;
}
