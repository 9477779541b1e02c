// What pigen knows about parameters, read from the schema: names, defaults, secrets.

import type { Json, JsonObject } from '../types.js';

function varsProps(schema: JsonObject): Record<string, JsonObject> {
  const defs = schema.definitions as JsonObject | undefined;
  const vars = defs?.vars as JsonObject | undefined;
  return (vars?.properties ?? {}) as Record<string, JsonObject>;
}

const cache = new WeakMap<object, { known: Set<string>; defaults: JsonObject; secrets: string[] }>();
function info(schema: JsonObject) {
  let i = cache.get(schema);
  if (!i) {
    const props = varsProps(schema);
    const defaults: JsonObject = {};
    for (const [k, p] of Object.entries(props)) if (p.default !== undefined) defaults[k] = p.default as Json;
    const secrets = Object.entries(props).filter(([, p]) => p['x-pigen-secret'] === true).map(([k]) => k).sort();
    i = { known: new Set(Object.keys(props)), defaults, secrets };
    cache.set(schema, i);
  }
  return i;
}

/** Every parameter name the schema describes. */
export const knownParams = (schema: JsonObject) => info(schema).known;
/** Fresh copy of all defaults (pigsty v4.5.0 values). */
export const paramDefaults = (schema: JsonObject): JsonObject => structuredClone(info(schema).defaults);
/** Parameters that hold secrets (x-pigen-secret). */
export const secretParams = (schema: JsonObject) => info(schema).secrets;
/** The published defaults of those (Pigsty's documented passwords, such as `pigsty`): no secret. */
export const publishedSecretDefaults = (schema: JsonObject): Set<string> => {
  const i = info(schema);
  return new Set(i.secrets.map((k) => i.defaults[k]).filter((x) => typeof x === 'string' || typeof x === 'number').map(String));
};

// Parameters of modules pigen carries through untouched (PGSQL, ETCD, MINIO, REDIS, DOCKER, APP,
// and Pigsty's other modules), plus Ansible's own connection variables.
const FOREIGN = /^(pg|pgb|pgsql|pgbouncer|pgbackrest|patroni|etcd|minio|redis|docker|app|apps|ansible|mongo|ferret|kafka|mysql|juice|supa|supabase|code|jupyter|pev|vibe|claude|pgadmin|bytebase|gitea|wiki|cache|infra_extra|haproxy_services|certbot|mssql|polar|ivory|oriole|babelfish|citus|pgedge|agens|odoo|dify|registry|electric|teable|immich|mattermost|maybe|jumpserver|insforge|hindsight|s3|pig|nodejs|uv)(_|$)/;
export const isForeignParam = (name: string) => FOREIGN.test(name);

/** The PostgreSQL instance a node's vars name, `<pg_cluster>-<pg_seq>` (Pigsty's pg_instance); undefined without both. */
export function pgInstance(vars: JsonObject): string | undefined {
  const c = vars.pg_cluster;
  const q = vars.pg_seq;
  return typeof c === 'string' && c !== '' && (typeof q === 'number' || (typeof q === 'string' && q !== '')) ? `${c}-${q}` : undefined;
}
