// The process around the CLI: binds stdin/stdout/stderr, the environment and the exit code to
// main(). Run by generator/cli.ts (the unbundled entry) and by the bundle the `pigen` bin loads.

import { main } from './main.js';

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
    interrupted: () => new Promise<void>((resolve) => ['SIGINT', 'SIGTERM'].forEach((sig) => process.once(sig, () => resolve()))),
  });
  // The command is done (main awaits all its work): exit now, once what it printed is out,
  // rather than wait while Node stops the worker threads and frees the heap (~40 ms after a
  // 1,000-node build, which a script running pigen waits for too).
  for (const s of [process.stdout, process.stderr]) if (s.writableLength > 0) await new Promise<void>((resolve) => s.once('drain', resolve).once('error', resolve).once('close', resolve));
  process.exit(process.exitCode);
}
