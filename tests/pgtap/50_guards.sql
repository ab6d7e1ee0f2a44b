-- Guards: RLS and generated policies cannot drift; partitions; auto-register; dropped tables.
begin;
select plan(22);

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
select lives_ok($$create policy own_extra on public.g for select using (false)$$, 'a policy of one''s own is fine');
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
select is((select count(*)::int from tenancy.scoped_tables where relid::text = 'g'), 0,
    'dropping a registered table removes its catalog row');
select is((select count(*)::int from tenancy.scoped_tables), 1, 'the other registration stays');

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
