-- The catalog of tenant-scoped tables and the row-level-security policies generated from it.

comment on table tenancy.scoped_tables is
'Tenant-scoped tables: register_table() generates their row-level-security policies from this catalog.';

-- Generated DDL is executed with this transaction-local flag set, so the guards let it through.
create or replace function tenancy._ddl_nonce(p_on boolean)
returns text
language plpython3u
volatile
as $fn$
import secrets
if p_on:
    nonce = GD["tenancy:ddl_nonce"] = secrets.token_hex(16)
    return nonce
GD.pop("tenancy:ddl_nonce", None)
return ""
$fn$;

create or replace function tenancy._ddl_nonce_is(p_value text)
returns boolean
language plpython3u
stable
as $fn$
nonce = GD.get("tenancy:ddl_nonce")
return nonce is not None and p_value == nonce
$fn$;

-- tenancy's own DDL on registered tables: the guards let it through while tenancy.internal_ddl
-- holds a nonce that only this backend's PL/Python state knows (a hand-written SET cannot forge it).
create or replace function tenancy._internal_ddl(p_on boolean)
returns void
language sql
volatile
as $fn$
    select pg_catalog.set_config('tenancy.internal_ddl', tenancy._ddl_nonce(p_on), true);
$fn$;

-- The policies of one table (name, command, role, using, with check) for a catalog entry: the one
-- generator (check() and the guards compare against it). Two sets of expressions, the same
-- semantics: plain PostgreSQL reads the context through scalar subqueries, which PostgreSQL
-- evaluates once per statement (an InitPlan); where Citus is installed, through functions
-- (create_distributed_table refuses subqueries in policies; docs/citus.md).
-- The read policy of plain PostgreSQL has the plan shape folded in (tenancy._plan_shape(), from
-- the search_path; docs/decisions/0002-context-core-v3.md): a customer plan compares the tenant
-- column with an equality, an index condition usable in order; every other plan with = any(the
-- visible set), valid for every context. A verifier answers null for a forged value: the policy then
-- asks _ctx_forged_audit, which writes the audit line.
-- The tier-0 case is a separate policy for tenancy_platform only, so no OR branch reaches
-- application roles.
--@grant app
create or replace function tenancy._policy_defs(
    p_rel regclass, p_column name, p_write_scope text, p_shared boolean
)
returns table (policy_name text, command text, to_role text, using_expr text, check_expr text)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_col text := pg_catalog.quote_ident(p_column);
    v_vis text;
    v_mod text;
    v_root text;
    v_has text;
    v_own text;
    v_any text;
    v_write text;
    v_platform_write text;
    -- the setting and the transaction's start, as the verifiers take them
    v_args text := 'pg_catalog.current_setting(''tenancy.ctx'', true), pg_catalog.date_part(''epoch'', pg_catalog.now())';
    v_forged text;
