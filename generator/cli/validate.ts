// `pigen validate`: load, check and resolve an inventory; print every problem at once.

import type { Inventory } from '../types.js';
import { INVENTORY_HELP, INVENTORY_OPTIONS, type Command } from './commands.js';
import { diagnosticsToJson, hasErrors, loadInventory, printDiagnostics } from './common.js';

export function inventorySummary(inv: Inventory) {
  return {
    admin_ip: inv.adminIp,
    infra: inv.infra,
    groups: inv.groups.map((g) => ({ name: g.name, module: g.module, hosts: g.hosts })),
    nodes: inv.nodes.map((n) => ({ ip: n.ip, nodename: n.nodename, cluster: n.cluster, modules: n.modules, groups: n.groups })),
  };
}

export const validate: Command = {
  name: 'validate',
  summary: 'check an inventory and print every problem with file:line:col',
  usage: 'pigen validate [INVENTORY] [--strict] [--json] [--set KEY=VALUE ...]',
  help: `Parses the inventory as Ansible does (YAML 1.1), checks it against schemas/inventory.schema.json,
resolves variables (defaults < all.vars < group vars < host vars < --set) and runs the rules.
Exit 0 when valid (warnings allowed), 2 when there is an error.

${INVENTORY_HELP}`,
  options: INVENTORY_OPTIONS,
  maxArgs: 1,
  async run(ctx, values, args) {
    const r = loadInventory(ctx, args[0], (values.set as string[] | undefined) ?? [], values.strict === true);
    const failed = hasErrors(r.diagnostics) || !r.inventory;
    if (values.json) {
      const out = {
        file: r.source?.name ?? args[0] ?? null,
        ok: !failed,
        errors: r.diagnostics.filter((d) => d.severity === 'error').length,
        warnings: r.diagnostics.filter((d) => d.severity === 'warning').length,
        diagnostics: diagnosticsToJson(r.diagnostics),
        inventory: r.inventory ? inventorySummary(r.inventory) : null,
      };
      ctx.stdout.write(JSON.stringify(out, null, 2) + '\n');
    } else {
      printDiagnostics(ctx, r);
      if (r.inventory) {
        const inv = r.inventory;
        ctx.stdout.write(
          `${r.source?.name}: valid — ${inv.nodes.length} node${inv.nodes.length === 1 ? '' : 's'}, ` +
            `${inv.infra.length} infra (${inv.infra.join(', ') || 'none'}), admin_ip ${inv.adminIp}\n`,
        );
        for (const n of inv.nodes) ctx.stdout.write(`  ${n.ip.padEnd(15)} ${n.nodename.padEnd(20)} ${n.modules.join(',')}\n`);
      }
    }
    return failed ? 2 : 0;
  },
};
