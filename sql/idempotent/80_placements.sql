-- Placements: where a tenant's rows live (the shared placement, a schema of its own, or a
-- database of its own), the routing inside set_tenant, and the health findings the fleet command
-- (python/tenancy/fleet) asks every database for. Row-level security stays the boundary in every
-- placement: each one's tables are registered like the shared ones.

comment on table tenancy.placements is
'Where tenants live: kind shared | schema | database, status, schema_version, generation. A tenant without a row '
'is shared; a customer without a row lives where its partner lives. database is a database of the control server '
'or service=NAME (a libpq service, on any server); no credentials are stored.';

comment on table tenancy.placement_migrations is
'Migration history of every placement housed in this database (schema, version, name, checksum), written in the '
'same transaction as the migration by the fleet command.';

comment on table tenancy.fleet_events is
'What the fleet command did: migration failures, provisioning and move steps, erase receipts.';

create or replace function tenancy._placements_bump()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $fn$
begin
    perform pg_catalog.nextval('tenancy._placements_version'::regclass);
    return null;
end
$fn$;

create or replace trigger placements_version
after insert or update or delete or truncate on tenancy.placements
for each statement execute function tenancy._placements_bump();

-- also where rows arrive by logical replication (an apply worker runs with session_replication_role
-- = replica, which skips ordinary triggers, and sequences are not replicated): a subscriber routes as
-- its publisher does. A physical standby replays the sequence itself.
alter table tenancy.placements enable always trigger placements_version;

create or replace function tenancy._placements_touch()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $fn$
begin
    new.updated_at := pg_catalog.now();
    return new;
end
$fn$;

create or replace trigger placements_touch
before update on tenancy.placements
for each row execute function tenancy._placements_touch();

-- The placement a tenant lives in, past row-level security (its own row, else its partner's for a
-- customer, else shared), whether this database is a database placement, and whether a child of a
-- partner is being moved (a partner's context may write its customers' rows). Called by _route. It
-- tells an application role no more than placement_of and set_tenant do (placement, tier), no ids.
--@grant app
create or replace function tenancy._placement_route(
    p_tenant uuid,
    out tier smallint, out kind text, out schema_name text, out database text, out status text,
    out generation integer, out here_is_database boolean, out frozen_child boolean
)
returns record
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
#variable_conflict use_column
declare
    v_parent uuid;
begin
    select t.tier, t.parent_id into tier, v_parent from tenancy.tenants t where t.id = p_tenant;
    here_is_database := exists (
        select from tenancy.placements p
        where p.kind = 'database' and p.database = pg_catalog.current_database()
    );
    if tier is null or tier = 0 then
        return;
    end if;
    select p.kind, p.schema_name, p.database, p.status, p.generation
    into kind, schema_name, database, status, generation
    from tenancy.placements p
    where p.tenant_id = p_tenant or (tier = 2 and p.tenant_id = v_parent)
    order by p.tenant_id = p_tenant desc
    limit 1;
    if not found then
        kind := 'shared';
        status := 'active';
        generation := 0;
    end if;
    if tier = 1 then
        frozen_child := exists (
            select from tenancy.placements p
            inner join tenancy.tenants t on t.id = p.tenant_id
            where t.parent_id = p_tenant and p.status in ('read_only', 'moving')
        );
    end if;
end
$fn$;

-- Routing (called by set_tenant, before the context is issued). TN009 where the tenant does not
-- live in this database (a database placement's own copy of the registry names it with
-- current_database(); the control database's copy with the name of a database of its server, or
-- 'service=NAME' for the database a libpq service names on any server), or its placement is not
-- usable (a retired row: a database the tenant was moved out of); a local context of a schema placement puts
-- its schema first on the transaction's search_path (the previous one routed there is taken off
-- again); a placement being moved (read_only / moving) makes a local context's transaction
-- read-only, so reads go on and every write is refused, and refuses a session context (a session
-- outlives the freeze). Not SECURITY DEFINER: the settings it makes must outlive the call.
--@grant app
create or replace function tenancy._route_placed(p_tenant uuid, p_local boolean)
returns boolean
language plpgsql
volatile
as $fn$
declare
    v_p record;
    v_here text := pg_catalog.current_database();
    v_prev text := nullif(pg_catalog.current_setting('tenancy.routed_schema', true), '');
    v_path text := pg_catalog.current_setting('search_path');
    v_name text;
