// Parse an inventory the way Ansible reads it (PyYAML, YAML 1.1), keeping a source position for
// every node. pigsty-infra.md §1.5: yes/no/on/off/true/false are booleans but y/n stay strings;
// integer map keys survive (as their decimal string); anchors, aliases and merge keys work;
// a duplicate key is an error.

import {
  parseDocument,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  Scalar,
  visit,
  type Node as YNode,
  type YAMLError,
  type Document,
  type ScalarTag,
  type Tags,
} from 'yaml';
import { err, maskSecretsInLine } from '../diagnostics.js';
import { hintFor } from '../codes.js';
import { pathKey } from '../diagnostics.js';
import type { Diagnostic, Json, JsonObject, Loaded, Path, Pos, Result, Source } from '../types.js';
import { setOwn } from '../util/object.js';
import { escapeRegExp } from '../util/text.js';

/** Inventories are small; anything past this is the wrong file (and would only waste memory). */
export const MAX_INVENTORY_BYTES = 8 * 1024 * 1024;

// PyYAML's bool resolver: only the words, never y/Y/n/N.
const pyTrue: ScalarTag = {
  identify: (v) => v === true,
  default: true,
  tag: 'tag:yaml.org,2002:bool',
  test: /^(?:[Yy]es|YES|[Tt]rue|TRUE|[Oo]n|ON)$/,
  resolve: () => new Scalar(true),
};
const pyFalse: ScalarTag = {
  identify: (v) => v === false,
  default: true,
  tag: 'tag:yaml.org,2002:bool',
  test: /^(?:[Nn]o|NO|[Ff]alse|FALSE|[Oo]ff|OFF)$/,
  resolve: () => new Scalar(false),
};

// PyYAML's int and float resolvers (resolver.py): what they do not match is a string there, so it
// is one here (yaml reads `1e3` and `08` as numbers; PyYAML, as Ansible, as strings).
const PY_INT = /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
const PY_FLOAT = /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
/**
 * `tag` matching only what PyYAML's resolver also matches. yaml reads an octal of only zeros and
 * underscores (`0_`) as NaN, PyYAML as 0. An integer past 2^53, which a JavaScript number would
 * round (`fs.file-max: 9223372036854775807` written as 9223372036854776000, where Ansible writes
 * the digits), is its exact decimal digits, as a string.
 */
function asPyYaml(tag: ScalarTag, py: RegExp): ScalarTag {
  if (!tag.test) return tag;
  const resolve = tag.resolve;
  const int = tag.tag === 'tag:yaml.org,2002:int';
  return {
    ...tag,
    test: new RegExp(`^(?=${py.source})${tag.test.source.replace(/^\^/, '')}`, tag.test.flags),
    resolve: (str, onError, options) => {
      const v = resolve(str, onError, options);
      if (typeof v === 'number' && Number.isNaN(v) && /^[-+]?0[0_]*$/.test(str)) return 0;
      return int && typeof v === 'number' && !Number.isSafeInteger(v) ? exactInt(str) : v;
    },
  };
}

/** The decimal digits of a YAML 1.1 integer (binary, octal, decimal, hex or base 60), exactly. */
function exactInt(str: string): string {
  const t = str.replace(/_/g, '');
  const neg = t.startsWith('-');
  const u = t.replace(/^[-+]/, '');
  let n: bigint;
  if (u.includes(':')) n = u.split(':').reduce((acc, part) => acc * 60n + BigInt(part), 0n);
  else if (/^0[bx]/.test(u)) n = BigInt(u);
  else if (/^0[0-7]+$/.test(u)) n = BigInt(`0o${u.slice(1)}`);
  else n = BigInt(u);
  return (neg ? -n : n).toString();
}

