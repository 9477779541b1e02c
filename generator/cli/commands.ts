// Command registry: each command declares its usage, its options (util.parseArgs) and its run().

import type { ParseArgsConfig } from 'node:util';
import type { CliContext } from './context.js';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Help text after the usage line: arguments, options, examples. */
  help: string;
  options: Options;
  /** Max positional arguments. */
  maxArgs: number;
  run(ctx: CliContext, values: Values, args: string[]): Promise<number>;
}

/** Options most commands share. */
export const INVENTORY_OPTIONS: Options = {
  set: { type: 'string', multiple: true },
  strict: { type: 'boolean' },
  json: { type: 'boolean' },
};

export const INVENTORY_HELP = `Arguments:
  INVENTORY          Pigsty inventory (default: ./pigsty.yml when it exists, else the embedded
                     single-node default inventory)

Common options:
  --set KEY=VALUE    override a parameter for every host (highest precedence; repeatable;
                     VALUE is YAML, e.g. --set nginx_port=8080)
  --strict           unknown parameters and fields, and default passwords, are errors (other
                     warnings, such as repo-empty or not-applied, stay warnings)
  --json             print machine-readable JSON on stdout
  -h, --help         show this help`;
