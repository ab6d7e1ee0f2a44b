-- Tenants: tier 0 platform (one root), tier 1 partners, tier 2 customers.

comment on table tenancy.tenants is
'Tenant hierarchy: tier 0 platform (the single root), tier 1 partners, tier 2 customers.';

-- A slug: a DNS label (lower-case a-z, 0-9 and inner hyphens, 1 to 63 characters). The one
-- definition, for tenants' slugs and the segments of tenant paths.
--@grant public
create or replace function tenancy._is_slug(p_text text)
returns boolean
language sql
immutable
parallel safe
as $fn$
    select p_text ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
$fn$;

-- Before each row: the slug (22023), the name and tier defaults (the tier derived from the parent),
-- and the invariants a single row can break (TN006, before the CHECK constraints behind them could
-- say 23514, and before tenants_one_root could say 23505). The invariants that need the parent or
-- the children are checked once, at the end of the statement (tenants_invariants).
create or replace function tenancy._tenants_before()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $fn$
begin
    if new.slug is null or not tenancy._is_slug(new.slug) then
        raise exception 'tenant slug % is not a DNS label (lower-case a-z, 0-9 and inner hyphens, 1 to 63 characters)',
            coalesce(pg_catalog.quote_literal(new.slug), 'NULL')
            using errcode = '22023';
    end if;
    new.name := coalesce(new.name, new.slug);
    if new.tier is null then
        if new.parent_id is null then
            new.tier := 0;
        else
            select t.tier + 1 into new.tier from tenancy.tenants t where t.id = new.parent_id;
            if new.tier is null then
                raise exception 'parent tenant % of tenant % does not exist', new.parent_id, new.slug
                    using errcode = 'TN001';
            end if;
        end if;
    end if;
    if new.parent_id is null and new.tier <> 0 then
        raise exception 'tenant % has tier % but no parent: only the tier-0 platform tenant has no parent',
            new.slug, new.tier
            using errcode = 'TN006';
    end if;
    if new.parent_id is not null and new.tier = 0 then
        raise exception 'tenant % has a parent, so it cannot have tier 0', new.slug using errcode = 'TN006';
    end if;
    if new.tier not between 0 and 2 then
        raise exception 'tenant % would have tier %: there are three tiers (0 platform, 1 partner, 2 customer)',
            new.slug, new.tier
            using errcode = 'TN006';
    end if;
    if new.parent_id is null
       and exists (select from tenancy.tenants t where t.parent_id is null and t.id <> new.id) then
        raise exception 'tenant % cannot be a second tier-0 platform tenant: there is at most one root', new.slug
            using errcode = 'TN006';
    end if;
    if tg_op = 'UPDATE' then
        if new.id <> old.id then
            raise exception 'tenant ids are immutable (tenant %)', old.id using errcode = 'TN006';
        end if;
        new.updated_at := pg_catalog.now();
    end if;
    return new;
end
$fn$;

create or replace trigger tenants_before
before insert or update on tenancy.tenants
for each row execute function tenancy._tenants_before();

-- The invariants that need other rows (TN006), at the end of each statement, so that a COPY
-- (pg_restore) may bring children before their parent: the parent exists and is one tier up, and a
-- tenant with children keeps its tier.
create or replace function tenancy._tenants_invariants()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_parent_tier smallint;
begin
    if new.parent_id is not null then
        select t.tier into v_parent_tier from tenancy.tenants t where t.id = new.parent_id;
        if not found then
            raise exception 'parent tenant % of tenant % does not exist', new.parent_id, new.slug
                using errcode = 'TN001';
        end if;
        if new.tier <> v_parent_tier + 1 then
            raise exception 'tenant % has tier % but its parent has tier %: a child''s tier is its parent''s + 1',
                new.slug, new.tier, v_parent_tier
                using errcode = 'TN006';
        end if;
    end if;
    if tg_op = 'UPDATE' and new.tier <> old.tier
       and exists (select from tenancy.tenants t where t.parent_id = old.id and t.tier <> new.tier + 1) then
        raise exception 'tenant % has children: its tier cannot change from % to %', new.slug, old.tier, new.tier
            using errcode = 'TN006';
    end if;
    return null;
end
$fn$;

-- (CREATE OR REPLACE does not take constraint triggers)
drop trigger if exists tenants_invariants on tenancy.tenants;
create constraint trigger tenants_invariants
after insert or update on tenancy.tenants
deferrable initially immediate
for each row execute function tenancy._tenants_invariants();

--@grant app
create or replace function tenancy.tenant_id(path text)
returns uuid
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_parts text[];
    v_id uuid;
    v_part text;
begin
    if path is null then
        raise exception 'tenant path must not be null' using errcode = '22023';
    end if;
    v_parts := case when path = '' then '{}'::text[] else pg_catalog.string_to_array(path, '/') end;
    if pg_catalog.array_length(v_parts, 1) > 2
       or exists (select from pg_catalog.unnest(v_parts) p where not tenancy._is_slug(p)) then
        raise exception 'malformed tenant path %: expected '''' (the platform), ''partner'' or ''partner/customer'', '
            'each a slug (lower-case letters, digits, hyphens)', pg_catalog.quote_literal(path)
            using errcode = '22023';
    end if;
    select t.id into v_id from tenancy.tenants t where t.parent_id is null;
    if v_id is null then
        raise exception 'unknown tenant path %: there is no platform (tier-0) tenant yet', pg_catalog.quote_literal(path)
            using errcode = 'TN001';
    end if;
    foreach v_part in array v_parts loop
        select t.id into v_id from tenancy.tenants t where t.parent_id = v_id and t.slug = v_part;
        if v_id is null then
            raise exception 'unknown tenant path %: no tenant % there', pg_catalog.quote_literal(path),
                pg_catalog.quote_literal(v_part)
                using errcode = 'TN001';
        end if;
    end loop;
    return v_id;
end
$fn$;

comment on function tenancy.tenant_id(text) is
'Tenant id for a path: '''' is the platform root, ''partner'' a partner, ''partner/customer'' its customer. Unknown: TN001.';

-- Path of a tenant ('' for the root, 'partner', 'partner/customer').
--@grant app
create or replace function tenancy.tenant_path(p_tenant uuid)
returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
    select case t.tier
        when 0 then ''
        when 1 then t.slug
        else (select p.slug from tenancy.tenants p where p.id = t.parent_id) || '/' || t.slug
    end
    from tenancy.tenants t
    where t.id = p_tenant
$fn$;

comment on function tenancy.tenant_path(uuid) is
'Path of a tenant: '''' for the platform root, ''partner'' or ''partner/customer''; null when unknown.';
