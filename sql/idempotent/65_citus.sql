-- Citus (docs/citus.md): contexts the workers verify, policies Citus can propagate, and the
-- shard side of check(). Nothing here needs Citus to be installed: every entry point first asks
-- tenancy._citus_on() and does nothing (or what it did before) without it.
--
-- On a Citus cluster the shards enforce row-level security in worker backends, where the
-- coordinator's context (its PL/Python state) does not exist. set_tenant(..., local => true) on
-- the coordinator therefore also SET LOCALs tenancy.sctx, a signed copy of the context (see
-- plpython/citus.py), which Citus sends to each worker connection of the transaction; the
-- generated policies read it through functions (Citus refuses subqueries in policies).

comment on table tenancy._cluster_key is
'The per-cluster key that signs the contexts Citus workers verify; readable by the extension owner only.';

-- Citus is installed in this database.
--@grant public
create or replace function tenancy._citus_on()
returns boolean
language sql
stable
parallel safe
as $fn$
    select pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is not null
$fn$;

-- Load this node's cluster key into the backend's PL/Python state (never returned to the caller:
-- PUBLIC may call it, the verifiers do so on first use). SECURITY DEFINER: the key table is the
-- owner's alone.
--@grant public
create or replace function tenancy._citus_load_key()
returns void
language plpython3u
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
#@tenancy
import time
rows = plpy.execute("select k.key, k.ttl_seconds from tenancy._cluster_key k")
if rows.nrows():
    T.gd[T.citus.KEY_KEY] = (bytes(rows[0]["key"]), int(rows[0]["ttl_seconds"]), time.monotonic())
else:
    T.gd[T.citus.KEY_KEY] = (None, 0, time.monotonic())
$fn$;

-- Store a key on this node (what citus_distribute_key() runs on every worker).
create or replace function tenancy._citus_store_key(p_key bytea, p_ttl integer)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
begin
    insert into tenancy._cluster_key as k (id, key, ttl_seconds)
    values (true, p_key, p_ttl)
    on conflict (id) do update set key = excluded.key, ttl_seconds = excluded.ttl_seconds, created_at = pg_catalog.now();
end
$fn$;

create or replace function tenancy.citus_distribute_key(rotate boolean default false, ttl_seconds integer default null)
returns integer
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_key bytea;
    v_ttl integer;
    v_row record;
    v_nodes integer := 0;
begin
    if not tenancy._citus_on() then
        raise exception 'citus_distribute_key needs Citus: the extension citus is not installed in database %',
            pg_catalog.current_database()
            using errcode = '22023';
    end if;
    if ttl_seconds is not null and ttl_seconds not between 1 and 86400 then
        raise exception 'ttl_seconds must be between 1 and 86400, not %', ttl_seconds using errcode = '22023';
    end if;
    select k.key, k.ttl_seconds into v_key, v_ttl from tenancy._cluster_key k;
    if v_key is null or coalesce(rotate, false) then
        -- 32 bytes (244 random bits) from the server's strong random source, no pgcrypto needed
        v_key := pg_catalog.decode(pg_catalog.replace(
            pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', ''
        ), 'hex');
    end if;
    v_ttl := coalesce(ttl_seconds, v_ttl, 300);
    perform tenancy._citus_store_key(v_key, v_ttl);
    for v_row in
        select w.nodename, w.nodeport, w.success, w.result
        from pg_catalog.run_command_on_workers(pg_catalog.format(
            'select tenancy._citus_store_key(%L::bytea, %s)', v_key::text, v_ttl
        )) w
    loop
        if not v_row.success then
            raise exception 'could not store the cluster key on node %:%: %', v_row.nodename, v_row.nodeport,
                v_row.result
                using errcode = '22023',
                hint = 'Install tenancy there (create extension tenancy on the coordinator propagates it), then retry.';
        end if;
        v_nodes := v_nodes + 1;
    end loop;
    return v_nodes;
end
$fn$;

