-- First in every install and upgrade script, whatever version is installed (or none): drop what the
-- re-runnable part re-creates and what would keep a function from being replaced: the extension's
-- event triggers (the guards) and the generated policies (named tenancy_*) of the registered tables,
-- their partitions and the extension's own tables. Written against the catalog only, so it depends on
-- no function of any version. The re-runnable part ends with refresh_policies(), which generates them
-- again from the catalog.
-- (SPEC v0.3 §0) CREATE EXTENSION installs into an existing schema of the control file's name
-- (schema = tenancy) without asking who made it. A role with CREATE on the database could create
-- schema tenancy first and stay its owner: it could then add objects that capture calls meant for
-- tenancy (a tenancy.set_tenant(text) is chosen over set_tenant(uuid) for a string literal) or drop
-- tenancy's. So on install (the extension has no member yet) the schema, and everything already in
-- it, must belong to the installing role or a superuser (a restore by another superuser recreates the
-- schema under its original owner before CREATE EXTENSION). An upgrade is not refused: check() reports
-- a schema or object owned by another role than the extension's owner.
do $owner$
declare
    v_owner text;
    v_object text;
begin
    if exists (
        select from pg_catalog.pg_depend d
        inner join pg_catalog.pg_extension x on x.oid = d.refobjid
        where x.extname = 'tenancy' and d.refclassid = 'pg_catalog.pg_extension'::regclass and d.deptype = 'e'
    ) then
        return;  -- an upgrade
    end if;
    select r.rolname into v_owner
    from pg_catalog.pg_namespace n
    inner join pg_catalog.pg_roles r on r.oid = n.nspowner
    where n.nspname = 'tenancy' and r.rolname <> current_user and not r.rolsuper;
    if v_owner is not null then
        raise exception 'cannot install tenancy into schema tenancy: it already exists and is owned by %, not by % '
            'who is installing the extension', pg_catalog.quote_ident(v_owner), pg_catalog.quote_ident(current_user)
            using errcode = 'TN006',
            detail = 'The owner of the schema can create objects in it that capture calls meant for tenancy (a '
                'tenancy.set_tenant(text) is chosen over set_tenant(uuid) for a string literal) and drop tenancy''s.',
            hint = 'Look at what it holds, then drop it (drop schema tenancy cascade;) or, if it is yours, make it '
                'the installing role''s (alter schema tenancy owner to current_user;), and create the extension again.';
    end if;
    select pg_catalog.format('%s tenancy.%s (owned by %s)', i.type, o.name, r.rolname) into v_object
    from (
        select 'pg_catalog.pg_class'::regclass as classid, c.oid as objid, c.relowner as owner,
            pg_catalog.quote_ident(c.relname) as name
        from pg_catalog.pg_class c
        where c.relnamespace = (select n.oid from pg_catalog.pg_namespace n where n.nspname = 'tenancy')
        union all
        select 'pg_catalog.pg_proc'::regclass, p.oid, p.proowner,
            pg_catalog.format('%I(%s)', p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid))
        from pg_catalog.pg_proc p
        where p.pronamespace = (select n.oid from pg_catalog.pg_namespace n where n.nspname = 'tenancy')
        union all
        select 'pg_catalog.pg_type'::regclass, t.oid, t.typowner, pg_catalog.quote_ident(t.typname)
        from pg_catalog.pg_type t
        where t.typnamespace = (select n.oid from pg_catalog.pg_namespace n where n.nspname = 'tenancy')
        union all
        select 'pg_catalog.pg_operator'::regclass, o.oid, o.oprowner, o.oprname::text
        from pg_catalog.pg_operator o
        where o.oprnamespace = (select n.oid from pg_catalog.pg_namespace n where n.nspname = 'tenancy')
    ) o
    inner join pg_catalog.pg_roles r on r.oid = o.owner
    cross join lateral pg_catalog.pg_identify_object(o.classid, o.objid, 0) i
    where r.rolname <> current_user and not r.rolsuper
    limit 1;
    if v_object is not null then
        raise exception 'cannot install tenancy into schema tenancy: it already holds %, made by another role',
            v_object
            using errcode = 'TN006',
            detail = 'An object in schema tenancy that tenancy did not make can capture calls meant for tenancy.',
            hint = 'Look at what schema tenancy holds and drop what you did not make (or drop schema tenancy '
                'cascade;), then create the extension again.';
    end if;
end
$owner$;

do $prelude$
declare
    v_row record;
begin
    for v_row in
        select e.evtname
        from pg_catalog.pg_event_trigger e
        inner join pg_catalog.pg_depend d
            on d.classid = 'pg_catalog.pg_event_trigger'::regclass and d.objid = e.oid and d.deptype = 'e'
        inner join pg_catalog.pg_extension x on x.oid = d.refobjid
        where x.extname = 'tenancy'
    loop
        execute pg_catalog.format('drop event trigger %I', v_row.evtname);
    end loop;
    if pg_catalog.to_regclass('tenancy.scoped_tables') is null then
        return;
    end if;
    for v_row in execute $q$
        select p.polname, p.polrelid::regclass as rel
        from pg_catalog.pg_policy p
        where p.polname like 'tenancy\_%'
          and (
              p.polrelid in (
                  select t.relid from tenancy.scoped_tables s
                  cross join lateral pg_catalog.pg_partition_tree(s.relid) t
              )
              or p.polrelid in (
                  select c.oid from pg_catalog.pg_class c where c.relnamespace = 'tenancy'::regnamespace
              )
          )
    $q$
    loop
        execute pg_catalog.format('drop policy %I on %s', v_row.polname, v_row.rel);
    end loop;
end
$prelude$;
