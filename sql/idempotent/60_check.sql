-- tenancy.check(): drift and leak audit. Read-only; each finding says how to fix it.

--@grant app
create or replace function tenancy.check()
returns table (severity text, object text, problem text, hint text)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_scoped regclass[];
begin
    select pg_catalog.array_agg(x.rel) into v_scoped from tenancy._scope() x;
    v_scoped := coalesce(v_scoped, '{}');

    -- 1. registered tables that drifted
    return query
    select 'error', sc.rel::text, 'row-level security is not enabled and forced',
        pg_catalog.format('Run select tenancy.refresh_policies(); (or tenancy.register_table(%L)).', sc.root::text)
    from tenancy._scope() sc
    join pg_catalog.pg_class c on c.oid = sc.rel
    where not (c.relrowsecurity and c.relforcerowsecurity);

    return query
    select 'error', sc.rel::text, pg_catalog.format('generated policy %s is missing', m.name),
        'Run select tenancy.refresh_policies();'
    from tenancy._scope() sc
    cross join lateral tenancy._missing_policies(sc.rel) m (name);

    return query
    select 'error', sc.rel::text,
        pg_catalog.format('generated policy %s differs from what tenancy generates', p.polname),
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

    return query
    select 'warning', sc.rel::text,
        pg_catalog.format('no index is led by the tenant column %I', sc.col),
        'Run select tenancy.refresh_policies(); (it creates one), or create an index starting with the tenant column.'
    from tenancy._scope() sc
    where not exists (
        select from pg_catalog.pg_index i
        join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
        where i.indrelid = sc.rel and a.attname = sc.col
    );

    return query
    select 'warning', sc.rel::text,
        pg_catalog.format('the tenant column %I does not default to the current tenant', sc.col),
        'Run select tenancy.refresh_policies();'
    from tenancy._scope() sc
    where not exists (
        select from pg_catalog.pg_attrdef d
        join pg_catalog.pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
        where d.adrelid = sc.rel and a.attname = sc.col
          and pg_catalog.pg_get_expr(d.adbin, d.adrelid) = 'tenancy._default_tenant()'
    );

    -- 2. tables with a tenant column that are not registered
    return query
    select 'warning', c.oid::regclass::text,
        pg_catalog.format('has a uuid column %I but is not a registered tenant-scoped table', a.attname),
        pg_catalog.format('Run select tenancy.register_table(%L); if its rows belong to tenants.', c.oid::regclass::text)
    from pg_catalog.pg_class c
    join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.relkind in ('r', 'p')
      and not c.relispartition
      and a.atttypid = 'uuid'::regtype
      and a.attname in (select distinct s.tenant_column from tenancy.scoped_tables s union select 'tenant_id')
      and c.relnamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
          'tenancy'::regnamespace)
      and c.relnamespace::regnamespace::text !~ '^pg_(temp|toast)'
      and c.oid <> all(v_scoped);

    -- 3. views over scoped tables without security_invoker (they read as their owner)
    return query
    select distinct 'error', v.oid::regclass::text,
        pg_catalog.format('view reads the scoped table %s as its owner, past row-level security', d.refobjid::regclass),
        pg_catalog.format('alter view %s set (security_invoker = true);', v.oid::regclass)
    from pg_catalog.pg_rewrite r
    join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_rewrite'::regclass and d.objid = r.oid
        and d.refclassid = 'pg_catalog.pg_class'::regclass
    join pg_catalog.pg_class v on v.oid = r.ev_class and v.relkind = 'v'
    where d.refobjid = any(v_scoped)
      and d.refobjid <> v.oid
      and not coalesce('security_invoker=true' = any(v.reloptions) or 'security_invoker=on' = any(v.reloptions)
          or 'security_invoker=1' = any(v.reloptions), false);

    -- 4. materialized views over scoped tables (their rows are stored without any policy)
    return query
    select distinct 'error', v.oid::regclass::text,
        pg_catalog.format('materialized view stores rows of the scoped table %s with no row-level security',
            d.refobjid::regclass),
        'Drop it, or replace it with a scoped table (register_table) refreshed by a job.'
    from pg_catalog.pg_rewrite r
    join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_rewrite'::regclass and d.objid = r.oid
        and d.refclassid = 'pg_catalog.pg_class'::regclass
    join pg_catalog.pg_class v on v.oid = r.ev_class and v.relkind = 'm'
    where d.refobjid = any(v_scoped) and d.refobjid <> v.oid;

    -- 5. SECURITY DEFINER functions that read scoped tables (by dependency, or by name in their body)
    return query
    select distinct 'warning', p.oid::regprocedure::text,
        pg_catalog.format('SECURITY DEFINER function reads the scoped table %s as its owner %s', sc.rel,
            p.proowner::regrole),
        'Make it SECURITY INVOKER, or have it owned by a role that is subject to row-level security (not a superuser, '
        'not BYPASSRLS, not the table owner).'
    from pg_catalog.pg_proc p
    join tenancy._scope() sc on sc.rel = sc.root
    join pg_catalog.pg_class c on c.oid = sc.rel
    where p.prosecdef
      and p.pronamespace <> 'tenancy'::regnamespace
      and (
          p.prosrc ~* ('\m' || pg_catalog.regexp_replace(c.relname, '([^a-zA-Z0-9_])', '\\\1', 'g') || '\M')
          or exists (
              select from pg_catalog.pg_depend d
              where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.refobjid = sc.rel
          )
      );

    -- 6. unique indexes and foreign keys that do not include the tenant column
    return query
    select case when i.indisprimary then 'info' else 'warning' end, ic.oid::regclass::text,
        pg_catalog.format('%s on %s does not include the tenant column %I: it is enforced across tenants',
            case when i.indisprimary then 'primary key' else 'unique index' end, sc.rel, sc.col),
        case when i.indisprimary
            then 'Fine for a surrogate key (serial, uuid); include the tenant column if the key carries meaning.'
            else 'A conflict tells one tenant that another has the value: include the tenant column in the index.'
        end
    from tenancy._scope() sc
    join pg_catalog.pg_index i on i.indrelid = sc.rel and i.indisunique
    join pg_catalog.pg_class ic on ic.oid = i.indexrelid
    where sc.rel = sc.root
      and not exists (
          select from pg_catalog.pg_attribute a
          where a.attrelid = sc.rel and a.attname = sc.col and a.attnum = any(i.indkey::int2[])
      );

    return query
    select 'warning', pg_catalog.format('%s on %s', con.conname, sc.rel),
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
    select 'error', current_user::text, 'the current role is a superuser: row-level security does not apply to it',
        'Connect the application as a role made with tenancy.grant_app(), not a superuser.'
    from pg_catalog.pg_roles r where r.rolname = current_user and r.rolsuper;
    return query
    select 'error', current_user::text, 'the current role has BYPASSRLS: row-level security does not apply to it',
        'alter role ' || pg_catalog.quote_ident(current_user) || ' nobypassrls;'
    from pg_catalog.pg_roles r where r.rolname = current_user and r.rolbypassrls and not r.rolsuper;
    return query
    select 'warning', sc.rel::text, pg_catalog.format('the current role %s owns this scoped table', current_user),
        'Owners bypass row-level security unless it is forced (tenancy forces it); still, run the application as '
        'a role that does not own its tables.'
    from tenancy._scope() sc
    join pg_catalog.pg_class c on c.oid = sc.rel
    where sc.rel = sc.root and pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER');
    return query select * from tenancy._check_citus(); -- citus (issue 15): the shards, on a Citus coordinator
end
$fn$;

comment on function tenancy.check() is
'Drift and leak audit: registered tables whose RLS, policies, default or index drifted; unregistered tables with '
'a tenant column; views without security_invoker, materialized views and SECURITY DEFINER functions over scoped '
'tables; unique indexes and foreign keys without the tenant column; a current role that escapes RLS.';