begin
    v_p := tenancy._placement_route(p_tenant);
    if v_p.tier is null or v_p.tier = 0 then
        -- unknown tenants are set_tenant's to refuse; the platform context is everywhere
        return true;
    end if;
    v_name := case v_p.kind
        when 'database' then case
            when pg_catalog.starts_with(v_p.database, 'service=')
                then pg_catalog.format('the database of libpq service %s', pg_catalog.substr(v_p.database, 9))
            else pg_catalog.format('database %I', v_p.database) end
        when 'schema' then pg_catalog.format('schema %I of the control database', v_p.schema_name)
        else 'the shared placement of the control database'
    end || pg_catalog.format(', generation %s', v_p.generation);
    if (v_p.kind = 'database' and v_p.database is distinct from v_here)
        or (v_p.kind <> 'database' and v_p.here_is_database) then
        raise exception 'tenant % is placed elsewhere: its data is in %, not in database %',
            p_tenant, v_name, v_here
            using errcode = 'TN009',
            hint = 'Ask tenancy.placement_of(tenant) in the control database and connect there.';
    end if;
    if v_p.status = 'retired' then
        -- a database that housed the tenant keeps its row, naming where the tenant went
        raise exception 'tenant % is placed elsewhere: its placement here is retired, its data is in %', p_tenant, v_name
            using errcode = 'TN009',
            hint = 'Ask tenancy.placement_of(tenant) in the control database and connect there.';
    end if;
    if v_p.status in ('provisioning', 'failed') then
        raise exception 'tenant % cannot be used here: its placement (%) is %', p_tenant, v_name, v_p.status
            using errcode = 'TN009',
            hint = 'The fleet command finishes it: tenancy provision / tenancy move (see tenancy health).';
    end if;
    if v_p.status in ('read_only', 'moving') or v_p.frozen_child then
        if not p_local then
            raise exception 'tenant % is being moved (%, placement %): a session context cannot be frozen',
                p_tenant, coalesce(v_p.status, 'a customer''s placement is ' || 'moving'), v_name
                using errcode = 'TN009',
                hint = 'Take a transaction context (set_tenant(id, local => true)): it reads, and refuses writes, '
                    'until the move ends.';
        end if;
        perform pg_catalog.set_config('transaction_read_only', 'on', true);
    end if;
    if v_prev is not null and pg_catalog.left(v_path, pg_catalog.length(v_prev) + 2) = v_prev || ', ' then
        v_path := pg_catalog.substr(v_path, pg_catalog.length(v_prev) + 3);
    end if;
    if p_local and v_p.kind = 'schema' then
        perform pg_catalog.set_config('search_path', pg_catalog.quote_ident(v_p.schema_name) || ', ' || v_path, true);
        perform pg_catalog.set_config('tenancy.routed_schema', pg_catalog.quote_ident(v_p.schema_name), true);
    elsif v_prev is not null then
        perform pg_catalog.set_config('search_path', v_path, true);
        perform pg_catalog.set_config('tenancy.routed_schema', '', true);
    end if;
    return true;
end
$fn$;

-- The one call set_tenant makes. Plain SQL (inlined): while this database never had a placement,
-- one sequence read.
--@grant app
create or replace function tenancy._route(p_tenant uuid, p_local boolean)
returns boolean
language sql
volatile
as $fn$
    select pg_catalog.pg_sequence_last_value('tenancy._placements_version'::regclass) is null
        or tenancy._route_placed(p_tenant, p_local)
