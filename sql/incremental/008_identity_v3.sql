-- Run once: identity tokens v3 (SPEC v0.3 2a; sql/idempotent/35_identity.sql has the functions).

-- set_tenant_from_jwt reads the issuer's row on every call and keys what it parsed by the row's
-- version (xmin, ctid), so a standby follows the primary by replay alone: the issuers' version
-- counter, the triggers that bumped it and the revision column it filled are gone. The sequence was
-- registered for pg_dump: it leaves the extension's configuration (ALTER EXTENSION ... DROP) first.
drop trigger if exists jwt_issuers_version on tenancy.jwt_issuers;
drop trigger if exists jwt_issuers_stamp on tenancy.jwt_issuers;
drop function if exists tenancy._jwt_issuers_bump();
drop function if exists tenancy._jwt_issuers_stamp();
alter table tenancy.jwt_issuers drop column revision;
alter extension tenancy drop sequence tenancy._jwt_issuers_version;
drop sequence tenancy._jwt_issuers_version;

-- _jwt_verify is a PL/pgSQL reader with another signature (the PL/Python verifier is _jwt_check).
drop function if exists tenancy._jwt_verify(text);

-- Revoked identity tokens (tenancy.revoke_jwt, DBA only): the tokens of `issuer` (and of `subject`,
-- when not null) issued before `issued_before` (iat; a token without iat counts as issued before)
-- are refused. At most one row per (issuer, subject), subject null included: a later revocation
-- moves issued_before forward. Read by every set_tenant_from_jwt; no application role can read it.
create table tenancy.jwt_revocations (
    issuer text not null,
    subject text,
    issued_before timestamptz not null,
    revoked_at timestamptz not null default pg_catalog.now(),
    constraint jwt_revocations_key unique nulls not distinct (issuer, subject)
);

select pg_catalog.pg_extension_config_dump('tenancy.jwt_revocations', '');
