-- Migrators (issue 17): a role that runs migrations creates, registers and unregisters the tables
-- it owns, and nothing more. register_table / unregister_table run with the caller's rights, so
-- PostgreSQL itself refuses the ALTER TABLE, CREATE POLICY and CREATE INDEX on a table the role does
-- not own; the catalog tenancy.scoped_tables, which the migrator may now write, is held to the same
-- rule by the trigger below (a row only for a table the writer owns).

do $roles$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'tenancy_migrator') then
        create role tenancy_migrator nologin;
    end if;
end
$roles$;

-- A row of the catalog may be written only for a table the writing role owns (or by a superuser,
-- or the extension's owner: the guards, restores): 42501 otherwise, so a migrator can neither
-- register nor unregister another role's table, even by writing the catalog directly.
create or replace function tenancy._scoped_tables_owner_check()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_rel regclass;
    v_owner regrole;
begin
    if pg_catalog.current_setting('is_superuser')::boolean
        or current_user = (select x.extowner::regrole::name from pg_catalog.pg_extension x where x.extname = 'tenancy')
    then
        return case when tg_op = 'DELETE' then old else new end;
    end if;
    foreach v_rel in array case tg_op
        when 'INSERT' then array[new.relid] when 'DELETE' then array[old.relid] else array[old.relid, new.relid] end
    loop
        select c.relowner::regrole into v_owner from pg_catalog.pg_class c where c.oid = v_rel;
        if v_owner is null or not pg_catalog.pg_has_role(current_user, v_owner, 'USAGE') then
            raise exception 'role % may not % the tenant-scoped table %: it is owned by %', current_user,
                case when tg_op = 'DELETE' then 'unregister' else 'register' end, v_rel, v_owner
                using errcode = '42501', hint = 'A migrator registers only the tables it owns.';
        end if;
    end loop;
    return case when tg_op = 'DELETE' then old else new end;
end
$fn$;

create or replace trigger scoped_tables_owner_check
before insert or update or delete on tenancy.scoped_tables
for each row execute function tenancy._scoped_tables_owner_check();

-- What register_table / unregister_table need, for tenancy_migrator only (granted where missing).
do $grants$
declare
    v_fn regprocedure;
begin
    for v_fn in
        select p.oid::regprocedure from pg_catalog.pg_proc p
        where p.pronamespace = 'tenancy'::regnamespace and p.proname = any(array[
            'register_table', 'unregister_table', '_apply_tree', '_apply', '_internal_ddl', '_ddl_nonce',
            '_drop_policies', '_create_policies', '_policy_names', '_scoped_tables_owner_check',
            -- issue 14 (50_guards.sql): register_table's refusal of permissive policies, the TRUNCATE
            -- guard and the recorded tenant index
            '_refuse_foreign_permissive', '_install_truncate_guard', '_mark_tenant_index', '_unguard',
            '_citus_alter_default',
            -- on Citus the TRUNCATE guard is the privilege (docs/decisions/0005-truncate-on-citus.md)
            '_drop_truncate_trigger', '_revoke_truncate',
            -- the catalog helpers PUBLIC no longer executes (context core v3)
            '_tree', '_scope', '_policy_defs', '_registered_root', '_missing_policies', '_foreign_policies'
        ])
    loop
        -- the ACL itself, not has_function_privilege: PUBLIC still has EXECUTE here (90_grants revokes it)
        if not exists (
            select from pg_catalog.pg_proc p cross join lateral pg_catalog.aclexplode(p.proacl) a
            where p.oid = v_fn and a.grantee = 'tenancy_migrator'::regrole and a.privilege_type = 'EXECUTE'
        ) then
            execute pg_catalog.format('grant execute on function %s to tenancy_migrator', v_fn);
        end if;
    end loop;
    if not pg_catalog.has_table_privilege('tenancy_migrator', 'tenancy.scoped_tables', 'insert, update, delete') then
        grant select, insert, update, delete on tenancy.scoped_tables to tenancy_migrator;
    end if;
end
$grants$;

create or replace function tenancy.grant_migrator(role regrole)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
begin
    if role is null then
        raise exception 'grant_migrator needs a role' using errcode = '22023';
    end if;
    execute pg_catalog.format('grant tenancy_migrator to %s', role);
end
$fn$;

comment on function tenancy.grant_migrator(regrole) is
'What a role that runs migrations needs, by membership in tenancy_migrator: register_table and unregister_table '
'of the tables it owns (another role''s table is refused, 42501), which also makes tenancy.auto_register work for '
'its CREATE TABLE. No context, no other table, no write on the extension''s tables but the catalog rows of its own.';
