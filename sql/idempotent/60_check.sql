-- tenancy.check(): drift and leak audit. Read-only; each finding has a stable code (documented, one
-- section each, in docs/check.md: why it matters, how to fix it, an example), a severity, the object,
-- the problem and a hint that says how to fix it. A code names a kind of finding for good: CI keeps
-- baselines of (code, object) pairs (tenancy lint --baseline).

-- Generated policies whose expressions differ from what tenancy generates now. PostgreSQL keeps a
-- policy as a parsed tree, so the expected text is compared in the form PostgreSQL deparses it to:
-- the expected policies are created on a temporary copy of a registered table (same column names
-- and types) in a subtransaction that is rolled back, and pg_get_expr of the copy's policies is
-- compared with pg_get_expr of the table's (and its partitions'). Deparsing is deterministic for a
-- given catalog and search_path, so an edit of any kind (ALTER POLICY past the guard, a policy
-- re-created by hand or by an old restore) shows, and no text normalisation of our own can drift from
-- PostgreSQL's. Where no temporary table can be made (a hot standby, no TEMP privilege) one row says so.
--
-- One temporary copy per KIND of table, not per table (a fleet of schema placements registers the
-- same tables a thousand times): tables whose generated definitions (tenancy._policy_defs) are equal
-- but for the table's own name, which they hold as a regclass literal, are one kind. The copy is made
-- of the kind's first table; a member's expected text is the copy's with that literal replaced by the
-- member's, both as PostgreSQL writes a regclass constant under this function's search_path
-- ('schema.name'::regclass). A table whose name holds a backslash is a kind of its own (no literal
-- is replaced). The literal is replaced in the expected text only, so a policy edited to name another
-- table still differs.
--@grant app
create or replace function tenancy._policy_drift()
returns table (rel regclass, policy_name text, problem text)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_kind record;
    v_def record;
    v_n integer := 0;
    v_tmp text;
    v_cols text;
    v_sql text;
    v_names text[];
    v_quals text[];
    v_checks text[];
