// `pigen build`: compile the inventory into out/ (rendering lands with the render stage).

import { INVENTORY_HELP, INVENTORY_OPTIONS, type Command } from './commands.js';
import { hasErrors, loadInventory, printDiagnostics } from './common.js';

export const build: Command = {
  name: 'build',
  summary: 'render every node\'s files, user-data and manifest into an output directory',
  usage: 'pigen build [INVENTORY] [-o DIR] [--strict] [--json] [--set KEY=VALUE ...]',
  help: `${INVENTORY_HELP}
  -o, --out DIR      output directory (default: out)`,
  options: { ...INVENTORY_OPTIONS, out: { type: 'string', short: 'o' } },
  maxArgs: 1,
  async run(ctx, values, args) {
    const r = loadInventory(ctx, args[0], (values.set as string[] | undefined) ?? [], values.strict === true);
    printDiagnostics(ctx, r);
    if (hasErrors(r.diagnostics) || !r.inventory) return 2;
    ctx.stdout.write(`${r.source?.name}: resolved ${r.inventory.nodes.length} nodes; rendering is not implemented yet\n`);
    return 0;
  },
};
