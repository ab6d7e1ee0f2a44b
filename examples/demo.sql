-- tenancy walkthrough (run by `make demo`). Each section is plain SQL you can paste into psql.
\pset border 1
\pset null '(null)'
\set SHOW_CONTEXT never
\echo
\echo '== 1. Install: CREATE EXTENSION tenancy (as a superuser, once per database)'
create extension tenancy cascade;

\echo
\echo '== 2. A platform, two partners, their customers (tier 0 -> 1 -> 2)'
insert into tenancy.tenants (slug, name) values ('platform', 'The Platform');
insert into tenancy.tenants (parent_id, slug, name)
select tenancy.tenant_id(''), v.slug, v.name
from (values ('brandsyncup', 'BrandSyncUp'), ('pixelworks', 'Pixelworks')) as v (slug, name);
insert into tenancy.tenants (parent_id, slug, name)
select tenancy.tenant_id(v.parent), v.slug, v.name
from (values ('brandsyncup', 'acme', 'Acme Inc.'), ('brandsyncup', 'globex', 'Globex'),
             ('pixelworks', 'initech', 'Initech')) as v (parent, slug, name);
\echo 'a tenant path names a tenant by its slugs; the root''s path is the empty string '''' (NULL prints as (null)):'
select tier, pg_catalog.quote_literal(tenancy.tenant_path(id)) as path, name, status from tenancy.tenants
order by tier, path;

\echo
\echo '== 3. Application logins: one for customer traffic, one for the platform console'
create role demo_app login;
create role demo_console login;
select tenancy.grant_app('demo_app') \g /dev/null
select tenancy.grant_platform('demo_console') \g /dev/null

\echo
\echo '== 3b. A tenant-scoped table: register it once, tenancy generates and guards its policies'
create table public.orders (
    id bigserial primary key, tenant_id uuid not null, item text not null, amount numeric not null
);
select tenancy.register_table('public.orders') \g /dev/null
grant select, insert, update, delete on public.orders to demo_app, demo_console;
-- a sloppy grant, as real teams make: section 6 and check() (section 9) show what tenancy makes of it
grant truncate on public.orders to demo_app;
grant usage on sequence public.orders_id_seq to demo_app, demo_console;
insert into public.orders (tenant_id, item, amount)
select tenancy.tenant_id(v.path), v.item, v.amount
from (values ('brandsyncup', 'partner seats', 900), ('brandsyncup/acme', 'rockets', 120),
             ('brandsyncup/acme', 'anvils', 80), ('brandsyncup/globex', 'widgets', 45),
             ('pixelworks/initech', 'staplers', 12)) as v (path, item, amount);
\echo 'policies generated on public.orders (public: every role; tenancy_platform: the tier-0 context):'
select polname as policy, case polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
    when 'd' then 'delete' end as command,
    array(select case when r = 0 then 'public' else r::regrole::text end from unnest(polroles) as r)::text as roles
from pg_policy where polrelid = 'public.orders'::regclass order by polname;
\echo 'guards refuse drift (TN006): disabling RLS, and a permissive policy of one''s own (ORed, it would widen):'
\set ON_ERROR_STOP 0
alter table public.orders disable row level security;
create policy see_all on public.orders using (true);
\set ON_ERROR_STOP 1
\echo 'a restrictive policy (ANDed: it can only narrow) is allowed; check() lists it as info (section 9):'
create policy positive_amounts on public.orders as restrictive using (amount > 0);

\echo
\echo '== 3c. Domains: custom domains and a wildcard for the partner''s customers (stored normalized)'
insert into tenancy.domain_mappings (domain, tenant_id, is_primary)
select v.domain, tenancy.tenant_id(v.path), v.is_primary
from (values ('Acme.Example.COM.', 'brandsyncup/acme', true), ('*.brandsyncup.com', 'brandsyncup', false),
             ('app.brandsyncup.com', 'brandsyncup', true), ('pixelworks.io', 'pixelworks', true),
             ('*.pixelworks.io', 'pixelworks', false)) as v (domain, path, is_primary);
select domain, tenancy.tenant_path(tenant_id) as tenant, is_primary from tenancy.domain_mappings order by domain;

\echo
\echo 'The application connects as demo_app (not a superuser, no BYPASSRLS). From here on: set role demo_app.'
set role demo_app;

\echo
\echo '== 4. No context: the database shows nothing'
select count(*) as tenants_visible_without_context from tenancy.tenants;

\echo
\echo '== 4b. Which tenant owns this host? Resolved in the database, before any context exists'
select h.host, d.path, d.matched, d.match_kind
from (values ('acme.example.com'), ('GLOBEX.brandsyncup.com:443'), ('initech.pixelworks.io'),
             ('unknown.example.org')) as h (host)
left join lateral tenancy.resolve_domain_details(h.host) as d on true;
\echo 'an unknown host cannot become a context (TN005):'
\set ON_ERROR_STOP 0
select tenancy.set_tenant_for_domain('unknown.example.org');
\set ON_ERROR_STOP 1
begin;
select tenancy.tenant_path(tenancy.set_tenant_for_domain('globex.brandsyncup.com', local => true)) as context_from_host;
select item, amount from public.orders;
commit;

\echo
\echo '== 5. As the partner brandsyncup: itself and its customers'
select tenancy.tenant_path(tenancy.set_tenant(tenancy.tenant_id('brandsyncup'))) as context;
select tenancy.current_tier() as context_tier;
select tier, tenancy.tenant_path(id) as path, name from tenancy.tenants order by path;
select tenancy.tenant_path(tenant_id) as owner, item, amount from public.orders order by owner, item;

\echo
\echo '== 6. As the customer brandsyncup/acme, for one transaction only (what a pooled app does)'
begin;
select tenancy.tenant_path(tenancy.set_tenant(tenancy.tenant_id('brandsyncup/acme'), local => true)) as context;
select tenancy.current_tier() as context_tier;
select tier, tenancy.tenant_path(id) as path, name from tenancy.tenants;
select tenancy.tenant_path(tenant_id) as owner, item, amount from public.orders order by item;
insert into public.orders (item, amount) values ('more rockets', 60)
returning tenancy.tenant_path(tenant_id) as inserted_into, item;
\echo 'writing into another tenant is refused by row-level security (42501); a savepoint keeps the rest:'
savepoint before_sneaky;
\set ON_ERROR_STOP 0
insert into public.orders (tenant_id, item, amount) values (tenancy.tenant_id('pixelworks/initech'), 'sneaky', 1);
\set ON_ERROR_STOP 1
rollback to savepoint before_sneaky;
commit;
\echo 'after COMMIT the local context is gone and the session context (brandsyncup) is back:'
select tenancy.tenant_path(tenancy.current_tenant()) as current_path;
\echo 'reset_tenant() ends every context; with none, nothing is visible and writes are refused (TN003):'
select tenancy.reset_tenant() \g /dev/null
select tenancy.current_tenant() as current_tenant, count(*) as orders_visible from public.orders;
\set ON_ERROR_STOP 0
insert into public.orders (item, amount) values ('orphan', 1);
\echo 'nor can the application empty the table: TRUNCATE ignores row-level security, so tenancy refuses it (TN006):'
truncate public.orders;
\set ON_ERROR_STOP 1

\echo
\echo '== 7. Customer traffic cannot widen its view to the platform (TN007), and a forged setting is no context'
\set ON_ERROR_STOP 0
select tenancy.set_tenant(tenancy.tenant_id(''));
\set ON_ERROR_STOP 1
select set_config('tenancy.ctx', '0123456789abcdef0123456789abcdef', false) as forged_setting;
select count(*) as tenants_visible_with_forged_context from tenancy.tenants;

\echo
\echo '== 8. The platform console (member of tenancy_platform) takes tier 0 and sees everything'
reset role;
set role demo_console;
select quote_literal(tenancy.tenant_path(tenancy.set_tenant(tenancy.tenant_id('')))) as context;
select tenancy.current_tier() as context_tier, count(*) as tenants_visible_at_tier_0 from tenancy.tenants;
\echo 'every order, including the more rockets acme wrote in section 6:'
select tenancy.tenant_path(tenant_id) as owner, count(*) as orders, sum(amount) as total
from public.orders group by 1 order by 1;
reset role;

\echo
\echo '== 9. tenancy.check(): drift and leak audit (run as the DBA here, so it flags the superuser too)'
\echo '   each code is explained in docs/check.md; tenancy lint gates CI on them'
create view public.order_totals as select tenant_id, sum(amount) from public.orders group by 1;
select code, severity, object, problem from tenancy.check() order by severity, object;

\echo
\echo '== 10. Design tokens: the platform protects, partners brand, customers fine-tune'
select tenancy.set_tokens(tenancy.tenant_id(''), '{
  "color": {"$type": "color",
    "brand": {"primary": {"$value": "#333333"}},
    "text": {"$value": "{color.brand.primary}"},
    "bg": {"$value": "#ffffff"},
    "error": {"$value": "#d32f2f"}},
  "space": {"$type": "dimension", "md": {"$value": "16px"}}}') \g /dev/null
select tenancy.set_token_rule(tenancy.tenant_id(''), 'color.error', 'lock') \g /dev/null
select tenancy.set_token_rule(tenancy.tenant_id(''), 'color.text', 'min_contrast',
    '{"against": "color.bg", "ratio": 4.5}') \g /dev/null
select tenancy.set_tokens(tenancy.tenant_id('brandsyncup'),
    '{"color": {"brand": {"primary": {"$value": "#0050b3"}}}}') \g /dev/null
select tenancy.set_token_rule(tenancy.tenant_id('brandsyncup'), 'space.md', 'range',
    '{"min": "8px", "max": "24px"}') \g /dev/null
select tenancy.set_tokens(tenancy.tenant_id('pixelworks'),
    '{"color": {"brand": {"primary": {"$value": "#6a1b9a"}}}, "space": {"md": {"$value": "12px"}}}') \g /dev/null
select tenancy.set_tokens(tenancy.tenant_id('brandsyncup/acme'), '{"space": {"md": {"$value": "20px"}}}') \g /dev/null
\echo 'each tier''s own layer, and the rules it sets for its descendants:'
select coalesce(nullif(tenancy.tenant_path(l.tenant_id), ''), '(platform)') as tenant, l.tokens::text as own_layer
from tenancy.token_layers as l order by 1;
select coalesce(nullif(tenancy.tenant_path(r.tenant_id), ''), '(platform)') as tenant, r.path, r.rule, r.params::text
from tenancy.token_rules as r order by 1, 2;
\echo 'the effective chain: acme inherits its partner''s brand, and color.text (an alias) follows it:'
select coalesce(nullif(p.path, ''), '(platform)') as tenant, e.tokens #>> '{color,brand,primary,$value}' as brand_primary,
    e.tokens #>> '{color,text,$value}' as text, e.tokens #>> '{color,error,$value}' as error,
    e.tokens #>> '{space,md,$value}' as space_md
from (values (''), ('brandsyncup'), ('brandsyncup/acme'), ('pixelworks/initech')) as p (path)
cross join lateral (select tenancy.effective_tokens(tenancy.tenant_id(p.path)) as tokens) as e;
\echo 'a customer cannot override a protected token (TN004), and nothing is written:'
\set ON_ERROR_STOP 0
select tenancy.set_tokens(tenancy.tenant_id('brandsyncup/acme'), '{"color": {"error": {"$value": "#ff69b4"}}}');
\echo 'nor can its partner pick a brand color that breaks the contrast rule in its customers'' trees:'
select tenancy.set_tokens(tenancy.tenant_id('brandsyncup'), '{"color": {"brand": {"primary": {"$value": "#9e9e9e"}}}}');
\set ON_ERROR_STOP 1
\echo 'the dry run an editor would call:'
select path, rule, tenancy.tenant_path(owner) as owner, message
from tenancy.token_violations(tenancy.tenant_id('brandsyncup/acme'), '{"space": {"md": {"$value": "40px"}}}');
\echo 'the CSS of two customers of different partners, as the application serves it (in their context):'
set role demo_app;
begin;
select tenancy.set_tenant_for_domain('acme.example.com', local => true) \g /dev/null
select tenancy.tokens_css(selector => '[data-tenant="acme"]') as css_acme;
commit;
begin;
select tenancy.set_tenant_for_domain('initech.pixelworks.io', local => true) \g /dev/null
select tenancy.tokens_css(selector => '[data-tenant="initech"]') as css_initech;
commit;
reset role;