begin
    if tenancy._citus_on() then
        -- the table named by name: a regclass literal would be resolved on a worker before Citus
        -- creates the table there
        v_vis := pg_catalog.format('%s = any(tenancy._citus_visible())', v_col);
        v_root := 'tenancy._citus_is_root()';
        v_has := 'tenancy._citus_has_context()';
        v_own := pg_catalog.format('%s = tenancy._citus_write_tenant(%L)', v_col, p_rel::text);
        v_any := pg_catalog.format('%s = any(tenancy._citus_write_visible(%L))', v_col, p_rel::text);
    else
        v_forged := pg_catalog.format('tenancy._ctx_forged_audit(%s)', v_args);
        v_vis := pg_catalog.format(
            'case tenancy._plan_shape() when 2 then %1$s = (select coalesce(tenancy._ctx_customer(%2$s), '
            'tenancy._ctx_customer_else(%2$s))) '
            'else %1$s = any((select coalesce(tenancy._ctx_visible(%2$s), case when %3$s then null end))::uuid[]) end',
            v_col, v_args, v_forged
        );
        v_root := pg_catalog.format('(select coalesce(tenancy._ctx_root(%s), %s))', v_args, v_forged);
        v_has := '(select tenancy._policy_has_context())';
        v_own := pg_catalog.format('%s = (select tenancy._policy_write_tenant(%L::regclass))', v_col, p_rel::text);
        v_any := pg_catalog.format(
            '%s = any((select tenancy._policy_write_visible(%L::regclass))::uuid[])', v_col, p_rel::text
        );
    end if;
    -- update and delete: the visible rows, never the shared ones (written in a tier-0 context only,
    -- through the tenancy_platform policies); without a context TN003 rather than zero rows
    v_mod := v_any;
    if p_shared then
        v_vis := pg_catalog.format('(%s or (%s is null and %s))', v_vis, v_col, v_has);
    end if;
    if p_write_scope = 'own' then
        v_write := v_own;
        v_platform_write := v_write;
    else
        v_write := v_any;
        v_platform_write := pg_catalog.format('(%s and %s is not null)', v_root, v_col);
    end if;
    if p_shared then
        -- rows without a tenant are shared by everyone and written only in a tier-0 context
        v_platform_write := pg_catalog.format('(%s or (%s is null and %s))', v_platform_write, v_col, v_root);
    end if;

    return query values
    ('tenancy_select', 'select', 'public', v_vis, null::text),
    ('tenancy_insert', 'insert', 'public', null, v_write),
    ('tenancy_update', 'update', 'public', v_mod, v_write),
    ('tenancy_delete', 'delete', 'public', v_mod, null),
    ('tenancy_platform_select', 'select', 'tenancy_platform', v_root, null),
    ('tenancy_platform_update', 'update', 'tenancy_platform', v_root, v_platform_write),
    ('tenancy_platform_delete', 'delete', 'tenancy_platform', v_root, null);
    if p_write_scope = 'visible' or p_shared then
        return query values ('tenancy_platform_insert', 'insert', 'tenancy_platform', null::text, v_platform_write);
    end if;
end
$fn$;

-- Names of every policy tenancy may generate (a registered table gets those of its catalog entry).
create or replace function tenancy._policy_names()
returns text[]
language sql
stable
set search_path = pg_catalog, pg_temp
as $fn$
    select pg_catalog.array_agg(d.policy_name)
    from tenancy._policy_defs('tenancy.scoped_tables'::regclass, 'relid', 'visible', true) d
$fn$;

-- A relation and, when it is partitioned, every partition below it (pg_partition_tree gives no
-- row for a table that is neither partitioned nor a partition).
--@grant app
create or replace function tenancy._tree(p_rel regclass)
returns setof regclass
language sql
stable
set search_path = pg_catalog, pg_temp
as $fn$
    select p_rel
    union all
    select t.relid::regclass
    from pg_catalog.pg_partition_tree(p_rel) t
    where t.relid <> p_rel
      -- only a partitioned table has partitions: the walk costs every DDL statement's guard
      and exists (select from pg_catalog.pg_class c where c.oid = p_rel and c.relkind = 'p')
$fn$;

-- Drop the generated policies of one relation (the one loop that does).
create or replace function tenancy._drop_policies(p_rel regclass)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_pol name;
begin
    for v_pol in
        select p.polname from pg_catalog.pg_policy p
        where p.polrelid = p_rel and p.polname = any(tenancy._policy_names())
    loop
        execute pg_catalog.format('drop policy %I on %s', v_pol, p_rel);
    end loop;
end
$fn$;

-- Create the generated policies of _policy_defs(p_parent, ...) on p_rel (the table itself or one of
-- its partitions), only those for p_commands when given. The one place policies are written.
create or replace function tenancy._create_policies(
    p_rel regclass, p_parent regclass, p_column name, p_write_scope text, p_shared boolean, p_commands text[]
)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_def record;
    v_sql text;
begin
    for v_def in
        select * from tenancy._policy_defs(p_parent, p_column, p_write_scope, p_shared) d
        where p_commands is null or d.command = any(p_commands)
    loop
        v_sql := pg_catalog.format('create policy %I on %s as permissive for %s to %s',
            v_def.policy_name, p_rel, v_def.command, v_def.to_role);
        if v_def.using_expr is not null then
            v_sql := v_sql || ' using (' || v_def.using_expr || ')';
        end if;
        if v_def.check_expr is not null then
            v_sql := v_sql || ' with check (' || v_def.check_expr || ')';
        end if;
        execute v_sql;
    end loop;
end
$fn$;

