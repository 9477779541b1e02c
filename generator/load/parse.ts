// Parse an inventory the way Ansible reads it (PyYAML, YAML 1.1), keeping a source position for
// every node. pigsty-infra.md §1.5: yes/no/on/off/true/false are booleans but y/n stay strings;
// integer map keys survive (as their decimal string); anchors, aliases and merge keys work;
// a duplicate key is an error.

import {
  parseDocument,
  isAlias,
  isMap,
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
import { err } from '../diagnostics.js';
import { pathKey } from '../diagnostics.js';
import type { Diagnostic, Json, JsonObject, Loaded, Path, Pos, Result, Source } from '../types.js';

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

function customTags(tags: Tags): Tags {
  // Timestamps stay strings (pigen never computes with dates); bools follow PyYAML.
  const tagOf = (t: Tags[number]) => (typeof t === 'string' ? t : t.tag);
  const keep = tags.filter((t) => tagOf(t) !== 'tag:yaml.org,2002:bool' && tagOf(t) !== 'tag:yaml.org,2002:timestamp');
  return [pyTrue, pyFalse, ...keep];
}

/** Parses one inventory source. Pure: bytes in, data with positions (or diagnostics) out. */
export function parseInventory(src: Source): Result<Loaded> {
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

  const pos = positionsOf(text);
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, {
      version: '1.1',
      merge: true,
      uniqueKeys: true,
      prettyErrors: false,
      customTags,
      strict: true,
    });
  } catch (e) {
    return { diagnostics: [at({ line: 1, col: 1 }, 'yaml-syntax', `cannot parse YAML: ${(e as Error).message}`)] };
  }
  const diagnostics: Diagnostic[] = [];
  for (const e of syntaxErrors(doc)) {
    const p = pos(errorOffset(doc, e));
    const msg = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    if (e.code === 'DUPLICATE_KEY') diagnostics.push(at(p, 'duplicate-key', 'duplicate key: ' + lowerFirst(msg)));
    else diagnostics.push(at(p, 'yaml-syntax', lowerFirst(msg)));
  }
  for (const w of doc.warnings) {
    if (w.code === 'TAG_RESOLVE_FAILED') diagnostics.push(at(pos(w.pos[0]), 'yaml-tag', lowerFirst(w.message.split('\n')[0]!)));
  }
  // One broken bracket can cascade into hundreds of errors; the first ones are the useful ones.
  const MAX_SYNTAX = 20;
  if (diagnostics.length > MAX_SYNTAX) {
    const extra = diagnostics.length - MAX_SYNTAX;
    diagnostics.length = MAX_SYNTAX;
    diagnostics.push(at(diagnostics[MAX_SYNTAX - 1]!.pos!, 'yaml-syntax', `${extra} more syntax error${extra === 1 ? '' : 's'} not shown`, 'fix the first errors; later ones often follow from them'));
  }
  // A duplicate key leaves the document readable (the last value wins, as in PyYAML): the schema
  // and the rules still run, so the file's other problems are reported in the same run.
  if (diagnostics.some((d) => d.code !== 'duplicate-key')) return { diagnostics };
  if (!doc.contents || (isScalar(doc.contents) && doc.contents.value == null)) {
    return { diagnostics: [at({ line: 1, col: 1 }, 'empty-file', 'the inventory is empty')] };
  }

  const positions: Loaded['positions'] = new Map();
  const walker = new Walker(doc, pos, positions, file);
  const data = walker.convert(doc.contents as YNode, [], new Set());
  if (walker.diagnostics.length) return { diagnostics: [...diagnostics, ...walker.diagnostics] };
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    const kind = Array.isArray(data) ? 'a list' : `a ${typeof data}`;
    return { diagnostics: [...diagnostics, at(positions.get('')?.value ?? { line: 1, col: 1 }, 'not-mapping', `the top level is ${kind}, not a mapping`)] };
  }
  return { value: { file, text, data, positions }, diagnostics };
}

/** The most values an inventory may expand to (a 10,000-node inventory makes ~50,000). */
const MAX_VALUES = 500_000;

class Walker {
  diagnostics: Diagnostic[] = [];
  constructor(
    private doc: Document.Parsed,
    private pos: (o: number) => Pos,
    private positions: Loaded['positions'],
    private file: string,
  ) {}

  private record(path: Path, node: YNode | null | undefined, keyNode?: YNode | null) {
    const k = pathKey(path);
    if (this.positions.has(k)) return;
    const value = node?.range ? this.pos(node.range[0]) : keyNode?.range ? this.pos(keyNode.range[0]) : { line: 1, col: 1 };
    const key = keyNode?.range ? this.pos(keyNode.range[0]) : undefined;
    this.positions.set(k, key ? { value, key } : { value });
  }

