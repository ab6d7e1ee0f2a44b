-- Last in every install and upgrade: the visibility of the extension's own tables, privileges, the
-- grant helpers, and the regeneration of every registered table's policies.

-- The extension's own tables: the same visibility as every scoped table (tier 0 all, tier 1 itself
-- and its children, tier 2 itself). Application roles only read tenants and domain_mappings; token
-- writers (grant_token_admin) also write the token tables.
select tenancy._protect_own_table('tenancy.tenants', 'id', array['select']);
select tenancy._protect_own_table('tenancy.domain_mappings', 'tenant_id', array['select']);
-- token writers: the generated policies of write_scope 'visible' (a tier-1 context writes itself and
-- its customers, tier 0 everyone, no context TN003), as on a registered table
select tenancy._protect_own_table('tenancy.token_layers', 'tenant_id', null);
select tenancy._protect_own_table('tenancy.token_rules', 'tenant_id', null);

create or replace function tenancy.grant_app(
    role regrole,
    strict boolean default false,
    pooled boolean default false
)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
begin
    if role is null then
        raise exception 'grant_app needs a role' using errcode = '22023',
            hint = 'Name an existing role: select tenancy.grant_app(''app'');';
    end if;
    execute pg_catalog.format('grant tenancy_app to %s', role);
    -- a strict role takes a context only through set_tenant_from_jwt (plpython/strict.py); only a
    -- DBA's revoke tenancy_strict from the role undoes it
    if coalesce(strict, false) then
        execute pg_catalog.format('grant tenancy_strict to %s', role);
    end if;
    -- a pooled role takes only transaction contexts (local => true): set_tenant refuses it a session
    -- context; only a DBA's revoke tenancy_pooled from the role undoes it
    if coalesce(pooled, false) then
        execute pg_catalog.format('grant tenancy_pooled to %s', role);
    end if;
end
$fn$;

comment on function tenancy.grant_app(regrole, boolean, boolean) is
'Grant what an application login needs, by membership in the role tenancy_app: execute on the context, domain '
'and token read functions, and select (under row-level security) on the extension''s tables; usage on schema '
'tenancy is PUBLIC''s. No writes, no user tables. strict => true also makes it a member of tenancy_strict: it may '
'then take a context only through set_tenant_from_jwt (set_tenant and set_tenant_for_domain are TN007 for it). '
'pooled => true makes it a member of tenancy_pooled, for logins behind a transaction-pooling pooler (PgBouncer '
'pool_mode = transaction): a session context (local => false) is TN007 for it, local => true works. grant_app '
'without strict or pooled never removes either (revoke tenancy_strict / tenancy_pooled from the role does).';

create or replace function tenancy.grant_platform(role regrole)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
begin
    perform tenancy.grant_app(role);
    execute pg_catalog.format('grant tenancy_platform to %s', role);
end
$fn$;

comment on function tenancy.grant_platform(regrole) is
'grant_app plus membership in tenancy_platform: the role may take a tier-0 (platform) context.';

--@grants

-- Any role that can read a scoped table must be able to evaluate its policies (which name functions
-- in this schema): without it, a role given SELECT on a table but not grant_app would get
-- "permission denied for schema tenancy" instead of the zero rows of "no context". Usage only lets
-- names be looked up: PUBLIC can execute the policy helpers above and nothing that sets a context.
grant usage on schema tenancy to public;

-- What tenancy_app may read: the extension's tables, under the row-level security above (granted
-- only where missing: see the note on initial privileges at the end).
do $tables$
declare
    v_tbl regclass;
begin
    foreach v_tbl in array array[
        'tenancy.tenants', 'tenancy.domain_mappings', 'tenancy.token_layers', 'tenancy.token_rules',
        'tenancy.scoped_tables'
    ]::regclass[] loop
        if not pg_catalog.has_table_privilege('tenancy_app', v_tbl, 'select') then
            execute pg_catalog.format('grant select on %s to tenancy_app', v_tbl);
        end if;
    end loop;
end
$tables$;

-- Upgrade from 0.1.0, whose grant_app granted each role directly: those roles become members of
-- tenancy_app and lose the direct grants (the same privileges, now kept as the extension's own).
do $regrant$
declare
    v_role regrole;
    v_fn regprocedure;
begin
    for v_role in
        select distinct a.grantee::regrole
        from pg_catalog.pg_proc p
        cross join lateral pg_catalog.aclexplode(p.proacl) a
        where p.oid = 'tenancy.set_tenant(uuid, boolean)'::regprocedure
          and a.privilege_type = 'EXECUTE' and a.grantee <> 0 and a.grantee <> p.proowner
          and a.grantee <> 'tenancy_app'::regrole
    loop
        execute pg_catalog.format('grant tenancy_app to %s', v_role);
        for v_fn in select * from tenancy._app_functions() loop
            execute pg_catalog.format('revoke execute on function %s from %s', v_fn, v_role);
        end loop;
        execute pg_catalog.format('revoke select on tenancy.tenants, tenancy.domain_mappings, tenancy.token_layers, '
            'tenancy.token_rules, tenancy.scoped_tables from %s', v_role);
        execute pg_catalog.format('revoke usage on schema tenancy from %s', v_role);
    end loop;
end
$regrant$;

-- The generated policies of every registered table (sql/prelude.sql dropped them in an upgrade).
select tenancy.refresh_policies();

-- Initial privileges. A GRANT or REVOKE in an extension script records the object's whole ACL in
-- pg_init_privs, and pg_dump dumps only what differs from it: in an upgrade, the grants a DBA made
-- to other roles (grant_token_admin, a migrator's EXECUTE) would be taken for the extension's own
-- and lost by a dump and restore. So the initial privileges of every member of the extension keep
-- only what this script grants: to the owner, PUBLIC, tenancy_app and tenancy_platform.
update pg_catalog.pg_init_privs i
set initprivs = (
    select pg_catalog.array_agg(a.item order by a.n)
    from pg_catalog.unnest(i.initprivs) with ordinality a (item, n)
    where (select pg_catalog.min(e.grantee::oid::bigint)::oid from pg_catalog.aclexplode(array[a.item]) e) in (
        0, 'tenancy_app'::regrole, 'tenancy_platform'::regrole, 'tenancy_migrator'::regrole,
        (select x.extowner from pg_catalog.pg_extension x where x.extname = 'tenancy')
    )
)
where i.privtype = 'e'
  and exists (
      select from pg_catalog.pg_depend d
      inner join pg_catalog.pg_extension x on x.oid = d.refobjid
      where d.classid = i.classoid and d.objid = i.objoid and d.deptype = 'e' and x.extname = 'tenancy'
  );
