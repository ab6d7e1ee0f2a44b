-- Run once: the per-cluster key that signs the contexts Citus workers verify (docs/citus.md).
-- One row; the same key on every node of a Citus cluster (tenancy.citus_distribute_key() copies it
-- from the coordinator). Only the extension's owner can read it: no grant to anyone. Not dumped
-- (pg_extension_config_dump) on purpose: a key is re-made, never restored from a dump.
create table tenancy._cluster_key (
    id boolean primary key default true,
    key bytea not null,
    ttl_seconds integer not null default 300,
    created_at timestamptz not null default pg_catalog.now(),
    constraint cluster_key_one_row check (id),
    constraint cluster_key_length check (pg_catalog.length(key) >= 32),
    constraint cluster_key_ttl check (ttl_seconds between 1 and 86400)
);

revoke all on tenancy._cluster_key from public;
