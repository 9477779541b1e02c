// `pigen userdata NODE`: one node's user-data, encoded to fit a target cloud's size limit.

import { compile } from '../compile.js';
import { cloudConfigText } from '../emit/cloud-config.js';
import { CLOUDS, LIMITS, candidates, encodeUserData, encodingMetadata, largestContributors, toMime, type Cloud, type Encoding } from '../emit/userdata.js';
import { fileSizeOf, inventoryFile, isWithin, managingOutput, packageVersion, readAssets, readFileChunks, writeFileAtomic } from '../io.js';
import { verifyBundle } from '../bundle/verify.js';
import { resolve as resolvePath } from 'node:path';
import { HIDDEN, isSecretKey, maskSecretsInLine, redactText } from '../diagnostics.js';
import { shellWord } from '../util/text.js';
import { INVENTORY_HELP, INVENTORY_OPTIONS, type Command } from './commands.js';
import { diagnosticsToJson, hasErrors, loadInventory, printDiagnostics, secretsFileOf, systemErrorMessage } from './common.js';
import { UsageError } from './context.js';

const ENCODINGS = ['auto', 'plain', 'gzip', 'base64', 'gzip+base64', 'files-gz+b64'] as const;

export const userdata: Command = {
  name: 'userdata',
  summary: "print or write one node's user-data, encoded to fit a cloud's size limit",
  usage: 'pigen userdata NODE [INVENTORY] [--cloud aws|azure|gcp|openstack|vsphere|nocloud] [--encoding auto|plain|gzip|base64|gzip+base64|files-gz+b64] [--mime] [--baked [--bundle FILE]] [-o FILE] [--json]',
  help: `NODE is a node's IP or nodename. The size and the budget go to stderr; the user-data to stdout
or FILE. Limits (bytes the instance receives):
${CLOUDS.map((c) => `  ${c.padEnd(10)} ${Number.isFinite(LIMITS[c].bytes) ? String(LIMITS[c].bytes).padStart(7) : '   none'}  ${LIMITS[c].note}`).join('\n')}

Encodings: plain; gzip (whole document; cloud-init decompresses it); base64 and gzip+base64
(for APIs and tools that take base64); files-gz+b64 (each large write_files entry as
'encoding: gz+b64', still a readable #cloud-config). auto (default) picks the smallest form the
target accepts: gzip where the platform delivers binary user-data; on GCP and vSphere, whose
user-data is a text value, gzip+base64 (or files-gz+b64, or plain). A base64 form there needs
its encoding set beside it, which cloud-init reads (printed with the size, and in --json as
"metadata"): GCP metadata user-data-encoding=base64; vSphere guestinfo.userdata.encoding=base64
or gzip+base64.
When nothing fits, exit 1 with the five largest contributors (each file's bytes as it is and
gzipped alone; ordered by the second for a compressed form), and whether the node's baked
user-data (what it boots with from its golden image: pigen bake) fits.

${INVENTORY_HELP}
  --cloud NAME       target platform (default: aws)
  --encoding ENC     see above (default: auto)
  --mime             MIME multipart: the cloud-config plus a shell part (deterministic boundary)
  --baked            the user-data of the node booted from its golden image (out/nodes/<ip>/
                     user-data.baked: its image's files and packages left out)
  --bundle FILE      with --baked: the offline repo bundle the images carry, as given to pigen
                     build --bundle (its manifest hash is part of the repo node's image name)
  -o, --out FILE     write to FILE (atomically, mode 0600) instead of stdout

The user-data holds the node's secrets (private keys, passwords): printed to a terminal, a
warning on stderr names the files that hold them (no secret in it).`,
  options: { ...INVENTORY_OPTIONS, cloud: { type: 'string' }, encoding: { type: 'string' }, mime: { type: 'boolean' }, baked: { type: 'boolean' }, bundle: { type: 'string' }, out: { type: 'string', short: 'o' } },
  maxArgs: 2,
  async run(ctx, values, args) {
    const [nodeArg, invArg] = args;
    if (!nodeArg) throw new UsageError(`missing NODE\nUsage: ${this.usage}`);
    const cloud = ((values.cloud as string | undefined) ?? 'aws') as Cloud;
    if (!CLOUDS.includes(cloud)) throw new UsageError(`unknown --cloud '${cloud}' (one of: ${CLOUDS.join(', ')})`);
    const encoding = ((values.encoding as string | undefined) ?? 'auto') as (typeof ENCODINGS)[number];
    if (!ENCODINGS.includes(encoding)) throw new UsageError(`unknown --encoding '${encoding}' (one of: ${ENCODINGS.join(', ')})`);
    // (NoCloud reads the seed's user-data as it is: a base64 form is never decoded, and the node
    // boots unconfigured.)
    if (cloud === 'nocloud' && (encoding === 'base64' || encoding === 'gzip+base64')) throw new UsageError(`--encoding ${encoding}: nocloud reads the seed's user-data as it is and decodes no base64 (one of: auto, plain, gzip, files-gz+b64)`);
    if (values.out === '') throw new UsageError('-o needs a file path (to print to stdout, leave -o out)');
    if (values.bundle !== undefined && !values.baked) throw new UsageError('--bundle names the image of the baked user-data: give it with --baked');
    const r = loadInventory(ctx, invArg, (values.set as string[] | undefined) ?? [], values.strict === true);
    // (--json: every outcome is one JSON object on stdout, failures included.)
    const json = (v: Record<string, unknown>) => values.json && ctx.stdout.write(JSON.stringify({ ...v, diagnostics: diagnosticsToJson(r.diagnostics) }, null, 2) + '\n');
    const fail = (code: number, message: string) => {
      ctx.stderr.write(`pigen: ${message}\n`);
      json({ ok: false, error: message });
      return code;
    };
    if (!values.json) printDiagnostics(ctx, r);
    if (hasErrors(r.diagnostics) || !r.inventory) return json({ ok: false }), 2;
    // (An IP first: a nodename may look like another node's IP.)
    const node = r.inventory.nodes.find((n) => n.ip === nodeArg) ?? r.inventory.nodes.find((n) => n.nodename === nodeArg);
    if (!node) return fail(2, `no node '${nodeArg}' in ${r.source?.name}; nodes: ${r.inventory.nodes.map((n) => `${n.ip} (${n.nodename})`).join(', ')}`);
    const version = packageVersion();
    // (The bundle the images carry names the repo node's image, as pigen build --bundle does.)
    let bundleSha256: string | undefined;
    if (typeof values.bundle === 'string') {
      const path = resolvePath(ctx.cwd, values.bundle);
      const v = fileSizeOf(path) === undefined ? undefined : await verifyBundle(readFileChunks(path));
      if (!v?.ok || !v.manifestSha256) return fail(2, `--bundle ${values.bundle}: ${v ? `not a valid pigen bundle: ${v.error}` : 'no such file'}`);
      bundleSha256 = v.manifestSha256;
    }
    const compiled = compile(r.inventory, readAssets(), { version, ...(r.secrets ? { secrets: r.secrets } : {}), ...(bundleSha256 ? { bundleSha256 } : {}) });
    const rendered = compiled.nodes.find((n) => n.ip === node.ip)!;
    // The baked user-data as the build writes it (the image split is the whole fleet's).
    const bakedEntry = compiled.tree.find((e) => e.path === `nodes/${node.ip}/user-data.baked`);
    const bakedText = bakedEntry && 'data' in bakedEntry ? new TextDecoder().decode(bakedEntry.data) : undefined;
    if (values.baked && bakedText === undefined) return fail(1, `no baked user-data for ${node.ip}`);
    const text = values.baked ? bakedText! : cloudConfigText(rendered, { version });
    // With --mime, the encoding applies to the MIME document, except files-gz+b64: that one is the
    // cloud-config part's own (its files gzipped), and the document goes as it is.
    const encodeFor = (t: string) => (e: Encoding) =>
      !values.mime ? encodeUserData(t, e, cloud) : e === 'files-gz+b64' ? encodeUserData(toMime(new TextDecoder().decode(encodeUserData(t, e).bytes)), 'plain', cloud) : encodeUserData(toMime(t), e, cloud);
    const encodeAs = encodeFor(text);
    const limit = LIMITS[cloud].bytes;
    // The form --encoding names (auto: the smallest the target accepts), of a text.
    const choose = (as: (e: Encoding) => { delivered: number }, how: (typeof ENCODINGS)[number]): Encoding => {
      if (how !== 'auto') return how;
      const sizes = new Map(candidates(cloud).map((e) => [e, as(e).delivered]));
      return [...sizes.keys()].reduce((a, b) => (sizes.get(b)! < sizes.get(a)! ? b : a));
    };
    const chosen = choose(encodeAs, encoding);
    if (encoding !== 'auto') {
      if (chosen === 'gzip' && !LIMITS[cloud].binary) {
        ctx.stderr.write(`pigen: warning: ${cloud} delivers user-data as text; a raw gzip document will not decode there (--encoding gzip+base64 does)\n`);
      }
    }
    const { bytes, delivered } = encodeAs(chosen);
    const fits = delivered <= limit;
    const pct = Number.isFinite(limit) ? ` (${Math.round((delivered / limit) * 100)}%)` : '';
    const budget = Number.isFinite(limit) ? `${limit} bytes` : 'no limit';
    // (What cloud-init needs set beside a base64 value to decode it: GCP, vSphere.)
    const metadata = encodingMetadata(cloud, chosen) ?? null;
    // (The contributors of a compressed form ordered by their gzip's size.)
    const byGzip = chosen !== 'plain' && chosen !== 'base64';
    const result = { node: node.ip, nodename: node.nodename, cloud, baked: values.baked === true, encoding: chosen, metadata, size: delivered, limit: Number.isFinite(limit) ? limit : null, fits, largest: largestContributors(text, 5, byGzip ? 'gzip' : 'bytes', rendered.files.filter((f) => f.via === 'bootcmd')), out: values.out ?? null };
    if (!fits) {
      json({ ok: false, ...result });
      const top = result.largest.map((c) => `    ${String(c.bytes).padStart(7)} ${String(c.gzip).padStart(7)}  ${c.path}`).join('\n');
      // (The baked form suggested only when it fits: a file only the node has stays in it. It is
      // measured as the main one is (--mime, --encoding), else, when that does not fit, as auto;
      // the command repeats the user's arguments, so it prints this node of this inventory.)
      let baked: { size: number; encoding: Encoding; how: (typeof ENCODINGS)[number] } | undefined;
      if (!values.baked && bakedText !== undefined) {
        const as = encodeFor(bakedText);
        for (const how of encoding === 'auto' ? (['auto'] as const) : ([encoding, 'auto'] as const)) {
          const e = choose(as, how);
          const b = { size: as(e).delivered, encoding: e, how };
          if (!baked || b.size <= limit) baked = b;
          if (b.size <= limit) break;
        }
      }
      const hint =
        baked && baked.size <= limit
          ? `bake what the node's role shares into a golden image (pigen bake) and boot it with its user-data.baked: ${baked.size} bytes as ${baked.encoding}${values.mime ? ' MIME' : ''} (${bakedCommand(nodeArg, invArg, values, baked.how, r.secretValues ?? [])})`
          : `${baked ? `even its baked user-data (booted from a golden image) is ${baked.size} bytes as ${baked.encoding}${values.mime ? ' MIME' : ''}; ` : ''}make the largest contributors smaller, or deliver the user-data another way (nocloud: a seed image, no limit)`;
      ctx.stderr.write(`pigen: ${node.nodename} (${node.ip}): ${values.baked ? 'baked ' : ''}user-data is ${delivered} bytes as ${chosen}, over the ${cloud} limit of ${budget}.\n` + `  largest contributors (bytes of each file: as it is, gzipped alone; ${byGzip ? 'largest gzip first' : 'largest first'}):\n${top}\n` + `  hint: ${hint}\n`);
      return 1;
    }
    // (Refused before the size is said: no success line, then a refusal.)
    if (!values.out && !values.json && ctx.stdout.isTTY && chosen === 'gzip') {
      ctx.stderr.write('pigen: refusing to print gzip bytes to a terminal; use -o FILE or --encoding gzip+base64\n');
      return 2;
    }
    // (The size line once the user-data is out: not a success line, then a failure.)
    const said = () => {
      ctx.stderr.write(`${node.nodename} (${node.ip}): ${chosen}${values.mime ? ' MIME' : ''}, ${delivered} bytes of ${budget} for ${cloud}${pct}\n`);
      if (metadata) ctx.stderr.write(`  set ${Object.entries(metadata).map(([k, v]) => `${k}=${v}`).join(' ')} beside the user-data (${cloud === 'gcp' ? 'instance metadata' : 'guestinfo'}): cloud-init decodes it only then\n`);
    };
    if (values.out) {
      // Never over an input, nor into an output pigen build manages (its next build removes
      // what it did not write; a file it lists would be replaced unseen).
      const target = resolvePath(ctx.cwd, values.out as string);
      const inv = inventoryFile(invArg, ctx.cwd);
      const inputs: [string, string][] = [...(inv !== undefined && inv !== '-' ? [[resolvePath(ctx.cwd, inv), 'the inventory'] as [string, string]] : []), [secretsFileOf(ctx.cwd, invArg), 'the secrets file']];
      const clash = inputs.find(([p]) => isWithin(target, p));
      if (clash) return fail(2, `cannot write ${values.out}: it is ${clash[1]}; give another file path`);
      const managed = managingOutput(target);
      if (managed) return fail(2, `cannot write ${values.out}: it is inside ${managed}, an output of pigen build (the next build would remove or replace it); give a path outside it`);
      try {
        writeFileAtomic(values.out as string, bytes, 0o600, ctx.cwd);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const usage = code === 'EISDIR' || code === 'ENOTDIR' || code === 'ENOENT' || code === 'ENOTREG';
        const why = code === 'ENOTREG' ? (e as Error).message : code === 'EISDIR' ? 'it is a directory' : 'its directory does not exist';
        return fail(usage ? 2 : 1, `cannot write ${values.out}: ${usage ? `${why}; give a file path` : systemErrorMessage(e)}`);
      }
      said();
      json({ ok: true, ...result });
    } else if (values.json) {
      said();
      json({ ok: true, ...result });
    } else {
      said();
      // Secrets to a terminal (its scrollback, a shared screen): said on stderr, by path only.
      // (Printed still: the user asked for them; -o writes them 0600.)
      const secrets = ctx.stdout.isTTY ? rendered.files.filter((f) => f.secret && text.includes(f.path)).map((f) => f.path) : [];
      if (secrets.length) {
        const named = secrets.length > 3 ? `${secrets.slice(0, 3).join(', ')} and ${secrets.length - 3} more` : secrets.join(', ');
        ctx.stderr.write(`pigen: warning: this user-data holds secrets (${secrets.length} file${secrets.length === 1 ? '' : 's'}: ${named}) and goes to the terminal; -o FILE writes it mode 0600\n`);
      }
      ctx.stdout.write(bytes);
    }
    return 0;
  },
};

