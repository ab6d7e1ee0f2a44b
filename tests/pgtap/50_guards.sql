-- Guards: RLS and generated policies cannot drift; partitions; auto-register; dropped tables.
begin;
select plan(43);

create table public.g (id int, tenant_id uuid);
select tenancy.register_table('public.g');

select throws_ok($$alter table public.g disable row level security$$, 'TN006', null, 'disabling RLS: TN006');
select throws_ok($$alter table public.g no force row level security$$, 'TN006', null, 'un-forcing RLS: TN006');
select throws_ok($$drop policy tenancy_select on public.g$$, 'TN006', null, 'dropping a generated policy: TN006');
select throws_ok($$alter policy tenancy_select on public.g using (true)$$, 'TN006', null,
    'altering a generated policy: TN006');
select throws_ok($$alter policy tenancy_update on public.g rename to mine$$, 'TN006', null,
    'renaming a generated policy: TN006');
select throws_ok($$set local tenancy.internal_ddl = on; alter table public.g disable row level security$$, 'TN006', null,
    'a hand-written tenancy.internal_ddl does not open the guards');
select throws_ok($$select set_config('tenancy.internal_ddl', 'on', true); drop policy tenancy_select on public.g$$,
    'TN006', null, 'nor does set_config');
select throws_ok($$create policy own_extra on public.g for select using (true)$$, 'TN006', null,
    'a permissive policy of one''s own (the default kind) is refused: it would widen');
select throws_ok($$create policy own_extra on public.g as permissive for select
    using (tenant_id = current_setting('app.tenant_id')::uuid)$$, 'TN006', null,
    'so is the tutorial''s app.tenant_id policy');
select lives_ok($$create policy own_extra on public.g as restrictive for select using (id > 0)$$,
    'a restrictive policy of one''s own is fine (it can only narrow)');
select lives_ok($$alter policy own_extra on public.g rename to own_extra2$$, 'and can be renamed');
select lives_ok($$alter policy own_extra2 on public.g rename to own_extra$$, 'and back');
select lives_ok($$drop policy own_extra on public.g$$, 'and can be dropped');

create table public.parts (id int, tenant_id uuid, k int) partition by range (k);
create table public.parts_1 partition of public.parts for values from (0) to (10);
select tenancy.register_table('public.parts');
select ok((select relrowsecurity and relforcerowsecurity from pg_class where oid = 'public.parts_1'::regclass),
    'an existing partition is scoped');
create table public.parts_2 partition of public.parts for values from (10) to (20);
select policies_are('public', 'parts_2', array['tenancy_select', 'tenancy_insert', 'tenancy_update', 'tenancy_delete',
    'tenancy_platform_select', 'tenancy_platform_update', 'tenancy_platform_delete'],
    'a partition created later gets the policies');
create table public.parts_3 (id int, tenant_id uuid, k int);
alter table public.parts attach partition public.parts_3 for values from (20) to (30);
select ok((select relrowsecurity and relforcerowsecurity from pg_class where oid = 'public.parts_3'::regclass)
    and exists (select from pg_policy where polrelid = 'public.parts_3'::regclass and polname = 'tenancy_select'),
    'an attached partition is scoped');
select throws_ok($$alter table public.parts_2 disable row level security$$, 'TN006', null,
    'disabling RLS on a partition: TN006');

drop table public.g;
select throws_ok($$create policy own_part on public.parts_1 using (true)$$, 'TN006', null,
    'a permissive policy on a partition of a registered table: TN006');
create table public.parts_4 (id int, tenant_id uuid, k int);
create policy legacy on public.parts_4 using (true);
select throws_ok($$alter table public.parts attach partition public.parts_4 for values from (30) to (40)$$,
    'TN006', null, 'attaching a partition that has a permissive policy of its own: TN006');

-- register_table refuses a table with permissive policies of its own (it does not drop them)
create table public.pre (id int, tenant_id uuid);
create policy pre_open on public.pre using (true);
select throws_ok($$select tenancy.register_table('public.pre')$$, 'TN006', null,
    'register_table on a table with a permissive policy: TN006');
select ok(not exists (select from tenancy.scoped_tables where relid = 'public.pre'::regclass)
    and exists (select from pg_policy where polrelid = 'public.pre'::regclass and polname = 'pre_open'),
    'nothing half-done: not registered, the policy untouched');
drop policy pre_open on public.pre;
create policy pre_narrow on public.pre as restrictive using (id > 0);
select lives_ok($$select tenancy.register_table('public.pre')$$, 'a restrictive policy does not stop it');
select throws_ok($$alter policy pre_narrow on public.pre rename to tenancy_platform_insert$$, 'TN006', null,
    'a policy of one''s own cannot take a generated name');

