-- Tier invariants and path lookup.
begin;
select plan(22);

insert into tenancy.tenants (id, slug, name) values ('00000000-0000-0000-0000-000000000001', 'platform', 'Platform');
insert into tenancy.tenants (id, parent_id, slug, name)
values ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'brandsyncup', 'BrandSyncUp');
insert into tenancy.tenants (id, parent_id, slug, name)
values ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'acme', 'Acme');

select is((select tier from tenancy.tenants where slug = 'brandsyncup'), 1::smallint, 'tier derived from the parent (partner)');
select is((select tier from tenancy.tenants where slug = 'acme'), 2::smallint, 'tier derived from the parent (customer)');

select throws_ok(
    $$insert into tenancy.tenants (slug, name) values ('other-root', 'Second root')$$,
    'TN006', null, 'a second tier-0 tenant is refused with TN006'
);
select throws_ok(
    $$insert into tenancy.tenants (parent_id, tier, slug, name) values ('00000000-0000-0000-0000-000000000001', 2, 'x', 'X')$$,
    'TN006', null, 'a child whose tier is not parent+1 is refused with TN006'
);
select throws_ok(
    $$insert into tenancy.tenants (tier, slug, name) values (1, 'orphan', 'Orphan')$$,
    'TN006', null, 'a tier-1 tenant without parent is refused with TN006'
);
select throws_ok(
    $$insert into tenancy.tenants (parent_id, slug, name) values ('00000000-0000-0000-0000-0000000000a1', 'deep', 'Too deep')$$,
    'TN006', null, 'a child of a customer (tier 3) is refused with TN006'
);
select throws_ok(
    $$insert into tenancy.tenants (parent_id, slug, name) values ('00000000-0000-0000-0000-00000000000a', 'Acme Corp', 'Bad')$$,
    '22023', null, 'a slug that is not a DNS label is refused with 22023'
);
select throws_ok(
    $$insert into tenancy.tenants (parent_id, slug, name) values ('00000000-0000-0000-0000-00000000000a', '-acme', 'Bad')$$,
    '22023', null, 'a slug with a leading hyphen is refused with 22023'
);
select throws_ok(
    $$insert into tenancy.tenants (parent_id, slug, name) values ('00000000-0000-0000-0000-00000000000a', 'acme', 'Dup')$$,
    '23505', null, 'slugs are unique among siblings'
);
select lives_ok(
    $$insert into tenancy.tenants (parent_id, slug, name) values ('00000000-0000-0000-0000-000000000001', 'acme', 'Same slug, other parent')$$,
    'the same slug under another parent is fine'
);

select is(tenancy.tenant_id(''), '00000000-0000-0000-0000-000000000001'::uuid, 'tenant_id('''') is the root');
select is(tenancy.tenant_id('brandsyncup/acme'), '00000000-0000-0000-0000-0000000000a1'::uuid, 'tenant_id of a customer path');
select throws_ok($$select tenancy.tenant_id('brandsyncup/nobody')$$, 'TN001', null, 'unknown path: TN001');
select throws_ok($$select tenancy.tenant_id('nobody')$$, 'TN001', null, 'unknown partner: TN001');
select throws_ok($$select tenancy.tenant_id('a/b/c')$$, '22023', null, 'a path of three segments: 22023');
select throws_ok($$select tenancy.tenant_id('brandsyncup//acme')$$, '22023', null, 'an empty segment: 22023');
select throws_ok($$select tenancy.tenant_id('BrandSyncUp')$$, '22023', null, 'a segment that is not a slug: 22023');
select throws_ok($$select tenancy.tenant_id('/')$$, '22023', null, 'a lone slash: 22023');
select throws_ok($$select tenancy.tenant_id('brandsyncup/')$$, '22023', null, 'a trailing slash: 22023');
select throws_ok($$select tenancy.tenant_id(null)$$, '22023', null, 'null: 22023');
select lives_ok($$insert into tenancy.tenants (parent_id, slug) values ('00000000-0000-0000-0000-000000000001', 'noname')$$,
    'name may be omitted');
select is((select name from tenancy.tenants where slug = 'noname'), 'noname', 'and defaults to the slug');

select * from finish();
rollback;
