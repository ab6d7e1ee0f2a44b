-- Run once: identity tokens (SPEC 2a). The registered JWT issuers (sql/idempotent/35_identity.sql
-- has the functions), and grant_app's new signature (role, strict).

-- Bumped by every write to tenancy.jwt_issuers; set_tenant_from_jwt's per-backend issuer map
-- follows it. A row's revision is the value its last write took.
create sequence tenancy._jwt_issuers_version;

-- One row per identity provider whose tokens set_tenant_from_jwt accepts. Written only through
-- add_jwt_issuer / drop_jwt_issuer (DBA); no application role can read it.
create table tenancy.jwt_issuers (
    issuer text primary key,
    jwks jsonb not null,
    tenant_claim text not null default 'org_id',
    audiences text[],
    leeway interval not null default '60 seconds',
    revision bigint not null default pg_catalog.nextval('tenancy._jwt_issuers_version'::regclass),
    updated_at timestamptz not null default pg_catalog.now(),
    constraint jwt_issuers_leeway check (leeway >= interval '0 seconds')
);

select pg_catalog.pg_extension_config_dump('tenancy.jwt_issuers', '');
select pg_catalog.pg_extension_config_dump('tenancy._jwt_issuers_version', '');

-- grant_app(role) becomes grant_app(role, strict default false): a new signature.
drop function if exists tenancy.grant_app(regrole);
