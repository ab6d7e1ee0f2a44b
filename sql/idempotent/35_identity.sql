-- Identity tokens (SPEC 2a): JWT issuers, set_tenant_from_jwt, strict roles. The verifier is
-- plpython/identity.py (standard library only), its SQL side plpython/jwt_context.py, the strict
-- check plpython/strict.py (asked by tenancy._set_tenant).

-- tenancy_strict: its members may take a context only through set_tenant_from_jwt
-- (grant_app(role, strict => true)). Cluster-wide, created only if missing, kept by DROP EXTENSION.
do $roles$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'tenancy_strict') then
        create role tenancy_strict nologin;
    end if;
end
$roles$;

create or replace function tenancy._jwt_issuers_bump()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $fn$
begin
    perform pg_catalog.nextval('tenancy._jwt_issuers_version'::regclass);
    return null;
end
$fn$;

create or replace trigger jwt_issuers_version
after insert or update or delete or truncate on tenancy.jwt_issuers
for each statement execute function tenancy._jwt_issuers_bump();

create or replace function tenancy._jwt_issuers_stamp()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $fn$
begin
    new.revision := pg_catalog.nextval('tenancy._jwt_issuers_version'::regclass);
    new.updated_at := pg_catalog.now();
    return new;
end
$fn$;

create or replace trigger jwt_issuers_stamp
before insert or update on tenancy.jwt_issuers
for each row execute function tenancy._jwt_issuers_stamp();

-- What add_jwt_issuer validates (the verifier's own parser): null, or {sqlstate, message}.
create or replace function tenancy._jwt_issuer_problem(
    p_issuer text, p_jwks jsonb, p_tenant_claim text, p_audiences text[], p_leeway float8
)
returns text[]
language plpython3u
stable
as $fn$
#@tenancy
try:
    T.identity.make_issuer(
        p_issuer, p_jwks, p_tenant_claim, list(p_audiences) if p_audiences is not None else None, p_leeway
    )
except T.identity.JwksError as exc:
    return [exc.sqlstate, exc.message]
return None
$fn$;

create or replace function tenancy.add_jwt_issuer(
    issuer text,
    jwks jsonb,
    tenant_claim text default 'org_id',
    audiences text[] default null,
    leeway interval default '60 seconds'
)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_problem text[];
begin
    if add_jwt_issuer.issuer is null or add_jwt_issuer.jwks is null or add_jwt_issuer.tenant_claim is null
        or add_jwt_issuer.leeway is null then
        raise exception 'add_jwt_issuer needs an issuer, a JWKS, a tenant claim and a leeway (only audiences may be null)'
            using errcode = '22023';
    end if;
    if add_jwt_issuer.leeway < interval '0 seconds' then
        raise exception 'leeway % must not be negative', add_jwt_issuer.leeway using errcode = '22023';
    end if;
    v_problem := tenancy._jwt_issuer_problem(
        add_jwt_issuer.issuer, add_jwt_issuer.jwks, add_jwt_issuer.tenant_claim, add_jwt_issuer.audiences,
        pg_catalog.date_part('epoch', add_jwt_issuer.leeway)
    );
    if v_problem is not null then
        raise exception 'issuer %: %', pg_catalog.quote_literal(add_jwt_issuer.issuer), v_problem[2]
            using errcode = v_problem[1],
            hint = 'Register the provider''s public JWKS (its /.well-known/jwks.json): RSA (RS256) or EC P-256 '
                '(ES256) keys, each with a kid.';
    end if;
    insert into tenancy.jwt_issuers as i (issuer, jwks, tenant_claim, audiences, leeway)
    values (
        add_jwt_issuer.issuer, add_jwt_issuer.jwks, add_jwt_issuer.tenant_claim, add_jwt_issuer.audiences,
        add_jwt_issuer.leeway
    )
    on conflict on constraint jwt_issuers_pkey do update
        set jwks = excluded.jwks, tenant_claim = excluded.tenant_claim, audiences = excluded.audiences,
            leeway = excluded.leeway;
end
$fn$;

comment on function tenancy.add_jwt_issuer(text, jsonb, text, text[], interval) is
'Register (or replace) an identity provider whose tokens set_tenant_from_jwt accepts: its exact iss, its public JWKS '
'(RSA for RS256, EC P-256 for ES256, each key with a kid), the dotted claim path holding the organization id that is '
'matched against tenants.external_id (org_id for Clerk v1, o.id for Clerk v2), the accepted aud/azp values (null: '
'not checked) and the clock leeway. 22023 for a malformed JWKS or claim path. DBA only.';

create or replace function tenancy.drop_jwt_issuer(issuer text)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
begin
    delete from tenancy.jwt_issuers i where i.issuer = drop_jwt_issuer.issuer;
    if not found then
        raise exception 'issuer % is not registered', pg_catalog.quote_nullable(drop_jwt_issuer.issuer)
            using errcode = '22023', hint = 'The registered issuers are in tenancy.jwt_issuers.';
    end if;
end
$fn$;

comment on function tenancy.drop_jwt_issuer(text) is
'Unregister an identity provider: its tokens are refused (TN008) from the next set_tenant_from_jwt in every session, '
'cached verifications included. 22023 when it is not registered. DBA only.';

-- The tenant a token names, past RLS: it reads tenancy.jwt_issuers and tenancy.tenants as the
-- extension's owner and answers only the id of the tenant that a verifying token names (or the
-- refusal), so calling it directly tells nothing that the token does not already prove.
--@grant app
create or replace function tenancy._jwt_verify(
    p_token text,
    out tenant uuid, out sqlstate text, out message text, out hint text, out check_name text
)
returns record
language plpython3u
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
#@tenancy
import time
return T.jwt_context.verify_token(plpy, T.gd, p_token, time.time(), time.monotonic())
$fn$;

-- {tenant id} or {sqlstate, message, hint}, audited; the context is set by tenancy.set_tenant.
--@grant app
create or replace function tenancy._set_tenant_from_jwt(p_token text, p_local boolean)
returns text[]
language plpython3u
volatile
as $fn$
#@tenancy
return T.jwt_context.set_tenant_from_jwt(plpy, T.gd, p_token, bool(p_local))
$fn$;

--@grant app
create or replace function tenancy.set_tenant_from_jwt(token text, local boolean default false)
returns uuid
language sql
volatile
as $fn$
    select tenancy._result_or_raise(tenancy._set_tenant_from_jwt(token, coalesce(local, false)))::uuid
$fn$;

comment on function tenancy.set_tenant_from_jwt(text, boolean) is
'Verify an identity token (RS256/ES256 with the key its kid names, the key''s algorithm only; exact iss; exp/nbf '
'with the leeway; aud or azp against the issuer''s audiences) and take the context of the tenant whose external_id '
'its tenant claim holds, as set_tenant(id, local) does. TN008 naming the failed check, TN001 no such tenant, TN002 '
'suspended, TN007 tier 0 without tenancy_platform. The only way a strict role takes a context. Refusals are audited '
'(the token by a hash prefix); verified tokens are cached per backend until they expire.';
