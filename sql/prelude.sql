-- First in every install and upgrade script, whatever version is installed (or none): drop what the
-- re-runnable part re-creates and what would keep a function from being replaced: the extension's
-- event triggers (the guards) and the generated policies (named tenancy_*) of the registered tables,
-- their partitions and the extension's own tables. Written against the catalog only, so it depends on
-- no function of any version. The re-runnable part ends with refresh_policies(), which generates them
-- again from the catalog.
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
