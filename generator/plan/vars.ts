// Typed reads of resolved variables (defaults are already merged in by resolve).

import type { Json, JsonObject } from '../types.js';
import { csvWords } from '../util/text.js';

export class Vars {
  constructor(readonly v: JsonObject) {}
  raw(k: string): Json | undefined {
    return this.v[k];
  }
  str(k: string, d = ''): string {
    const x = this.v[k];
    return typeof x === 'string' ? x : typeof x === 'number' ? String(x) : d;
  }
  num(k: string, d = 0): number {
    const x = this.v[k];
    return typeof x === 'number' ? x : typeof x === 'string' && /^\d+$/.test(x) ? Number(x) : d;
  }
  bool(k: string, d = false): boolean {
    const x = this.v[k];
    return typeof x === 'boolean' ? x : d;
  }
  /** Enabled unless explicitly false (Pigsty's *_enabled default true). */
  on(k: string): boolean {
    return this.v[k] !== false;
  }
  list(k: string): Json[] {
    const x = this.v[k];
    return Array.isArray(x) ? x : [];
  }
  strings(k: string): string[] {
    return this.list(k).filter((x): x is string => typeof x === 'string');
  }
  obj(k: string): JsonObject {
    const x = this.v[k];
    return x && typeof x === 'object' && !Array.isArray(x) ? x : {};
  }
  /** Comma/space separated list parameter (e.g. node_repo_modules: 'node,infra,pgsql'). */
  csv(k: string): string[] {
    return csvWords(this.v[k]);
  }
}