  /** Values left to make: aliases of aliases expand exponentially (a "billion laughs" file). */
  private budget = MAX_VALUES;

  convert(node: YNode | null | undefined, path: Path, seen: Set<YNode>, keyNode?: YNode | null): Json {
    if (--this.budget < 0) {
      if (this.budget === -1) {
        const at = node?.range ? this.pos(node.range[0]) : { line: 1, col: 1 };
        this.diagnostics.push(err('alias-error', path, `the aliases expand to more than ${MAX_VALUES.toLocaleString('en')} values`, { file: this.file, pos: at, hint: 'an alias of aliases multiplies what it refers to: write the values out, or alias less deeply' }));
      }
      return null;
    }
    this.record(path, node, keyNode);
    if (node == null) return null;
    if (isAlias(node)) {
      const target = node.resolve(this.doc) as YNode | undefined;
      if (!target) {
        this.diagnostics.push(err('alias-error', path, `unknown alias *${node.source}`, { file: this.file, pos: this.pos(node.range![0]) }));
        return null;
      }
      if (seen.has(target)) {
        this.diagnostics.push(err('alias-error', path, `alias *${node.source} refers to itself`, { file: this.file, pos: this.pos(node.range![0]) }));
        return null;
      }
      return this.convert(target, path, new Set(seen).add(target));
    }
    if (isScalar(node)) return scalarValue(node);
    if (isSeq(node)) return node.items.map((it, i) => this.convert(it as YNode, [...path, i], seen));
    if (isMap(node)) {
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
        defineKey(out, key, this.convert(pair.value as YNode, [...path, key], seen, k));
      }
      // Merge keys: explicit keys win; earlier sources win over later ones (YAML merge spec).
      for (const m of merges) {
        const sources = isSeq(m) ? (m.items as YNode[]) : [m];
        for (const s0 of sources) {
          const s = isAlias(s0) ? (s0.resolve(this.doc) as YNode | undefined) : s0;
          if (!s || !isMap(s)) {
            this.diagnostics.push(
              err('yaml-syntax', path, 'a merge key (<<) takes a mapping or a list of mappings', {
                file: this.file,
                pos: this.pos((s0?.range ?? node.range!)[0]),
              }),
            );
            continue;
          }
          const merged = this.convert(s, [...path, '<<'], seen) as JsonObject;
          for (const [k, v] of Object.entries(merged)) if (!Object.prototype.hasOwnProperty.call(out, k)) defineKey(out, k, v);
          for (const [pk, pv] of [...this.positions]) {
            const prefix = pathKey([...path, '<<']);
            if (pk.startsWith(prefix + '\u0000')) {
              const rest = pk.slice(prefix.length);
              const target = pathKey(path) + rest;
              if (!this.positions.has(target)) this.positions.set(target, pv);
            }
          }
        }
      }
      return out;
    }
    this.diagnostics.push(err('yaml-syntax', path, 'unsupported YAML node', { file: this.file, pos: this.pos((node as YNode).range?.[0] ?? 0) }));
    return null;
  }
}

function defineKey(o: JsonObject, k: string, v: Json) {
  // defineProperty so a key named __proto__ is stored as data, not as the prototype.
  Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
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

/** The first byte that makes this not UTF-8 text (NUL or invalid sequence), with its position. */
function firstNonText(bytes: Uint8Array): { pos: Pos; why: string } | undefined {
  let line = 1;
  let col = 1;
  const n = bytes.length;
  // A leading BOM is not a column: the YAML positions are counted without it.
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let i = bom; i < n; ) {
    const b = bytes[i]!;
    if (b === 0) return { pos: { line, col }, why: 'the file contains a NUL byte; it is binary, not YAML text' };
    let len = 1;
    if (b >= 0x80) {
      if (b >= 0xc2 && b <= 0xdf) len = 2;
      else if (b >= 0xe0 && b <= 0xef) len = 3;
      else if (b >= 0xf0 && b <= 0xf4) len = 4;
      else return { pos: { line, col }, why: `invalid UTF-8 byte 0x${b.toString(16)}` };
      for (let j = 1; j < len; j++) {
        const c = bytes[i + j];
        if (c === undefined || (c & 0xc0) !== 0x80) return { pos: { line, col }, why: `invalid UTF-8 sequence at byte 0x${b.toString(16)}` };
      }
    }
    if (b === 0x0a) {
      line++;
      col = 1;
    } else col++;
    i += len;
  }
  return undefined;
}
