// The inventory pigen uses when no INVENTORY argument is given and ./pigsty.yml does not exist:
// the single-node layout of Pigsty's default `meta.yml` (v4.5.0), admin_ip 10.10.10.10.

export const DEFAULT_INVENTORY_NAME = '<embedded default: single-node meta>';

export const DEFAULT_INVENTORY = `# pigen's embedded default inventory: Pigsty's single-node layout (conf/meta.yml, v4.5.0).
# Copy it to ./pigsty.yml to change it; pigen reads ./pigsty.yml when it exists.
all:
  children:
    infra:
      hosts:
        10.10.10.10: { infra_seq: 1 }
      vars:
        repo_enabled: false
    etcd:
      hosts:
        10.10.10.10: { etcd_seq: 1 }
      vars:
        etcd_cluster: etcd
        etcd_safeguard: false
    pg-meta:
      hosts:
        10.10.10.10: { pg_seq: 1, pg_role: primary }
      vars:
        pg_cluster: pg-meta
        pg_extensions: [ postgis, pgvector ]
        pg_users:
          - { name: dbuser_meta, password: DBUser.Meta, pgbouncer: true, roles: [dbrole_admin], comment: pigsty admin user }
          - { name: dbuser_view, password: DBUser.Viewer, pgbouncer: true, roles: [dbrole_readonly], comment: read-only viewer }
        pg_databases:
          - { name: meta, baseline: cmdb.sql, comment: pigsty meta database, schemas: [pigsty], extensions: [postgis, vector] }
  vars:
    version: v4.5.0
    admin_ip: 10.10.10.10
    region: default
    infra_portal:
      home: { domain: i.pigsty }
    nodename_overwrite: false
    node_tune: oltp
    node_etc_hosts: [ '\${admin_ip} i.pigsty sss.pigsty' ]
    node_repo_modules: 'node,infra,pgsql'
    node_repo_remove: true
    pg_version: 18
    pg_conf: oltp.yml
`;
