-- Tenant context: set_tenant, errors, visibility, forgery.
begin;
select plan(17);

insert into tenancy.tenants (id, slug, name) values ('00000000-0000-0000-0000-000000000001', 'platform', 'Platform');
insert into tenancy.tenants (id, parent_id, slug, name) values
('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'brandsyncup', 'BrandSyncUp'),
('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-000000000001', 'pixelworks', 'Pixelworks');
insert into tenancy.tenants (id, parent_id, slug, name, status) values
('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'acme', 'Acme', 'active'),
('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-00000000000a', 'globex', 'Globex', 'suspended'),
('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000b', 'initech', 'Initech', 'active');

create role tenancy_pgtap_app nologin;
create role tenancy_pgtap_platform nologin;
select tenancy.grant_app('tenancy_pgtap_app');
select tenancy.grant_platform('tenancy_pgtap_platform');
set local role tenancy_pgtap_app;

select is(tenancy.current_tenant(), null, 'no context: current_tenant is null');
select is(tenancy.current_tier(), null, 'no context: current_tier is null');
select is(tenancy.visible_tenants(), '{}'::uuid[], 'no context: nothing visible');
select is((select count(*) from tenancy.tenants), 0::bigint, 'no context: tenants shows no row');

select throws_ok($$select tenancy.set_tenant('00000000-0000-0000-0000-0000000000ff')$$, 'TN001', null, 'unknown tenant: TN001');
select throws_ok($$select tenancy.set_tenant('00000000-0000-0000-0000-0000000000a2')$$, 'TN002', null, 'suspended tenant: TN002');
select throws_ok($$select tenancy.set_tenant('00000000-0000-0000-0000-000000000001')$$, 'TN007', null,
    'tier 0 for a role outside tenancy_platform: TN007');

select is(tenancy.set_tenant('00000000-0000-0000-0000-00000000000a'), '00000000-0000-0000-0000-00000000000a'::uuid,
    'set_tenant returns the id');
select is(tenancy.current_tier(), 1::smallint, 'partner context: tier 1');
select bag_eq($$select unnest(tenancy.visible_tenants())$$,
    $$values ('00000000-0000-0000-0000-00000000000a'::uuid), ('00000000-0000-0000-0000-0000000000a1'), ('00000000-0000-0000-0000-0000000000a2')$$,
    'a partner sees itself and its children');
select bag_eq($$select slug from tenancy.tenants$$, $$values ('brandsyncup'), ('acme'), ('globex')$$,
    'tenants under a partner context');

select tenancy.set_tenant('00000000-0000-0000-0000-0000000000a1', true);
select is(tenancy.visible_tenants(), array['00000000-0000-0000-0000-0000000000a1'::uuid], 'a customer sees only itself');

-- a hand-written setting is no context
select tenancy.reset_tenant();
select set_config('tenancy.ctx', 'deadbeefdeadbeefdeadbeefdeadbeef', false);
select is(tenancy.current_tenant(), null, 'a hand-written context setting is no context');
select is((select count(*) from tenancy.tenants), 0::bigint, 'and shows no row');

reset role;
set local role tenancy_pgtap_platform;
select tenancy.set_tenant('00000000-0000-0000-0000-000000000001');
select is(tenancy.current_tier(), 0::smallint, 'a platform role takes tier 0');
select is((select count(*) from tenancy.tenants), 6::bigint, 'tier 0 sees every tenant');
select is(cardinality(tenancy.visible_tenants()), 6, 'visible_tenants at tier 0 lists every tenant');

select * from finish();
rollback;