begin
    for v_kind in
        with entry as (
            select s.relid, s.tenant_column, s.write_scope, s.shared_rows,
                pg_catalog.quote_literal(s.relid::text) || '::regclass' as lit
            from tenancy.scoped_tables s
        ), shaped as (
            select e.*, (
                select pg_catalog.string_agg(row(d.policy_name, d.command, d.to_role,
                    pg_catalog.replace(d.using_expr, e.lit, '$rel'),
                    pg_catalog.replace(d.check_expr, e.lit, '$rel'))::text, ',' order by d.policy_name)
                from tenancy._policy_defs(e.relid, e.tenant_column, e.write_scope, e.shared_rows) d
            ) || case when pg_catalog.strpos(e.lit, pg_catalog.chr(92)) > 0 then e.relid::oid::text else '' end as shape
            from entry e
        )
        select (pg_catalog.array_agg(x.relid order by x.relid))[1] as rep,
            (pg_catalog.array_agg(x.lit order by x.relid))[1] as rep_lit,
            (pg_catalog.array_agg(x.tenant_column order by x.relid))[1] as tenant_column,
            (pg_catalog.array_agg(x.write_scope order by x.relid))[1] as write_scope,
            (pg_catalog.array_agg(x.shared_rows order by x.relid))[1] as shared_rows,
            pg_catalog.array_agg(x.relid) as members, pg_catalog.array_agg(x.lit) as lits
        from shaped x
        group by x.shape
    loop
        -- the kind's expected expressions, from a temporary copy rolled back at once
        begin
            perform pg_catalog.set_config('tenancy.auto_register', 'off', true);
            -- tenancy's own DDL on its own temporary copies: the guards need not look at every
            -- registered table for each of these statements (where the caller may mark it)
            if pg_catalog.has_function_privilege('tenancy._internal_ddl(boolean)', 'execute') then
                perform tenancy._internal_ddl(true);
            end if;
            v_n := v_n + 1;
            v_tmp := 'tenancy_expected_' || v_n::text;
            select pg_catalog.string_agg(
                pg_catalog.format('%I %s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)), ', '
                order by a.attnum
            ) into v_cols
            from pg_catalog.pg_attribute a
            where a.attrelid = v_kind.rep and a.attnum > 0 and not a.attisdropped;
            execute pg_catalog.format('create temporary table %I (%s)', v_tmp, v_cols);
            for v_def in
                select * from tenancy._policy_defs(
                    v_kind.rep, v_kind.tenant_column, v_kind.write_scope, v_kind.shared_rows
                )
            loop
                v_sql := pg_catalog.format('create policy %I on pg_temp.%I as permissive for %s to %s',
                    v_def.policy_name, v_tmp, v_def.command, v_def.to_role);
                if v_def.using_expr is not null then
                    v_sql := v_sql || ' using (' || v_def.using_expr || ')';
                end if;
                if v_def.check_expr is not null then
                    v_sql := v_sql || ' with check (' || v_def.check_expr || ')';
                end if;
                execute v_sql;
            end loop;
            select pg_catalog.array_agg(e.polname::text), pg_catalog.array_agg(pg_catalog.pg_get_expr(e.polqual, e.polrelid)),
                pg_catalog.array_agg(pg_catalog.pg_get_expr(e.polwithcheck, e.polrelid))
            into v_names, v_quals, v_checks
            from pg_catalog.pg_policy e
            where e.polrelid = pg_catalog.to_regclass('pg_temp.' || pg_catalog.quote_ident(v_tmp));
            -- roll the temporary copy and its policies back
            raise exception using errcode = 'TN999', message = 'tenancy: roll back the expected policies';
        exception
            when sqlstate 'TN999' then
                null;
            when others then
                return query select null::regclass, null::text,
                    'the generated policies'' expressions could not be compared: ' || sqlerrm;
                return;
        end;
        -- every member of the kind and its partitions, against the expected text with its own name.
        -- Deparsed through one relation per set of column names (pg_get_expr uses the relation for its
        -- column names only: a single relation is never named in the text), so that a backend does
        -- not build a relcache entry for every registered table just to deparse its policies.
        return query
        with rels as materialized (
            select t.rel, m.lit,
                (
                    select pg_catalog.string_agg(case when a.attisdropped then '' else a.attname::text end, ','
                        order by a.attnum)
                    from pg_catalog.pg_attribute a
                    where a.attrelid = t.rel and a.attnum > 0
                ) as cols
            from rows from (pg_catalog.unnest(v_kind.members), pg_catalog.unnest(v_kind.lits)) m (relid, lit)
            cross join lateral (
                select m.relid::regclass as rel
                union all
                select pt.relid::regclass
                from pg_catalog.pg_class c
                cross join lateral pg_catalog.pg_partition_tree(c.oid) pt
                where c.oid = m.relid and c.relkind = 'p' and pt.relid <> c.oid
            ) t
        ), via as materialized (
            select r.cols, pg_catalog.min(r.rel::oid)::regclass as rel from rels r group by r.cols
        )
        select x.rel, x.polname::text,
            pg_catalog.concat_ws(' and ',
                case when x.qual is distinct from x.want_qual then 'USING' end,
                case when x.chk is distinct from x.want_chk then 'WITH CHECK' end)
        from (
            select r.rel, p.polname,
                pg_catalog.pg_get_expr(p.polqual, v.rel) as qual,
                pg_catalog.pg_get_expr(p.polwithcheck, v.rel) as chk,
                pg_catalog.replace(e.qual, v_kind.rep_lit, r.lit) as want_qual,
                pg_catalog.replace(e.chk, v_kind.rep_lit, r.lit) as want_chk
            from rels r
            join via v on v.cols = r.cols
            join pg_catalog.pg_policy p on p.polrelid = r.rel
            join rows from (pg_catalog.unnest(v_names), pg_catalog.unnest(v_quals), pg_catalog.unnest(v_checks))
                e (polname, qual, chk) on e.polname = p.polname
        ) x
        where x.qual is distinct from x.want_qual or x.chk is distinct from x.want_chk;
    end loop;
end
$fn$;

-- A role that row-level security does not apply to (superuser or BYPASSRLS).
--@grant app
create or replace function tenancy._escapes_rls(p_role oid)
returns boolean
language sql
stable
set search_path = pg_catalog, pg_temp
as $fn$
    select coalesce((select r.rolsuper or r.rolbypassrls from pg_catalog.pg_roles r where r.oid = p_role), false)
$fn$;

-- User functions (not PostgreSQL's, not tenancy's) with a source text to read.
--@grant app
create or replace function tenancy._user_functions()
returns table (fn oid, name name, src text, secdef boolean, owner oid)
language sql
stable
set search_path = pg_catalog, pg_temp
as $fn$
    select p.oid, p.proname, p.prosrc, p.prosecdef, p.proowner
    from pg_catalog.pg_proc p
    join pg_catalog.pg_language l on l.oid = p.prolang
    where p.pronamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
        'tenancy'::regnamespace)
      and l.lanname not in ('c', 'internal')
$fn$;

