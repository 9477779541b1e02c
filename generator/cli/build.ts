// `pigen build`: compile the inventory into an output directory, written atomically.

import { compileAsync } from '../compile.js';
import { GZIP_OPTIONS } from '../emit/userdata.js';
import { fileSizeOf, gzipSizeWorker, openTreeWriter, packageVersion, readAssets, readFileChunks } from '../io.js';
import { verifyBundle } from '../bundle/verify.js';
import { availableParallelism } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { INVENTORY_HELP, INVENTORY_OPTIONS, type Command } from './commands.js';
import { hasErrors, loadInventory, printDiagnostics, diagnosticsToJson } from './common.js';

/**
 * Writer threads for a fleet of `nodes`: one; on a large fleet (its files' creation in the
 * kernel outlasts the compile) one per core, up to two, each writing its share of the nodes.
 */
export function writerThreads(nodes: number, cores = availableParallelism()): number {
  return nodes >= 2000 ? Math.max(1, Math.min(2, cores)) : 1;
}

export const build: Command = {
  name: 'build',
  summary: "render every node's files, user-data and manifest into an output directory",
  usage: 'pigen build [INVENTORY] [-o DIR] [--strict] [--json] [--set KEY=VALUE ...]',
  help: `Writes, for every node, out/nodes/<ip>/rootfs/ (each file as it lies on disk), user-data (one
complete #cloud-config), meta-data (NoCloud), and out/manifest.json. The new tree is built beside
DIR and swapped in; a build that changes nothing rewrites no file.

${INVENTORY_HELP}
  -o, --out DIR      output directory (default: out)
  --bundle FILE      the offline repo bundle the repo-serving node's image carries (its manifest
                     hash becomes part of that image's content hash, as with pigen bake --bundle)

Also writes, per golden image, out/images/<image>.json (content, packages, content hash, nodes)
and out/images/<image>.pkrvars.hcl (Packer variables for images/), and per node
out/nodes/<ip>/user-data.baked (the user-data for a node booted from its image).`,
  options: { ...INVENTORY_OPTIONS, out: { type: 'string', short: 'o' }, bundle: { type: 'string' } },
  maxArgs: 1,
  async run(ctx, values, args) {
    // The time reported: from reading the inventory to the last file in place.
    const t0 = performance.now();
    const r = loadInventory(ctx, args[0], (values.set as string[] | undefined) ?? [], values.strict === true);
    if (!values.json) printDiagnostics(ctx, r);
    if (hasErrors(r.diagnostics) || !r.inventory) {
      if (values.json) ctx.stdout.write(JSON.stringify({ ok: false, diagnostics: diagnosticsToJson(r.diagnostics) }, null, 2) + '\n');
      return 2;
    }
    const version = packageVersion();
    const out = (values.out as string | undefined) ?? 'out';
    let bundleSha256: string | undefined;
    if (typeof values.bundle === 'string') {
      const path = resolvePath(ctx.cwd, values.bundle);
      const v = fileSizeOf(path) === undefined ? undefined : await verifyBundle(readFileChunks(path));
      if (!v?.ok || !v.manifestSha256) {
        ctx.stderr.write(`pigen: --bundle ${values.bundle}: ${v ? `not a valid pigen bundle: ${v.error}` : 'no such file'}\n`);
        return 2;
      }
      bundleSha256 = v.manifestSha256;
    }
    const outDir = out.startsWith('/') ? out : `${ctx.cwd}/${out}`;
    const cannotWrite = (e: unknown) => {
      ctx.stderr.write(`pigen: cannot write ${out}: ${(e as Error).message}\n`);
      return 1;
    };
    // The files are written on other threads while the rest is compiled (writerThreads); the
    // level-9 gzips that size each user-data on another.
    let writer;
    try {
      writer = openTreeWriter(outDir, {}, writerThreads(r.inventory.nodes.length));
    } catch (e) {
      return cannotWrite(e);
    }
    const gz = gzipSizeWorker(GZIP_OPTIONS);
    let c;
    try {
      c = await compileAsync(r.inventory, readAssets(), { version, ...(r.secrets ? { secrets: r.secrets } : {}), ...(bundleSha256 ? { bundleSha256 } : {}) }, gz.size, writer.add);
    } catch (e) {
      await writer.abort();
      throw e;
    } finally {
      await gz.close();
    }
    let stats;
    try {
      stats = await writer.finish();
    } catch (e) {
      return cannotWrite(e);
    }
    const ms = performance.now() - t0;
    // One warning per node whose user-data fits no cloud's limit (NoCloud has none).
    const tooBig: string[] = [];
    for (const [ip, n] of Object.entries(c.manifest.nodes as Record<string, { nodename: string; userData: { size: number; targets: Record<string, { fits: boolean }> } }>)) {
      const clouds = Object.entries(n.userData.targets).filter(([k]) => k !== 'nocloud');
      if (!clouds.some(([, t]) => t.fits)) tooBig.push(ip);
      if (!values.json && !clouds.some(([, t]) => t.fits)) {
        ctx.stderr.write(`warning: ${n.nodename} (${ip}): user-data (${n.userData.size} bytes) fits no cloud's limit in any encoding; bake an image (pigen bake)\n`);
      }
    }
    // The writer counts regular files (written + unchanged); the other entries are symbolic links.
    const files = stats.written + stats.unchanged;
    const links = c.files - files;
    if (values.json) {
      ctx.stdout.write(
        JSON.stringify({ ok: true, out, nodes: c.nodes.length, files, links, written: stats.written, unchanged: stats.unchanged, removed: stats.removed, io: stats.io, ms: Math.round(ms), diagnostics: diagnosticsToJson(r.diagnostics) }, null, 2) + '\n',
      );
    } else {
      const what = stats.noop ? 'up to date, nothing rewritten' : `${stats.written} written, ${stats.unchanged} unchanged, ${stats.removed} removed`;
      ctx.stdout.write(`${r.source?.name} → ${out}/: ${c.nodes.length} node${c.nodes.length === 1 ? '' : 's'}, ${files} files${links ? ` and ${links} link${links === 1 ? '' : 's'}` : ''} (${what}) in ${ms.toFixed(0)} ms\n`);
      for (const n of c.nodes) ctx.stdout.write(`  ${n.ip.padEnd(15)} ${n.nodename.padEnd(20)} ${String(n.files.length).padStart(4)} files  ${n.modules.join(',')}\n`);
    }
    return 0;
  },
};
