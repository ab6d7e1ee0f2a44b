-- Run once: placements (SPEC 7). Where each tenant's rows live, the migration history of every
-- placement housed in this database, and the fleet command's event log (receipts, failures).
-- sql/idempotent/80_placements.sql has the functions.

-- The registry. A tenant without a row is shared; a customer without a row lives where its partner
-- lives. In the control database it holds every placement; in a database placement's own database
-- it holds the rows of the tenants placed there (written by the fleet command). No credentials:
-- database names a database on the same server (or a libpq service).
create table tenancy.placements (
    tenant_id uuid primary key references tenancy.tenants (id) on delete cascade,
    kind text not null default 'shared',
    schema_name text,
    database text,
    status text not null default 'provisioning',
    schema_version text,
    generation integer not null default 1,
    updated_at timestamptz not null default pg_catalog.now(),
    constraint placements_kind check (kind in ('shared', 'schema', 'database')),
    constraint placements_status check (
        status in ('provisioning', 'active', 'read_only', 'moving', 'retired', 'failed')
    ),
    constraint placements_schema check ((kind = 'schema') = (schema_name is not null)),
    constraint placements_database check ((kind = 'database') = (database is not null))
);

-- "Is this database a database placement?" (set_tenant's routing asks it on every call)
create index placements_database on tenancy.placements (database) where kind = 'database';
create unique index placements_schema_name on tenancy.placements (schema_name) where kind = 'schema';

select pg_catalog.pg_extension_config_dump('tenancy.placements', '');

-- The migration history of each placement housed in this database (schema_name: the placement's
-- schema, 'public' or the configured shared schema for the shared placement and for a database
-- placement). Written in the same transaction as the migration.
create table tenancy.placement_migrations (
    schema_name text not null,
    version text not null,
    name text not null,
    checksum text not null,
    transactional boolean not null default true,
    applied_at timestamptz not null default pg_catalog.clock_timestamp(),
    primary key (schema_name, version)
);

select pg_catalog.pg_extension_config_dump('tenancy.placement_migrations', '');

-- What the fleet command did and what failed: migrate failures (a rerun resumes from the history),
-- provisioning and move steps, erase receipts. tenant_id has no foreign key: a receipt outlives the
-- tenant it erased.
create table tenancy.fleet_events (
    id bigserial primary key,
    at timestamptz not null default pg_catalog.clock_timestamp(),
    tenant_id uuid,
    placement text,
    action text not null,
    detail jsonb not null default '{}'
);

create index fleet_events_tenant on tenancy.fleet_events (tenant_id, at);

select pg_catalog.pg_extension_config_dump('tenancy.fleet_events', '');
select pg_catalog.pg_extension_config_dump('tenancy.fleet_events_id_seq', '');

-- Bumped by every write to tenancy.placements: while it has never been bumped (a database with no
-- placement ever), set_tenant's routing costs one sequence read and nothing else.
create sequence tenancy._placements_version;

-- set_tenant (sql/idempotent/20_context.sql) calls tenancy._route, which sql/idempotent/80_placements.sql
-- defines; this placeholder exists so that set_tenant's body validates before that file runs, and is
-- replaced there in the same script.
create function tenancy._route(p_tenant uuid, p_local boolean)
returns boolean
language sql
volatile
as $fn$
    select true
$fn$;