-- What each SECURITY DEFINER function reaches: itself and the functions it calls, found by name in
-- the bodies (an identifier followed by an opening parenthesis, compared case-insensitively), to a
-- depth of 4 calls. By name, so an overload or a same-named function in another schema counts too:
-- it over-reports rather than misses a call written out in a body (a call built in dynamic SQL is not
-- seen). Each body is scanned once for the names it calls, then joined by name (no regex per pair).
--@grant app
create or replace function tenancy._secdef_reach()
returns table (secdef oid, reached oid, path text)
language sql
stable
set search_path = pg_catalog, pg_temp
as $fn$
    with recursive fns as materialized (
        select f.fn, f.name, f.src, f.secdef, f.owner, pg_catalog.lower(f.name) as lname
        from tenancy._user_functions() f
    ),
    walk (secdef, reached, depth, seen, path) as (
        select f.fn, f.fn, 0, array[f.fn], f.fn::regprocedure::text
        from fns f where f.secdef
        union all
        select w.secdef, callee.fn, w.depth + 1, w.seen || callee.fn,
            w.path || ' -> ' || callee.fn::regprocedure::text
        from walk w
        join fns caller on caller.fn = w.reached
        cross join lateral (
            select distinct pg_catalog.lower(m.m[1]) as lname
            from pg_catalog.regexp_matches(caller.src, '([A-Za-z_][A-Za-z0-9_$]*)"?\s*\(', 'g') m (m)
        ) called
        join fns callee on callee.lname = called.lname and callee.fn <> all(w.seen)
        where w.depth < 4
    )
    select w.secdef, w.reached, w.path from walk w
$fn$;

-- A view with security_invoker (as reloptions spell it).
--@grant public
create or replace function tenancy._invoker_view(p_options text[])
returns boolean
language sql
immutable
set search_path = pg_catalog, pg_temp
as $fn$
    select coalesce('security_invoker=true' = any(p_options) or 'security_invoker=on' = any(p_options)
        or 'security_invoker=1' = any(p_options) or 'security_invoker=yes' = any(p_options), false)
$fn$;

-- The statement that turns a non-uuid tenant column into a uuid one, and the registration after it:
-- the hint of register_table's refusal, of auto_register's NOTICE and of check()'s finding.
--@grant public
create or replace function tenancy._uuid_column_fix(p_rel regclass, p_column name, p_type regtype)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $fn$
    select case
        when p_type in ('text'::regtype, 'character varying'::regtype, 'character'::regtype, 'name'::regtype)
            then pg_catalog.format('Convert it (every value must be a tenant''s uuid): alter table %s alter column %I '
                'type uuid using %I::uuid;', p_rel, p_column, p_column)
        else pg_catalog.format('Convert it to the tenants'' uuids (a %s does not cast to uuid): alter table %s alter '
            'column %I type uuid using <the uuid of the tenant each value stands for, e.g. a function of yours that '
            'looks it up>;', p_type, p_rel, p_column)
    end
    || pg_catalog.format(' Then select tenancy.register_table(%L%s);', p_rel::text,
        case when p_column <> 'tenant_id' then pg_catalog.format(', tenant_column => %L', p_column) else '' end)
$fn$;

-- Does p_role read p_rel past its row-level security? A superuser or BYPASSRLS role always; the
-- table's owner (or a role with its privileges) unless row-level security is forced; anyone when it
-- is not enabled at all.
--@grant public
create or replace function tenancy._reads_past_rls(p_role oid, p_rel oid)
returns boolean
language sql
stable
set search_path = pg_catalog, pg_temp
as $fn$
    select tenancy._escapes_rls(p_role) or coalesce((
        select not c.relrowsecurity
            or (not c.relforcerowsecurity and pg_catalog.pg_has_role(p_role, c.relowner, 'USAGE'))
        from pg_catalog.pg_class c where c.oid = p_rel
    ), false)
$fn$;

-- Objects of tenancy's schema owned by another role than the extension's owner (tenancy's own
-- members and objects someone else put there), with the statement that drops each.
--@grant public
create or replace function tenancy._foreign_owned()
returns table (identity text, kind text, owner oid, member boolean)
language sql
stable
set search_path = pg_catalog, pg_temp
as $fn$
    with x as (
        select e.oid, e.extowner, e.extnamespace from pg_catalog.pg_extension e where e.extname = 'tenancy'
    ),
    objs (classid, objid, name, owner) as (
        select 'pg_catalog.pg_class'::regclass, c.oid, c.oid::regclass::text, c.relowner from pg_catalog.pg_class c, x
        where c.relnamespace = x.extnamespace and c.relkind not in ('i', 'I', 't')
        union all
        select 'pg_catalog.pg_proc'::regclass, p.oid, p.oid::regprocedure::text, p.proowner from pg_catalog.pg_proc p, x
        where p.pronamespace = x.extnamespace
        union all
        select 'pg_catalog.pg_type'::regclass, t.oid, t.oid::regtype::text, t.typowner from pg_catalog.pg_type t, x
        where t.typnamespace = x.extnamespace and t.typrelid = 0 and t.typcategory <> 'A'
        union all
        select 'pg_catalog.pg_operator'::regclass, o.oid, o.oid::regoperator::text, o.oprowner
        from pg_catalog.pg_operator o, x
        where o.oprnamespace = x.extnamespace
        union all
        select 'pg_catalog.pg_collation'::regclass, c.oid, c.oid::regcollation::text, c.collowner
        from pg_catalog.pg_collation c, x
        where c.collnamespace = x.extnamespace
    )
    select o.name, i.type, o.owner,
        exists (
            select from pg_catalog.pg_depend d
            where d.classid = o.classid and d.objid = o.objid and d.refobjid = x.oid and d.deptype = 'e'
        )
    from objs o
    cross join x
    cross join lateral pg_catalog.pg_identify_object(o.classid, o.objid, 0) i
    where o.owner <> x.extowner
