-- Objects, privileges and hygiene of the extension itself.
begin;
select plan(16);

select has_schema('tenancy');
select has_table('tenancy', 'tenants', 'tenants table');
select col_is_pk('tenancy', 'tenants', 'id', 'tenants.id is the primary key');
select col_type_is('tenancy', 'tenants', 'tier', 'smallint', 'tier is smallint');
select has_role('tenancy_platform', 'the extension creates tenancy_platform');
select ok(not (select rolcanlogin from pg_roles where rolname = 'tenancy_platform'), 'tenancy_platform is NOLOGIN');
select ok(not (select extrelocatable from pg_extension where extname = 'tenancy'), 'not relocatable');
select is((select extnamespace::regnamespace::text from pg_extension where extname = 'tenancy'), 'tenancy', 'extension schema');

select has_function('tenancy', 'set_tenant', array['uuid', 'boolean']);
select has_function('tenancy', 'tenant_id', array['text']);
select function_returns('tenancy', 'visible_tenants', '{}'::name[], 'uuid[]');

-- every member object lives in schema tenancy: nothing in public
select is_empty($$
    select pg_describe_object(d.classid, d.objid, 0)
    from pg_depend d
    join pg_class c on d.classid = 'pg_class'::regclass and c.oid = d.objid
    where d.refclassid = 'pg_extension'::regclass
      and d.refobjid = (select oid from pg_extension where extname = 'tenancy')
      and c.relnamespace <> 'tenancy'::regnamespace
    union all
    select p.oid::regprocedure::text
    from pg_depend d
    join pg_proc p on d.classid = 'pg_proc'::regclass and p.oid = d.objid
    where d.refclassid = 'pg_extension'::regclass
      and d.refobjid = (select oid from pg_extension where extname = 'tenancy')
      and p.pronamespace <> 'tenancy'::regnamespace
$$, 'every member table and function is in schema tenancy');

-- every SECURITY DEFINER function pins search_path to pg_catalog (+ tenancy) and pg_temp
select is_empty($$
    select p.oid::regprocedure::text
    from pg_proc p
    where p.pronamespace = 'tenancy'::regnamespace
      and p.prosecdef
      and not exists (
          select from unnest(p.proconfig) c
          where c in ('search_path=pg_catalog, pg_temp', 'search_path=pg_catalog, tenancy, pg_temp')
      )
$$, 'every SECURITY DEFINER function pins search_path');

-- every public (non-underscore) function is documented
select is_empty($$
    select p.oid::regprocedure::text
    from pg_proc p
    where p.pronamespace = 'tenancy'::regnamespace
      and p.proname !~ '^_'
      and p.prokind = 'f'
      and obj_description(p.oid, 'pg_proc') is null
      and p.prorettype <> 'trigger'::regtype and p.prorettype <> 'event_trigger'::regtype
$$, 'COMMENT ON every public function');

-- PUBLIC may execute nothing that sets a context
select is_empty($$
    select p.oid::regprocedure::text
    from pg_proc p
    where p.pronamespace = 'tenancy'::regnamespace
      and p.proname in ('set_tenant', '_set_tenant', 'set_tenant_for_domain', 'grant_app', 'grant_platform',
                        'register_table', 'unregister_table', 'set_tokens')
      and has_function_privilege('public', p.oid, 'execute')
$$, 'PUBLIC cannot execute context setters or admin functions');

-- the user-data tables are dumped by pg_dump
select ok(
    (select 'tenancy.tenants'::regclass = any(extconfig) from pg_extension where extname = 'tenancy'),
    'tenants is registered with pg_extension_config_dump'
);

select * from finish();
rollback;
