-- Schema for the client examples (examples/python, examples/node): run once, as a superuser, on a
-- fresh database:
--   createdb tenancy_example && psql -X -v ON_ERROR_STOP=1 -d tenancy_example -f examples/schema.sql
-- It makes a platform -> partners -> customers tree, two domain mappings, a registered table
-- public.notes, and the application login tenancy_example_app (password 'example': change it
-- anywhere that is not your laptop). The examples connect as that login, never as a superuser.

create extension if not exists tenancy cascade;

insert into tenancy.tenants (slug, name) values ('platform', 'The Platform');
insert into tenancy.tenants (parent_id, slug, name)
select tenancy.tenant_id(''), v.slug, v.name
from (values ('brandsyncup', 'BrandSyncUp'), ('pixelworks', 'Pixelworks')) as v (slug, name);
insert into tenancy.tenants (parent_id, slug, name)
select tenancy.tenant_id(v.parent), v.slug, v.name
from (values ('brandsyncup', 'acme', 'Acme Inc.'), ('brandsyncup', 'globex', 'Globex'),
             ('pixelworks', 'initech', 'Initech')) as v (parent, slug, name);

-- A customer's own domain, and <customer>.brandsyncup.com for every customer of brandsyncup.
insert into tenancy.domain_mappings (domain, tenant_id, is_primary) values
    ('acme.example.com', tenancy.tenant_id('brandsyncup/acme'), true),
    ('*.brandsyncup.com', tenancy.tenant_id('brandsyncup'), false);

create table public.notes (
    id bigserial primary key,
    tenant_id uuid not null,   -- defaults to the current tenant once registered
    body text not null,
    created_at timestamptz not null default now()
);
select tenancy.register_table('public.notes');

insert into public.notes (tenant_id, body)
select id, 'welcome, ' || name from tenancy.tenants;

do $$
begin
    if not exists (select from pg_roles where rolname = 'tenancy_example_app') then
        create role tenancy_example_app login password 'example';
    end if;
end
$$;
select tenancy.grant_app('tenancy_example_app');
grant select, insert, update, delete on public.notes to tenancy_example_app;
grant usage on sequence public.notes_id_seq to tenancy_example_app;
