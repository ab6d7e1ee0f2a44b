-- Domains: normalization, the mappings table, resolution, set_tenant_for_domain, visibility.
begin;
select plan(155);

-- platform -> brandsyncup (acme, globex suspended, hooli), pixelworks (initech)
insert into tenancy.tenants (id, slug, name) values ('00000000-0000-0000-0000-000000000001', 'platform', 'Platform');
insert into tenancy.tenants (id, parent_id, slug, name) values
('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'brandsyncup', 'BrandSyncUp'),
('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-000000000001', 'pixelworks', 'Pixelworks');
insert into tenancy.tenants (id, parent_id, slug, name, status) values
('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'acme', 'Acme', 'active'),
('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-00000000000a', 'globex', 'Globex', 'suspended'),
('00000000-0000-0000-0000-0000000000a3', '00000000-0000-0000-0000-00000000000a', 'hooli', 'Hooli', 'active'),
('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000b', 'initech', 'Initech', 'active');

-- written in every spelling normalization accepts
insert into tenancy.domain_mappings (domain, tenant_id, is_primary, status) values
('Acme.Example.COM.', '00000000-0000-0000-0000-0000000000a1', true, 'active'),
(' *.BrandSyncUp.com ', '00000000-0000-0000-0000-00000000000a', false, 'active'),
('pixelworks.io:443', '00000000-0000-0000-0000-00000000000b', true, 'active'),
('*.eu.brandsyncup.com', '00000000-0000-0000-0000-00000000000b', false, 'active'),
('bücher.example', '00000000-0000-0000-0000-0000000000b1', false, 'active'),
('globex.example.com', '00000000-0000-0000-0000-0000000000a2', false, 'active'),
('hooli.brandsyncup.com', '00000000-0000-0000-0000-0000000000b1', false, 'active'),
('pending.example.com', '00000000-0000-0000-0000-0000000000a1', false, 'pending'),
('*.pending.example', '00000000-0000-0000-0000-00000000000b', false, 'pending'),
('*.platform.test', '00000000-0000-0000-0000-000000000001', false, 'active'),
('initech.example', '00000000-0000-0000-0000-0000000000b1', true, 'pending');

-- objects ---------------------------------------------------------------------------------------
select has_table('tenancy', 'domain_mappings', 'domain_mappings table');
select col_is_pk('tenancy', 'domain_mappings', 'domain', 'domain is the primary key');
select fk_ok('tenancy', 'domain_mappings', 'tenant_id', 'tenancy', 'tenants', 'id');
select ok(
    (select 'tenancy.domain_mappings'::regclass = any(extconfig) from pg_extension where extname = 'tenancy'),
    'domain_mappings is registered with pg_extension_config_dump'
);
select ok(
    (select relrowsecurity and relforcerowsecurity from pg_class where oid = 'tenancy.domain_mappings'::regclass),
    'domain_mappings has row-level security enabled and forced'
);
select volatility_is('tenancy', 'normalize_host', array['text'], 'immutable', 'normalize_host is immutable');
select is(
    (select proparallel from pg_proc where oid = 'tenancy.normalize_host(text)'::regprocedure), 'u',
    'normalize_host is parallel unsafe (PL/Python that loads modules through SQL: docs/decisions/0004)'
);
select is_definer('tenancy', 'resolve_domain', array['text'], 'resolve_domain is SECURITY DEFINER');
select volatility_is('tenancy', 'resolve_domain', array['text'], 'stable', 'resolve_domain is stable');
select is_definer('tenancy', 'resolve_domain_details', array['text'], 'resolve_domain_details is SECURITY DEFINER');
select is_definer('tenancy', 'primary_domain', array['uuid'], 'primary_domain is SECURITY DEFINER');
select isnt_definer(
    'tenancy', 'set_tenant_for_domain', array['text', 'boolean'],
    'set_tenant_for_domain is SECURITY INVOKER (set_tenant checks the caller)'
);
select function_returns('tenancy', 'resolve_domain', array['text'], 'uuid');
select function_returns('tenancy', 'set_tenant_for_domain', array['text', 'boolean'], 'uuid');
select function_returns('tenancy', 'primary_domain', array['uuid'], 'text');
select is(
    (select array_agg(a order by o) from pg_proc p, unnest(p.proargnames) with ordinality x (a, o)
     where p.oid = 'tenancy.resolve_domain_details(text)'::regprocedure),
    array['host', 'tenant_id', 'tier', 'path', 'matched', 'match_kind'],
    'resolve_domain_details(host) returns tenant_id, tier, path, matched, match_kind'
);

-- stored normalized -----------------------------------------------------------------------------
select bag_eq(
    $$select domain from tenancy.domain_mappings$$,
    $$values ('acme.example.com'), ('*.brandsyncup.com'), ('pixelworks.io'), ('*.eu.brandsyncup.com'),
             ('xn--bcher-kva.example'), ('globex.example.com'), ('hooli.brandsyncup.com'), ('pending.example.com'),
             ('*.pending.example'), ('*.platform.test'), ('initech.example')$$,
    'mappings are stored normalized (case, trailing dot, port, white space, IDN)'
);
select throws_ok(
    $$insert into tenancy.domain_mappings (domain, tenant_id) values ('ACME.example.com', '00000000-0000-0000-0000-0000000000a3')$$,
    '23505', null, 'the same host in another spelling is the same primary key'
);

-- normalize_host: accepted spellings ------------------------------------------------------------
create temp table good_hosts (host text, normalized text, why text);
insert into good_hosts values
('brand.example.com', 'brand.example.com', 'already normalized'),
('Brand.Example.COM.', 'brand.example.com', 'case and one trailing dot'),
('  brand.example.com' || E'\t', 'brand.example.com', 'surrounding white space'),
('brand.example.com:8443', 'brand.example.com', 'a port'),
('brand.example.com.:443', 'brand.example.com', 'a trailing dot before the port'),
('bücher.example', 'xn--bcher-kva.example', 'IDN: unicode to punycode'),
('xn--bcher-kva.example', 'xn--bcher-kva.example', 'IDN: punycode stays'),
('BÜCHER.Example.:80', 'xn--bcher-kva.example', 'IDN: case, dot and port too'),
('straße.de', 'xn--strae-oqa.de', 'IDNA 2008 / UTS #46 non-transitional keeps sharp s'),
('strasse.de', 'strasse.de', 'strasse.de is another domain than straße.de'),
('βόλος.com', 'xn--nxasmm1c.com', 'UTS #46 non-transitional keeps final sigma'),
('ＡＢＣ.com', 'abc.com', 'IDN: fullwidth letters are mapped to ASCII'),
('ｂüｃｈｅｒ．ｅｘａｍｐｌｅ', 'xn--bcher-kva.example', 'IDN: fullwidth letters and dots'),
('bücher。example', 'xn--bcher-kva.example', 'IDN: the ideographic full stop separates labels'),
('localhost', 'localhost', 'one label'),
('a-b--c.example', 'a-b--c.example', 'inner hyphens'),
('3com.com', '3com.com', 'a label may start with a digit'),
('x.0xgg', 'x.0xgg', 'a last label that is not a hex number'),
(repeat('a', 63) || '.com', repeat('a', 63) || '.com', 'a label of 63 characters'),
(repeat('abcdefghi.', 25) || 'com', repeat('abcdefghi.', 25) || 'com', 'a host of 253 characters');
select is(tenancy.normalize_host(g.host), g.normalized, 'normalize_host: ' || g.why) from good_hosts g;

-- normalize_host: refused, each with 22023 -------------------------------------------------------
create temp table bad_hosts (host text, why text);
insert into bad_hosts values
(null, 'null'),
('', 'empty'),
('   ', 'white space only'),
('.', 'a dot only'),
(':443', 'a port only'),
('a..example.com', 'an empty label'),
('.example.com', 'a leading dot'),
('example.com..', 'two trailing dots'),
(repeat('a', 64) || '.com', 'a label of 64 characters'),
(repeat('abcdefghi.', 25) || 'comm', 'a host of 254 characters'),
('exa_mple.com', 'an underscore'),
('exa mple.com', 'inner white space'),
('-brand.example.com', 'a label starting with a hyphen'),
('brand-.example.com', 'a label ending with a hyphen'),
('1.2.3.4', 'an IPv4 literal'),
('10.0.0.1:8080', 'an IPv4 literal with a port'),
('127.1', 'an IPv4 shorthand'),
('0x7f.0x1', 'an IPv4 literal in hex'),
('[::1]', 'a bracketed IPv6 literal'),
('[2001:db8::1]:443', 'a bracketed IPv6 literal with a port'),
('2001:db8::1', 'a bare IPv6 literal'),
('https://brand.example.com', 'a URL'),
('brand.example.com/path', 'a path'),
('brand.example.com?q=1', 'a query'),
('brand.example.com#top', 'a fragment'),
('user@brand.example.com', 'user info'),
('*.brand.example.com', 'a wildcard (only mappings take one)'),
('brand.example.com:', 'an empty port'),
('brand.example.com:http', 'a port that is not a number'),
('bü cher.example', 'IDN with white space'),
(repeat('ü', 64) || '.com', 'IDN label longer than 63 in punycode'),
('💩.la', 'a symbol IDNA 2008 does not allow (IDNA 2003 did)'),
('a' || chr(8204) || 'b.example', 'a zero width non-joiner outside its context (CONTEXTJ)');
select throws_ok(
    pg_catalog.format('select tenancy.normalize_host(%L)', b.host), '22023', null, 'normalize_host refuses ' || b.why
)
from bad_hosts b;
select throws_ok(
    $$select tenancy.normalize_host('1.2.3.4')$$, '22023', 'host name ''1.2.3.4'' is an IP address literal, not a host name',
    'the message names the host'
);
select throws_ok(
    $$select tenancy.normalize_host('exa_mple.com')$$, '22023',
    'host name ''exa_mple.com'' has characters outside the host name grammar (letters, digits, hyphens, dots)',
    'the message says what is wrong'
);

-- wildcards in mappings --------------------------------------------------------------------------
select throws_ok(
    pg_catalog.format(
        'insert into tenancy.domain_mappings (domain, tenant_id) values (%L, ''00000000-0000-0000-0000-00000000000b'')', w
    ),
    '22023', null, 'a mapping refuses the wildcard ' || w
)
from unnest(array['*.com', '*', '*.', 'a.*.example.com', '*.*.example.com', '**.example.com', '*.1.2.3.4', '*.a_b.com']) w;
select throws_ok(
    $$insert into tenancy.domain_mappings (domain, tenant_id, is_primary)
      values ('*.pixel.example', '00000000-0000-0000-0000-00000000000b', false),
             ('*.works.example', '00000000-0000-0000-0000-0000000000b1', true)$$,
    '22023', null, 'a wildcard cannot be a primary domain'
);
select throws_ok(
    $$insert into tenancy.domain_mappings (domain, tenant_id) values ('Not A Host', '00000000-0000-0000-0000-00000000000b')$$,
    '22023', null, 'a mapping refuses a malformed host'
);
select throws_ok(
    $$insert into tenancy.domain_mappings (domain, tenant_id, status) values ('x.example', '00000000-0000-0000-0000-00000000000b', 'paused')$$,
    '23514', null, 'status is active or pending'
);
select throws_ok(
    $$update tenancy.domain_mappings set domain = '1.2.3.4' where domain = 'pixelworks.io'$$,
    '22023', null, 'an update is normalized and checked too'
);

-- a writer with BYPASSRLS and INSERT only (no execute on any tenancy function): the trigger normalizes
create role tenancy_pgtap_dom_writer nologin bypassrls;
grant usage on schema tenancy to tenancy_pgtap_dom_writer;
grant insert, delete on tenancy.domain_mappings to tenancy_pgtap_dom_writer;
set local role tenancy_pgtap_dom_writer;
select lives_ok(
    $$insert into tenancy.domain_mappings (domain, tenant_id) values ('Writer.Example.', '00000000-0000-0000-0000-00000000000b')$$,
    'a BYPASSRLS writer needs no execute grant: the trigger runs as the owner'
);
reset role;
select is(
    (select count(*) from tenancy.domain_mappings where domain = 'writer.example'), 1::bigint, 'and the host is normalized'
);
delete from tenancy.domain_mappings where domain = 'writer.example';

-- resolution vectors ------------------------------------------------------------------------------
create temp table vectors (host text, expected uuid, why text);
insert into vectors values
('acme.example.com', '00000000-0000-0000-0000-0000000000a1', 'exact custom domain'),
('ACME.Example.Com', '00000000-0000-0000-0000-0000000000a1', 'case'),
('acme.example.com.', '00000000-0000-0000-0000-0000000000a1', 'trailing dot'),
('acme.example.com:8443', '00000000-0000-0000-0000-0000000000a1', 'port'),
(' acme.example.com ', '00000000-0000-0000-0000-0000000000a1', 'white space'),
('bücher.example', '00000000-0000-0000-0000-0000000000b1', 'IDN in unicode'),
('xn--bcher-kva.example', '00000000-0000-0000-0000-0000000000b1', 'IDN in punycode'),
('BÜCHER.example.:443', '00000000-0000-0000-0000-0000000000b1', 'IDN, case, dot and port'),
('pixelworks.io', '00000000-0000-0000-0000-00000000000b', 'a partner''s exact domain'),
('acme.brandsyncup.com', '00000000-0000-0000-0000-0000000000a1', 'wildcard: a child of the partner'),
('Acme.BrandSyncUp.com:443', '00000000-0000-0000-0000-0000000000a1', 'wildcard, case and port'),
('globex.brandsyncup.com', '00000000-0000-0000-0000-0000000000a2', 'wildcard: a suspended child resolves'),
('globex.example.com', '00000000-0000-0000-0000-0000000000a2', 'exact: a suspended tenant resolves'),
('hooli.brandsyncup.com', '00000000-0000-0000-0000-0000000000b1', 'an exact mapping beats the wildcard'),
('initech.eu.brandsyncup.com', '00000000-0000-0000-0000-0000000000b1', 'the longest wildcard wins'),
('acme.eu.brandsyncup.com', null, 'the longest wildcard wins, even without such a child'),
('brandsyncup.platform.test', '00000000-0000-0000-0000-00000000000a', 'a platform wildcard: a partner'),
('evilbrandsyncup.com', null, 'a host that merely ends with the base'),
('acme.evilbrandsyncup.com', null, 'a child of a look-alike base'),
('brandsyncup.com', null, 'the wildcard''s base itself'),
('a.acme.brandsyncup.com', null, 'two labels before the base'),
('nobody.brandsyncup.com', null, 'no such child'),
('initech.brandsyncup.com', null, 'a tenant that is not a child of the wildcard''s tenant'),
('pending.example.com', null, 'a pending exact mapping'),
('initech.pending.example', null, 'a pending wildcard'),
('initech.example', null, 'a pending primary'),
('unknown.example.org', null, 'unknown'),
('localhost', null, 'one label, unknown');
select is(tenancy.resolve_domain(v.host), v.expected, 'resolve_domain: ' || v.why || ' (' || v.host || ')')
from vectors v;

select throws_ok($$select tenancy.resolve_domain('1.2.3.4')$$, '22023', null, 'resolve_domain: an IP literal is 22023');
select throws_ok($$select tenancy.resolve_domain(null)$$, '22023', null, 'resolve_domain: null is 22023');
select throws_ok(
    $$select tenancy.resolve_domain('*.brandsyncup.com')$$, '22023', null, 'resolve_domain: a wildcard is not a host'
);

-- details -----------------------------------------------------------------------------------------
select results_eq(
    $$select * from tenancy.resolve_domain_details('ACME.brandsyncup.com')$$,
    $$values ('00000000-0000-0000-0000-0000000000a1'::uuid, 2::smallint, 'brandsyncup/acme'::text,
              '*.brandsyncup.com'::text, 'wildcard'::text)$$,
    'resolve_domain_details: a wildcard match'
);
select results_eq(
    $$select * from tenancy.resolve_domain_details('acme.example.com.')$$,
    $$values ('00000000-0000-0000-0000-0000000000a1'::uuid, 2::smallint, 'brandsyncup/acme'::text,
              'acme.example.com'::text, 'exact'::text)$$,
    'resolve_domain_details: an exact match'
);
select results_eq(
    $$select tier, path, match_kind from tenancy.resolve_domain_details('hooli.brandsyncup.com')$$,
    $$values (2::smallint, 'pixelworks/initech'::text, 'exact'::text)$$,
    'resolve_domain_details: exact before wildcard'
);
select results_eq(
    $$select path, matched from tenancy.resolve_domain_details('brandsyncup.platform.test')$$,
    $$values ('brandsyncup'::text, '*.platform.test'::text)$$,
    'resolve_domain_details: a partner under the platform wildcard'
);
select is_empty($$select * from tenancy.resolve_domain_details('unknown.example.org')$$,
    'resolve_domain_details: no row when nothing resolves');
select is_empty($$select * from tenancy.resolve_domain_details('pending.example.com')$$,
    'resolve_domain_details: no row for a pending mapping');
select throws_ok($$select * from tenancy.resolve_domain_details('a..b')$$, '22023', null,
    'resolve_domain_details: 22023 for a malformed host');

-- primary_domain, one primary per tenant -----------------------------------------------------------
select is(tenancy.primary_domain('00000000-0000-0000-0000-0000000000a1'), 'acme.example.com', 'primary_domain of acme');
select is(tenancy.primary_domain('00000000-0000-0000-0000-00000000000b'), 'pixelworks.io', 'primary_domain of pixelworks');
select is(tenancy.primary_domain('00000000-0000-0000-0000-00000000000a'), null, 'no primary: null');
select is(tenancy.primary_domain('00000000-0000-0000-0000-0000000000b1'), null, 'a pending primary: null');
select is(tenancy.primary_domain('00000000-0000-0000-0000-0000000000ff'), null, 'an unknown tenant: null');
select throws_ok(
    $$insert into tenancy.domain_mappings (domain, tenant_id, is_primary)
      values ('acme2.example.com', '00000000-0000-0000-0000-0000000000a1', true)$$,
    '23505', null, 'at most one primary per tenant'
);
select lives_ok(
    $$insert into tenancy.domain_mappings (domain, tenant_id) values ('acme2.example.com', '00000000-0000-0000-0000-0000000000a1')$$,
    'a second, non-primary mapping is fine'
);

-- from an application role: RLS on the table, resolution without context ---------------------------
create role tenancy_pgtap_dom_app nologin;
create role tenancy_pgtap_dom_platform nologin;
select tenancy.grant_app('tenancy_pgtap_dom_app');
select tenancy.grant_platform('tenancy_pgtap_dom_platform');
set local role tenancy_pgtap_dom_app;

select is((select count(*) from tenancy.domain_mappings), 0::bigint, 'no context: the app role sees no mapping');
select is(tenancy.resolve_domain('acme.brandsyncup.com'), '00000000-0000-0000-0000-0000000000a1'::uuid,
    'no context: resolve_domain works for the app role');
select is(tenancy.primary_domain('00000000-0000-0000-0000-0000000000a1'), 'acme.example.com',
    'no context: primary_domain works for the app role');
select is((select count(*) from tenancy.resolve_domain_details('acme.example.com')), 1::bigint,
    'no context: resolve_domain_details works for the app role');
select throws_ok(
    $$insert into tenancy.domain_mappings (domain, tenant_id) values ('evil.example', '00000000-0000-0000-0000-0000000000a1')$$,
    '42501', null, 'the app role cannot insert mappings'
);
select throws_ok(
    $$delete from tenancy.domain_mappings$$, '42501', null, 'the app role cannot delete mappings'
);

select throws_ok(
    $$select tenancy.set_tenant_for_domain('nope.example.org')$$, 'TN005',
    'unknown domain ''nope.example.org'': no active domain mapping resolves it', 'set_tenant_for_domain: TN005 names the host'
);
select throws_ok(
    $$select tenancy.set_tenant_for_domain('pending.example.com')$$, 'TN005', null,
    'set_tenant_for_domain: a pending mapping is TN005'
);
select throws_ok(
    $$select tenancy.set_tenant_for_domain('http://acme.example.com/')$$, '22023', null,
    'set_tenant_for_domain: a malformed host is 22023'
);
select throws_ok(
    $$select tenancy.set_tenant_for_domain('globex.brandsyncup.com')$$, 'TN002', null,
    'set_tenant_for_domain: a suspended tenant resolves but set_tenant refuses it (TN002)'
);
select throws_ok(
    $$select tenancy.set_tenant_for_domain('platform.test.')$$, 'TN005', null,
    'set_tenant_for_domain: the wildcard base itself is not mapped'
);

select is(tenancy.set_tenant_for_domain('brandsyncup.platform.test'), '00000000-0000-0000-0000-00000000000a'::uuid,
    'set_tenant_for_domain returns the id');
select is(tenancy.current_tenant(), '00000000-0000-0000-0000-00000000000a'::uuid, 'and sets the context');
select bag_eq(
    $$select domain from tenancy.domain_mappings$$,
    $$values ('acme.example.com'), ('acme2.example.com'), ('*.brandsyncup.com'), ('globex.example.com'),
             ('pending.example.com')$$,
    'a partner sees its own and its customers'' mappings'
);
select is(tenancy.set_tenant_for_domain('ACME.example.com', true), '00000000-0000-0000-0000-0000000000a1'::uuid,
    'set_tenant_for_domain with local => true');
select bag_eq(
    $$select domain from tenancy.domain_mappings$$,
    $$values ('acme.example.com'), ('acme2.example.com'), ('pending.example.com')$$,
    'a customer sees only its own mappings'
);
select throws_ok(
    $$select tenancy.set_tenant_for_domain('unknown.example.org')$$, 'TN005', null, 'a refusal ...'
);
select is(tenancy.current_tenant(), '00000000-0000-0000-0000-0000000000a1'::uuid, '... keeps the previous context');

reset role;
set local role tenancy_pgtap_dom_platform;
select is(tenancy.set_tenant('00000000-0000-0000-0000-000000000001'), '00000000-0000-0000-0000-000000000001'::uuid,
    'a platform role takes tier 0');
select is((select count(*) from tenancy.domain_mappings), 12::bigint, 'tier 0 sees every mapping');
reset role;

-- cascade ------------------------------------------------------------------------------------------
select is(
    (select count(*) from tenancy.domain_mappings where tenant_id = '00000000-0000-0000-0000-0000000000a1'), 3::bigint,
    'acme has three mappings'
);
delete from tenancy.tenants where id = '00000000-0000-0000-0000-0000000000a1';
select is(
    (select count(*) from tenancy.domain_mappings where tenant_id = '00000000-0000-0000-0000-0000000000a1'), 0::bigint,
    'deleting a tenant deletes its mappings (on delete cascade)'
);
select is(tenancy.resolve_domain('acme.example.com'), null, 'and its hosts no longer resolve');

select * from finish();
rollback;