-- The extension's own tables (tenants, domain_mappings, the token tables) get the same generated
-- policies as a registered table, for the commands application roles may use on them; they are not
-- in the catalog (no column default, no guards: only the extension changes them).
create or replace function tenancy._protect_own_table(p_rel regclass, p_column name, p_commands text[])
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
begin
    execute pg_catalog.format('alter table %s enable row level security', p_rel);
    execute pg_catalog.format('alter table %s force row level security', p_rel);
    perform tenancy._create_policies(p_rel, p_rel, p_column, 'visible', false, p_commands);
end
$fn$;

-- Apply the catalog entry of p_parent to p_rel (the table itself, or one of its partitions):
-- RLS enabled and forced, generated policies replaced, the tenant column defaulting to the current
-- tenant, an index led by the tenant column.
create or replace function tenancy._apply(p_rel regclass, p_parent regclass)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_entry tenancy.scoped_tables;
begin
    select * into strict v_entry from tenancy.scoped_tables s where s.relid = p_parent;
    perform tenancy._internal_ddl(true);
    execute pg_catalog.format('alter table %s enable row level security', p_rel);
    execute pg_catalog.format('alter table %s force row level security', p_rel);
    perform tenancy._drop_policies(p_rel);
    perform tenancy._create_policies(
        p_rel, p_parent, v_entry.tenant_column, v_entry.write_scope, v_entry.shared_rows, null
    );
    perform tenancy._citus_alter_default(p_rel, v_entry.tenant_column, 'tenancy._default_tenant()'); -- citus (issue 15)
    -- an index led by the tenant column (on a partitioned table it cascades to the partitions)
    if not exists (
        select from pg_catalog.pg_index i
        join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
        where i.indrelid = p_rel and a.attname = v_entry.tenant_column
    ) then
        execute pg_catalog.format('create index on %s (%I)', p_rel, v_entry.tenant_column);
        perform tenancy._mark_tenant_index(p_rel, p_parent, v_entry.tenant_column);  -- [audit] unregister drops it
    end if;
    perform tenancy._install_truncate_guard(p_rel);  -- [audit] TRUNCATE ignores RLS
    perform tenancy._internal_ddl(false);
end
$fn$;

-- Apply to the table and, when partitioned, to every partition (direct reads of a partition are
-- isolated too).
create or replace function tenancy._apply_tree(p_parent regclass)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_rel regclass;
begin
    for v_rel in select tenancy._tree(p_parent) loop
        perform tenancy._apply(v_rel, p_parent);
    end loop;
end
$fn$;

create or replace function tenancy.register_table(
    tbl regclass,
    tenant_column name default 'tenant_id',
    write_scope text default 'own',
    shared_rows boolean default false
)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_kind "char";
    v_type regtype;
    v_registered_parent regclass;
begin
    if tbl is null then
        raise exception 'register_table needs a table' using errcode = '22023';
    end if;
    select c.relkind into v_kind from pg_catalog.pg_class c where c.oid = tbl;
    if v_kind not in ('r', 'p') then
        raise exception 'cannot register % as a tenant-scoped table: it is a %', tbl,
            case v_kind when 'v' then 'view' when 'm' then 'materialized view' when 'f' then 'foreign table'
                when 'S' then 'sequence' when 'i' then 'index' else 'relation of kind ' || v_kind::text end
            using errcode = '22023', hint = 'Register the underlying table; give views security_invoker = true.';
    end if;
    if tbl::text like 'tenancy.%' then
        raise exception 'cannot register %: the extension''s own tables have their policies already', tbl
            using errcode = '22023';
    end if;
    select a.atttypid::regtype into v_type
    from pg_catalog.pg_attribute a
    where a.attrelid = tbl and a.attname = tenant_column and a.attnum > 0 and not a.attisdropped;
    if not found then
        raise exception 'cannot register %: it has no column %', tbl, pg_catalog.quote_ident(tenant_column)
            using errcode = '22023', hint = 'Add a uuid tenant column, or name it with tenant_column =>.';
    end if;
    if v_type <> 'uuid'::regtype then
        raise exception 'cannot register %: its tenant column % is %, not uuid', tbl,
            pg_catalog.quote_ident(tenant_column), v_type
            using errcode = '22023', hint = tenancy._uuid_column_fix(tbl, tenant_column, v_type);
    end if;
    if write_scope is null or write_scope not in ('own', 'visible') then
        raise exception 'cannot register %: write_scope must be ''own'' or ''visible'', not %', tbl,
            coalesce(pg_catalog.quote_literal(write_scope), 'NULL')
            using errcode = '22023';
    end if;
    select a.relid into v_registered_parent
    from pg_catalog.pg_partition_ancestors(tbl) a
    join tenancy.scoped_tables s on s.relid = a.relid
    where a.relid <> tbl
    limit 1;
    if v_registered_parent is not null then
        raise exception 'cannot register % on its own: it is a partition of the registered table %', tbl,
            v_registered_parent
            using errcode = '22023';
    end if;
    perform tenancy._refuse_foreign_permissive(tbl);  -- [audit] TN006: a permissive policy would widen

    insert into tenancy.scoped_tables as s (relid, tenant_column, write_scope, shared_rows)
    values (tbl, tenant_column, write_scope, coalesce(shared_rows, false))
    on conflict (relid) do update
    set tenant_column = excluded.tenant_column,
        write_scope = excluded.write_scope,
        shared_rows = excluded.shared_rows;
    perform tenancy._apply_tree(tbl);
