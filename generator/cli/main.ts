// The CLI shell: argument parsing, help, dispatch, and the one place that maps failures to exit
// codes: 0 ok, 1 operation failed (or internal error, with a banner), 2 bad input or usage.

import { parseArgs } from 'node:util';
import { InternalError } from '../diagnostics.js';
import { packageVersion } from '../io.js';
import type { Command } from './commands.js';
import { ExitError, UsageError, type CliContext } from './context.js';
import { validate } from './validate.js';
import { build } from './build.js';
import { userdata } from './userdata.js';
import { secrets } from './secrets.js';
import { check } from './check.js';
import { bundle } from './bundle.js';
import { bake } from './bake.js';

export const COMMANDS: Command[] = [validate, build, userdata, bundle, bake, check, secrets];

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `pigen ${packageVersion()} — compile a Pigsty inventory into per-node cloud-init user-data,
configs, offline repo bundles and golden images.

Usage: pigen <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Options:
  -h, --help     show help (also: pigen <command> --help)
  -V, --version  print the version

Exit codes: 0 ok, 1 operation failed, 2 bad input or usage.
Run 'pigen <command> --help' for a command's options.
`;
}

function commandHelp(c: Command): string {
  return `Usage: ${c.usage}\n\n${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.\n\n${c.help}\n`;
}

export async function main(argv: string[], ctx: CliContext): Promise<number> {
  try {
    return await dispatch(argv, ctx);
  } catch (e) {
    if (e instanceof ExitError) return e.exitCode;
    if (e instanceof UsageError) {
      ctx.stderr.write(`pigen: ${e.message}\n`);
      // (With --json, stdout carries JSON whatever the outcome: a script reading it gets the error.)
      if (wantsJson(argv)) ctx.stdout.write(JSON.stringify({ ok: false, error: e.message.split('\n')[0] }, null, 2) + '\n');
      return 2;
    }
    const err = e as Error;
    ctx.stderr.write(
      `\n*** pigen internal error ***\n` +
        `This is a bug in pigen, not a problem with your input. Please report it with the output below.\n\n` +
        `${err?.stack ?? String(e)}\n`,
    );
    // (A script reading --json gets JSON for this outcome too: the banner's first line, no stack.)
    if (wantsJson(argv)) ctx.stdout.write(JSON.stringify({ ok: false, error: `internal error (a bug in pigen): ${String(err?.message ?? e).split('\n')[0]}` }, null, 2) + '\n');
    void InternalError;
    return 1;
  }
}

/**
 * Whether `argv` asks for --json, read as its command reads its options (so a `--json` after `--`,
 * or given as an option's value, is none); any unknown option is taken as what it is.
 */
function wantsJson(argv: string[]): boolean {
  const cmd = COMMANDS.find((c) => c.name === argv[0]);
  try {
    const { tokens } = parseArgs({ args: argv.slice(cmd ? 1 : 0), options: cmd?.options ?? {}, allowPositionals: true, strict: false, tokens: true });
    return tokens.some((t) => t.kind === 'option' && t.name === 'json');
  } catch {
    return false;
  }
}

async function dispatch(argv: string[], ctx: CliContext): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    const target = first === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    ctx.stdout.write(target ? commandHelp(target) : topHelp());
    return 0;
  }
  if (first === '-V' || first === '--version' || first === 'version') {
    ctx.stdout.write(`pigen ${packageVersion()}\n`);
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === first);
  if (!cmd) {
    const names = COMMANDS.map((c) => c.name).join(', ');
    throw new UsageError(`unknown command '${first}' (commands: ${names}); run 'pigen --help'`);
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    ctx.stdout.write(commandHelp(cmd));
    return 0;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: cmd.options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split('\n')[0]}\nUsage: ${cmd.usage}\nRun 'pigen ${cmd.name} --help' for details.`);
  }
  if (parsed.positionals.length > cmd.maxArgs) {
    // (Counted, not quoted: a stray word may be a password, `--set pw= secret`.)
    const extra = parsed.positionals.length - cmd.maxArgs;
    throw new UsageError(`too many arguments: ${cmd.name} takes ${cmd.maxArgs === 0 ? 'none' : `at most ${cmd.maxArgs}`}, and ${extra} more ${extra === 1 ? 'was' : 'were'} given (a value with a space in it needs quotes)\nUsage: ${cmd.usage}`);
  }
  return cmd.run(ctx, parsed.values as Record<string, string | boolean | string[] | undefined>, parsed.positionals);
}
