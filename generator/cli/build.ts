// `pigen build`: compile the inventory into an output directory, written atomically.

import { compileAsync, compileMemo, type CompileMemo } from '../compile.js';
import { GZIP_OPTIONS } from '../emit/userdata.js';
import { fileOnPath, fileStamp, gzipSizeWorker, hasState, inlineGzipSizer, inventoryFile, isWithin, openTreeWriter, packageVersion, prevalidator, readAssets, readFileChunks, saveRedactionIndex, upToDate, watchFiles, type GzipSizes, type Prevalidator, type WriteStats } from '../io.js';
import { verifyBundle } from '../bundle/verify.js';
import type { ParseMemo } from '../load/parse.js';
import { availableParallelism } from 'node:os';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import { SECRETS_FILE } from '../secrets/index.js';
import type { OutEntry, RenderedNode, Source } from '../types.js';
import { useColor, type CliContext } from './context.js';
import { INVENTORY_HELP, INVENTORY_OPTIONS, type Command, type Values } from './commands.js';
import { diagnosticsText, hasErrors, loadInventory, printDiagnostics, diagnosticsToJson, secretFormsOf, secretsFileOf, isSystemError, systemErrorMessage, whenFree, type LoadResult } from './common.js';
import { asReport, buildKey, inputsKey, type BuildReport } from './uptodate.js';

/**
 * Below this many nodes a build runs on its main thread alone (writer and gzip sizing inline):
 * starting a worker thread costs ~10-20 ms, more than it saves on a small fleet (measured: a
 * 1-node build 160 → 125 ms, 30 nodes 200 → 180 ms, even at 100 nodes on disk and tmpfs).
 */
export const SMALL_FLEET = 100;

/**
 * Writer threads for a fleet of `nodes`: none on a small fleet (SMALL_FLEET); one; on a large
 * fleet (its files' creation in the kernel outlasts the compile) one per core, up to two, each
 * writing its share of the nodes.
 */
export function writerThreads(nodes: number, cores = availableParallelism()): number {
  return nodes < SMALL_FLEET ? 0 : nodes >= 2000 ? Math.max(1, Math.min(2, cores)) : 1;
}

export const build: Command = {
  name: 'build',
  summary: "render every node's files, user-data and manifest into an output directory",
  usage: 'pigen build [INVENTORY] [-o DIR] [--bundle FILE] [--watch] [--strict] [--json] [--set KEY=VALUE ...]',
  help: `Writes, for every node, out/nodes/<ip>/rootfs/ (each file as it lies on disk), user-data (one
complete #cloud-config), meta-data (NoCloud), and out/manifest.json. The new tree is built beside
DIR and swapped in; a build that changes nothing rewrites no file, and one of the very inputs
(inventory, secrets file, --set, --strict, pigen itself) that made DIR, untouched since, does no
work at all: it prints that build's report again.

${INVENTORY_HELP}
  -o, --out DIR      output directory (default: out)
  --bundle FILE      the offline repo bundle the repo-serving node's image carries (its manifest
                     hash becomes part of that image's content hash, as with pigen bake --bundle)
  -w, --watch        stay running: build again whenever INVENTORY or the secrets file beside it
                     changes, rendering only the nodes whose parameters changed (Ctrl-C stops
                     once a build under way is done, a second Ctrl-C at once; with --json, one
                     JSON object per line per build)

Also writes, per golden image, out/images/<image>.json (content, packages, content hash, nodes)
and out/images/<image>.pkrvars.hcl (Packer variables for images/), and per node
out/nodes/<ip>/user-data.baked (the user-data for a node booted from its image).`,
  options: { ...INVENTORY_OPTIONS, out: { type: 'string', short: 'o' }, bundle: { type: 'string' }, watch: { type: 'boolean', short: 'w' } },
  maxArgs: 1,
  async run(ctx, values, args) {
    if (values.watch !== true) {
      // (A build over an earlier output of a large fleet checks that output's files against its
      // state on a thread of its own while it parses and resolves, as --watch does each time.)
      const pre = prevalidator(PREVALIDATE_MIN);
      try {
        return await buildOnce(ctx, values, args, undefined, pre);
      } finally {
        await pre.close();
      }
    }
    return watch(ctx, values, args);
  },
};

