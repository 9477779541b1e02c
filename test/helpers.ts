// Shared test helpers: tool discovery with loud SKIP (and failure under CI=true), temp dirs, paths.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The shared fixtures folder (../shared/fixtures from the project root), or null in a clone without it. */
export const SHARED = (() => {
  const p = join(ROOT, '..', 'shared', 'fixtures');
  return existsSync(p) ? p : null;
})();
export const CI = process.env.CI === 'true';

/** Absolute path of a program on PATH, or null. */
export function which(tool: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/**
 * Returns true when every tool is on PATH. Otherwise prints a loud SKIP and returns false,
 * or throws under CI=true (CI must have every tool .ci/run installs).
 */
export function needTools(what: string, ...tools: string[]): boolean {
  const missing = tools.filter((t) => !which(t));
  if (missing.length === 0) return true;
  return skip(`SKIP ${what}: missing ${missing.join(', ')} (install with .ci/run)`, ' — tools are required under CI=true');
}

/** Returns true when ../shared/fixtures exists; else prints a clear notice (and fails under CI). */
export function needShared(what: string): boolean {
  if (SHARED) return true;
  return skip(`SKIP ${what}: ../shared/fixtures is not beside this clone (CI has it)`);
}

/** A loud SKIP notice (false), or, under CI=true, an error: CI must run everything. */
export function skip(msg: string, ciNote = ''): false {
  if (CI) throw new Error(msg + ciNote);
  console.log(`\n!!!!!!!! ${msg} !!!!!!!!\n`);
  return false;
}

const made: string[] = [];
let cleanup = false;
/** A fresh temp directory, removed when the test process exits (PIGEN_KEEP_TMP=1 keeps them). */
export function tmp(prefix = 'pigen-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  if (!cleanup && process.env.PIGEN_KEEP_TMP !== '1') {
    cleanup = true;
    process.on('exit', () => {
      for (const x of made) {
        try {
          rmSync(x, { recursive: true, force: true });
        } catch {
          // A directory a test made read-only or still in use: left for the system's tmp cleaner.
        }
      }
    });
  }
  return d;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd, input: opts.input, maxBuffer: 1 << 28, ...(opts.env ? { env: opts.env } : {}) });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export { execFileSync };

/** URL of tsx's loader, so a child Node can run TypeScript from any working directory. */
export const TSX = import.meta.resolve('tsx');

/** Runs the pigen CLI from source (no build step) in `cwd`. */
export function pigen(args: string[], cwd: string = ROOT, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', TSX, join(ROOT, 'generator/cli.ts'), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...env },
    maxBuffer: 1 << 28,
  });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** mulberry32: a small, fast, seeded PRNG, so generated inputs are the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Builds a small .deb with dpkg-deb and the given compression (control member compressed alike). */
export function makeDeb(dir: string, name: string, z: string, extra = ''): string {
  const root = join(dir, `src-${name}`);
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  mkdirSync(join(root, 'usr/share', name), { recursive: true });
  writeFileSync(join(root, 'usr/share', name, 'data.txt'), `payload of ${name}\n`.repeat(200));
  writeFileSync(
    join(root, 'DEBIAN/control'),
    `Package: ${name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: pigen <pigen@example.com>\nSection: misc\nPriority: optional\n${extra}Description: pigen test package ${name}\n Longer description.\n .\n Second paragraph.\n`,
  );
  const out = join(dir, 'debs', `${name}_1.0-1_all.deb`);
  mkdirSync(join(dir, 'debs'), { recursive: true });
  const r = run('dpkg-deb', ['--root-owner-group', `-Z${z}`, '--build', root, out]);
  if (r.code !== 0) throw new Error(`dpkg-deb: ${r.stderr}`);
  return out;
}

/**
 * A child that prints one JSON object per line (`pigen build --watch --json`), started with
 * `argv` (after node): next() waits for its next line, up to `limitMs` (waiting for a build, not
 * timing one); stop() sends SIGTERM and resolves with its exit code. Shared by the tests and the
 * bench.
 */
export function jsonLinesChild(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const child = spawn(process.execPath, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  let stderr = '';
  let waiting: (() => void) | undefined;
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    buf += s;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) lines.push(buf.slice(0, i)), (buf = buf.slice(i + 1));
    waiting?.();
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => void (stderr += s));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => (res(code), waiting?.())));
  let read = 0;
  return {
    async next(limitMs = 120_000): Promise<Record<string, unknown>> {
      const limit = Date.now() + limitMs;
      while (read >= lines.length) {
        if (child.exitCode !== null || Date.now() > limit) throw new Error(`no line from ${argv.join(' ')} (exit ${child.exitCode}); stderr:\n${stderr.slice(-3000)}`);
        await new Promise<void>((res) => ((waiting = res), setTimeout(res, 200)));
      }
      return JSON.parse(lines[read++]!) as Record<string, unknown>;
    },
    async stop(): Promise<number | null> {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    /** Sends `signal` (stop() then waits for the exit). */
    kill: (signal: NodeJS.Signals) => void child.kill(signal),
    pid: child.pid,
    stderr: () => stderr,
  };
}

/**
 * Stops a child: `signal` (the one the program shuts down cleanly on), then SIGKILL after 5 s;
 * resolves once it has exited.
 */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill(signal);
  });
}