$fn$;

--@grant app
create or replace function tenancy.check()
returns table (code text, severity text, object text, problem text, hint text)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_scoped regclass[];
    v_roots regclass[];
    v_mine oid[];
    v_citus boolean := tenancy._citus_on();
begin
    select pg_catalog.array_agg(x.rel) into v_scoped from tenancy._scope() x;
    v_scoped := coalesce(v_scoped, '{}');
    select coalesce(pg_catalog.array_agg(s.relid), '{}') into v_roots from tenancy.scoped_tables s;
    -- the current role and the roles it is really a member of (pg_has_role is true for a superuser
    -- on every role, so it cannot say what a superuser owns)
    with recursive mine (roleid) as (
        select r.oid from pg_catalog.pg_roles r where r.rolname = current_user
        union
        select m.roleid from pg_catalog.pg_auth_members m join mine on m.member = mine.roleid
    )
    select pg_catalog.array_agg(mine.roleid) into v_mine from mine;

    -- 1. registered tables that drifted
    return query
    select 'rls_not_forced', 'error', sc.rel::text, 'row-level security is not enabled and forced',
        pg_catalog.format('Run select tenancy.refresh_policies(); (or tenancy.register_table(%L)).', sc.root::text)
    from tenancy._scope() sc
    join pg_catalog.pg_class c on c.oid = sc.rel
    where not (c.relrowsecurity and c.relforcerowsecurity);

    return query
    select 'policy_missing', 'error', sc.rel::text, pg_catalog.format('generated policy %s is missing', m.name),
        'Run select tenancy.refresh_policies();'
    from tenancy._scope() sc
    cross join lateral tenancy._missing_policies(sc.rel) m (name);

    return query
    select 'policy_altered', 'error', sc.rel::text,
        pg_catalog.format('generated policy %s differs from what tenancy generates (command, role or kind)', p.polname),
        'Run select tenancy.refresh_policies();'
    from tenancy._scope() sc
    join tenancy.scoped_tables s on s.relid = sc.root
    cross join lateral tenancy._policy_defs(s.relid, s.tenant_column, s.write_scope, s.shared_rows) d
    join pg_catalog.pg_policy p on p.polrelid = sc.rel and p.polname = d.policy_name
    where p.polcmd <> case d.command when 'select' then 'r' when 'insert' then 'a' when 'update' then 'w'
            when 'delete' then 'd' else '*' end
        or not p.polpermissive
        or p.polroles <> array[case when d.to_role = 'public' then 0::oid
            else (select r.oid from pg_catalog.pg_roles r where r.rolname = d.to_role) end]
        or (p.polqual is null) <> (d.using_expr is null)
        or (p.polwithcheck is null) <> (d.check_expr is null);

    -- the expressions, as PostgreSQL deparses them (tenancy._policy_drift)
    return query
    select case when dr.rel is null then 'check_incomplete' else 'policy_edited' end,
        case when dr.rel is null then 'warning' else 'error' end, coalesce(dr.rel::text, 'tenancy.check()'),
        case when dr.rel is null then dr.problem
            else pg_catalog.format('generated policy %s was edited: its %s expression is not what tenancy generates',
                dr.policy_name, dr.problem) end,
        case when dr.rel is null then 'Run tenancy.check() where temporary tables can be created (not on a standby).'
            else 'Run select tenancy.refresh_policies(); (it writes the generated expressions again).' end
    from tenancy._policy_drift() dr;

    -- policies tenancy did not generate: a permissive one is ORed with the generated ones (it widens),
    -- a restrictive one is ANDed (it can only narrow)
    return query
    select case when f.permissive then 'permissive_policy' else 'restrictive_policy' end,
        case when f.permissive then 'error' else 'info' end, sc.rel::text,
        case when f.permissive
            then pg_catalog.format('permissive policy %s was not generated by tenancy: it is ORed with the generated '
                'policies and widens what every role sees (it predates the registration or got past the guard)',
                f.policy_name)
            else pg_catalog.format('restrictive policy %s (not generated by tenancy) narrows what the generated '
                'policies allow', f.policy_name) end,
        case when not f.permissive then 'Nothing to do: a restrictive policy can only narrow. Listed so you know it applies.'
            when f.policy_name in (
                select d.policy_name from tenancy._policy_defs('tenancy.scoped_tables', 'relid', 'visible', true) d
            ) then 'Run select tenancy.refresh_policies(); (it drops it).'
            else pg_catalog.format('drop policy %I on %s; (or re-create it AS RESTRICTIVE if it is meant to narrow)',
                f.policy_name, sc.rel) end
    from tenancy._scope() sc
    cross join lateral tenancy._foreign_policies(sc.rel) f;

    return query
    select 'tenant_index_missing', 'warning', sc.rel::text,
        pg_catalog.format('no index is led by the tenant column %I', sc.col),
        'Run select tenancy.refresh_policies(); (it creates one), or create an index starting with the tenant column.'
    from tenancy._scope() sc
    where not exists (
        select from pg_catalog.pg_index i
        join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
        where i.indrelid = sc.rel and a.attname = sc.col
    );

    return query
    select 'tenant_default_missing', 'warning', sc.rel::text,
        pg_catalog.format('the tenant column %I does not default to the current tenant', sc.col),
        'Run select tenancy.refresh_policies();'
    from tenancy._scope() sc
    where not exists (
        select from pg_catalog.pg_attrdef d
        join pg_catalog.pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
        where d.adrelid = sc.rel and a.attname = sc.col
          and pg_catalog.pg_get_expr(d.adbin, d.adrelid) = 'tenancy._default_tenant()'
    );

    -- TRUNCATE ignores row-level security: the guard trigger, and who may truncate at all (where Citus
    -- is installed there is no trigger: the privilege is the guard, tenancy._install_truncate_guard)
    return query
    select 'truncate_guard_missing', 'error', sc.rel::text, 'the trigger tenancy_truncate_guard is missing or disabled: '
        'TRUNCATE, which ignores row-level security, is not refused',
        'Run select tenancy.refresh_policies(); (it creates the trigger again and enables it).'
    from tenancy._scope() sc
    where not v_citus and not exists (
        select from pg_catalog.pg_trigger t
        where t.tgrelid = sc.rel and t.tgname = 'tenancy_truncate_guard' and t.tgenabled in ('O', 'A')
          and t.tgfoid = 'tenancy._guard_truncate()'::regprocedure
    );

    return query
    select case when v_citus then 'citus_truncate_granted' else 'truncate_granted' end,
        case when v_citus then 'error' else 'warning' end, sc.rel::text,
        pg_catalog.format('TRUNCATE is granted to %s, which does not own the table: TRUNCATE ignores row-level '
            'security (%s)', case when a.grantee = 0 then 'PUBLIC' else a.grantee::regrole::text end,
            case when v_citus then 'on Citus nothing else refuses it: that role can empty every tenant''s rows'
                else 'tenancy_truncate_guard refuses it outside a tier-0 context' end),
        pg_catalog.format('revoke truncate on %s from %s;', sc.rel,
            case when a.grantee = 0 then 'public' else a.grantee::regrole::text end)
    from tenancy._scope() sc
    join pg_catalog.pg_class c on c.oid = sc.rel
    cross join lateral pg_catalog.aclexplode(c.relacl) a
    where a.privilege_type = 'TRUNCATE' and a.grantee <> c.relowner;

    -- 2. tables with a tenant column that are not registered: a uuid one can be registered, another
    -- type cannot (register_table refuses it, auto_register skips it with a NOTICE)
    return query
    select case when a.atttypid = 'uuid'::regtype then 'table_not_registered' else 'tenant_column_not_uuid' end,
        'warning', c.oid::regclass::text,
        case when a.atttypid = 'uuid'::regtype
            then pg_catalog.format('has a uuid column %I but is not a registered tenant-scoped table', a.attname)
            else pg_catalog.format('has a tenant column %I of type %s, not uuid: tenancy registers only uuid tenant '
                'columns, so its rows are visible to every tenant', a.attname,
                pg_catalog.format_type(a.atttypid, a.atttypmod)) end,
        case when a.atttypid = 'uuid'::regtype
            then pg_catalog.format('Run select tenancy.register_table(%L%s); if its rows belong to tenants.',
                c.oid::regclass::text,
                case when a.attname <> 'tenant_id' then pg_catalog.format(', tenant_column => %L', a.attname) else '' end)
            else tenancy._uuid_column_fix(c.oid, a.attname, a.atttypid) end
    from pg_catalog.pg_class c
    join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.relkind in ('r', 'p')
      and not c.relispartition
      and a.attname in (
          select distinct s.tenant_column from tenancy.scoped_tables s
          union select 'tenant_id'
          union select nullif(pg_catalog.current_setting('tenancy.auto_register_column', true), '')
      )
      and c.relnamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
          'tenancy'::regnamespace)
      and c.relnamespace::regnamespace::text !~ '^pg_(temp|toast)'
      and c.oid <> all(v_scoped);

    -- 3. views and materialized views that read scoped tables, through any chain of views: a view
    -- without security_invoker reads as its owner. Row-level security still applies to an owner that
    -- is held to it (not a superuser or BYPASSRLS, and the table's RLS forced where it owns the
    -- table): its policies filter by the caller's context, the owner only lends its privileges. An
    -- owner that escapes it reads every tenant's rows. A materialized view stores the rows its refresh
    -- saw, readable with no row-level security at all.
    return query
    with recursive up (relid, kind, scoped, via, depth, past_rls) as (
        select c.oid, c.relkind, c.oid, null::text, 0, false
        from pg_catalog.pg_class c where c.oid = any(v_scoped)
        union
        select v.oid, v.relkind, up.scoped,
            case when up.depth = 0 then null else coalesce(up.via || ', ', '') || up.relid::regclass::text end,
            up.depth + 1,
            up.past_rls or (v.relkind = 'v' and not tenancy._invoker_view(v.reloptions)
                and tenancy._reads_past_rls(v.relowner, up.scoped))
        from up
        join pg_catalog.pg_depend d on d.refclassid = 'pg_catalog.pg_class'::regclass and d.refobjid = up.relid
            and d.classid = 'pg_catalog.pg_rewrite'::regclass
        join pg_catalog.pg_rewrite r on r.oid = d.objid and r.ev_type = '1'
        join pg_catalog.pg_class v on v.oid = r.ev_class and v.relkind in ('v', 'm')
        where r.ev_class <> up.relid and up.kind in ('r', 'p', 'v') and up.depth < 16
    )
    select distinct
        case when up.kind = 'm' then 'matview_stores_rows' when up.past_rls then 'view_bypasses_rls'
            else 'view_owner_privileges' end,
        case when up.kind = 'm' or up.past_rls then 'error' else 'info' end,
        up.relid::regclass::text,
        case when up.kind = 'm'
            then pg_catalog.format('materialized view stores rows of the scoped table %s with no row-level security%s',
                up.scoped::regclass, coalesce(' (through ' || up.via || ')', ''))
            when up.past_rls
            then pg_catalog.format('view reads the scoped table %s as its owner, past row-level security%s',
                up.scoped::regclass, coalesce(' (through ' || up.via || ')', ''))
            else pg_catalog.format('view reads the scoped table %s with the privileges of its owner %s (not '
                'security_invoker); row-level security still applies, so each caller sees its own context''s rows%s',
                up.scoped::regclass, v.relowner::regrole, coalesce(' (through ' || up.via || ')', '')) end,
        case when up.kind = 'm' then 'Drop it, or replace it with a scoped table (register_table) refreshed by a job.'
            when up.past_rls then pg_catalog.format('alter view %s set (security_invoker = true);', up.relid::regclass)
            else pg_catalog.format('Nothing leaks; alter view %s set (security_invoker = true); if callers should need '
                'their own privileges on the tables.', up.relid::regclass) end
    from up
    join pg_catalog.pg_class v on v.oid = up.relid
    where up.depth > 0
      and (up.kind = 'm' or not tenancy._invoker_view(v.reloptions));

    -- 4. SECURITY DEFINER functions that read scoped tables, themselves or through the functions they
    -- call (by name in their bodies, by dependency for SQL-standard bodies). An owner that escapes
    -- row-level security reads every tenant's rows; another owner reads under the caller's context
    -- with its own privileges.
    return query
    select distinct on (p.oid, sc.rel)
        case when tenancy._escapes_rls(p.proowner) then 'secdef_bypasses_rls' else 'secdef_reads_scoped' end,
        case when tenancy._escapes_rls(p.proowner) then 'error' else 'warning' end, p.oid::regprocedure::text,
        pg_catalog.format('SECURITY DEFINER function reads the scoped table %s as its owner %s%s', sc.rel,
            p.proowner::regrole, case when w.reached <> w.secdef then ' (through ' || w.path || ')' else '' end),
        'Make it SECURITY INVOKER, or have it owned by a role that is subject to row-level security (not a superuser, '
        'not BYPASSRLS).'
    from tenancy._secdef_reach() w
    join pg_catalog.pg_proc p on p.oid = w.secdef
    join pg_catalog.pg_proc f on f.oid = w.reached
    join tenancy._scope() sc on sc.rel = sc.root
    join pg_catalog.pg_class c on c.oid = sc.rel
    where p.prosecdef
      and (
          f.prosrc ~* ('\m' || pg_catalog.regexp_replace(c.relname, '([^a-zA-Z0-9_])', '\\\1', 'g') || '\M')
          or exists (
              select from pg_catalog.pg_depend d
              where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = f.oid and d.refobjid = sc.rel
          )
      )
    order by p.oid, sc.rel, pg_catalog.length(w.path);

    -- SECURITY DEFINER wrappers of set_tenant: run as an owner that may take tier 0 (a superuser or a
    -- member of tenancy_platform), they hand any caller a tier-0 context
    return query
    select distinct on (p.oid)
        'secdef_sets_context', 'error', p.oid::regprocedure::text,
        pg_catalog.format('SECURITY DEFINER function calls tenancy.set_tenant* as %s, who may take the tier-0 '
            'context: any role that may call it gets a platform context%s', p.proowner::regrole,
            case when w.reached <> w.secdef then ' (through ' || w.path || ')' else '' end),
        'Make it SECURITY INVOKER (set_tenant then checks the caller), or have it owned by a role that is not a member '
        'of tenancy_platform and not a superuser.'
    from tenancy._secdef_reach() w
    join pg_catalog.pg_proc p on p.oid = w.secdef
    join pg_catalog.pg_proc f on f.oid = w.reached
    where p.prosecdef
      and f.prosrc ~* '\mset_tenant(_for_domain|_from_jwt)?\s*\('
      and pg_catalog.pg_has_role(p.proowner, 'tenancy_platform', 'MEMBER')
    order by p.oid, pg_catalog.length(w.path);

    -- 5. rules that write into (or read) scoped tables from another relation: their actions run with
    -- the privileges of the owner of the relation the rule is on
    return query
    select distinct
        case when tenancy._escapes_rls(o.relowner) then 'rule_bypasses_rls' else 'rule_touches_scoped' end,
        case when tenancy._escapes_rls(o.relowner) then 'error' else 'warning' end,
        pg_catalog.format('%s on %s', r.rulename, r.ev_class::regclass),
        pg_catalog.format('rule (%s %s) touches the scoped table %s as %s, the owner of %s',
            case when r.is_instead then 'DO INSTEAD' else 'DO ALSO' end,
            case r.ev_type when '2' then 'ON UPDATE' when '3' then 'ON INSERT' when '4' then 'ON DELETE' end,
            d.refobjid::regclass, o.relowner::regrole, r.ev_class::regclass),
        pg_catalog.format('drop rule %I on %s; and write into %s directly (or from a SECURITY INVOKER trigger) '
            'so that its policies apply to the caller.', r.rulename, r.ev_class::regclass, d.refobjid::regclass)
    from pg_catalog.pg_rewrite r
    join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_rewrite'::regclass and d.objid = r.oid
        and d.refclassid = 'pg_catalog.pg_class'::regclass
    join pg_catalog.pg_class o on o.oid = r.ev_class
    where r.ev_type <> '1' and d.refobjid = any(v_scoped) and d.refobjid <> r.ev_class;

    -- 6. unique indexes and foreign keys that do not include the tenant column (key columns only:
    -- an INCLUDE column is not part of what is unique)
    return query
    select case when i.indisprimary then 'primary_key_without_tenant' else 'unique_without_tenant' end,
        case when i.indisprimary then 'info' else 'warning' end, ic.oid::regclass::text,
        pg_catalog.format('%s on %s does not have the tenant column %I among its key columns: it is enforced across '
            'tenants', case when i.indisprimary then 'primary key' else 'unique index' end, sc.rel, sc.col),
        case when i.indisprimary
            then 'Fine for a surrogate key (serial, uuid); include the tenant column if the key carries meaning.'
            else 'A conflict tells one tenant that another has the value: make the tenant column a key column of the '
                'index (not an INCLUDE column).'
        end
    from tenancy._scope() sc
    join pg_catalog.pg_index i on i.indrelid = sc.rel and i.indisunique
    join pg_catalog.pg_class ic on ic.oid = i.indexrelid
    where sc.rel = sc.root
      and not exists (
          select from pg_catalog.generate_series(0, i.indnkeyatts - 1) k (n)
          join pg_catalog.pg_attribute a on a.attrelid = sc.rel and a.attnum = i.indkey[k.n]
          where a.attname = sc.col
      );

    return query
    select 'foreign_key_without_tenant', 'warning', pg_catalog.format('%s on %s', con.conname, sc.rel),
        pg_catalog.format('foreign key to %s does not include the tenant column %I: a row can reference another '
            'tenant''s row', con.confrelid::regclass, sc.col),
        'Add the tenant column to the foreign key (and a unique key (tenant column, id) on the referenced table).'
    from tenancy._scope() sc
    join pg_catalog.pg_constraint con on con.conrelid = sc.rel and con.contype = 'f'
    where sc.rel = sc.root
      and con.confrelid = any(v_scoped)
      and not exists (
          select from pg_catalog.pg_attribute a
          where a.attrelid = sc.rel and a.attname = sc.col and a.attnum = any(con.conkey)
      );

    -- 7. the current role escapes row-level security
    return query
    select 'role_superuser', 'error', current_user::text,
        'the current role is a superuser: row-level security does not apply to it',
        'Connect the application as a role made with tenancy.grant_app(), not a superuser.'
    from pg_catalog.pg_roles r where r.rolname = current_user and r.rolsuper;
    return query
    select 'role_bypassrls', 'error', current_user::text,
        'the current role has BYPASSRLS: row-level security does not apply to it',
        'alter role ' || pg_catalog.quote_ident(current_user) || ' nobypassrls;'
    from pg_catalog.pg_roles r where r.rolname = current_user and r.rolbypassrls and not r.rolsuper;
    -- owned by the current role or a role it is really a member of (a superuser owns only its own)
    return query
    select 'role_owns_table', 'warning', sc.rel::text,
        pg_catalog.format('the current role %s owns this scoped table%s', current_user,
            case when c.relowner::regrole::text <> current_user::text
                then ' (through its membership in ' || c.relowner::regrole::text || ')' else '' end),
        'Row-level security is forced (tenancy forces it), so the owner sees only its context''s rows; but the owner '
        'can ALTER the table, drop the guards and TRUNCATE: run the application as a role that does not own its '
        'tables.'
    from tenancy._scope() sc
    join pg_catalog.pg_class c on c.oid = sc.rel
    where sc.rel = sc.root and c.relowner = any(v_mine);

    -- 8. tenancy's schema and the objects in it belong to the extension's owner: another owner of the
    -- schema can create objects in it that capture calls (a tenancy.set_tenant(text) is chosen over
    -- set_tenant(uuid) for a string literal) or drop tenancy's own
    return query
    select 'schema_owner', case when o.rolsuper then 'warning' else 'error' end, 'schema ' || n.nspname::text,
        pg_catalog.format('schema %I is owned by %s, not by the extension''s owner %s: its owner can create objects '
            'in it that capture calls to tenancy''s functions, and drop tenancy''s own', n.nspname, o.rolname,
            x.extowner::regrole),
        pg_catalog.format('alter schema %I owner to %s; then look at what %s created in it (check() lists the objects '
            'of other owners as object_owner).', n.nspname, x.extowner::regrole, o.rolname)
    from pg_catalog.pg_extension x
    join pg_catalog.pg_namespace n on n.oid = x.extnamespace
    join pg_catalog.pg_roles o on o.oid = n.nspowner
    where x.extname = 'tenancy' and n.nspowner <> x.extowner;

    return query
    select 'object_owner', case when r.rolsuper then 'warning' else 'error' end, f.identity,
        pg_catalog.format('%s %s is owned by %s, not by the extension''s owner %s%s', f.kind, f.identity, r.rolname,
            (select x.extowner::regrole from pg_catalog.pg_extension x where x.extname = 'tenancy'),
            case when f.member then ''
                else ': it is not part of the extension, and in its schema it can capture calls meant for tenancy' end),
        case when f.member then pg_catalog.format('alter %s %s owner to %s;', f.kind, f.identity,
                (select x.extowner::regrole from pg_catalog.pg_extension x where x.extname = 'tenancy'))
            else pg_catalog.format('drop %s %s; (unless you made it and know why it is there)', f.kind, f.identity) end
    from tenancy._foreign_owned() f
    join pg_catalog.pg_roles r on r.oid = f.owner;

    return query select * from tenancy._check_citus(); -- citus (issue 15): the shards, on a Citus coordinator
end
$fn$;

comment on function tenancy.check() is
'Drift and leak audit, one row per finding: code (a stable identifier of the kind of finding, each documented in '
'docs/check.md), severity (error, warning, info), object, problem, hint. Registered tables whose RLS, policies '
'(kind, role or edited expressions), default, index or TRUNCATE guard drifted; policies tenancy did not generate '
'(permissive: error, restrictive: info); TRUNCATE granted to roles other than the owner; unregistered tables with a '
'tenant column, and tenant columns that are not uuid; views whose owner reads scoped tables past row-level security '
'(error; info when RLS still applies to the owner) and materialized views over scoped tables through any chain of '
'views; SECURITY DEFINER functions that reach scoped tables or set_tenant through the functions they call; rules '
'that touch scoped tables; unique indexes whose key columns and foreign keys lack the tenant column; a current role '
'that escapes RLS or owns scoped tables; tenancy''s schema or objects owned by another role than the extension''s '
'owner.';