/** Kept across the builds of `pigen build --watch`: the parse and compile memos, the gzip sizer's thread, the --bundle check. */
interface Session {
  parse: ParseMemo;
  memo: CompileMemo;
  gz: GzipSizes;
  bundle?: { stamp: string; verified: Awaited<ReturnType<typeof verifyBundle>> };
  /** Interrupted (a build waiting for the output's lock gives up). */
  stopped(): boolean;
  /** Checks the output's files against its state on a thread of its own as each build begins. */
  prevalidator: Prevalidator;
}

/**
 * The fewest entries an earlier output must have for a one-shot build to check it on a thread of
 * its own (SMALL_FLEET nodes' worth: below, the thread's start costs more than the lstats).
 */
const PREVALIDATE_MIN = 1500;

async function buildOnce(ctx: CliContext, values: Values, args: string[], session?: Session, oneShot?: Prevalidator): Promise<number> {
  // The time reported: from reading the inventory to the last file in place.
  const t0 = performance.now();
  // (--watch prints one JSON object per line: a stream of builds.)
  const json = (v: unknown) => ctx.stdout.write((session ? JSON.stringify(v) : JSON.stringify(v, null, 2)) + '\n');
  const out = (values.out as string | undefined) ?? 'out';
  // An early failure: said on stderr, and as {ok: false, error} with --json.
  const fail = (code: number, message: string) => {
    ctx.stderr.write(`pigen: ${message}\n`);
    if (values.json) json({ ok: false, error: message });
    return code;
  };
  // (-o names a directory: empty, or a file there or on its path, is bad input, said before any work.)
  if (out === '') return fail(2, '-o needs a directory path (the default is out)');
  const outDir = resolvePath(ctx.cwd, out);
  const blocked = fileOnPath(outDir);
  if (blocked) return fail(2, `-o ${out}: ${blocked === outDir ? 'it is a file' : `${blocked} is a file`}, not a directory; give a directory (pigen build writes a tree there)`);
  const inside = inputInsideOutput(ctx, values, args);
  if (inside) return fail(2, inside);
  // (The output's files are checked against its state on another thread meanwhile.)
  const checking = (session?.prevalidator ?? oneShot)?.start(outDir);
  // Nothing changed since the build that made the output, which is still as it wrote it: its report
  // again, and nothing else done (cli/uptodate.ts). (A watching process builds from its memos.)
  // (That output is checked here, not by waiting for the thread: ~0.1 s sooner at 1,000 nodes.)
  // (Over no earlier output, or one with no state: nothing to compare, nor to stamp, as the next
  // build walks such an output and builds anyway. A cold build is the one not slowed.)
  const earlier = !session && hasState(outDir);
  const now = earlier ? buildKey(ctx, values, args) : undefined;
  const same = now && asReport((await upToDate(outDir, now.key))?.report, Date.now());
  if (same) {
    if (!values.json) ctx.stderr.write(useColor(ctx, ctx.stderr) ? same.diagnostics.color : same.diagnostics.text);
    const stats = { written: 0, unchanged: same.files, removed: 0, noop: true, io: { files: 0, links: 0, dirs: 0, removed: 0 } };
    return printReport(ctx, values, out, now.source.name, same, stats, performance.now() - t0, { inputsUnchanged: true });
  }
  const r = loadInventory(ctx, args[0], (values.set as string[] | undefined) ?? [], values.strict === true, session ? { parseMemo: session.parse } : {});
  if (!values.json) printDiagnostics(ctx, r);
  if (hasErrors(r.diagnostics) || !r.inventory) {
    if (values.json) json({ ok: false, diagnostics: diagnosticsToJson(r.diagnostics) });
    return 2;
  }
  const version = packageVersion();
  let bundleSha256: string | undefined;
  if (typeof values.bundle === 'string') {
    const path = resolvePath(ctx.cwd, values.bundle);
    // (Verified once per version of the file in a watching process: it is read whole.)
    const stamp = fileStamp(path);
    const v = stamp === undefined ? undefined : session?.bundle?.stamp === stamp ? session.bundle.verified : await verifyBundle(readFileChunks(path));
    if (session && stamp !== undefined && v) session.bundle = { stamp, verified: v };
    if (!v?.ok || !v.manifestSha256) return fail(2, `--bundle ${values.bundle}: ${v ? `not a valid pigen bundle: ${v.error}` : 'no such file'}`);
    bundleSha256 = v.manifestSha256;
  }
  // (-o naming a directory that is no pigen output is bad input, exit 2, as for pigen check.)
  const cannotWrite = (e: unknown) => fail(['ENOTPIGEN', 'EPIGENMOUNT'].includes((e as { code?: string }).code ?? '') ? 2 : 1, `cannot write ${out}: ${systemErrorMessage(e)}`);
  const assets = readAssets();
  const opts = { version, ...(r.secrets ? { secrets: r.secrets } : {}), ...(bundleSha256 ? { bundleSha256 } : {}) };
  // A watching process compiles first, its entries (references to what its memo holds anyway) kept
  // until the writer opens: the output's check on its thread and the user-data gzips on theirs
  // run meanwhile. (Only the manifest waits for the gzips: the writer opens and takes the entries
  // made so far while the last ones are sized.) So does a one-shot build over a large earlier
  // output while that output is checked on its thread (main had ~60 ms to wait for it at 1,000
  // nodes); any other one-shot build opens the writer first, and streams every entry into it.
  let writerAdd: ((e: OutEntry) => void) | undefined;
  const early: OutEntry[] = [];
  // (A one-shot build's gzips: on another thread, or here on a small fleet.)
  const gz = session ? undefined : r.inventory.nodes.length < SMALL_FLEET ? inlineGzipSizer(GZIP_OPTIONS) : gzipSizeWorker(GZIP_OPTIONS);
  const compile = () => compileAsync(r.inventory!, assets, opts, session ? session.gz.size : gz!.size, (e) => (writerAdd ? writerAdd(e) : void early.push(e)), session?.memo);
  const compiling = session || checking ? compile() : undefined;
  // (Awaited below, or given up with the build: never a rejection left unhandled.)
  compiling?.catch(() => {});
  let c;
  let writer;
  try {
    // One build writes an output at a time (io.ts: lockHome): another one's end is waited for.
    // (A one-shot build's files are written on other threads while the rest is compiled:
    // writerThreads.)
    const prevalidated = checking && (await checking);
    const threads = writerThreads(r.inventory.nodes.length);
    try {
      writer = await whenFree(ctx, out, () => openTreeWriter(outDir, prevalidated ? { prevalidated } : {}, threads), session?.stopped);
    } catch (e) {
      return cannotWrite(e);
    }
    // (Stopped while another pigen held the output: said, not dropped silently.)
    if (!writer) return fail(1, `stopped while waiting for the output ${out}: this build was not written (the output is the last finished build's)`);
    try {
      for (const e of early) writer.add(e);
      early.length = 0;
      writerAdd = writer.add;
      c = await (compiling ?? compile());
    } catch (e) {
      await writer.abort();
      // (The writer writes as entries come: a full disk or an I/O error is said as at the end, and
      // a watching process goes on. Anything else is a bug.)
      if (isSystemError(e)) return cannotWrite(e);
      throw e;
    }
  } finally {
    await gz?.close();
  }
  // What this build reports, recorded with its output (with the key of the inputs it read) for a
  // build of the same inputs to print again (cli/uptodate.ts).
  const rep = buildReport(c, r, earlier);
  // (The key of the bytes read above: the one computed as the build began when they are the same.)
  const keyOf = (src: Source, secrets: { path: string; text: string | undefined; mode?: number | undefined }) =>
    now && now.source.name === src.name && Buffer.from(now.source.bytes).equals(src.bytes) && now.secrets === secrets.text && now.mode === secrets.mode ? now.key : inputsKey(src, secrets, values);
  const stamp = !earlier || values.bundle !== undefined || !r.source || !r.secretsFile ? undefined : { key: keyOf(r.source, r.secretsFile), report: rep };
  // What a later `pigen check` hides in the validators' messages (util/redact.ts): saved under
  // the output's lock, before the swap, so builds one after the other leave the last one's; with
  // what it held, until the new output is in place (a swap that fails, or a build killed before
  // it, leaves the output with the secrets the index held: they stay hidden); then the new alone.
  const forms = secretFormsOf(r);
  try {
    saveRedactionIndex(outDir, forms, true);
  } catch (e) {
    await writer.abort();
    return cannotWrite(e);
  }
  let stats;
  try {
    // (The new alone once the output is in place, under the same lock: no other build's output
    // can be in place by then. Should it fail, the index holds the old secrets too: more hidden.)
    stats = await writer.finish(stamp, () => saveRedactionIndex(outDir, forms));
  } catch (e) {
    return cannotWrite(e);
  }
  const ms = performance.now() - t0;
  // A watching process names the nodes it rendered again (on the first build: every node).
  const changed = session?.memo.changed;
  return printReport(ctx, values, out, r.source?.name, rep, stats, ms, changed ? { rendered: changed, reparsed: session!.parse.reparsed === true } : { inputsUnchanged: false });
}