/** What makes Ansible evaluate a string as a Jinja template: its variable, block and comment starts. */
const JINJA = /\{\{|\{%|\{#/;

/**
 * Ansible's `!unsafe`: a string taken as it is, never evaluated as a template (`!unsafe 12` is the
 * string "12"). On a single value only: on a mapping or a list it is an unknown tag here.
 */
const unsafeTag: ScalarTag = { tag: '!unsafe', resolve: (str) => str };

function customTags(tags: Tags): Tags {
  // Timestamps stay strings (pigen never computes with dates); bools, ints and floats follow PyYAML.
  const tagOf = (t: Tags[number]) => (typeof t === 'string' ? t : t.tag);
  const keep = tags
    .filter((t) => tagOf(t) !== 'tag:yaml.org,2002:bool' && tagOf(t) !== 'tag:yaml.org,2002:timestamp')
    .map((t) => (typeof t === 'string' ? t : t.tag === 'tag:yaml.org,2002:int' ? asPyYaml(t as ScalarTag, PY_INT) : t.tag === 'tag:yaml.org,2002:float' ? asPyYaml(t as ScalarTag, PY_FLOAT) : t));
  return [pyTrue, pyFalse, ...keep, unsafeTag];
}

/**
 * What a long-lived process (pigen build --watch) keeps of its last parse for the next one
 * (reparse()): the text, its document and what it parsed to. Only a clean parse (no diagnostic)
 * of a document with no directive, anchor, alias, tag or merge key is kept.
 */
export interface ParseMemo {
  last?: Parsed;
  /** Whether the last parse was a reparse (of the value an edit changed). */
  reparsed?: boolean;
}
interface Parsed {
  text: string;
  doc: Document.Parsed;
  loaded: Loaded;
}

const PARSE_OPTIONS = { version: '1.1', schema: 'yaml-1.1', merge: true, uniqueKeys: true, prettyErrors: false, customTags, strict: true } as const;

/**
 * Parses one inventory source. Pure: bytes in, data with positions (or diagnostics) out. With a
 * memo, an edit within one line that reparse() can prove local is parsed alone; the result is the
 * same as a whole parse's.
 */
export function parseInventory(src: Source, memo?: ParseMemo): Result<Loaded> {
  const file = src.name;
  const at = (pos: Pos, code: Parameters<typeof err>[0], message: string, hint?: string): Diagnostic =>
    err(code, [], message, { file, pos, ...(hint ? { hint } : {}) });

  if (src.bytes.length > MAX_INVENTORY_BYTES) {
    return {
      diagnostics: [
        at({ line: 1, col: 1 }, 'file-too-large', `file is ${src.bytes.length} bytes; the limit is ${MAX_INVENTORY_BYTES} bytes`),
      ],
    };
  }
  const bad = firstNonText(src.bytes);
  if (bad) return { diagnostics: [at(bad.pos, 'not-text', bad.why)] };
  let text = new TextDecoder('utf-8').decode(src.bytes);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

  const last = memo?.last;
  if (memo) (memo.last = undefined), (memo.reparsed = false);
  if (last && last.loaded.file === file) {
    const again = reparse(last, text);
    if (again) {
      memo!.last = again;
      memo!.reparsed = true;
      return { value: again.loaded, diagnostics: [] };
    }
  }

  const pos = positionsOf(text);
  // Directives Ansible's parser (libyaml) rejects, yaml would take: a %YAML other than 1.1 or 1.2
  // (1.2 is read as 1.1 all the same, as there), a second %YAML, one it does not know.
  const directives = directiveProblems(text).map((d) => at(pos(d.offset), 'yaml-syntax', d.message, 'an inventory needs no directive: remove the line (or write %YAML 1.1)'));
  if (directives.length) return { diagnostics: directives };
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, PARSE_OPTIONS);
  } catch (e) {
    // (A document nested hundreds of levels deep exhausts the parser's stack: said so, not as its message.)
    if (e instanceof RangeError) return { diagnostics: [at({ line: 1, col: 1 }, 'yaml-syntax', 'cannot parse YAML: the document nests too deeply (hundreds of levels; an inventory nests a few)', 'is this the inventory? flatten the nesting')] };
    return { diagnostics: [at({ line: 1, col: 1 }, 'yaml-syntax', `cannot parse YAML: ${(e as Error).message}`)] };
  }
  const diagnostics: Diagnostic[] = [];
  // One stray token throws the parser off for the rest of the file: each unexpected token after
  // the first is most likely its echo, so only the first is said (others, such as tabs, all).
  let firstUnexpected: Diagnostic | undefined;
  let echoes = 0;
  for (const e of syntaxErrors(doc)) {
    if (e.code === 'UNEXPECTED_TOKEN' && firstUnexpected) {
      echoes++;
      continue;
    }
    const offset = errorOffset(doc, e);
    const d = e.code === 'DUPLICATE_KEY' ? { ...at(pos(offset), 'duplicate-key', duplicateMessage(text, offset)), path: keyPathAt(doc, offset) ?? [] } : at(pos(offset), 'yaml-syntax', syntaxMessage(e));
    if (e.code === 'UNEXPECTED_TOKEN') firstUnexpected = d;
    diagnostics.push(d);
  }
  if (firstUnexpected && echoes) {
    firstUnexpected.hint = `${firstUnexpected.hint ?? hintFor('yaml-syntax')}; ${echoes} later syntax error${echoes === 1 ? '' : 's'} not shown: they likely follow from this one (run again once it is fixed)`;
  }
  for (const w of doc.warnings) {
    if (w.code === 'TAG_RESOLVE_FAILED') diagnostics.push(tagDiagnostic(at, pos(w.pos[0]), w.message.split('\n')[0]!, onSecretLine(text, w.pos[0])));
  }
  // Anchors as Ansible's parser (libyaml) takes them: a name of letters, digits, `-` and `_`,
  // each defined once (yaml takes `&pg.base`, and a second `&x` as a new definition).
  if (!diagnostics.length) diagnostics.push(...anchorProblems(doc, text).map((a) => at(pos(a.offset), 'yaml-syntax', a.message, a.hint)));
  // One broken bracket can cascade into hundreds of errors; the first ones are the useful ones.
  const MAX_SYNTAX = 20;
  if (diagnostics.length > MAX_SYNTAX) {
    const extra = diagnostics.length - MAX_SYNTAX;
    diagnostics.length = MAX_SYNTAX;
    // (Said on the last one shown: a diagnostic of its own would sort among them by position.)
    const last = diagnostics[MAX_SYNTAX - 1]!;
    last.hint = `${last.hint ?? hintFor(last.code)}; ${extra} more syntax error${extra === 1 ? '' : 's'} not shown: fix the first ones, later ones often follow from them`;
  }
  // A duplicate key leaves the document readable (the last value wins, as in PyYAML): the schema
  // and the rules still run, so the file's other problems are reported in the same run.
  if (diagnostics.some((d) => d.code !== 'duplicate-key')) return { diagnostics };
  if (!doc.contents || (isScalar(doc.contents) && doc.contents.value == null)) {
    return { diagnostics: [at({ line: 1, col: 1 }, 'empty-file', 'the inventory is empty')] };
  }

  const positions: Loaded['positions'] = new Map();
  const walker = new Walker(doc, pos, positions, file, text);
  const data = walker.convert(doc.contents as YNode, [], new Set());
  // (Keys that read the same (`1` and `"1"`): as yaml's own duplicates, reported, the document still read.)
  diagnostics.push(...walker.duplicates, ...walker.templates);
  if (walker.diagnostics.length) return { diagnostics: [...diagnostics, ...walker.diagnostics] };
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    const kind = Array.isArray(data) ? 'a list' : `a ${typeof data}`;
    return { diagnostics: [...diagnostics, at(positions.get('')?.value ?? { line: 1, col: 1 }, 'not-mapping', `the top level is ${kind}, not a mapping`)] };
  }
  const loaded: Loaded = { file, text, data, positions, ...(walker.wholeFloats.length ? { wholeFloats: walker.wholeFloats } : {}) };
  // (Nor one with a directive: %YAML 1.2 would read a value parsed alone otherwise.)
  // (Nor one with a NUL in a key: positions are keyed by the path's parts joined with NULs.)
  if (memo && diagnostics.length === 0 && doc.warnings.length === 0 && !walker.nulKey && !/^%/m.test(text) && plainTree(doc.contents)) memo.last = { text, doc, loaded };
  return { value: loaded, diagnostics };
}

/** Anchors and aliases that libyaml, and so Ansible, rejects: a name it does not read, an anchor defined again. */
function anchorProblems(doc: Document.Parsed, text: string): { offset: number; message: string; hint: string }[] {
  const out: { offset: number; message: string; hint: string }[] = [];
  const seen = new Map<string, number>();
  const NAME = /^[A-Za-z0-9_-]+$/;
  const hint = 'name anchors with letters, digits, - and _, each name once';
  visit(doc, {
    Alias: (_, a) => void (!NAME.test(a.source) && out.push({ offset: a.range![0], message: `the alias *${a.source}: Ansible's parser reads an anchor's name as letters, digits, - and _ only`, hint })),
    Node: (_, n) => {
      if (!n.anchor || !n.range) return;
      // (At the anchor, which stands before the node's own range.)
      const amp = text.lastIndexOf(`&${n.anchor}`, n.range[0]);
      const offset = amp >= 0 ? amp : n.range[0];
      if (!NAME.test(n.anchor)) out.push({ offset, message: `the anchor &${n.anchor}: Ansible's parser reads an anchor's name as letters, digits, - and _ only`, hint });
      else if (seen.has(n.anchor)) out.push({ offset, message: `the anchor &${n.anchor} is defined a second time (Ansible rejects the file)`, hint });
      else seen.set(n.anchor, offset);
    },
  });
  return out;
}

/** The directive lines (`%…` before the first `---`) that libyaml, and so Ansible, rejects. */
function directiveProblems(text: string): { offset: number; message: string }[] {
  const out: { offset: number; message: string }[] = [];
  let yaml = false;
  for (let o = 0; o < text.length; ) {
    const end = text.indexOf('\n', o) < 0 ? text.length : text.indexOf('\n', o);
    const line = text.slice(o, end).replace(/\r$/, '');
    if (/^---(?:\s|$)/.test(line)) break;
    const m = /^%(\S*)(?:[ \t]+(\S+))?/.exec(line);
    if (m) {
      if (m[1] === 'YAML') {
        if (yaml) out.push({ offset: o, message: 'a second %YAML directive' });
        else if (m[2] === undefined) out.push({ offset: o, message: 'a %YAML directive without a version' });
        else if (m[2] !== '1.1' && m[2] !== '1.2') out.push({ offset: o, message: `%YAML ${m[2]} is not a YAML version Ansible reads (1.1 and 1.2 are)` });
        yaml = true;
      } else if (m[1] !== 'TAG') out.push({ offset: o, message: `unknown directive %${m[1]}` });
    } else if (line.trim() !== '' && !/^\s*#/.test(line)) break;
    o = end + 1;
  }
  return out;
}

/**
 * Whether a tree has no anchor, alias, explicit tag or merge key: a value of it then means what
 * its own text says wherever it stands, and nothing elsewhere refers to it.
 */
function plainTree(node: unknown): boolean {
  let plain = true;
  visit(node as YNode, {
    Alias: () => ((plain = false), visit.BREAK),
    Node: (_, n) => (n.anchor || n.tag ? ((plain = false), visit.BREAK) : undefined),
    Pair: (_, p) => (isScalar(p.key) && typeof p.key.value === 'symbol' ? ((plain = false), visit.BREAK) : undefined),
  });
  return plain;
}

/**
 * The last parse with `text` in place of its text, when the two differ within one value on one
 * line; undefined when that cannot be shown, and the caller parses the whole text. The value is a
 * scalar of block context or the outermost flow collection (`{ pg_seq: 1, pg_role: primary }`):
 * either means the same parsed alone as where it stands. The new value is parsed alone, and taken
 * only when that parse is clean and spans exactly the new text, is a scalar or a flow collection,
 * and has no anchor, alias or tag; only a comment may follow it on its line. The data is the last
 * data with that value replaced (the objects on its path copied), the positions the last ones with
 * the value's own; lines do not move, and nothing after it on its line has a position. The memo's
 * document takes the new value, and its later offsets move by the change in length.
 */
export function reparse(last: Parsed, text: string): Parsed | undefined {
  const old = last.text;
  if (text === old) return last;
  // The changed span: [p, q0) of the old text, [p, q1) of the new.
  const max = Math.min(old.length, text.length);
  let p = 0;
  while (p < max && old.charCodeAt(p) === text.charCodeAt(p)) p++;
  let s = 0;
  while (s < max - p && old.charCodeAt(old.length - 1 - s) === text.charCodeAt(text.length - 1 - s)) s++;
  const q0 = old.length - s;
  const delta = text.length - old.length;
  // The value holding the span, and its path.
  const path: Path = [];
  let parent: { pair?: { value: unknown }; seq?: { items: unknown[] }; index?: number } | undefined;
  let node = last.doc.contents as YNode | null;
  const holds = (n: YNode | null | undefined): n is YNode => !!n?.range && n.range[0] <= p && q0 <= n.range[1];
  if (!holds(node)) return undefined;
  for (;;) {
    if (isScalar(node) || (isCollection(node) && node.flow)) break;
    if (isMap(node)) {
      const pair = node.items.find((it) => holds(it.key as YNode) || holds(it.value as YNode));
      if (!pair || !holds(pair.value as YNode) || holds(pair.key as YNode)) return undefined;
      const key = keyString(pair.key as YNode | null);
      if (key === undefined) return undefined;
      path.push(key);
      parent = { pair };
      node = pair.value as YNode;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((it) => holds(it as YNode));
      if (index < 0) return undefined;
      path.push(index);
      parent = { seq: node, index };
      node = node.items[index] as YNode;
    } else return undefined;
  }
  if (!parent) return undefined;
  const [r0, r1] = node.range!;
  const lineEnd = old.indexOf('\n', r1);
  const sub = text.slice(r0, r1 + delta);
  if (
    r1 <= r0 ||
    old.slice(r0, r1).includes('\n') ||
    /[\n\r\t]/.test(sub) ||
    // (What parsed alone would start a document, a directive, a block collection or a comment.)
    /^(?:[\s%#&*!|>@`?:,\]}]|-(?:\s|$)|---|\.\.\.)/.test(sub) ||
    // (After the value on its line: spaces, then at most a comment.)
    !/^[ ]*(?:#.*)?$/.test(old.slice(r1, lineEnd < 0 ? old.length : lineEnd))
  )
    return undefined;
  // (With the newline that ends its line: at the end of the input, yaml takes `'it''` for a
  // closed quote, where the whole parse, going on to the next line, finds it unclosed.)
  const doc = parseDocument(sub + '\n', PARSE_OPTIONS);
  const value = doc.contents as YNode | null;
  if (doc.errors.length || doc.warnings.length || !value?.range || value.range[0] !== 0 || value.range[1] !== sub.length) return undefined;
  if (!(isScalar(value) || (isCollection(value) && value.flow)) || !plainTree(value)) return undefined;
  // Positions: the last ones but those inside the value, which the value's own replace.
  const prefix = pathKey(path);
  const positions: Loaded['positions'] = new Map();
  for (const [k, v] of last.loaded.positions) if (!(k.startsWith(prefix) && k.length > prefix.length && k.charCodeAt(prefix.length) === 0)) positions.set(k, v);
  const pos = positionsOf(text);
  const walker = new Walker(doc, (o) => pos(o + r0), positions, last.loaded.file);
  const converted = walker.convert(value, path, new Set());
  // (Nor where a whole float is, in the last parse or the new value: a full parse finds them all.)
  if (walker.diagnostics.length || walker.duplicates.length || walker.templates.length || walker.wholeFloats.length || last.loaded.wholeFloats || walker.nulKey || positions.size > MAX_VALUES) return undefined;
  // (Made before the document changes: nothing after this may fail half-way.)
  const loaded: Loaded = { file: last.loaded.file, text, data: withValue(last.loaded.data, path, converted) as JsonObject, positions };
  // The memo's document: the new value in place (its offsets made the text's), later offsets moved.
  visit(value, { Node: (_, n) => void (n.range = n.range!.map((x) => x + r0) as [number, number, number]) });
  // (Every old offset at or past the value's end lies after it or ends a collection holding it.)
  const target = node;
  visit(last.doc, {
    Node: (_, n) => {
      if (n === target) return visit.SKIP;
      if (n.range) n.range = n.range.map((x) => (x >= r1 ? x + delta : x)) as [number, number, number];
      return undefined;
    },
  });
  if (parent.pair) parent.pair.value = value;
  else parent.seq!.items[parent.index!] = value;
  return { text, doc: last.doc, loaded };
}

/** `root` with the value at `path` replaced: the objects and arrays on the path copied, the rest shared. */
function withValue(root: Json, path: Path, v: Json): Json {
  if (path.length === 0) return v;
  const [k, ...rest] = path;
  if (Array.isArray(root)) {
    const copy = root.slice();
    copy[k as number] = withValue(root[k as number]!, rest, v);
    return copy;
  }
  const o = root as JsonObject;
  const copy: JsonObject = {};
  for (const key of Object.keys(o)) setOwn(copy, key, key === k ? withValue(o[key]!, rest, v) : o[key]!);
  return copy;
}

/** The most values an inventory may expand to (a 10,000-node inventory makes ~50,000). */
const MAX_VALUES = 500_000;
/** The most characters their paths may add up to (the same inventory: ~4 million). */
const MAX_PATH_CHARS = 64_000_000;

class Walker {
  diagnostics: Diagnostic[] = [];
  /** Keys of one mapping that yaml holds distinct but read as the same string (`1`, `"1"`). */
  duplicates: Diagnostic[] = [];
  /**
   * Strings Ansible would evaluate as Jinja templates (`{{`, `{%`, `{#`; not tagged !unsafe):
   * pigen would write their text where Pigsty writes what they evaluate to. (Reported, the
   * document still read; each node once, however many aliases name it.)
   */
  templates: Diagnostic[] = [];
  private templated = new Set<YNode>();
  /** Floats of a whole value, at their paths (Loaded.wholeFloats). */
  wholeFloats: { path: Path; source: string; value: number }[] = [];
  /** Whether a key holds a NUL (a path's key in `positions` is then ambiguous). */
  nulKey = false;
  constructor(
    private doc: Document.Parsed,
    private pos: (o: number) => Pos,
    private positions: Loaded['positions'],
    private file: string,
    /** The source text (its lines, for whether one holds a secret). */
    private text = '',
  ) {}

  /**
   * The anchors of the document, by name, in document order. (yaml's Alias.resolve walks the whole
   * document for each alias: 5,000 hosts each merging one anchor took 40 s.)
   */
  private anchors: Map<string, YNode[]> | undefined;

  /** The node an alias refers to: the last anchor of its name before it, as yaml resolves it. */
  private resolveAlias(alias: YNode & { source: string }): YNode | undefined {
    if (!this.anchors) {
      const anchors = new Map<string, YNode[]>();
      visit(this.doc, {
        Node(_, n) {
          const a = (n as YNode & { anchor?: string }).anchor;
          if (a && !isAlias(n)) (anchors.get(a) ?? anchors.set(a, []).get(a)!).push(n as YNode);
        },
      });
      this.anchors = anchors;
    }
    const at = alias.range?.[0] ?? Infinity;
    const list = this.anchors.get(alias.source) ?? [];
    let found: YNode | undefined;
    for (const n of list) if ((n.range?.[0] ?? Infinity) < at) found = n;
    return found;
  }

  /** Every key set in `positions`, in order: a merge copies what its source added, not the whole map. */
  private order: string[] = [];
  /** Characters of path keys left to make (long keys under deep aliases cost as much as many values). */
  private chars = MAX_PATH_CHARS;

  private setPosition(k: string, p: { value: Pos; key?: Pos }) {
    this.positions.set(k, p);
    this.order.push(k);
  }

  private record(path: Path, node: YNode | null | undefined, keyNode?: YNode | null) {
    const k = pathKey(path);
    this.chars -= k.length;
    if (this.positions.has(k)) return;
    const value = node?.range ? this.pos(node.range[0]) : keyNode?.range ? this.pos(keyNode.range[0]) : { line: 1, col: 1 };
    const key = keyNode?.range ? this.pos(keyNode.range[0]) : undefined;
    this.setPosition(k, key ? { value, key } : { value });
  }

  /** Values left to make: aliases of aliases expand exponentially (a "billion laughs" file). */
  private budget = MAX_VALUES;
  private ancestors: YNode[] = [];
  private spent = false;

  convert(node: YNode | null | undefined, path: Path, seen: Set<YNode>, keyNode?: YNode | null): Json {
    if (--this.budget < 0 || this.chars < 0) {
      // (Said once: the budget then stays spent.)
      if (!this.spent) {
        this.spent = true;
        this.budget = -1;
        const at = node?.range ? this.pos(node.range[0]) : { line: 1, col: 1 };
        const what = this.chars < 0 ? `values whose paths add up to more than ${MAX_PATH_CHARS.toLocaleString('en')} characters` : `more than ${MAX_VALUES.toLocaleString('en')} values`;
        this.diagnostics.push(err('alias-error', path.slice(0, 4), `the aliases expand to ${what}`, { file: this.file, pos: at, hint: 'an alias of aliases multiplies what it refers to: write the values out, or alias less deeply' }));
      }
      return null;
    }
    this.record(path, node, keyNode);
    if (node == null) return null;
    if (isAlias(node)) {
      const target = this.resolveAlias(node);
      if (!target) {
        const hidden = onSecretLine(this.text, node.range![0]);
        this.diagnostics.push(err('alias-error', path, hidden ? 'an alias (*name) with no anchor of its name before it (the value starts with `*`: quote it if it is a string)' : `unknown alias *${node.source}`, { file: this.file, pos: this.pos(node.range![0]) }));
        return null;
      }
      if (seen.has(target)) {
        this.diagnostics.push(err('alias-error', path, `alias *${node.source} refers to itself`, { file: this.file, pos: this.pos(node.range![0]) }));
        return null;
      }
      return this.convert(target, path, new Set(seen).add(target));
    }
    if (isScalar(node)) {
      const v = scalarValue(node);
      if (typeof v === 'number' && Number.isInteger(v) && (node.tag === 'tag:yaml.org,2002:float' || (node.tag === undefined && PY_FLOAT.test(String(node.source))))) {
        this.wholeFloats.push({ path, source: String(node.source), value: v });
      }
      if (typeof v === 'string' && node.tag !== '!unsafe' && JINJA.test(v) && !this.templated.has(node)) {
        this.templated.add(node);
        this.templates.push(err('jinja-template', path, `a Jinja template (${JINJA.exec(v)![0]} in the value): Ansible evaluates it, pigen does not and would write the text as it is`, { file: this.file, pos: this.pos(node.range![0]) }));
      }
      return v;
    }
    if (isSeq(node)) return node.items.map((it, i) => this.convert(it as YNode, [...path, i], seen));
    if (isMap(node)) {
      // (The mappings being converted, this one in: a merge of one of them would never end.)
      this.ancestors.push(node);
      const out: JsonObject = {};
      const merges: YNode[] = [];
      for (const pair of node.items) {
        const k = pair.key as YNode | null;
        if (isScalar(k) && typeof k.value === 'symbol') {
          merges.push(pair.value as YNode);
          continue;
        }
        const key = keyString(k);
        if (key === undefined) {
          this.diagnostics.push(
            err('yaml-syntax', path, 'a mapping key must be a plain value (string or number)', {
              file: this.file,
              pos: k?.range ? this.pos(k.range[0]) : this.pos(node.range![0]),
            }),
          );
          continue;
        }
        if (key.includes('\0')) this.nulKey = true;
        // (The earlier key looked up only when there is one. yaml reports keys of equal values
        // itself: DUPLICATE_KEY.)
        const prev = Object.prototype.hasOwnProperty.call(out, key) ? (node.items.find((p) => p !== pair && keyString(p.key as YNode | null) === key)?.key as YNode | null | undefined) : undefined;
        if (prev !== undefined && !(prev === null ? k === null : k !== null && isScalar(prev) && isScalar(k) && prev.value === k.value)) {
          const line = prev?.range ? this.pos(prev.range[0]).line : undefined;
          this.duplicates.push(
            err('duplicate-key', [...path, key], `duplicate key: this ${keyKind(k)} and the ${keyKind(prev)} key${line ? ` on line ${line}` : ''} both read as the key ${JSON.stringify(key)}; the later value wins`, {
              file: this.file,
              pos: k?.range ? this.pos(k.range[0]) : this.pos(node.range![0]),
            }),
          );
        }
        setOwn(out, key, this.convert(pair.value as YNode, [...path, key], seen, k));
      }
      // Merge keys: explicit keys win; within one key's list, earlier sources win over later
      // ones (YAML merge spec); of two merge keys in one mapping, the later one's win, both
      // merged (as PyYAML, so Ansible, flattens them: a review found pigen keeping the first).
      for (const m of [...merges].reverse()) {
        const sources = isSeq(m) ? (m.items as YNode[]) : [m];
        for (const s0 of sources) {
          const s = isAlias(s0) ? this.resolveAlias(s0) : s0;
          if (!s || !isMap(s)) {
            this.diagnostics.push(
              err('yaml-syntax', path, 'a merge key (<<) takes a mapping or a list of mappings', {
                file: this.file,
                pos: this.pos((s0?.range ?? node.range!)[0]),
              }),
            );
            continue;
          }
          // (A mapping that merges itself, directly or through another: reported, not followed.)
          if (this.ancestors.includes(s) || seen.has(s)) {
            this.diagnostics.push(err('alias-error', path, 'a merge key (<<) takes in the mapping it belongs to', { file: this.file, pos: this.pos((s0?.range ?? node.range!)[0]) }));
            continue;
          }
          const start = this.order.length;
          const floats = this.wholeFloats.length;
          const merged = this.convert(s, [...path, '<<'], new Set(seen).add(s)) as JsonObject;
          if (merged === null) continue;
          const taken = new Set<string>();
          for (const [k, v] of Object.entries(merged)) if (!Object.prototype.hasOwnProperty.call(out, k)) setOwn(out, k, v), taken.add(k);
          // (The whole floats found in the source, moved under this mapping where their key was
          // taken from it, and dropped where another value won: the data has no `<<`.)
          const found = this.wholeFloats.splice(floats);
          for (const f of found) {
            const k = f.path[path.length + 1];
            if (f.path[path.length] === '<<' && typeof k === 'string' && taken.has(k)) this.wholeFloats.push({ ...f, path: [...path, ...f.path.slice(path.length + 1)] });
          }
          // (The positions the source's values were given, moved under this mapping: those made
          // by this convert, or by merges inside it. A position made earlier is copied already.)
          const prefix = pathKey([...path, '<<']) + '\u0000';
          const here = pathKey(path);
          for (const pk of this.order.slice(start)) {
            if (!pk.startsWith(prefix)) continue;
            const target = here + pk.slice(prefix.length - 1);
            if (!this.positions.has(target)) this.setPosition(target, this.positions.get(pk)!);
          }
        }
      }
      this.ancestors.pop();
      return out;
    }
    this.diagnostics.push(err('yaml-syntax', path, 'unsupported YAML node', { file: this.file, pos: this.pos((node as YNode).range?.[0] ?? 0) }));
    return null;
  }
}


/** What a mapping key is written as: `1` a number, `"1"` a string, `yes` a boolean (YAML 1.1). */
function keyKind(k: YNode | null): string {
  const v = isScalar(k) ? k.value : null;
  return v === null ? 'null' : typeof v;
}

function keyString(k: YNode | null): string | undefined {
  if (k == null) return 'null';
  if (!isScalar(k)) return undefined;
  const v = k.value;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(k.source ?? v);
  if (typeof v === 'boolean' || v === null) return String(k.source ?? v);
  return undefined;
}

function scalarValue(node: Scalar): Json {
  const v = node.value as unknown;
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(node.source ?? v);
  if (typeof v === 'bigint') return String(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  return String(node.source ?? v);
}

/** yaml's duplicate key, named (its message was only "map keys must be unique"), with the line of the key it repeats. */
/** The parameter path of the mapping key that starts at `offset` (a duplicate key's), if one does. */
function keyPathAt(doc: Document.Parsed, offset: number): Path | undefined {
  let found: Path | undefined;
  const keyOf = (k: unknown): string | number => (isScalar(k) && typeof k.value === 'number' ? k.value : String(isScalar(k) ? k.value : k));
  visit(doc, {
    Pair(_, pair, ancestors) {
      const k = pair.key as YNode | null;
      if (!k || !isScalar(k) || k.range?.[0] !== offset) return undefined;
      const chain = [...ancestors, pair];
      const segs: Path = [];
      for (let i = 0; i < chain.length - 1; i++) {
        const a = chain[i];
        if (isPair(a)) segs.push(keyOf(a.key));
        else if (isSeq(a)) segs.push(a.items.indexOf(chain[i + 1] as never));
      }
      segs.push(keyOf(k));
      found = segs;
      return visit.BREAK;
    },
  });
  return found;
}

function duplicateMessage(text: string, offset: number): string {
  const key = /^(?:"((?:[^"\\\n]|\\.)*)"|'((?:[^'\n]|'')*)'|([^\s:,{}[\]#][^:,{}[\]#\n]*?))\s*:/.exec(text.slice(offset, offset + 300));
  const name = key ? (key[1] ?? key[2]?.replace(/''/g, "'") ?? key[3]!.trim()) : undefined;
  if (name === undefined) return 'duplicate key: YAML keeps one of the two values';
  // (The same key earlier at the same indentation, the nearest one: the one it repeats, as a rule.)
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const indent = text.slice(lineStart, offset);
  let line: number | undefined;
  if (/^[ -]*$/.test(indent)) {
    const before = text.slice(0, lineStart).split('\n');
    const re = new RegExp(`^${indent.replace(/-/g, ' ').replace(/ /g, '[ -]')}["']?${escapeRegExp(name)}["']?\\s*:`);
    for (let i = before.length - 1; i >= 0; i--) if (re.test(before[i]!)) (line = i + 1), (i = -1);
  }
  return `duplicate key \`${name}\`${line ? ` (first on line ${line})` : ''}: YAML keeps one of the two values (PyYAML the later one)`;
}

/** An unresolved tag, said for what it is: Ansible Vault's, a standard type the value is not, another. */
function tagDiagnostic(at: (pos: Pos, code: 'yaml-tag', message: string, hint?: string) => Diagnostic, p: Pos, message: string, secret: boolean): Diagnostic {
  const tag = /tag: (\S+)$/.exec(message)?.[1] ?? '';
  // (On a secret's line, `!...` may be the secret itself: not named.)
  if (secret && tag !== '!vault') return at(p, 'yaml-tag', 'an unknown tag (the value starts with `!`: quote it if it is a string)');
  if (tag === '!unsafe') return at(p, 'yaml-tag', '!unsafe on a mapping or a list: pigen takes it on single values', 'tag each string that holds `{{`, `{%` or `{#` !unsafe');
  if (tag === '!vault') return at(p, 'yaml-tag', 'an Ansible Vault value (!vault): pigen does not decrypt vault values', 'decrypt it (ansible-vault decrypt), or leave the secret out of the inventory: pigen secrets init keeps generated ones in pigsty.secrets.yml');
  const std = /^tag:yaml\.org,2002:(\w+)$/.exec(tag)?.[1];
  if (std) return at(p, 'yaml-tag', `the value is not a valid !!${std}`, `write a valid ${std}, or drop the !!${std} tag`);
  return at(p, 'yaml-tag', `unknown tag ${tag}`);
}

/** Whether the line holding `offset` sets a secret-named key (its text is not to be quoted). */
function onSecretLine(text: string, offset: number): boolean {
  const start = text.lastIndexOf('\n', offset - 1) + 1;
  const end = text.indexOf('\n', offset);
  const line = text.slice(start, end < 0 ? undefined : end);
  return maskSecretsInLine(line) !== line;
}

/** What the parser would say in its own words, for a user: never the token's text (it may be a secret). */
const TOKEN_WORDS: Record<string, string> = {
  'flow-map-end': 'a `}` that closes nothing',
  'flow-seq-end': 'a `]` that closes nothing',
  'map-value-ind': 'a `:` where no key can start',
  scalar: 'text where none can stand (after a complete value, or out of line with the indentation around it)',
  'seq-item-ind': 'a `-` list item where no list can start',
  'flow-error-end': 'the end of a flow collection that was never opened',
  'explicit-key-ind': 'a `?` key where none can start',
  anchor: 'an anchor (&name) where none can stand',
  tag: 'a tag (!name) where none can stand',
  comma: 'a `,` outside brackets or braces',
};
function syntaxMessage(e: YAMLError): string {
  if (e.code === 'MULTIPLE_DOCS') return 'a second YAML document (after a `---` line): an inventory is one document';
  // (The parser's stack exhausted by hundreds of nested levels.)
  if (/maximum call stack/i.test(e.message)) return 'the document nests too deeply here (hundreds of levels; an inventory nests a few): is this the inventory?';
  const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  const token = /^Unexpected (\S+) token in YAML stream/.exec(first);
  if (token) return TOKEN_WORDS[token[1]!] ?? `an unexpected ${token[1]!.replace(/-/g, ' ')} token`;
  // (What follows a colon quotes the text, `|Hunter2pw`, `"Hunter2pw"`: it may be a secret's value.)
  return lowerFirst(first.replace(/:\s.*$/s, ''));
}

/**
 * The parser's errors, one per source offset: at one spot it often reports a cascade (e.g. an
 * unclosed quote also breaks the enclosing flow collection); keep the one that names the cause.
 */
function syntaxErrors(doc: Document.Parsed): YAMLError[] {
  const CAUSES = ['DUPLICATE_KEY', 'MISSING_CHAR', 'MULTILINE_IMPLICIT_KEY'];
  const byStart = new Map<number, YAMLError>();
  for (const e of doc.errors) {
    const prev = byStart.get(e.pos[0]);
    if (!prev || (CAUSES.includes(e.code) && !CAUSES.includes(prev.code))) byStart.set(e.pos[0], e);
  }
  return doc.errors.filter((e) => byStart.get(e.pos[0]) === e);
}

/**
 * Where to point for a parser error. The parser reports an unclosed quote or flow collection where
 * it gave up (often the end of the file); the user needs the opening quote or bracket. A key that
 * runs over two lines (a line indented too deep) is reported at its start; the ':' that made the
 * second line a key is where PyYAML and the user look.
 */
function errorOffset(doc: Document.Parsed, e: YAMLError): number {
  const [start, end] = e.pos;
  if (e.code === 'MULTILINE_IMPLICIT_KEY') return Math.max(start, end);
  const unclosedQuote = e.code === 'MISSING_CHAR' && /quote/.test(e.message);
  const unclosedFlow = /end with a [}\]]/.test(e.message);
  if (!unclosedQuote && !unclosedFlow) return start;
  let opener: number | undefined;
  const consider = (n: YNode) => {
    if (n.range && n.range[1] === start && (opener === undefined || n.range[0] > opener)) opener = n.range[0];
  };
  visit(doc, {
    Scalar: (_, n) => void (unclosedQuote && (n.type === 'QUOTE_DOUBLE' || n.type === 'QUOTE_SINGLE') && consider(n)),
    Map: (_, n) => void (unclosedFlow && n.flow && consider(n)),
    Seq: (_, n) => void (unclosedFlow && n.flow && consider(n)),
  });
  return opener ?? start;
}

/**
 * Offset → 1-based line:col, from the text itself. (yaml's LineCounter is fed by the lexer, which
 * skips newlines while it recovers from some errors; its lines then drift from the file's.)
 */
function positionsOf(text: string): (offset: number) => Pos {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset) => {
    const o = Math.max(0, Math.min(offset, text.length));
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: o - starts[lo]! + 1 };
  };
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/**
 * The first character that makes this not an inventory's text, with its position: a NUL, bytes
 * that are not UTF-8, or a character Ansible's YAML parser (libyaml) reads otherwise than an
 * editor shows it or not at all: a control character (but tab, newline and carriage return), a
 * carriage return without its newline, NEL, the Unicode line and paragraph separators (each a line
 * break to YAML 1.1: `# comment<U+2028>node_tune: olap` sets node_tune in Ansible, where an editor
 * shows a comment), a byte order mark past the start (invisible, read into a key or value), U+FFFE
 * and U+FFFF. (Columns count as the
 * positions of the parse do: UTF-16 code units.)
 */
function firstNonText(bytes: Uint8Array): { pos: Pos; why: string } | undefined {
  let line = 1;
  let col = 1;
  const n = bytes.length;
  // A leading BOM is not a column: the YAML positions are counted without it.
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const hex = (c: number) => `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
  for (let i = bom; i < n; ) {
    const b = bytes[i]!;
    if (b === 0) return { pos: { line, col }, why: 'the file contains a NUL byte; it is binary, not YAML text' };
    let len = 1;
    let c = b;
    if (b >= 0x80) {
      if (b >= 0xc2 && b <= 0xdf) (len = 2), (c = b & 0x1f);
      else if (b >= 0xe0 && b <= 0xef) (len = 3), (c = b & 0x0f);
      else if (b >= 0xf0 && b <= 0xf4) (len = 4), (c = b & 0x07);
      else return { pos: { line, col }, why: `invalid UTF-8 byte 0x${b.toString(16)}` };
      for (let j = 1; j < len; j++) {
        const x = bytes[i + j];
        if (x === undefined || (x & 0xc0) !== 0x80) return { pos: { line, col }, why: `invalid UTF-8 sequence at byte 0x${b.toString(16)}` };
        c = (c << 6) | (x & 0x3f);
      }
      // (Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 either.)
      if ((len === 3 && c < 0x800) || (len === 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff)) return { pos: { line, col }, why: `invalid UTF-8 sequence at byte 0x${b.toString(16)}` };
    }
    if (b === 0x0d && bytes[i + 1] !== 0x0a) return { pos: { line, col }, why: 'the file has a carriage return without a newline after it (an old Mac line ending), which Ansible reads as a line break; save the file with newline (or CR LF) line endings' };
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f || (c >= 0x80 && c <= 0x9f && c !== 0x85)) {
      return { pos: { line, col }, why: `the file contains the control character ${hex(c)}, which YAML does not allow (Ansible rejects the file); remove it` };
    }
    if (c === 0x85 || c === 0x2028 || c === 0x2029) {
      const name = c === 0x85 ? 'NEL (next line)' : c === 0x2028 ? 'LINE SEPARATOR' : 'PARAGRAPH SEPARATOR';
      return { pos: { line, col }, why: `the file contains ${hex(c)} ${name}, which YAML 1.1 (Ansible) reads as a line break where editors show none; replace it with a newline, or remove it` };
    }
    if (c === 0xfeff) return { pos: { line, col }, why: 'the file contains a byte order mark (U+FEFF) past its start, an invisible character Ansible reads into the key or value it stands in; remove it' };
    if (c === 0xfffe || c === 0xffff) return { pos: { line, col }, why: `the file contains ${hex(c)}, which is not a character (Ansible rejects the file); remove it` };
    if (b === 0x0a) {
      line++;
      col = 1;
    } else col += len === 4 ? 2 : 1;
    i += len;
  }
  return undefined;
}
