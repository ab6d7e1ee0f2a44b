-- Identity tokens (SPEC 2a): JWT issuers, revocations, set_tenant_from_jwt, strict roles. The verifier
-- is plpython/identity.py (tenancy's JOSE checks; signatures by the distribution's cryptography), its
-- SQL side plpython/jwt_context.py, the strict check plpython/strict.py (asked by tenancy._set_tenant).

-- tenancy_strict: its members may take a context only through set_tenant_from_jwt
-- (grant_app(role, strict => true)). Cluster-wide, created only if missing, kept by DROP EXTENSION.
do $roles$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'tenancy_strict') then
        create role tenancy_strict nologin;
    end if;
end
$roles$;

comment on table tenancy.jwt_issuers is
'Identity providers whose tokens set_tenant_from_jwt accepts (add_jwt_issuer / drop_jwt_issuer, DBA only): the exact '
'iss, the public JWKS, the tenant claim path, the audiences and the leeway. No application role can read it.';

comment on table tenancy.jwt_revocations is
'Revoked identity tokens (revoke_jwt, DBA only): tokens of the issuer (and subject, when not null) with iat before '
'issued_before, or without iat, are refused. One row per issuer and subject; delete a row to lift it. No application '
'role can read it.';

-- What add_jwt_issuer validates (the verifier's own parser): null, or {sqlstate, message, hint}
-- (58P01 when the cryptography package is missing).
create or replace function tenancy._jwt_issuer_problem(
    p_issuer text, p_jwks jsonb, p_tenant_claim text, p_audiences text[], p_leeway float8
)
returns text[]
language plpython3u
stable
parallel unsafe
as $fn$
#@tenancy
try:
    T.identity.make_issuer(
        p_issuer, p_jwks, p_tenant_claim, list(p_audiences) if p_audiences is not None else None, p_leeway
    )
except (T.identity.JwksError, T.packages.MissingPackage) as exc:
    return [exc.sqlstate, exc.message, exc.hint]
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
            using errcode = v_problem[1], hint = v_problem[3];
    end if;
    insert into tenancy.jwt_issuers as i (issuer, jwks, tenant_claim, audiences, leeway, updated_at)
    values (
        add_jwt_issuer.issuer, add_jwt_issuer.jwks, add_jwt_issuer.tenant_claim, add_jwt_issuer.audiences,
        add_jwt_issuer.leeway, pg_catalog.now()
    )
    on conflict on constraint jwt_issuers_pkey do update
        set jwks = excluded.jwks, tenant_claim = excluded.tenant_claim, audiences = excluded.audiences,
            leeway = excluded.leeway, updated_at = excluded.updated_at;
    -- RFC 8725 3.9: without audiences, a token the provider minted for another application is accepted
    if add_jwt_issuer.audiences is null then
        raise warning 'issuer % is registered without audiences: its tokens are accepted whatever their aud or azp',
            pg_catalog.quote_literal(add_jwt_issuer.issuer)
            using hint = 'Pass audiences => array[...] (the aud, or for Clerk the azp, of this application''s tokens) '
                'so that a token the provider issued for another application is refused (RFC 8725, 3.9).';
    end if;
end
$fn$;

comment on function tenancy.add_jwt_issuer(text, jsonb, text, text[], interval) is
'Register (or replace) an identity provider whose tokens set_tenant_from_jwt accepts: its exact iss, its public JWKS '
'(RSA for RS256, EC P-256 for ES256, each key with a kid), the dotted claim path holding the organization id that is '
'matched against tenants.external_id (org_id for Clerk v1, o.id for Clerk v2), the accepted aud/azp values (null: '
'not checked, with a WARNING) and the clock leeway. 22023 for a malformed JWKS (a private key included) or claim path. '
'DBA only.';

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
'on the primary and on replicas that replayed it, cached verifications included. Its revocations are kept. 22023 '
'when it is not registered. DBA only.';

-- Revocation: the row is read by every set_tenant_from_jwt (no cache to flush, so every backend and
-- every replica that replayed it refuses those tokens at its next call). A second revocation of the
-- same issuer and subject keeps the later time.
create or replace function tenancy.revoke_jwt(
    issuer text,
    subject text default null,
    issued_before timestamptz default pg_catalog.now()
)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
begin
    if revoke_jwt.issuer is null or revoke_jwt.issued_before is null then
        raise exception 'revoke_jwt needs an issuer and a time (issued_before; only subject may be null)'
            using errcode = '22023',
            hint = 'tenancy.revoke_jwt(issuer, subject, issued_before): subject null revokes every token of the '
                'issuer; issued_before defaults to now().';
    end if;
    if not exists (select from tenancy.jwt_issuers i where i.issuer = revoke_jwt.issuer) then
        raise exception 'issuer % is not registered', pg_catalog.quote_literal(revoke_jwt.issuer)
            using errcode = '22023',
            hint = 'The registered issuers are in tenancy.jwt_issuers (the iss of the tokens, exactly); tokens of '
                'an issuer that is not registered are refused already.';
    end if;
    insert into tenancy.jwt_revocations as r (issuer, subject, issued_before)
    values (revoke_jwt.issuer, revoke_jwt.subject, revoke_jwt.issued_before)
    on conflict on constraint jwt_revocations_key do update
        set issued_before = greatest(r.issued_before, excluded.issued_before), revoked_at = pg_catalog.now();
end
$fn$;

comment on function tenancy.revoke_jwt(text, text, timestamptz) is
'Revoke identity tokens before they expire: the tokens of the issuer (of that subject, its sub claim, when given) '
'issued before issued_before (iat; a token without iat counts as issued before) are refused (TN008 revoked) from the '
'next set_tenant_from_jwt in every backend, on the primary and on replicas that replayed it, cached tokens included. '
'''infinity'' blocks the subject until its row is deleted from tenancy.jwt_revocations. 22023 for an issuer that is '
'not registered. DBA only.';

-- set_tenant_from_jwt runs one statement (plpython/jwt_context.py VERIFY_AND_SET): _jwt_verify reads the
-- issuer row's version, the revocation and the tenant of the external id past RLS (PL/pgSQL: in the
-- caller's statement, without the subtransaction of a plpy.execute), and _jwt_check verifies the token
-- against them; then set_tenant takes the context. _jwt_check runs only as the extension's owner (no
-- application role may execute it) and answers only inside that statement (a nonce in the backend's
-- state that no SQL role can read or write): _jwt_verify called directly refuses (42501), so it tells
-- nothing that the token does not already prove.
create or replace function tenancy._jwt_check(
    p_token text, p_nonce text, p_issuer text, p_external text, p_version text, p_revoked_before float8,
    p_tenant text
)
returns text[]
language plpython3u
volatile
parallel unsafe
as $fn$
#@tenancy
import time
return T.jwt_context.verify_token(
    plpy, T.gd, p_token, time.time(), p_nonce, p_issuer, p_external, p_version, p_revoked_before, p_tenant
)
$fn$;

--@grant app
create or replace function tenancy._jwt_verify(
    p_token text, p_nonce text, p_issuer text, p_subject text, p_external text
)
returns text[]
language plpgsql
volatile
parallel unsafe
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_version text;
    v_revoked_before float8;
    v_tenant text;
begin
    -- one statement: the issuer row's version (every write changes xmin or ctid), the latest revocation
    -- of the issuer (subject null) or of the subject (at most one row each), the external id's tenant
    select
        (select i.xmin::text || ':' || i.ctid::text from tenancy.jwt_issuers i where i.issuer = p_issuer),
        pg_catalog.date_part('epoch', greatest(
            (select r.issued_before from tenancy.jwt_revocations r where r.issuer = p_issuer and r.subject is null),
            (
                select r.issued_before from tenancy.jwt_revocations r
                where r.issuer = p_issuer and r.subject = p_subject
            )
        )),
        (select t.id::text from tenancy.tenants t where t.external_id = p_external)
    into v_version, v_revoked_before, v_tenant;
    return tenancy._jwt_check(p_token, p_nonce, p_issuer, p_external, v_version, v_revoked_before, v_tenant);
end
$fn$;

-- {tenant id} or {sqlstate, message, hint}, audited; the context is set by tenancy.set_tenant.
--@grant app
create or replace function tenancy._set_tenant_from_jwt(p_token text, p_local boolean)
returns text[]
language plpython3u
volatile
parallel unsafe
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
'Verify an identity token (RS256/ES256 by the cryptography package with the key its kid names, the key''s algorithm '
'only; typ JWT or at+jwt when present; exact iss; exp/nbf with the leeway; aud or azp against the issuer''s '
'audiences; not revoked by revoke_jwt) and take the context of the tenant whose external_id its tenant claim holds, '
'as set_tenant(id, local) does. TN008 naming the failed check with a hint for it, TN001 no such tenant, TN002 '
'suspended, TN007 tier 0 without tenancy_platform. The only way a strict role takes a context. Refusals are audited '
'(the token by a hash prefix); verified tokens are cached per backend, with expiry and revocation checked on every '
'call.';
