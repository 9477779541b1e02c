// The process around the CLI: binds stdin/stdout/stderr, the environment and the exit code to
// main(). Run by generator/cli.ts (the unbundled entry) and by the bundle the `pigen` bin loads.

import type { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { main } from './main.js';

const { signals } = constants;

export { main };

export async function runProcess(): Promise<void> {
  // A closed pipe (`pigen validate | head`) ends the output quietly, as for any Unix tool.
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }

  // The AWS SDK (pigen bake --target aws) warns on every run that Node 20 support ends in 2027.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

  const epochEnv = process.env.SOURCE_DATE_EPOCH;
  const epoch = epochEnv && /^\d+$/.test(epochEnv) ? Number(epochEnv) : 0;
  process.exitCode = await main(process.argv.slice(2), {
    cwd: process.cwd(),
    env: process.env,
    stdout: { write: (s) => void process.stdout.write(s), isTTY: process.stdout.isTTY === true },
    stderr: { write: (s) => void process.stderr.write(s), isTTY: process.stderr.isTTY === true },
    epoch,
    interrupted: () => stopRequests(process, (sig) => {
      process.stderr.write(`pigen: ${sig} again: stopped at once (the output is what the last finished build left)\n`);
      process.exit(128 + (signals[sig as keyof typeof signals] ?? 0));
    }),
  });
  // The command is done (main awaits all its work): exit now, once what it printed is out,
  // rather than wait while Node stops the worker threads and frees the heap (~40 ms after a
  // 1,000-node build, which a script running pigen waits for too).
  for (const s of [process.stdout, process.stderr]) if (s.writableLength > 0) await new Promise<void>((resolve) => s.once('drain', resolve).once('error', resolve).once('close', resolve));
  process.exit(process.exitCode);
}

/**
 * For a command that runs until stopped (pigen build --watch): resolves at the first SIGINT or
 * SIGTERM, and the command winds down (a build under way is finished); a second one calls `force`
 * (the CLI exits at once, 128 + the signal's number, as a kill would leave things: a build's output
 * is written so that one cut short leaves the last finished build's).
 */
export function stopRequests(proc: Pick<EventEmitter, 'on'>, force: (signal: string) => void, names: readonly string[] = ['SIGINT', 'SIGTERM']): Promise<void> {
  // (One listener per signal for good: one removed and another added lost a signal that came
  // with the first.)
  let requests = 0;
  return new Promise<void>((resolve) => {
    for (const n of names) proc.on(n, () => (requests++ === 0 ? resolve() : force(n)));
  });
}
