// What a command receives from the process: argv, environment, streams and the clock, so commands
// are testable in-process and nothing else reads `process`.

export interface Streams {
  write(s: string | Uint8Array): void;
  isTTY: boolean;
}

export interface CliContext {
  cwd: string;
  env: Record<string, string | undefined>;
  stdout: Streams;
  stderr: Streams;
  /** Seconds since the epoch for outputs that carry a time (SOURCE_DATE_EPOCH, else 0). */
  epoch: number;
  /**
   * For a command that runs until stopped (pigen build --watch): resolves when the user asks it to
   * stop (SIGINT, SIGTERM), which then no longer kills the process (a second request ends it at
   * once: process.ts stopRequests). Absent: never stopped. `onForce`, called for each request
   * after the first, may handle it (true: the process goes on; pigen bake passes it to Packer).
   */
  interrupted?: (onForce?: (signal: string) => boolean, opts?: { signalsOnly?: boolean }) => Promise<void>;
}

/** Colour only on a TTY and never with NO_COLOR (https://no-color.org); FORCE_COLOR forces it. */
export function useColor(ctx: CliContext, stream: Streams): boolean {
  if (ctx.env.NO_COLOR !== undefined && ctx.env.NO_COLOR !== '') return false;
  if (ctx.env.FORCE_COLOR && ctx.env.FORCE_COLOR !== '0') return true;
  return stream.isTTY && ctx.env.TERM !== 'dumb';
}

/** A usage error: the CLI prints the message and the command's help hint, exit 2. */
export class UsageError extends Error {}
/** The operation failed in an expected way (message already printed); exit with this code. */
export class ExitError extends Error {
  constructor(public exitCode: number) {
    super(`exit ${exitCode}`);
  }
}