/**
 * What a build reports: its nodes, the limits their user-data exceed, its counts and diagnostics
 * (as printed, only when `recorded`: printed already, they are kept only for a stamp).
 */
function buildReport(c: { nodes: RenderedNode[]; files: number; manifest: Record<string, unknown> }, r: LoadResult, recorded: boolean): BuildReport {
  const nodesOf = c.manifest.nodes as Record<string, { nodename: string; userData: { size: number; targets: Record<string, { fits: boolean; limit: number | null }> } }>;
  const exceeds: Record<string, { limit: number; nodes: string[] }> = {};
  const unfit: BuildReport['unfit'] = [];
  for (const [ip, n] of Object.entries(nodesOf)) {
    for (const [cloud, t] of Object.entries(n.userData.targets)) if (!t.fits && t.limit !== null) (exceeds[cloud] ??= { limit: t.limit, nodes: [] }).nodes.push(ip);
    if (!Object.entries(n.userData.targets).some(([k, t]) => k !== 'nocloud' && t.fits)) unfit.push([ip, n.nodename, n.userData.size]);
  }
  // (Links: each node's own; every other entry is a regular file.)
  const links = c.nodes.reduce((t, n) => t + n.links.length, 0);
  return {
    nodes: c.nodes.map((n) => [n.ip, n.nodename, n.files.length, n.modules]),
    unfit,
    exceeds,
    files: c.files - links,
    links,
    diagnostics: { text: recorded ? diagnosticsText(r, false) : '', color: recorded ? diagnosticsText(r, true) : '', json: diagnosticsToJson(r.diagnostics) },
    ...(r.diagnosticsUntil !== undefined && Number.isFinite(r.diagnosticsUntil) ? { until: r.diagnosticsUntil } : {}),
  };
}

