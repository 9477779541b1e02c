// Schema stage: checks the parsed inventory against schemas/inventory.schema.json with ajv and
// turns every ajv error into a diagnostic that points at the offending YAML node.

import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { err, hideUserinfo, namesSecret } from '../diagnostics.js';
import { didYouMean } from '../util/text.js';
import { bundledPrecompiled, PRECOMPILED_VALIDATOR } from '../io.js';
import type { Code } from '../codes.js';
import type { Diagnostic, Json, JsonObject, Loaded, Path } from '../types.js';

// ajv is loaded only when the schema must be compiled (it and ajv-formats take ~100 ms to load);
// both are CommonJS.
const require = createRequire(import.meta.url);
const cjsDefault = <T>(m: unknown): T => ((m as { default?: unknown }).default ?? m) as T;

const compiled = new WeakMap<object, ValidateFunction>();

function newAjv(standalone = false): Ajv {
  const { Ajv } = require('ajv') as typeof import('ajv');
  const addFormats = cjsDefault<(a: Ajv) => Ajv>(require('ajv-formats'));
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true, ...(standalone ? { code: { source: true } } : {}) });
  addFormats(ajv);
  for (const k of PIGEN_KEYWORDS) ajv.addKeyword(k);
  return ajv;
}

/**
 * The schema's own annotations: x-pigen-secret marks passwords, x-pigen-placeholders parameters
 * whose strings get ${admin_ip}, x-pigen-pattern-name names a pattern in words for messages.
 */
export const PIGEN_KEYWORDS = ['x-pigen-secret', 'x-pigen-placeholders', 'x-pigen-pattern-name'] as const;

/** Identity of a schema's content: what a precompiled validator must have been built from. */
export const schemaHash = (schema: JsonObject) => createHash('sha256').update(JSON.stringify(schema)).digest('hex');

/**
 * The validator as CommonJS source (ajv standalone code), with the hash of the schema it checks.
 * `npm run build` writes it to dist/load/inventory-validator.cjs (generator/load/precompile.ts), so
 * the CLI does not compile the schema at every start (~130 ms).
 */
export function standaloneValidator(schema: JsonObject): string {
  const ajv = newAjv(true);
  const standaloneCode = cjsDefault<(a: Ajv, v: ValidateFunction) => string>(require('ajv/dist/standalone'));
  const code = standaloneCode(ajv, ajv.compile(schema));
  return `${code}\nmodule.exports.schemaHash = ${JSON.stringify(schemaHash(schema))};\n`;
}

function precompiled(schema: JsonObject): ValidateFunction | undefined {
  try {
    const v = (bundledPrecompiled.validator?.() ?? require(PRECOMPILED_VALIDATOR)) as ValidateFunction & { schemaHash?: string };
    return v.schemaHash === schemaHash(schema) ? v : undefined;
  } catch {
    // A checkout without a build: compile at run time.
    return undefined;
  }
}

/** The validator compiled now (what the precompiled one must equal). */
export const compileAtRunTime = (schema: JsonObject): ValidateFunction => newAjv().compile(schema);

/** The inventory schema's validator: precompiled when it matches the schema, else compiled (once per schema object). */
export function compileSchema(schema: JsonObject): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    v = precompiled(schema) ?? compileAtRunTime(schema);
    compiled.set(schema, v);
  }
  return v;
}

/** Validates and returns one diagnostic per real problem (anyOf/oneOf noise collapsed). */
export function checkSchema(loaded: Loaded, schema: JsonObject): Diagnostic[] {
  const validate = compileSchema(schema);
  const out = validate(loaded.data) ? [] : collapse(validate.errors ?? []).map((e) => toDiagnostic(e, schema, loaded.data));
  return loaded.wholeFloats ? [...out, ...floatsForIntegers(validate, loaded, loaded.wholeFloats)] : out;
}

/**
 * The whole floats (`pg_seq: 1.0`) where the schema takes an integer: JavaScript reads them as
 * the integer, Ansible keeps them floats, and Pigsty then names `pg-meta-1.0` what pigen would name
 * `pg-meta-1` (found by a review against Ansible). Found by validating the data once more with
 * each of them half a unit off: a `type` error there is an integer's.
 */
