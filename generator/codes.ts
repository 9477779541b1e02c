// The one catalogue of diagnostic codes, grouped by stage. Codes are stable: tests and users match
// on them, so never rename one; add a new code instead. Each entry says what the code means and
// gives the default hint shown under the message.

export const CODES = {
  // ── load: reading and parsing the file ─────────────────────────────────────
  'file-unreadable': { hint: 'check the path and its permissions' },
  'file-too-large': { hint: 'an inventory is a few hundred KiB at most; point pigen at the right file' },
  'not-text': { hint: 'the inventory must be UTF-8 text (is this a binary or compressed file?)' },
  'empty-file': { hint: 'start from `all: { vars: { admin_ip: 10.10.10.10 } }`' },
  'yaml-syntax': { hint: 'fix the YAML syntax at this position' },
  'duplicate-key': { hint: 'remove one of the two keys; YAML keeps only one and Ansible warns' },
  'yaml-tag': { hint: 'custom YAML tags are not part of an Ansible inventory' },
  'jinja-template': { hint: 'write the value the template stands for (${admin_ip} works where Pigsty takes it), or tag the string !unsafe to mean its text, as Ansible then does' },
  'alias-error': { hint: 'define the anchor (&name) before using the alias (*name)' },
  'not-mapping': { hint: 'the top level must be a mapping with one key, `all`' },

  // ── schema: types and shapes (schemas/inventory.schema.json) ──────────────
  'schema-type': { hint: 'use a value of the type the parameter takes' },
  'schema-enum': { hint: 'use one of the allowed values' },
  'schema-range': { hint: 'use a value within the allowed range' },
  'schema-required': { hint: 'add the missing field' },
  'schema-unknown-field': { hint: 'remove the field or fix its spelling' },
  'schema-format': { hint: 'use a value in the expected format' },
  'schema-other': { hint: 'see schemas/inventory.schema.json for the expected shape' },

  // ── resolve: variables, placeholders and cross-node rules ─────────────────
  'repo-unmatched': { hint: "add a repo_upstream entry of that module whose releases include the OS's, or set os_profile to the OS the inventory was written for" },
  'repo-empty': { hint: 'make a bundle (pigen bundle --download), and set repo_bundle to where the admin node can read it at boot (or bake images with --bundle); or point node_repo_modules at upstream repos' },
  'admin-outside': { hint: 'add the admin node to the inventory (an infra group with infra_seq), or make sure the one running elsewhere serves the repo and DNS' },
  'repo-unserved': { hint: 'keep nginx on port 80 with a `home` portal entry on the admin node, or point node_repo_modules at upstream repos' },
  'dns-name-clash': { hint: 'give the clusters distinct names (not `default`), or the nodes distinct sequence numbers' },
  'dns-unserved': { hint: 'keep dnsmasq on the admin node on port 53, or list other servers in node_dns_servers' },
  'alert-receiver': { hint: 'fix the receiver as Alertmanager reads it (see alertmanager_receivers in schemas/inventory.schema.json)' },
  'selinux-enforcing': { hint: 'keep node_selinux_mode permissive on infra nodes, or after the first boot label the nginx data directory httpd_sys_content_t (semanage fcontext, restorecon) and set httpd_can_network_connect on' },
  'not-applied': { hint: "Pigsty's playbooks apply it; pigen does not yet: apply it after the first boot, or drop it from the inventory" },
  'unknown-param': { hint: 'fix the spelling, or ignore this warning if the parameter belongs to a module pigen does not know' },
  'unknown-placeholder': { hint: 'known placeholders: ${admin_ip} and the repo placeholders of pigsty-infra.md §1.4' },
  'bad-set': { hint: 'write --set KEY=VALUE, e.g. --set nginx_port=8080' },
  'bad-host-key': { hint: 'hosts are keyed by their IPv4 address, e.g. 10.10.10.11' },
  'empty-group': { hint: 'add at least one host to the group, or remove it' },
  'infra-seq-missing': { hint: 'give every host of the infra group an integer `infra_seq`, e.g. { infra_seq: 1 }' },
  'infra-seq-duplicate': { hint: 'each infra node needs its own infra_seq' },
  'admin-ip-invalid': { hint: 'admin_ip must be an IPv4 address, e.g. 10.10.10.10' },
  'admin-ip-scope': { hint: 'set admin_ip once, in all.vars' },
  'admin-ip-not-infra': { hint: 'admin_ip must be one of the infra hosts (the one that serves the repo)' },
  'nodename-duplicate': { hint: 'give each node its own nodename (or pg_cluster/pg_seq)' },
  'pg-instance-duplicate': { hint: 'give each node of a PostgreSQL cluster its own pg_seq' },
  'crontab-user': { hint: "run the job as a user the node has at first boot (root, the admin user), or add it once its user exists (Pigsty's pg_crontab holds the postgres user's jobs)" },
  'member-duplicate': { hint: 'give each member of the cluster its own sequence number (etcd_seq, minio_seq, redis_node)' },
  'nodename-invalid': { hint: 'a nodename is a hostname: letters, digits, dots and dashes' },
  'port-range': { hint: 'ports are integers from 1 to 65535' },
  'port-clash': { hint: 'move one of the two services to another port, or disable one' },
  'portal-domain': { hint: 'a domain is a hostname such as i.pigsty' },
  'portal-endpoint': { hint: 'an endpoint is host:port, e.g. ${admin_ip}:3000' },
  'legacy-portal': { hint: 'Pigsty v4 serves its UIs as paths of the home server: remove the entry, or point it at a port something listens on' },
  'portal-path': { hint: 'a path entry needs an absolute directory, e.g. /www/docs' },
  'portal-duplicate-domain': { hint: 'two portal entries cannot serve the same domain' },
  'portal-name': { hint: 'portal keys become file and upstream names: letters, digits, dash and underscore' },
  'injection': { hint: 'this value would break the generated file; remove newlines, quotes, ;, {, } and #' },
  'module-conflict': { hint: 'a host may be in only one group of each module' },
  'bad-ip': { hint: 'use a dotted IPv4 address' },
  'bad-value': { hint: 'fix the value' },
  'default-secret': { hint: 'run `pigen secrets init` to generate random secrets' },
  'secrets-mode': { hint: 'chmod 600 it (pigen writes it so): it holds the CA key, the infra keys and the passwords' },
  'stale-secret': { hint: 'run `pigen secrets rotate infra:<ip>` to issue a certificate for the current inventory' },

  // ── plan / render / emit ──────────────────────────────────────────────────
  'render-failed': { hint: 'this is a bug in a pigen template; please report it' },
  'userdata-too-large': { hint: 'use the baked image (pigen bake) and its small user-data' },
} as const;

export type Code = keyof typeof CODES;

export function hintFor(code: Code): string {
  return CODES[code].hint;
}