comment on function tenancy.citus_distribute_key(boolean, integer) is
'Citus: make (or with rotate => true replace) the cluster key that signs transaction contexts, and store the same '
'key on every worker; ttl_seconds (default 300) bounds how long a signed context lives. Returns the number of '
'workers. Run on the coordinator, again after citus_add_node.';

-- Sign a validated context (owner only: it signs whatever it is given).
create or replace function tenancy._citus_sign(
    p_tenant uuid, p_tier smallint, p_visible uuid[], p_now float8, p_gpid bigint
)
returns text
language plpython3u
volatile
as $fn$
#@tenancy
import time
C = T.citus
cached = T.gd.get(C.KEY_KEY)
if cached is None or cached[0] is None or time.monotonic() - cached[2] > 10.0:
    plpy.execute("select tenancy._citus_load_key()")
    cached = T.gd[C.KEY_KEY]
key, ttl = cached[0], cached[1]
if key is None:
    return None
visible = None if p_tier == 0 else list(p_visible or [])
value = C.sign(key, p_tenant, p_tier, visible, int(p_now * 1000), ttl, p_gpid)
C.issued(T.gd, value, p_now, C.Signed(str(p_tenant), int(p_tier), None if visible is None else tuple(visible),
         int(p_now * 1000), int(p_now * 1000) + 1000 * ttl, int(p_gpid)))
return value
$fn$;