function floatsForIntegers(validate: ValidateFunction, loaded: Loaded, floats: NonNullable<Loaded['wholeFloats']>): Diagnostic[] {
  const pointer = (path: Path) => path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
  const at = new Map(floats.map((f) => [pointer(f.path), f]));
  const data = structuredClone(loaded.data);
  for (const f of floats) {
    // (Each where the data holds it; one that is not there, or no longer that number, is passed.)
    let o: Json | undefined = data;
    for (const p of f.path.slice(0, -1)) o = o !== null && typeof o === 'object' ? (o as Record<string | number, Json>)[p] : undefined;
    const last = f.path[f.path.length - 1]!;
    if (o === null || typeof o !== 'object' || (o as Record<string | number, Json>)[last] !== f.value) {
      at.delete(pointer(f.path));
      continue;
    }
    // (From 2^52 on, a half is rounded away: there any fraction will do.)
    (o as Record<string | number, Json>)[last] = Math.abs(f.value) < 2 ** 52 ? f.value + 0.5 : 0.5;
  }
  if (validate(data)) return [];
  const out: Diagnostic[] = [];
  for (const e of validate.errors ?? []) {
    const f = at.get(e.instancePath);
    const types = ([] as unknown[]).concat((e.params as { type?: unknown }).type ?? []);
    if (!f || e.keyword !== 'type' || !types.includes('integer')) continue;
    at.delete(e.instancePath);
    // (The digits as written where they are plain: past 2^53 the number read is another.)
    const plain = /^([-+]?\d[\d_]*)\.0*$/.exec(f.source)?.[1]?.replace(/_/g, '').replace(/^\+/, '');
    out.push(err('schema-type', f.path, `\`${f.source}\` is a float in YAML, where this parameter takes an integer (Ansible keeps it a float, and what Pigsty writes from it ends in \`.0\`: pg-meta-1.0)`, { hint: `write it as an integer: ${plain ?? f.value}` }));
  }
  return out;
}

/** A JSON pointer's segment as the key it names (`~1` is `/`, `~0` is `~`). */
const unescapeSegment = (raw: string) => raw.replace(/~1/g, '/').replace(/~0/g, '~');

/** A JSON pointer into the data as a path: a list's index a number (`repo_upstream[0]`, not `['0']`). */
function pointerToPath(ptr: string, data?: Json): Path {
  if (ptr === '') return [];
  let at: Json | undefined = data;
  return ptr
    .slice(1)
    .split('/')
    .map((raw) => {
      const s = unescapeSegment(raw);
      const seg = Array.isArray(at) && /^\d+$/.test(s) ? Number(s) : s;
      at = at !== null && typeof at === 'object' ? (at as Record<string, Json>)[seg as string] : undefined;
      return seg;
    });
}