/**
 * Prints a build's report: per node whose user-data fits no cloud's limit a warning, per cloud
 * whose limit some exceed a note (--json: `exceeds`), then the summary line and the nodes (those
 * rendered again, in a watching process), or the --json object. (The diagnostics were printed
 * before: a build prints them as soon as the inventory is read.)
 */
function printReport(
  ctx: CliContext,
  values: Values,
  out: string,
  source: string | undefined,
  rep: BuildReport,
  stats: Pick<WriteStats, 'written' | 'unchanged' | 'removed' | 'noop' | 'io'>,
  ms: number,
  how: { inputsUnchanged: boolean } | { rendered: string[]; reparsed: boolean },
): number {
  const json = (v: unknown) => ctx.stdout.write(('rendered' in how ? JSON.stringify(v) : JSON.stringify(v, null, 2)) + '\n');
  const { files, links, exceeds } = rep;
  const total = rep.nodes.length;
  if (values.json) {
    json({
      ok: true,
      out,
      nodes: total,
      userData: { exceeds },
      files,
      links,
      written: stats.written,
      unchanged: stats.unchanged,
      removed: stats.removed,
      io: stats.io,
      ms: Math.round(ms),
      ...('rendered' in how ? { rendered: how.rendered.length, reparsed: how.reparsed } : how),
      diagnostics: rep.diagnostics.json,
    });
    return 0;
  }
  for (const [ip, nodename, size] of rep.unfit) ctx.stderr.write(`warning: ${nodename} (${ip}): user-data (${size} bytes) fits no cloud's limit in any encoding; bake an image (pigen bake)\n`);
  for (const [cloud, e] of Object.entries(exceeds)) {
    const which = e.nodes.length <= 3 ? e.nodes.join(', ') : `${e.nodes.slice(0, 3).join(', ')} …`;
    ctx.stderr.write(
      `note: ${e.nodes.length} of ${total} node${total === 1 ? "'s" : "s'"} user-data ${e.nodes.length === 1 ? 'exceeds' : 'exceed'} ${cloud} (${e.limit} bytes) in every encoding (${which}): boot ${e.nodes.length === 1 ? 'it' : 'them'} there from ${e.nodes.length === 1 ? 'its image' : 'their images'} with user-data.baked (pigen bake), or see pigen userdata NODE --cloud ${cloud}\n`,
    );
  }
  const what = 'inputsUnchanged' in how && how.inputsUnchanged ? 'up to date: the inputs of the last build, its output untouched' : stats.noop ? 'up to date, nothing rewritten' : `${stats.written} written, ${stats.unchanged} unchanged, ${stats.removed} removed`;
  ctx.stdout.write(`${source} → ${out}/: ${total} node${total === 1 ? '' : 's'}, ${files} files${links ? ` and ${links} link${links === 1 ? '' : 's'}` : ''} (${what}) in ${ms.toFixed(0)} ms\n`);
  const again = 'rendered' in how && how.rendered.length < total ? new Set(how.rendered) : undefined;
  for (const [ip, nodename, n, modules] of rep.nodes) if (!again || again.has(ip)) ctx.stdout.write(`  ${ip.padEnd(15)} ${nodename.padEnd(20)} ${String(n).padStart(4)} files  ${modules.join(',')}\n`);
  return 0;
}

