// systemd units and their /etc/default env files (pigsty-infra.md §3.7).

import type { FilePlan } from '../types.js';

export interface UnitSpec {
  /** Unit name without .service. */
  name: string;
  description: string;
  user: string;
  group?: string;
  exec: string;
  /** Name of the *_OPTS variable in /etc/default/<name>; absent = no env file. */
  envVar?: string;
  /** Flags written into the env file (pigen's flags, then the user's *_options). */
  flags?: string[];
  after?: string[];
  wants?: string[];
  nofile?: number;
  oomScoreAdjust?: number;
  cpuQuota?: string;
  timeoutSec?: number;
  type?: 'simple' | 'forking';
  pidFile?: string;
  /** Capabilities the service needs (e.g. CAP_NET_RAW for ICMP probes). */
  capabilities?: string[];
  readWritePaths?: string[];
}

export function unitFiles(u: UnitSpec): FilePlan[] {
  const files: FilePlan[] = [
    {
      path: `/etc/systemd/system/${u.name}.service`,
      kind: 'systemd-unit',
      mode: '0644',
      owner: 'root:root',
      template: 'systemd/service.njk',
      ctx: { u, envFile: u.envVar ? `/etc/default/${u.name}` : null },
    },
  ];
  if (u.envVar) {
    files.push({
      path: `/etc/default/${u.name}`,
      kind: 'env',
      mode: '0644',
      owner: 'root:root',
      template: 'systemd/env.njk',
      ctx: { name: u.name, vars: [[u.envVar, (u.flags ?? []).filter(Boolean).join(' ')]] },
    });
  }
  return files;
}

/** Splits a user's *_options string (folded scalars arrive space-joined) into flags. */
export const splitOptions = (s: string) => s.split(/\s+/).filter(Boolean);