-- a permissive policy that got past the guard (replica mode skips event triggers)
set local session_replication_role = replica;
create policy sneaked on public.pre using (true);
set local session_replication_role = origin;
select throws_ok($$alter policy sneaked on public.pre using (false)$$, 'TN006', null,
    'a permissive policy of one''s own on a registered table cannot be altered either');
drop policy sneaked on public.pre;

-- TRUNCATE guard: created with registration, on every partition, dropped by unregister
select ok((select count(*) = 4 from pg_trigger where tgname = 'tenancy_truncate_guard'
    and tgrelid in ('public.parts'::regclass, 'public.parts_1'::regclass, 'public.parts_2'::regclass,
        'public.parts_3'::regclass)), 'the TRUNCATE guard is on the table and every partition');
create table public.tr (id int, tenant_id uuid);
select tenancy.register_table('public.tr');
select throws_ok($$drop trigger tenancy_truncate_guard on public.tr$$, 'TN006', null,
    'dropping the TRUNCATE guard: TN006');
create role guard_app_role;
grant select, truncate on public.tr to guard_app_role;
set local role guard_app_role;
select throws_ok($$truncate public.tr$$, 'TN006', null, 'TRUNCATE by a role that does not own the table: TN006');
reset role;
select lives_ok($$truncate public.tr$$, 'the owner (here a superuser) may truncate');

-- unregister_table drops the index register_table created, and no other
create table public.idx_mine (id int, tenant_id uuid);
create index idx_mine_own on public.idx_mine (tenant_id, id);
select tenancy.register_table('public.idx_mine');
create table public.idx_made (id int, tenant_id uuid);
select tenancy.register_table('public.idx_made');
select is((select tenant_index::text from tenancy.scoped_tables where relid = 'public.idx_made'::regclass),
    'idx_made_tenant_id_idx', 'register_table records the index it created');
select tenancy.unregister_table('public.idx_mine');
select tenancy.unregister_table('public.idx_made');
select ok(exists (select from pg_class where oid = to_regclass('public.idx_mine_own')),
    'unregister_table keeps an index of the user''s');
select ok(to_regclass('public.idx_made_tenant_id_idx') is null, 'and drops the one register_table made');
select ok(not exists (select from pg_trigger where tgname = 'tenancy_truncate_guard'
    and tgrelid in ('public.idx_mine'::regclass, 'public.idx_made'::regclass)), 'and the TRUNCATE guard');
select tenancy.unregister_table('public.parts');
select ok(not exists (select from pg_trigger where tgname = 'tenancy_truncate_guard'
    and tgrelid in (select relid from pg_partition_tree('public.parts'))), 'on every partition too');
select ok(to_regclass('public.parts_tenant_id_idx') is null
    and not exists (select from pg_index where indrelid = 'public.parts_1'::regclass),
    'and the partitioned index with its partitions'' indexes');

-- DROP EXTENSION with registered tables is refused (the test rolls back anyway)
select throws_ok($$drop extension tenancy cascade$$, 'TN006', null, 'DROP EXTENSION tenancy CASCADE: TN006');
select throws_ok($$drop schema tenancy cascade$$, 'TN006', null, 'DROP SCHEMA tenancy CASCADE: TN006');

select is((select count(*)::int from tenancy.scoped_tables where relid::text = 'g'), 0,
    'dropping a registered table removes its catalog row');
select is((select count(*)::int from tenancy.scoped_tables), 2, 'the other registrations stay');

set local tenancy.auto_register = on;
create table public.auto_a (id int, tenant_id uuid);
create table public.auto_b (id int);
create table public.auto_ctas as select gen_random_uuid() as tenant_id, 1 as n;
select ok(exists (select from tenancy.scoped_tables where relid = 'public.auto_a'::regclass),
    'auto_register: a new table with the tenant column is registered');
select ok(not exists (select from tenancy.scoped_tables where relid = 'public.auto_b'::regclass),
    'auto_register: a table without it is not');
select ok(exists (select from tenancy.scoped_tables where relid = 'public.auto_ctas'::regclass),
    'auto_register: CREATE TABLE AS with the tenant column is registered');
set local tenancy.auto_register = off;
create table public.auto_c (id int, tenant_id uuid);
select ok(not exists (select from tenancy.scoped_tables where relid = 'public.auto_c'::regclass),
    'auto_register off: nothing is registered');

select lives_ok($$select tenancy.unregister_table('public.auto_a')$$, 'unregister_table is not blocked by the guards');

select * from finish();
rollback;