/**
 * `--watch`: build, then build again whenever the inventory or the secrets file beside it changes,
 * until interrupted (SIGINT, SIGTERM: exit 0 once a build under way is done; a second one exits
 * at once: process.ts stopRequests). Only the nodes whose plan changed are rendered and
 * emitted again (CompileMemo); the output is written as by any build, atomically. A rebuild that
 * fails (bad inventory) prints its errors and leaves the output as it was.
 */
async function watch(ctx: CliContext, values: Values, args: string[]): Promise<number> {
  const refuse = (message: string) => {
    ctx.stderr.write(`pigen: ${message}\n`);
    if (values.json) ctx.stdout.write(JSON.stringify({ ok: false, error: message }) + '\n');
    return 2;
  };
  const file = inventoryFile(args[0], ctx.cwd);
  if (file === undefined) return refuse('--watch needs an inventory file (the embedded default inventory never changes)');
  // (No later edit can fix an input inside the output: refused at once, not at every save.)
  const inside = inputInsideOutput(ctx, values, args);
  if (inside) return refuse(inside);
  let dirty = true; // the first build
  let stopped = false;
  let wake: (() => void) | undefined;
  // Watching starts before the first build: a change made while a build runs is built next.
  const watcher = watchFiles([resolvePath(ctx.cwd, file), secretsFileOf(ctx.cwd, file)], () => {
    dirty = true;
    wake?.();
  });
  void (ctx.interrupted?.() ?? new Promise<void>(() => {})).then(() => {
    stopped = true;
    wake?.();
  });
  const session: Session = { parse: {}, memo: compileMemo(), gz: gzipSizeWorker(GZIP_OPTIONS), stopped: () => stopped, prevalidator: prevalidator() };
  try {
    for (let first = true; ; first = false) {
      while (dirty && !stopped) {
        dirty = false;
        await buildOnce(ctx, values, [file], session);
      }
      if (stopped) return 0;
      if (first && !values.json) ctx.stderr.write(`watching ${file} and the ${SECRETS_FILE} beside it for changes (Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    watcher.close();
    await session.gz.close();
    await session.prevalidator.close();
  }
}


/**
 * Every build replaces the output whole: an input inside it (the inventory, the secrets file when
 * there is one, the --bundle) would be gone after the next one, and a shell whose current
 * directory is inside it left in the previous tree. The message, if one is.
 */
function inputInsideOutput(ctx: CliContext, values: Values, args: string[]): string | undefined {
  const out = (values.out as string | undefined) ?? 'out';
  const outDir = resolvePath(ctx.cwd, out);
  const inv = inventoryFile(args[0], ctx.cwd);
  const inputs: [string, string | undefined][] = [
    ['the inventory', inv === undefined ? undefined : resolvePath(ctx.cwd, inv)],
    ['the secrets file', secretsFileOf(ctx.cwd, inv)],
    ['the --bundle file', typeof values.bundle === 'string' ? resolvePath(ctx.cwd, values.bundle) : undefined],
  ];
  for (const [what, f] of inputs) {
    if (f !== undefined && (what !== 'the secrets file' || fileStamp(f) !== undefined) && isWithin(f, outDir)) {
      return `${what} ${f} lies inside the output directory ${out}, which every build replaces whole: move it out, or build with -o elsewhere`;
    }
  }
  // (Nor may the current directory: a shell there is left in the previous tree, moved aside, and
  // sees an empty directory; a relative inventory path then names nothing.)
  if (isWithin(ctx.cwd, outDir)) {
    return `the current directory lies inside the output directory ${out}, which every build replaces whole (a shell there is left in the previous tree, moved aside): run pigen from outside it, e.g. from ${dirname(outDir)} with -o ${basename(outDir)}`;
  }
  return undefined;
}