/** The properties a schema location (ajv's schemaPath, `#/...`, of an additionalProperties error) allows. */
function allowedFields(schema: JsonObject, schemaPath: string): string[] {
  // (ajv compiles the recursive `group` definition as a function of its own: its errors' paths
  // start there, not at the root, whose only field is `all`.)
  const rooted = /^#\/(definitions|properties)\//.test(schemaPath) ? schemaPath : `#/definitions/group${schemaPath.slice(1)}`;
  let at: Json | undefined = schema;
  for (const raw of rooted.replace(/^#\/?/, '').split('/').slice(0, -1)) {
    if (at === null || typeof at !== 'object') return [];
    at = (at as Record<string, Json>)[decodeURIComponent(unescapeSegment(raw))];
  }
  const props = at !== null && typeof at === 'object' && !Array.isArray(at) ? at.properties : undefined;
  return props && typeof props === 'object' && !Array.isArray(props) ? Object.keys(props) : [];
}

/**
 * For anyOf/oneOf, keep the errors of a branch that got into the value (the user most likely
 * meant that one); when no branch got past the value itself, keep one summary.
 */
function collapse(errors: ErrorObject[]): ErrorObject[] {
  // (A property name that fails is said by its own error: "property name must be valid" is noise.)
  let out = errors.filter((e) => e.keyword !== 'propertyNames');
  const depth = (e: ErrorObject) => pointerToPath(e.instancePath).length;
  const under = (e: ErrorObject, alt: ErrorObject) => e.instancePath === alt.instancePath || e.instancePath.startsWith(alt.instancePath + '/');
  for (const alt of errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf')) {
    if (!out.includes(alt)) continue;
    const same = out.filter((e) => e !== alt && e.instancePath === alt.instancePath);
    const deeper = out.filter((e) => under(e, alt) && depth(e) > depth(alt));
    if (deeper.length) {
      // A branch got into the value: its errors explain the problem; the branch-level ones are noise.
      out = out.filter((e) => e !== alt && !same.includes(e));
    } else {
      const types = new Set<string>();
      for (const e of same) {
        if (e.keyword === 'type') types.add(String((e.params as { type: string }).type));
        else if (e.keyword === 'required') types.add(`a mapping with \`${(e.params as { missingProperty: string }).missingProperty}\``);
      }
      if (types.size) alt.message = `must be ${[...types].join(' or ')}`;
      out = out.filter((e) => !same.includes(e));
    }
  }
  return out;
}

const describeValue = (v: Json | undefined, secret = false): string => {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (secret) return `a ${typeof v}`;
  // (A URL's credentials hidden before the cut: one cut before its `@` is no URL's to hide.)
  const s = hideUserinfo(JSON.stringify(v));
  return `${typeof v} ${s.length > 40 ? s.slice(0, 37) + '..."' : s}`;
};

function toDiagnostic(e: ErrorObject, schema: JsonObject, root: Json): Diagnostic {
  const path = pointerToPath(e.instancePath, root);
  const p = e.params as Record<string, unknown>;
  // (A secret's value is described by its type only.)
  const secret = namesSecret(path);
  const describe = (v: Json | undefined) => describeValue(v, secret);
  const data = e.data as Json | undefined;
  let code: Code = 'schema-other';
  let message = e.message ?? 'is not valid';
  let at = path;
  let hint: string | undefined;
  switch (e.keyword) {
    case 'type':
      code = 'schema-type';
      message = `must be ${String(p.type).replace(/,/g, ' or ')}, got ${describe(data)}`;
      break;
    case 'enum': {
      code = 'schema-enum';
      const allowed = (p.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ');
      message = `${describe(data)} is not allowed`;
      hint = `use one of: ${allowed}`;
      break;
    }
    case 'const':
      code = 'schema-enum';
      message = `must be ${JSON.stringify(p.allowedValue)}, got ${describe(data)}`;
      break;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      code = 'schema-range';
      message = `${describe(data)} ${e.message}`;
      break;
    case 'minLength':
    case 'maxLength':
    case 'minItems':
    case 'maxItems':
      code = 'schema-range';
      break;
    case 'required':
      code = 'schema-required';
      message = `missing required field \`${String(p.missingProperty)}\``;
      break;
    case 'additionalProperties':
      code = 'schema-unknown-field';
      at = [...path, String(p.additionalProperty)];
      message = `unknown field \`${String(p.additionalProperty)}\``;
      {
        const fields = allowedFields(schema, e.schemaPath);
        const guess = didYouMean(String(p.additionalProperty), fields);
        if (guess) hint = `did you mean \`${guess}\`?`;
        else if (fields.length && fields.length <= 12) hint = `the fields here: ${fields.join(', ')}`;
      }
      break;
    case 'format':
    case 'pattern': {
      code = 'schema-format';
      // (A pattern's schema node may name it in words, x-pigen-pattern-name: the pattern itself helps nobody.)
      const name = e.keyword === 'pattern' ? (e.parentSchema as Record<string, unknown> | undefined)?.['x-pigen-pattern-name'] : undefined;
      const named = typeof name === 'string' ? name : undefined;
      message = named ? `${describe(data)} is not ${named}` : `${describe(data)} ${e.message}`;
      break;
    }
    default:
      break;
  }
  return err(code, at, message, hint ? { hint } : {});
}

