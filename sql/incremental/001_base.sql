-- Run once: the tables, types and sequences of tenancy 0.1.0 (what its install script created).
-- RELEASED: frozen. Its checksum is in sql/released.txt and `make lint` verifies it; a later change
-- to these objects is a new numbered file in sql/incremental/, never an edit here.
-- Everything re-runnable (functions, triggers, comments, grants, policies) is in sql/idempotent/.

-- tenancy.tenants (sql/idempotent/10_tenants.sql has its triggers and functions)
create table tenancy.tenants (
    id uuid primary key default pg_catalog.gen_random_uuid(),
    parent_id uuid references tenancy.tenants (id) on delete restrict,
    tier smallint not null,
    slug text not null,
    name text not null,
    status text not null default 'active',
    external_id text unique,
    settings jsonb not null default '{}',
    created_at timestamptz not null default pg_catalog.now(),
    updated_at timestamptz not null default pg_catalog.now(),
    constraint tenants_tier_range check (tier between 0 and 2),
    constraint tenants_root_has_no_parent check ((tier = 0) = (parent_id is null)),
    constraint tenants_status check (status in ('active', 'suspended'))
);

-- Unique among siblings; the root (no parent) is unique by the partial index below.
create unique index tenants_parent_slug_key on tenancy.tenants (parent_id, slug);
create unique index tenants_one_root on tenancy.tenants ((true)) where parent_id is null;

select pg_catalog.pg_extension_config_dump('tenancy.tenants', '');

-- the context (sql/idempotent/20_context.sql)
create type tenancy._context as (tenant uuid, tier smallint);
create sequence tenancy._tenants_version;

-- tenancy.domain_mappings (sql/idempotent/30_domains.sql)
create table tenancy.domain_mappings (
    domain text primary key,
    tenant_id uuid not null references tenancy.tenants (id) on delete cascade,
    is_primary boolean not null default false,
    status text not null default 'active',
    created_at timestamptz not null default pg_catalog.now(),
    constraint domain_mappings_status check (status in ('active', 'pending'))
);

-- At most one primary per tenant; it also serves primary_domain().
create unique index domain_mappings_one_primary on tenancy.domain_mappings (tenant_id) where is_primary;
-- The visibility policy, cascading deletes of tenants.
create index domain_mappings_tenant_id on tenancy.domain_mappings (tenant_id);

select pg_catalog.pg_extension_config_dump('tenancy.domain_mappings', '');

-- the catalog of scoped tables (sql/idempotent/40_scoped.sql)
create table tenancy.scoped_tables (
    relid regclass primary key,
    tenant_column name not null default 'tenant_id',
    write_scope text not null default 'own',
    shared_rows boolean not null default false,
    registered_at timestamptz not null default pg_catalog.now(),
    constraint scoped_tables_write_scope check (write_scope in ('own', 'visible'))
);

select pg_catalog.pg_extension_config_dump('tenancy.scoped_tables', '');

-- design tokens (sql/idempotent/70_tokens.sql)
create sequence tenancy._token_revision;

create table tenancy.token_layers (
    tenant_id uuid primary key references tenancy.tenants (id) on delete cascade,
    tokens jsonb not null default '{}',
    updated_at timestamptz not null default pg_catalog.now(),
    revision bigint not null default pg_catalog.nextval('tenancy._token_revision'::regclass)
);

create table tenancy.token_rules (
    tenant_id uuid not null references tenancy.tenants (id) on delete cascade,
    path text not null,
    rule text not null,
    params jsonb not null default '{}',
    id uuid primary key default pg_catalog.gen_random_uuid(),
    created_at timestamptz not null default pg_catalog.now(),
    revision bigint not null default pg_catalog.nextval('tenancy._token_revision'::regclass)
);
-- One rule of a kind per path and tenant (min_contrast: one per background).
create unique index token_rules_key on tenancy.token_rules (
    tenant_id, path, rule, (coalesce(params ->> 'against', ''))
);

select pg_catalog.pg_extension_config_dump('tenancy.token_layers', '');
select pg_catalog.pg_extension_config_dump('tenancy.token_rules', '');