$fn$;

--@grant app
create or replace function tenancy.placement_of(tenant uuid)
returns table (kind text, schema_name text, database text, generation integer)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
#variable_conflict use_column
declare
    v_tier smallint;
    v_parent uuid;
begin
    select t.tier, t.parent_id into v_tier, v_parent from tenancy.tenants t where t.id = placement_of.tenant;
    if v_tier is null then
        raise exception 'unknown tenant %: no tenant has this id', placement_of.tenant
            using errcode = 'TN001';
    end if;
    return query
    select p.kind, p.schema_name, p.database, p.generation
    from tenancy.placements p
    where p.tenant_id = placement_of.tenant or (v_tier = 2 and p.tenant_id = v_parent)
    order by p.tenant_id = placement_of.tenant desc
    limit 1;
    if not found then
        return query select 'shared'::text, null::text, null::text, 0;
    end if;
end
$fn$;

comment on function tenancy.placement_of(uuid) is
'Where a tenant''s rows live, for routers: kind (shared | schema | database), schema_name (schema placements), '
'database (database placements: a database of the control server, or service=NAME, the database the libpq service '
'NAME names on any server; null means the control database) and generation (bumped by every move). A '
'customer without a placement of its own lives where its partner lives; a tenant without a row is shared. '
'Unknown tenant: TN001. Tells no more than set_tenant does (which tenant ids exist), and no rows of any tenant.';

-- The placements housed in this database: in the control database the shared one and every schema
-- placement, in a database placement's own database the tenants placed there (in the shared schema).
create or replace function tenancy._housed(p_shared_schema text)
returns table (tenant_id uuid, kind text, status text, schema_name text, nsp oid)
language sql
stable
set search_path = pg_catalog, pg_temp
as $fn$
    with me as (
        select exists (
            select from tenancy.placements p
            where p.kind = 'database' and p.database = pg_catalog.current_database()
        ) as is_db
    )
    select h.*, n.oid
    from (
        select p.tenant_id, p.kind, p.status, p.schema_name
        from tenancy.placements p, me
        where not me.is_db and p.kind = 'schema'
        union all
        select p.tenant_id, p.kind, p.status, p_shared_schema
        from tenancy.placements p, me
        where me.is_db and p.kind = 'database' and p.database = pg_catalog.current_database()
        union all
        select null::uuid, 'shared', 'active', p_shared_schema
        from me
        where not me.is_db
    ) h
    left join pg_catalog.pg_namespace n on n.nspname = h.schema_name
$fn$;

create or replace function tenancy.placement_health(
    migrations jsonb default null,
    tables text[] default null,
    shared_schema text default 'public',
    prefix text default null
)
returns table (severity text, tenant_id uuid, placement text, object text, problem text)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $fn$
#variable_conflict use_column
declare
    v_is_db boolean := exists (
        select from tenancy.placements p
        where p.kind = 'database' and p.database = pg_catalog.current_database()
    );
    v_tables text[] := coalesce(placement_health.tables, array(
        select c.relname::text from tenancy.scoped_tables s
        inner join pg_catalog.pg_class c on c.oid = s.relid
        where c.relnamespace = pg_catalog.to_regnamespace(placement_health.shared_schema)
    ));