/** The command that prints the baked user-data of what the user asked for: the user's arguments again, with --baked (--encoding as `how`). */
function bakedCommand(node: string, inventory: string | undefined, values: Record<string, unknown>, how: string, secrets: readonly string[]): string {
  const words = ['pigen', 'userdata', node, ...(inventory !== undefined ? [inventory] : [])];
  // (A --set that is or holds a secret is shown as KEY=****, whatever its spelling: a secret key
  // on the way, a secret-named key inside its value, or a secret value in any form.)
  let masked = false;
  for (const kv of (values.set as string[] | undefined) ?? []) {
    const eq = kv.indexOf('=');
    const [key, value] = eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
    const secret = key.split('.').some(isSecretKey) || maskSecretsInLine(`x: ${value}`) !== `x: ${value}` || redactText(value, secrets) !== value;
    masked ||= secret;
    words.push('--set', secret ? `${key}=${HIDDEN}` : kv);
  }
  if (values.strict) words.push('--strict');
  if (values.cloud !== undefined) words.push('--cloud', values.cloud as string);
  if (how !== 'auto') words.push('--encoding', how);
  if (values.mime) words.push('--mime');
  if (values.json) words.push('--json');
  if (values.out !== undefined) words.push('-o', values.out as string);
  words.push('--baked');
  if (typeof values.bundle === 'string') words.push('--bundle', values.bundle);
  const command = words.map(shellWord).join(' ');
  return masked ? `${command}, with your --set secrets in place of ${HIDDEN}` : command;
}
