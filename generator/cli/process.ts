// The process around the CLI: binds stdin/stdout/stderr, the environment and the exit code to
// main(). Run by generator/cli.ts (the unbundled entry) and by the bundle the `pigen` bin loads.

import type { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { main } from './main.js';
import { MAX_EPOCH } from '../bundle/build.js';
import { releaseLocks } from '../io.js';

const { signals } = constants;

export { main };

export async function runProcess(): Promise<void> {
  // A closed pipe (`pigen validate | head`) ends that output quietly, as for any Unix tool: what
  // is written to it after is dropped, and the command goes on to its own exit code (a failed
  // build still exits 1 through `| head`; a --watch stops as on Ctrl-C).
  // Any other failure to write (a full disk, /dev/full) is said, and the exit is 1 at least: what
  // was to be printed is lost. (Thrown from here, it was a stack trace; a file's error comes a
  // tick after the write, and was lost when the process had exited meanwhile.)
  const closed = new Set<NodeJS.WriteStream>();
  let failed: { name: string; why: string } | undefined;
  let stop: ReturnType<typeof stopRequests> | undefined;
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      // (And a write that raced the close: the stream destroyed already.)
      if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') failed ??= { name: s === process.stdout ? 'stdout' : 'stderr', why: e.code ?? e.message };
      closed.add(s);
      stop?.request();
    });
  }
  const writeTo = (s: NodeJS.WriteStream) => (text: string) => void (closed.has(s) || s.destroyed || s.write(text));

  // The AWS SDK (pigen bake --target aws) warns on every run that Node 20 support ends in 2027.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

  // SOURCE_DATE_EPOCH (reproducible-builds.org): whole seconds, up to what a tar header holds;
  // what is wrong with another value is said by the command that uses it (pigen bundle).
  const epochEnv = process.env.SOURCE_DATE_EPOCH;
  const epoch = epochEnv && /^\d+$/.test(epochEnv) && Number(epochEnv) <= MAX_EPOCH ? Number(epochEnv) : 0;
  process.exitCode = await main(process.argv.slice(2), {
    cwd: process.cwd(),
    env: process.env,
    stdout: { write: writeTo(process.stdout), isTTY: process.stdout.isTTY === true },
    stderr: { write: writeTo(process.stderr), isTTY: process.stderr.isTTY === true },
    epoch,
    interrupted: (onForce, opts) => {
      // (SIGHUP too when a terminal is there: closing it, or an SSH session, stops the command as
      // Ctrl-C does (a bake's Packer asked to clean up: its AWS instance terminated). Not without
      // one: under nohup, SIGHUP is to be ignored, and a listener would undo that.)
      const names = ['SIGINT', 'SIGTERM', ...(process.stdin.isTTY || process.stderr.isTTY ? ['SIGHUP'] : [])];
      stop = stopRequests(process, (sig) => {
        if (onForce?.(sig)) return;
        writeTo(process.stderr)(`pigen: ${sig} again: stopped at once${onForce ? '' : ' (the output is what the last finished build left)'}\n`);
        releaseLocks();
        process.exit(128 + (signals[sig as keyof typeof signals] ?? 0));
      }, names);
      if (closed.size) stop.request();
      return opts?.signalsOnly ? stop.signalled : stop.stopped;
    },
  });
  // The command is done (main awaits all its work): exit now, once what it printed is out,
  // rather than wait while Node stops the worker threads and frees the heap (~40 ms after a
  // 1,000-node build, which a script running pigen waits for too).
  for (const s of [process.stdout, process.stderr]) if (!closed.has(s) && !s.destroyed && s.writableLength > 0) await new Promise<void>((resolve) => s.once('drain', resolve).once('error', resolve).once('close', resolve));
  // (A write's error comes a tick after it.)
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (failed) {
    if (failed.name === 'stdout') writeTo(process.stderr)(`pigen: cannot write stdout: ${failed.why}: the output is incomplete\n`);
    if (!process.exitCode) process.exitCode = 1;
  }
  process.exit(process.exitCode);
}

/**
 * For a command that runs until stopped (pigen build --watch): `stopped` resolves at the first
 * SIGINT or SIGTERM (or request()), and the command winds down (a build under way is finished);
 * a second signal calls `force` (the CLI exits at once, 128 + the signal's number, as a kill would
 * leave things: a build's output is written so that one cut short leaves the last finished one).
 */
export function stopRequests(proc: Pick<EventEmitter, 'on'>, force: (signal: string) => void, names: readonly string[] = ['SIGINT', 'SIGTERM']): { stopped: Promise<void>; signalled: Promise<void>; request(): void } {
  // (One listener per signal for good: one removed and another added lost a signal that came
  // with the first.)
  let requests = 0;
  let resolve!: () => void;
  let signal!: () => void;
  const stopped = new Promise<void>((r) => (resolve = r));
  // (A signal's alone: a command that goes on when an output closes (a bundle whose progress
  // pipe is gone) stops only on this one.)
  const signalled = new Promise<void>((r) => (signal = r));
  for (const n of names) proc.on(n, () => (signal(), requests++ === 0 ? resolve() : force(n)));
  // (A request of the program's own, an output closed: a first request, never a forcing one.)
  return { stopped, signalled, request: () => void (requests++ === 0 && resolve()) };
}
