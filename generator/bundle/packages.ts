// Which packages go into the offline repo (repo_packages + repo_extra_packages through the per-OS
// alias table, pigsty-infra.md §2.4, and what the nodes that read it install), and the isolated apt-get invocations that download them with
// their dependencies into a cache directory (Pigsty's method on a Debian build host).

import { planNode } from '../plan/index.js';
import { expandPackages, osProfile, packageName, type OsProfile } from '../plan/os.js';
import { Vars } from '../plan/vars.js';
import { SECRETS_FILE } from '../secrets/index.js';
import type { Inventory, JsonObject } from '../types.js';

/** The variables of the repo-serving node: the admin node when it is in the inventory. */
export function repoVars(inv: Inventory): JsonObject {
  return (inv.nodes.find((n) => n.ip === inv.adminIp) ?? inv.nodes[0])?.vars ?? inv.globals;
}

/**
 * What goes into the bundle: repo_packages + repo_extra_packages through the alias table, as
 * Pigsty downloads them, and every package a node that reads the `local` repo (node_repo_modules)
 * installs at boot, for the bundle's OS: its components, node_packages, and the rest of its plan
 * (`fleet`: those; `added`: those repo_packages did not name). Its packages install in one transaction: a single
 * name the repo lacks fails them all, and an air-gapped node has no other source.
 */
export function bundleFacts(inv: Inventory): { version: string; os: OsProfile; packages: string[]; added: string[]; fleet: string[]; defaultName: string; urlFiles: string[]; proxyEnv: Record<string, string> } {
  const v = new Vars(repoVars(inv));
  const os = osProfile(v.str('os_profile', 'd12'));
  const version = v.str('version', 'v4.5.0');
  const items = [...v.list('repo_packages'), ...v.list('repo_extra_packages')];
  const listed = expandPackages(os, items, v.str('pg_version', '18'));
  const fleet = new Set<string>();
  for (const n of inv.nodes) {
    const nv = new Vars(n.vars);
    if (!nv.csv('node_repo_modules').includes('local') || osProfile(nv.str('os_profile', 'd12')).code !== os.code) continue;
    for (const p of planNode(inv, n).packages) fleet.add(packageName(p));
  }
  const have = new Set(listed);
  const added = [...fleet].filter((p) => !have.has(p)).sort();
  const packages = [...listed, ...added].sort();
  // proxy_env: the environment of the downloads (pigsty-infra.md §2.1), as Pigsty sets it for its own.
  const proxyEnv = Object.fromEntries(Object.entries(v.obj('proxy_env')).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return { version, os, packages, added, fleet: [...fleet].sort(), defaultName: `pigsty-pkg-${version}.${os.code}.${os.arch}.tgz`, urlFiles: urlFileNames(v.list('repo_url_packages')), proxyEnv };
}

/**
 * The names `repo_url_packages` downloads into the repo (pigsty-infra.md §2.4): an entry's `name`,
 * else the last segment of its URL (query and fragment left out).
 */
export function urlFileNames(entries: unknown[]): string[] {
  const names = new Set<string>();
  for (const e of entries) {
    const url = typeof e === 'string' ? e : e && typeof e === 'object' && typeof (e as { url?: unknown }).url === 'string' ? (e as { url: string }).url : undefined;
    const named = e && typeof e === 'object' && typeof (e as { name?: unknown }).name === 'string' ? (e as { name: string }).name : undefined;
    const name = named ?? url?.replace(/[?#].*$/, '').split('/').pop();
    if (name) names.add(name);
  }
  return [...names].sort();
}

/**
 * Which files of a `--from` directory go into the bundle besides the packages: what Pigsty's repo
 * holds (pigsty-infra.md §4): the Pigsty source tarball (`pigsty-<version>.tgz`, not a package
 * bundle) and the files `repo_url_packages` names. Anything else (an inventory, the secrets file,
 * notes) stays out: the repo is served to every node over HTTP.
 */
export function bundledExtra(name: string, urlFiles: readonly string[]): boolean {
  if (name === SECRETS_FILE) return false;
  return (/^pigsty-v?\d[\w.-]*\.tgz$/.test(name) && !name.startsWith('pigsty-pkg-')) || urlFiles.includes(name);
}

/**
 * apt-get options for a client isolated in `cache`: its own lists, archives and an empty dpkg
 * status (so the whole dependency closure is fetched, as a bare node needs), the host's sources.
 */
export function isolatedApt(cache: string, extra: string[] = []): string[] {
  return [
    '-o', `Dir::Cache=${cache}`,
    '-o', `Dir::State=${cache}/state`,
    '-o', `Dir::State::status=${cache}/state/status`,
    '-o', 'Debug::NoLocking=1',
    '-o', 'APT::Sandbox::User=root',
    ...extra,
  ];
}

/** Package names apt reported it cannot find ("Unable to locate package X", "has no installation candidate"). */
export function missingPackages(aptOutput: string): string[] {
  const out = new Set<string>();
  for (const m of aptOutput.matchAll(/Unable to locate package (\S+)/g)) out.add(m[1]!);
  for (const m of aptOutput.matchAll(/Package '?([^' ]+)'? has no installation candidate/g)) out.add(m[1]!);
  for (const m of aptOutput.matchAll(/Couldn't find any package by (?:glob|regex) '([^']+)'/g)) out.add(m[1]!);
  return [...out].sort();
}
