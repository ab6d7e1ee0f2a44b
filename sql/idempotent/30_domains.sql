-- Domains: which tenant owns a host. Normalization (plpython/hosts.py is the reference; the ASCII
-- path is repeated here in PL/pgSQL so that no Python runs for it), the mappings table, resolution.

-- Non-ASCII hosts: the whole normalization in Python (IDNA 2008 / UTS #46 through the distribution's
-- idna package). Returns {host}, or {sqlstate, message[, hint]} for normalize_host to raise: PL/Python
-- would prefix the message of an exception with its class. PARALLEL UNSAFE, like everything that
-- calls it: its first call in a backend loads the modules with plpy.execute (#@tenancy), which a
-- parallel worker must never do.
--@grant public
create or replace function tenancy._normalize_host_py(p_host text)
returns text[]
language plpython3u
immutable
as $fn$
#@tenancy
try:
    return [T.hosts.normalize(p_host)]
except T.packages.MissingPackage as exc:
    return [exc.sqlstate, exc.message, exc.hint]
except ValueError as exc:
    return ["22023", str(exc)]
$fn$;

-- Every input that is not already a normalized ASCII host: step for step as hosts.normalize() (same
-- patterns; PostgreSQL's `$` is Python's `\Z`); non-ASCII input goes to hosts.normalize() itself.
-- Lower-casing under the "C" collation touches A-Z only: no locale can turn `I` into a dotless `ı`.
--@grant public
create or replace function tenancy._normalize_host_full(p_host text)
returns text
language plpgsql
immutable
as $fn$
declare
    v_host text;
    v_short text;
begin
    if p_host is null then
        raise exception 'host name must not be null' using errcode = '22023';
    end if;
    if p_host ~ '[^[:ascii:]]' then
        return tenancy._result_or_raise(tenancy._normalize_host_py(p_host));
    end if;
    v_host := pg_catalog.lower(pg_catalog.btrim(p_host, E' \t\n\r\f\x0b') collate pg_catalog."C");
    -- a host that only needed trimming, lower-casing, its port or its trailing dot removed
    v_short := pg_catalog.regexp_replace(v_host, '\.?(:[0-9]+)?$', '');
    if v_short ~ '^([a-z0-9]+(-+[a-z0-9]+)*\.)*[a-z][a-z0-9]*(-+[a-z0-9]+)*$'
       and (pg_catalog.length(v_short) <= 63 or (pg_catalog.length(v_short) <= 253 and v_short !~ '[^.]{64}')) then
        return v_short;
    end if;
    -- everything else is refused, or needs the checks in the order of hosts.normalize()
    if v_host = '' then
        raise exception 'host name % is empty', pg_catalog.quote_literal(p_host) using errcode = '22023';
    end if;
    if pg_catalog.left(v_host, 2) = '*.' then
        raise exception 'host name % is a wildcard: only a domain mapping may be one (*.example.com)',
            pg_catalog.quote_literal(p_host)
            using errcode = '22023';
    end if;
    if v_host ~ '[/?#@]' then
        raise exception 'host name % looks like a URL: pass the host only (no scheme, user, path, query or fragment)',
            pg_catalog.quote_literal(p_host)
            using errcode = '22023';
    end if;
    if pg_catalog.left(v_host, 1) = '[' or v_host ~ ':.*:' then
        raise exception 'host name % is an IP address literal, not a host name', pg_catalog.quote_literal(p_host)
            using errcode = '22023';
    end if;
    v_host := pg_catalog.regexp_replace(v_host, ':[0-9]+$', '');
    if pg_catalog.right(v_host, 1) = '.' then
        v_host := pg_catalog.left(v_host, -1);
    end if;
    if v_host = '' then
        raise exception 'host name % is empty', pg_catalog.quote_literal(p_host) using errcode = '22023';
    end if;
    if pg_catalog.length(v_host) > 253 then
        raise exception 'host name % is longer than 253 characters', pg_catalog.quote_literal(p_host)
            using errcode = '22023';
    end if;
    if v_host ~ '(^|\.)(\.|$)' then
        raise exception 'host name % has an empty label', pg_catalog.quote_literal(p_host) using errcode = '22023';
    end if;
    if v_host ~ '[^.]{64}' then
        raise exception 'host name % has a label longer than 63 characters', pg_catalog.quote_literal(p_host)
            using errcode = '22023';
    end if;
    if v_host ~ '[^a-z0-9.-]' then
        raise exception 'host name % has characters outside the host name grammar (letters, digits, hyphens, dots)',
            pg_catalog.quote_literal(p_host)
            using errcode = '22023';
    end if;
    if v_host ~ '(^|\.)-|-(\.|$)' then
        raise exception 'host name % has a label that starts or ends with a hyphen', pg_catalog.quote_literal(p_host)
            using errcode = '22023';
    end if;
    if v_host ~ '(^|\.)([0-9]+|0x[0-9a-f]*)$' then
        raise exception 'host name % is an IP address literal, not a host name', pg_catalog.quote_literal(p_host)
            using errcode = '22023';
    end if;
    return v_host;
end
$fn$;

-- Plain SQL, inlined by the planner into the caller: a host that is already normalized (the common
-- case: lower-case labels of letters, digits and inner hyphens, the last one starting with a letter
-- so that it cannot be an IPv4 number; no trailing dot, no port) costs one regular expression and no
-- function call (a host of at most 63 characters cannot have a label longer than 63). Everything
-- else, including every input that is refused, goes through _normalize_host_full.
--@grant app
create or replace function tenancy.normalize_host(host text)
returns text
language sql
immutable
as $fn$
    select case
        when pg_catalog.textregexeq(host, '^([a-z0-9]+(-+[a-z0-9]+)*\.)*[a-z][a-z0-9]*(-+[a-z0-9]+)*$')
            and (
                pg_catalog.length(host) <= 63
                or (pg_catalog.length(host) <= 253 and pg_catalog.textregexne(host, '[^.]{64}'))
            )
            then host
        else tenancy._normalize_host_full(host)
    end
$fn$;

comment on function tenancy.normalize_host(text) is
'Normalized host name: trimmed, lower-case, one trailing dot and a :port stripped, IDN labels in punycode '
'(xn--) by IDNA 2008 with UTS #46 non-transitional mapping: straße.de is xn--strae-oqa.de, not strasse.de; '
'full-width letters and dots are ASCII. 22023 for null, empty, > 253 characters, an empty label or one > 63, '
'characters outside letters/digits/hyphens, a label IDNA 2008 refuses, IP literals, URLs and wildcards.';

-- The stored form of a mapping's domain: a host, or `*.` and a host of at least two labels.
create or replace function tenancy._normalize_domain(p_domain text)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_trimmed text := pg_catalog.btrim(p_domain, E' \t\n\r\f\x0b');
    v_base text;
    v_msg text;
begin
    if p_domain is null then
        raise exception 'domain must not be null' using errcode = '22023';
    end if;
    if pg_catalog.left(v_trimmed, 2) <> '*.' then
        return tenancy.normalize_host(p_domain);
    end if;
    begin
        v_base := tenancy.normalize_host(pg_catalog.substr(v_trimmed, 3));
    exception when invalid_parameter_value then
        get stacked diagnostics v_msg = message_text;
        raise exception 'wildcard domain % is malformed: %', pg_catalog.quote_literal(p_domain), v_msg
            using errcode = '22023';
    end;
    if pg_catalog.strpos(v_base, '.') = 0 then
        raise exception 'wildcard domain % needs a base of at least two labels (like *.example.com)',
            pg_catalog.quote_literal(p_domain)
            using errcode = '22023';
    end if;
    return '*.' || v_base;
end
$fn$;

comment on table tenancy.domain_mappings is
'Hosts and wildcards (*.base: <child slug>.base) of tenants, stored normalized. Pending mappings never resolve; '
'at most one primary per tenant (primary_domain). Application roles read their visible rows only.';

-- SECURITY DEFINER: a role allowed to write mappings needs no EXECUTE on the normalization helpers.
create or replace function tenancy._domain_mappings_before()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $fn$
begin
    new.domain := tenancy._normalize_domain(new.domain);
    if new.is_primary and pg_catalog.left(new.domain, 2) = '*.' then
        raise exception 'wildcard domain % cannot be a primary domain: a primary domain is a host to link to',
            pg_catalog.quote_literal(new.domain)
            using errcode = '22023';
    end if;
    return new;
end
$fn$;

create or replace trigger domain_mappings_before
before insert or update on tenancy.domain_mappings
for each row execute function tenancy._domain_mappings_before();

-- Domains stored by tenancy 0.1.0 were normalized by IDNA 2003: an xn-- label is decoded and normalized
-- again by IDNA 2008 (the same string for nearly every label). A changed one is updated; one that IDNA
-- 2008 refuses (an emoji, a symbol), or whose new form another mapping holds, is kept as it is (it
-- still resolves by its ASCII form); every such row is reported with a WARNING, never merged. An ASCII
-- label that IDNA 2003 mapped (strasse from straße) cannot be told from one typed so and is kept.
-- Re-run by every install and upgrade: a no-op once done, except that refused rows are reported again.
do language plpython3u $renormalize$
#@tenancy
rows = plpy.execute(
    "select m.domain, m.tenant_id::text as tenant from tenancy.domain_mappings m"
    " where m.domain operator(pg_catalog.~) '(^|[.])xn--' order by m.domain"
)
owner = plpy.prepare(
    "select m.tenant_id::text as tenant from tenancy.domain_mappings m where m.domain operator(pg_catalog.=) $1",
    ["text"],
)
move = plpy.prepare(
    "update tenancy.domain_mappings m set domain = $2 where m.domain operator(pg_catalog.=) $1", ["text", "text"]
)
for row in rows:
    old, tenant = row["domain"], row["tenant"]
    try:
        new = T.hosts.renormalized(old)
    except ValueError as exc:
        plpy.warning(
            f"domain mapping {old} (tenant {tenant}) is not a valid name under IDNA 2008 ({exc}): kept as it is;"
            " it resolves by that ASCII form only"
        )
        continue
    if new == old:
        continue
    taken = plpy.execute(owner, [new])
    if len(taken):
        plpy.warning(
            f"domain mapping {old} (tenant {tenant}) is {new} under IDNA 2008, which is mapped to tenant"
            f" {taken[0]['tenant']}: both kept as they are; delete the one that is wrong"
        )
        continue
    plpy.execute(move, [old, new])
    plpy.warning(f"domain mapping {old} (tenant {tenant}) renormalized by IDNA 2008 to {new}")
$renormalize$;

-- Row-level security: the tenants' visibility, read-only for application roles (90_grants.sql).
-- Only superusers and BYPASSRLS roles write mappings.

-- Resolution: the exact active mapping (one primary-key probe); else the only wildcard that can
-- serve the host, `*.` and the host without its first label (a second probe), whose tenant has a
-- child with that first label as its slug (a probe of tenants_parent_slug_key).
--@grant app
create or replace function tenancy.resolve_domain(host text)
returns uuid
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_host text := tenancy.normalize_host(host);
    v_dot integer;
    v_id uuid;
begin
    select m.tenant_id into v_id
    from tenancy.domain_mappings m
    where m.domain = v_host and m.status = 'active';
    if v_id is not null then
        return v_id;
    end if;
    v_dot := pg_catalog.strpos(v_host, '.');
    if v_dot = 0 then
        return null;
    end if;
    select c.id into v_id
    from tenancy.domain_mappings w
    inner join tenancy.tenants c on c.parent_id = w.tenant_id
    where w.domain = '*' || pg_catalog.substr(v_host, v_dot)
      and w.status = 'active'
      and c.slug = pg_catalog.left(v_host, v_dot - 1)
      and c.status in ('active', 'suspended');
    return v_id;
end
$fn$;

comment on function tenancy.resolve_domain(text) is
'Tenant of a host: its exact active mapping, else the active wildcard *.base where host = <slug>.base (exactly '
'one label) and <slug> is a child of the wildcard''s tenant; null when none. Suspended tenants resolve. '
'Needs no context; 22023 for a malformed host.';

--@grant app
create or replace function tenancy.resolve_domain_details(host text)
returns table (tenant_id uuid, tier smallint, path text, matched text, match_kind text)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
    -- resolve_domain is the one resolution; this only says which mapping it took
    with r as (select tenancy.normalize_host(host) as h, tenancy.resolve_domain(host) as id)
    select t.id, t.tier, tenancy.tenant_path(t.id),
        coalesce(m.domain, '*' || pg_catalog.substr(r.h, pg_catalog.strpos(r.h, '.'))),
        case when m.domain is null then 'wildcard' else 'exact' end
    from r
    inner join tenancy.tenants t on t.id = r.id
    left join tenancy.domain_mappings m on m.domain = r.h and m.status = 'active' and m.tenant_id = t.id
$fn$;

comment on function tenancy.resolve_domain_details(text) is
'How a host resolves: tenant_id, tier, path (as tenant_path), matched (the mapping''s domain, e.g. *.brandsyncup.com) '
'and match_kind (exact or wildcard); no row when nothing resolves. Needs no context; 22023 for a malformed host.';

--@grant app
create or replace function tenancy.primary_domain(tenant uuid)
returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
    select m.domain
    from tenancy.domain_mappings m
    where m.tenant_id = $1 and m.is_primary and m.status = 'active'
$fn$;

comment on function tenancy.primary_domain(uuid) is
'The tenant''s primary active domain (the host to link to), or null. Readable without context: domains are public.';

-- SECURITY INVOKER, without a SET clause (like set_tenant): set_tenant checks the caller's role.
--@grant app
create or replace function tenancy.set_tenant_for_domain(host text, local boolean default false)
returns uuid
language plpgsql
volatile
as $fn$
declare
    v_id uuid := tenancy.resolve_domain(host);
begin
    if v_id is null then
        perform tenancy._audit(
            'refused_context',
            pg_catalog.format('set_tenant_for_domain(%L, local => %s)', host, coalesce(local, false)::text),
            'unknown domain: no active exact mapping and no active wildcard with such a child',
            'TN005'
        );
        raise exception 'unknown domain %: no active domain mapping resolves it', pg_catalog.quote_literal(host)
            using errcode = 'TN005',
            hint = 'Map it in tenancy.domain_mappings (status active), or look the tenant up another way.';
    end if;
    return tenancy._set_tenant(v_id, local, 'set_tenant_for_domain');
end
$fn$;

comment on function tenancy.set_tenant_for_domain(text, boolean) is
'resolve_domain(host) then set_tenant(id, local): TN005 (audited) when the host resolves to nothing, 22023 when it is '
'malformed, and set_tenant''s own refusals (TN002 suspended, TN007 tier 0 without tenancy_platform).';
