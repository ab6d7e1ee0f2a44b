-- register_table: validation, what it sets up, and the plan shape of the generated policies.
begin;
select plan(32);

insert into tenancy.tenants (id, slug, name) values ('00000000-0000-0000-0000-000000000001', 'platform', 'Platform');
insert into tenancy.tenants (id, parent_id, slug, name)
select ('00000000-0000-0000-0000-0000000001' || lpad(p::text, 2, '0'))::uuid, '00000000-0000-0000-0000-000000000001',
    'p' || p, 'Partner ' || p
from generate_series(1, 4) p;
insert into tenancy.tenants (id, parent_id, slug, name)
select ('00000000-0000-0000-0000-00000002' || lpad(p::text, 2, '0') || lpad(c::text, 2, '0'))::uuid,
    ('00000000-0000-0000-0000-0000000001' || lpad(p::text, 2, '0'))::uuid, 'c' || c, 'Customer ' || c
from generate_series(1, 4) p, generate_series(1, 50) c;

create table public.orders (id bigserial primary key, tenant_id uuid not null, amount int, note text);
create table public.no_col (id int);
create table public.bad_col (id int, tenant_id text);
create view public.a_view as select * from public.orders;
create table public.other_col (id int, owner uuid);

select throws_ok($$select tenancy.register_table('public.no_col')$$, '22023', null, 'missing tenant column: 22023');
select throws_ok($$select tenancy.register_table('public.bad_col')$$, '22023', null, 'non-uuid tenant column: 22023');
select throws_ok($$select tenancy.register_table('public.a_view')$$, '22023', null, 'a view: 22023');
select throws_ok($$select tenancy.register_table('public.orders', write_scope => 'all')$$, '22023', null,
    'unknown write_scope: 22023');
select throws_ok($$select tenancy.register_table('public.no_col')$$, '22023',
    'cannot register public.no_col: it has no column tenant_id', 'the message names the table and the column');

select lives_ok($$select tenancy.register_table('public.orders')$$, 'register_table');
select lives_ok($$select tenancy.register_table('public.orders')$$, 'register_table is idempotent');
select lives_ok($$select tenancy.register_table('public.other_col', 'owner', 'visible', true)$$,
    'register_table with another column, write scope and shared rows');
select is((select count(*)::int from tenancy.scoped_tables), 2, 'two catalog rows');
select ok((select relrowsecurity and relforcerowsecurity from pg_class where oid = 'public.orders'::regclass),
    'RLS enabled and forced');
select policies_are('public', 'orders', array['tenancy_select', 'tenancy_insert', 'tenancy_update', 'tenancy_delete',
    'tenancy_platform_select', 'tenancy_platform_update', 'tenancy_platform_delete'], 'the generated policies (own)');
select policies_are('public', 'other_col', array['tenancy_select', 'tenancy_insert', 'tenancy_update',
    'tenancy_delete', 'tenancy_platform_select', 'tenancy_platform_insert', 'tenancy_platform_update',
    'tenancy_platform_delete'], 'the generated policies (visible, shared rows)');
select col_default_is('public', 'orders', 'tenant_id', 'tenancy._default_tenant()', 'tenant column defaults to the context');
select ok(exists (select from pg_index i where i.indrelid = 'public.orders'::regclass
    and i.indkey[0] = (select attnum from pg_attribute where attrelid = 'public.orders'::regclass and attname = 'tenant_id')),
    'an index led by the tenant column was created');
select is(tenancy.refresh_policies(), 2, 'refresh_policies returns the number of tables');

-- data for plan shapes: 200 customers x 100 rows
insert into public.orders (tenant_id, amount, note)
select t.id, g, repeat('x', 20) from tenancy.tenants t, generate_series(1, 100) g where t.tier = 2;
analyze public.orders;
create role tenancy_pgtap_app2 nologin;
select tenancy.grant_app('tenancy_pgtap_app2');
grant select, insert, update, delete on public.orders to tenancy_pgtap_app2;
grant usage on sequence public.orders_id_seq to tenancy_pgtap_app2;

create function pg_temp.plan_of(q text) returns text language plpgsql as $$
declare r text; o text := '';
begin
    for r in execute 'explain (costs off) ' || q loop o := o || r || E'\n'; end loop;
    return o;
end $$;

set local role tenancy_pgtap_app2;
select tenancy.set_tenant('00000000-0000-0000-0000-000000020107', true);
-- the InitPlan's output is $0 until PostgreSQL 16, (InitPlan 1).col1 from 17
select matches(pg_temp.plan_of('select * from public.orders where amount > 10'),
    'Index Cond: \(tenant_id = (\$0|\(InitPlan 1\)\.col1)\)',
    'customer: an equality on the tenant column (InitPlan parameter) as index condition');
select doesnt_match(pg_temp.plan_of('select * from public.orders where amount > 10'), 'SubPlan',
    'customer: no SubPlan');
select matches(pg_temp.plan_of('select count(*) from public.orders'), 'InitPlan 1',
    'customer: the context is read once, in an InitPlan');
select is((select count(*)::int from public.orders), 100, 'customer sees its 100 rows');
select is((select count(distinct tenant_id)::int from public.orders), 1, 'and only its own tenant');

select tenancy.set_tenant('00000000-0000-0000-0000-000000000102', true);
select matches(pg_temp.plan_of('select * from public.orders where amount > 10'), 'Index Cond: \(tenant_id = ANY',
    'partner: index condition on the tenant column');
select doesnt_match(pg_temp.plan_of('select * from public.orders where amount > 10'), 'SubPlan', 'partner: no SubPlan');
select is((select count(*)::int from public.orders), 5000, 'partner sees its 50 customers');

-- writes
select lives_ok($$insert into public.orders (amount) values (1)$$, 'insert without tenant lands in the context');
select is((select count(*)::int from public.orders where tenant_id = '00000000-0000-0000-0000-000000000102'), 1,
    'in the current tenant');
select throws_ok($$insert into public.orders (tenant_id, amount) values ('00000000-0000-0000-0000-000000020107', 1)$$,
    '42501', null, 'own scope: a partner cannot insert into its customer (42501)');
select throws_ok($$insert into public.orders (tenant_id, amount) values ('00000000-0000-0000-0000-000000020307', 1)$$,
    '42501', null, 'nor into another partner''s customer');
select tenancy.reset_tenant();
select throws_ok($$insert into public.orders (amount) values (1)$$, 'TN003', null, 'no context: insert refused with TN003');
select throws_ok($$insert into public.orders (tenant_id, amount) values ('00000000-0000-0000-0000-000000020107', 1)$$,
    'TN003', null, 'no context: an explicit tenant is refused with TN003 too');
select is((select count(*)::int from public.orders), 0, 'no context: no row');
reset role;

select lives_ok($$select tenancy.unregister_table('public.other_col')$$, 'unregister_table');
select ok((select not relrowsecurity from pg_class where oid = 'public.other_col'::regclass)
    and not exists (select from pg_policy where polrelid = 'public.other_col'::regclass),
    'unregister_table disables RLS and drops the policies');

select * from finish();
rollback;