-- The Citus half of set_tenant and reset_tenant: a transaction context is signed and SET LOCAL
-- (Citus's utility hook sends it to every worker connection of the transaction); a session
-- context or a reset clears the signed one (session settings do not reach workers, so on
-- distributed tables a session context sees zero rows: fail closed). It signs the context in force,
-- not its argument, so calling it directly gives nothing set_tenant does not.
--@grant app
create or replace function tenancy._citus_sign_local(p_tenant uuid, p_local boolean)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_tenant uuid;
    v_tier smallint;
    v_value text;
begin
    if p_tenant is not null and coalesce(p_local, false) then
        v_tenant := tenancy.current_tenant();
        v_tier := tenancy.current_tier();
    end if;
    if v_tenant is null or v_tenant is distinct from p_tenant then
        perform tenancy._citus_forget();
        if coalesce(pg_catalog.current_setting('tenancy.sctx', true), '') <> '' then
            execute 'set local tenancy.sctx = ''''';
        end if;
        return p_tenant;
    end if;
    v_value := tenancy._citus_sign(
        v_tenant, v_tier, case when v_tier = 0 then null else tenancy.visible_tenants() end,
        pg_catalog.date_part('epoch', pg_catalog.now()), pg_catalog.citus_backend_gpid()
    );
    if v_value is null then
        raise exception 'no tenant context can reach the Citus workers: this node has no cluster key'
            using errcode = 'TN007',
            hint = 'Run select tenancy.citus_distribute_key(); on the coordinator (docs/citus.md).';
    end if;
    -- only SET LOCAL propagates, and only with this setting (it stays on for the transaction)
    execute 'set local citus.propagate_set_commands = ''local''';
    execute pg_catalog.format('set local tenancy.sctx = %L', v_value);
    return p_tenant;
end
$fn$;

--@grant app
create or replace function tenancy._citus_forget()
returns void
language plpython3u
volatile
as $fn$
#@tenancy
T.citus.forget(T.gd)
$fn$;

-- Called by set_tenant (and reset_tenant) with the tenant just set (null: reset) and its local
-- flag. Plain SQL, inlined: without Citus it costs one catalog lookup.
--@grant app
create or replace function tenancy._citus_propagate(p_tenant uuid, p_local boolean)
returns uuid
language sql
volatile
as $fn$
    select case when pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is null then p_tenant
        else tenancy._citus_sign_local(p_tenant, p_local) end
$fn$;

-- Verifiers of the signed context, called by the policies of distributed tables (no subquery, so
-- once per row where they are a filter; a hit of the per-transaction cache is a tuple compare).
-- The setting, the transaction start and application_name (where Citus names the coordinator
-- session's global pid) are passed in, so that no SPI is needed (PL/Python runs each SPI call in a
-- subtransaction, and Citus mirrors subtransactions to open worker connections).
--@grant public
create or replace function tenancy._citus_tenant_of(p_value text, p_now float8, p_app text)
returns uuid
language plpython3u
stable
as $fn$
#@tenancy
s = T.citus.in_force(plpy, T.gd, p_value, p_now, p_app)
return None if s is None else s.tenant
$fn$;

--@grant public
create or replace function tenancy._citus_tier_of(p_value text, p_now float8, p_app text)
returns smallint
language plpython3u
stable
as $fn$
#@tenancy
s = T.citus.in_force(plpy, T.gd, p_value, p_now, p_app)
return None if s is None else s.tier
$fn$;

--@grant public
create or replace function tenancy._citus_visible_of(p_value text, p_now float8, p_app text)
returns uuid[]
language plpython3u
stable
as $fn$
#@tenancy
s = T.citus.in_force(plpy, T.gd, p_value, p_now, p_app)
return None if s is None else s.visible
$fn$;

-- The context the policies of a Citus cluster see: the signed one when tenancy.sctx holds a value
-- (on a worker that is the only kind; a value that does not verify is no context), else this
-- backend's own (a table local to the coordinator, a session context). Plain SQL, inlined into the
-- policies.
--@grant public
create or replace function tenancy._citus_visible()
returns uuid[]
language sql
stable
as $fn$
    select case when coalesce(pg_catalog.current_setting('tenancy.sctx', true), '') = ''
        then tenancy._policy_visible()
        else tenancy._citus_visible_of(
            pg_catalog.current_setting('tenancy.sctx', true), pg_catalog.date_part('epoch', pg_catalog.now()),
            pg_catalog.current_setting('application_name')
        ) end
$fn$;

--@grant public
create or replace function tenancy._citus_is_root()
returns boolean
language sql
stable
as $fn$
    select case when coalesce(pg_catalog.current_setting('tenancy.sctx', true), '') = ''
        then tenancy._policy_is_root()
        else coalesce(tenancy._citus_tier_of(
            pg_catalog.current_setting('tenancy.sctx', true), pg_catalog.date_part('epoch', pg_catalog.now()),
            pg_catalog.current_setting('application_name')
        ) = 0, false) end
$fn$;

--@grant public
create or replace function tenancy._citus_tenant()
returns uuid
language sql
stable
as $fn$
    select case when coalesce(pg_catalog.current_setting('tenancy.sctx', true), '') = ''
        then tenancy.current_tenant()
        else tenancy._citus_tenant_of(
            pg_catalog.current_setting('tenancy.sctx', true), pg_catalog.date_part('epoch', pg_catalog.now()),
            pg_catalog.current_setting('application_name')
        ) end
$fn$;

--@grant public
create or replace function tenancy._citus_has_context()
returns boolean
language sql
stable
as $fn$
    select tenancy._citus_tenant() is not null
$fn$;

-- The tenant a write must carry; TN003 without a context (it names the table: by name, as a
-- regclass literal in a policy would be resolved on a worker before Citus creates the table there).
--@grant public
create or replace function tenancy._citus_write_tenant(p_table text)
returns uuid
language plpgsql
stable
as $fn$
declare
    v_tenant uuid := tenancy._citus_tenant();
begin
    if v_tenant is null then
        raise exception 'no tenant context: writing to % needs one', p_table
            using errcode = 'TN003',
            hint = 'On Citus call tenancy.set_tenant(id, local => true) inside the transaction: session contexts do '
                'not reach the workers.';
    end if;
    return v_tenant;
end
$fn$;

--@grant public
create or replace function tenancy._citus_write_visible(p_table text)
returns uuid[]
language sql
stable
as $fn$
    select case when tenancy._citus_write_tenant(p_table) is not null then tenancy._citus_visible() end
$fn$;

-- check() on a Citus coordinator: every placement of every registered distributed table has RLS
-- enabled and forced and exactly the coordinator's policies (names, commands, roles, expressions),
-- and every node has the coordinator's cluster key. SECURITY DEFINER: run_command_on_placements
-- connects as the caller, and an application role may run check(). Harmless: it names tables,
-- shards and nodes, never a row.
--@grant app
create or replace function tenancy._check_citus()
returns table (code text, severity text, object text, problem text, hint text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_rel regclass;
    v_want text;
    v_key text;
    v_row record;
    -- one line per policy, with regclass literals blanked (they print by search_path)
    c_policies constant text := $q$select coalesce(string_agg(pg_catalog.concat_ws('|', p.polname, p.polcmd,
        p.polpermissive, (select string_agg(case when r = 0 then 'public' else r::regrole::text end, ',' order by r)
        from unnest(p.polroles) r),
        regexp_replace(coalesce(pg_get_expr(p.polqual, p.polrelid), ''), '''[^'']*''::regclass', '''?''::regclass',
            'g'),
        regexp_replace(coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''), '''[^'']*''::regclass',
            '''?''::regclass', 'g')), E'\n' order by p.polname), '')
        from pg_catalog.pg_policy p where p.polrelid = '%s'::regclass$q$;
begin
    if not tenancy._citus_on() then
        return;
    end if;

    select pg_catalog.encode(pg_catalog.sha256(k.key), 'hex') into v_key from tenancy._cluster_key k;
    if v_key is null then
        return query select 'citus_no_cluster_key', 'error', 'tenancy._cluster_key',
            'this coordinator has no cluster key: set_tenant(..., local => true) is refused (TN007)',
            'Run select tenancy.citus_distribute_key();';
    end if;
    for v_row in
        select * from pg_catalog.run_command_on_workers(
            $q$select coalesce((select pg_catalog.encode(pg_catalog.sha256(k.key), 'hex') from tenancy._cluster_key k),
                'none')$q$
        )
    loop
        if not v_row.success then
            return query select 'citus_node_unreachable', 'error',
                pg_catalog.format('node %s:%s', v_row.nodename, v_row.nodeport),
                pg_catalog.format('tenancy cannot be inspected there: %s', v_row.result),
                'Install tenancy on every node: create extension tenancy on the coordinator propagates it.';
        elsif v_key is not null and v_row.result is distinct from v_key then
            return query select 'citus_node_key', 'error', pg_catalog.format('node %s:%s', v_row.nodename, v_row.nodeport),
                case when v_row.result = 'none' then 'the node has no cluster key'
                    else 'the node''s cluster key differs from the coordinator''s' end
                || ': it refuses every signed context, so its shards show no rows and refuse writes',
                'Run select tenancy.citus_distribute_key(); on the coordinator.';
        end if;
    end loop;

    for v_rel in
        select s.relid from tenancy.scoped_tables s
        join pg_catalog.pg_dist_partition d on d.logicalrelid = s.relid
        order by s.relid::text
    loop
        execute pg_catalog.format(c_policies, v_rel) into v_want;
        for v_row in
            -- 't' or 'f' (RLS enabled and forced), '|', the roles other than the owner granted TRUNCATE
            select * from pg_catalog.run_command_on_placements(v_rel,
                $q$select case when c.relrowsecurity and c.relforcerowsecurity then 't' else 'f' end || '|'
                    || coalesce((select string_agg(distinct case when a.grantee = 0 then 'PUBLIC'
                        else a.grantee::regrole::text end, ', ') from aclexplode(c.relacl) a
                        where a.privilege_type = 'TRUNCATE' and a.grantee <> c.relowner), '')
                    from pg_catalog.pg_class c where c.oid = '%s'::regclass$q$)
        loop
            if not v_row.success or pg_catalog.split_part(v_row.result, '|', 1) is distinct from 't' then
                return query select
                    case when v_row.success then 'citus_shard_rls' else 'citus_shard_unreachable' end, 'error',
                    pg_catalog.format('%s (shard %s on %s:%s)', v_rel, v_row.shardid, v_row.nodename, v_row.nodeport),
                    case when v_row.success then 'row-level security is not enabled and forced on this shard: its rows '
                        'are returned unfiltered' else 'the shard cannot be inspected: ' || v_row.result end,
                    pg_catalog.format('On that node: alter table <shard> enable row level security, force row level '
                        'security; or select tenancy.register_table(%L); on the coordinator.', v_rel::text);
            end if;
            if v_row.success and pg_catalog.split_part(v_row.result, '|', 2) <> '' then
                return query select 'citus_shard_truncate', 'error',
                    pg_catalog.format('%s (shard %s on %s:%s)', v_rel, v_row.shardid, v_row.nodename, v_row.nodeport),
                    pg_catalog.format('TRUNCATE on this shard is granted to %s, which does not own it: a connection '
                        'to the worker can empty the shard past row-level security',
                        pg_catalog.split_part(v_row.result, '|', 2)),
                    pg_catalog.format('On that node: revoke truncate on <shard> from %s; (a grant made on the '
                        'coordinator is refused, or reported as citus_truncate_granted).',
                        pg_catalog.split_part(v_row.result, '|', 2));
            end if;
        end loop;
        for v_row in select * from pg_catalog.run_command_on_placements(v_rel, c_policies) loop
            if v_row.success and v_row.result is distinct from v_want then
                return query select 'citus_shard_policies', 'error',
                    pg_catalog.format('%s (shard %s on %s:%s)', v_rel, v_row.shardid, v_row.nodename, v_row.nodeport),
                    'the shard''s policies differ from the coordinator''s (edited, dropped or added on the shard)',
                    pg_catalog.format('select tenancy.register_table(%L); on the coordinator regenerates them; drop '
                        'policies added on the shard by hand.', v_rel::text);
            end if;
        end loop;
    end loop;

    return query
    select 'citus_not_by_tenant', 'warning', s.relid::text,
        pg_catalog.format('distributed by %I, not by its tenant column %I: a tenant''s rows span shards and its '
            'queries cannot be routed to one', pg_catalog.column_to_column_name(s.relid, d.partkey), s.tenant_column),
        'Distribute it by the tenant column: select create_distributed_table(table, tenant column).'
    from tenancy.scoped_tables s
    join pg_catalog.pg_dist_partition d on d.logicalrelid = s.relid and d.partmethod = 'h'
    where pg_catalog.column_to_column_name(s.relid, d.partkey) <> s.tenant_column::text;
end
$fn$;

-- Set (p_expr) or drop (null) the default of a registered table's tenant column. Citus refuses
-- ALTER TABLE on the distribution column ("cannot execute ALTER TABLE command involving partition
-- column"), so for a table distributed by it the change is made on the coordinator only (where
-- Citus evaluates column defaults of an INSERT) with DDL propagation off for that one statement,
-- and not at all when the default is already the one wanted (refresh_policies() re-applies it).
create or replace function tenancy._citus_alter_default(p_rel regclass, p_column name, p_expr text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_has text;
    v_ddl text;
    v_prop text;
begin
    select pg_catalog.pg_get_expr(d.adbin, d.adrelid) into v_has
    from pg_catalog.pg_attrdef d
    join pg_catalog.pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
    where d.adrelid = p_rel and a.attname = p_column;
    if v_has is not distinct from p_expr then
        return;
    end if;
    v_ddl := case when p_expr is null then pg_catalog.format('alter table %s alter column %I drop default', p_rel, p_column)
        else pg_catalog.format('alter table %s alter column %I set default %s', p_rel, p_column, p_expr) end;
    if tenancy._citus_on() then
        -- (a separate statement: PL/pgSQL parses it only where Citus's catalog exists)
        select pg_catalog.current_setting('citus.enable_ddl_propagation') into v_prop
        from pg_catalog.pg_dist_partition d
        where d.logicalrelid = p_rel and d.partmethod <> 'n'
          and pg_catalog.column_to_column_name(d.logicalrelid, d.partkey) = p_column::text;
    end if;
    if v_prop is not null then
        perform pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
        execute v_ddl;
        perform pg_catalog.set_config('citus.enable_ddl_propagation', v_prop, true);
    else
        execute v_ddl;
    end if;
end
$fn$;