begin
    return query
    select 'error', h.tenant_id, h.schema_name, h.schema_name, 'placement schema is missing'
    from tenancy._housed(placement_health.shared_schema) h where h.nsp is null;

    return query
    select case when h.status = 'failed' then 'error' else 'warning' end, h.tenant_id, h.schema_name,
        h.schema_name, pg_catalog.format('placement is %s', h.status)
    from tenancy._housed(placement_health.shared_schema) h where h.status <> 'active';

    return query
    select 'error', h.tenant_id, h.schema_name, pg_catalog.format('%I.%I', h.schema_name, t.name),
        case when c.oid is null then 'table is missing'
            else 'table is not registered: row-level security is not the boundary there' end
    from tenancy._housed(placement_health.shared_schema) h
    cross join pg_catalog.unnest(v_tables) t (name)
    left join pg_catalog.pg_class c on c.relnamespace = h.nsp and c.relname = t.name and c.relkind in ('r', 'p')
    where h.nsp is not null
      and (c.oid is null or not exists (select from tenancy.scoped_tables s where s.relid = c.oid));

    if placement_health.migrations is not null then
        return query
        with f as (
            select e ->> 'version' as version, e ->> 'name' as name, e ->> 'checksum' as checksum
            from pg_catalog.jsonb_array_elements(placement_health.migrations) e
        ), pairs as (
            select h.tenant_id, h.schema_name, f.version as f_version, f.name as f_name, f.checksum as f_sum,
                m.version as m_version, m.name as m_name, m.checksum as m_sum
            from tenancy._housed(placement_health.shared_schema) h
            cross join f
            left join tenancy.placement_migrations m on m.schema_name = h.schema_name and m.version = f.version
            where h.nsp is not null
            union all
            select h.tenant_id, h.schema_name, null, null, null, m.version, m.name, m.checksum
            from tenancy._housed(placement_health.shared_schema) h
            inner join tenancy.placement_migrations m on m.schema_name = h.schema_name
            where h.nsp is not null and m.version not in (select f.version from f)
        )
        select 'error', p.tenant_id, p.schema_name, coalesce(p.f_version || '_' || p.f_name, p.m_version || '_' || p.m_name),
            case
                when p.m_version is null then 'migration is missing (not applied)'
                when p.f_version is null then 'migration is extra (applied, no such file)'
                else pg_catalog.format('migration changed since it was applied (checksum %s, file %s)',
                    pg_catalog.left(p.m_sum, 12), pg_catalog.left(p.f_sum, 12))
            end
        from pairs p
        where p.m_version is null or p.f_version is null or p.m_sum <> p.f_sum;
    end if;

    if not v_is_db then
        return query
        select distinct 'warning', null::uuid, n.nspname::text, n.nspname::text,
            'orphaned schema: no placement names it'
        from pg_catalog.pg_namespace n
        where (
            n.nspname operator(pg_catalog.~) '^tenant_[0-9a-f]{32}$'
            or exists (select from tenancy.placement_migrations m where m.schema_name = n.nspname)
        )
          and not exists (select from tenancy._housed(placement_health.shared_schema) h where h.schema_name = n.nspname);
        if placement_health.prefix is not null then
            return query
            select 'warning', null::uuid, d.datname::text, d.datname::text,
                'orphaned database: no placement names it'
            from pg_catalog.pg_database d
            where pg_catalog.starts_with(d.datname, placement_health.prefix)
              and d.datname <> placement_health.prefix || 'template'
              and not exists (
                  select from tenancy.placements p where p.kind = 'database' and p.database = d.datname
              );
        end if;
    end if;
end
$fn$;

comment on function tenancy.placement_health(jsonb, text[], text, text) is
'Health findings of the placements housed in this database (what tenancy health reports): placement schemas '
'missing, placements not active, tables missing or not registered against tables (default: the registered tables '
'of shared_schema), migrations missing / extra / changed against migrations ([{version, name, checksum}]), and '
'in the control database schemas (named tenant_<uuid hex> as the fleet command names them, or with a migration '
'history) and databases (named with prefix) that no placement names.';

-- Application roles read the registry rows of their visible tenants only (none without a context).
select tenancy._protect_own_table('tenancy.placements', 'tenant_id', array['select']);

grant select on sequence tenancy._placements_version to public;

do $grants$
begin
    if not pg_catalog.has_table_privilege('tenancy_app', 'tenancy.placements', 'select') then
        grant select on tenancy.placements to tenancy_app;
    end if;
end
$grants$;