end
$fn$;

comment on function tenancy.register_table(regclass, name, text, boolean) is
'Make a table tenant-scoped (idempotent): enable and force row-level security, generate its policies, default '
'the tenant column to the current tenant, index the tenant column, refuse TRUNCATE outside a tier-0 context or '
'the owner (a trigger; where Citus is installed, TRUNCATE revoked from every role but the owner instead), and do '
'the same on every partition. Refuses (22023) a missing or non-uuid column, a view '
'or a foreign table, and (TN006) a table or partition that has permissive policies of its own.';

create or replace function tenancy.unregister_table(tbl regclass)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_entry tenancy.scoped_tables;
    v_rel regclass;
begin
    delete from tenancy.scoped_tables s where s.relid = tbl returning * into v_entry;
    if not found then
        raise exception '% is not a registered tenant-scoped table', tbl using errcode = '22023';
    end if;
    perform tenancy._internal_ddl(true);
    for v_rel in select tenancy._tree(tbl) loop
        perform tenancy._drop_policies(v_rel);
        -- [audit] the TRUNCATE guard and the index register_table made
        perform tenancy._unguard(v_rel, case when v_rel = tbl then v_entry.tenant_index end);
        execute pg_catalog.format('alter table %s no force row level security', v_rel);
        execute pg_catalog.format('alter table %s disable row level security', v_rel);
        if exists (
            select from pg_catalog.pg_attrdef d
            join pg_catalog.pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
            where d.adrelid = v_rel and a.attname = v_entry.tenant_column
              and pg_catalog.pg_get_expr(d.adbin, d.adrelid) = 'tenancy._default_tenant()'
        ) then
            perform tenancy._citus_alter_default(v_rel, v_entry.tenant_column, null); -- citus (issue 15)
        end if;
    end loop;
    perform tenancy._internal_ddl(false);
end
$fn$;

comment on function tenancy.unregister_table(regclass) is
'Stop scoping a table: drop its generated policies, TRUNCATE guard and catalog row, disable row-level security, '
'drop the tenant column default and the index register_table created (an index of your own stays).';

create or replace function tenancy.refresh_policies()
returns integer
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_rel regclass;
    v_count integer := 0;
begin
    for v_rel in select s.relid from tenancy.scoped_tables s order by s.relid::text loop
        perform tenancy._warn_foreign_permissive(v_rel);  -- [audit] never kept silently
        perform tenancy._apply_tree(v_rel);
        v_count := v_count + 1;
    end loop;
    return v_count;
end
$fn$;

comment on function tenancy.refresh_policies() is
'Regenerate the policies, defaults, indexes and TRUNCATE guards of every registered table; returns how many '
'tables. A permissive policy tenancy did not generate is kept but reported (WARNING; check() lists it).';

-- Every registered table and each of its partitions, with the registered root and tenant column.
--@grant app
create or replace function tenancy._scope()
returns table (rel regclass, root regclass, col name)
language sql
stable
set search_path = pg_catalog, pg_temp
as $fn$
    select t.rel, s.relid, s.tenant_column
    from tenancy.scoped_tables s
    cross join lateral tenancy._tree(s.relid) t (rel)
$fn$;
