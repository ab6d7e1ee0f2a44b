-- Context core v3 (docs/decisions/0002-context-core-v3.md): no version file, no ctypes, plan shapes
-- carried by the search_path. Drops what 0.2.0's earlier core created (after the prelude dropped
-- the policies that name them); the re-runnable part creates the new functions.
drop trigger if exists tenants_version on tenancy.tenants;
drop function if exists tenancy._tenants_bump();
drop function if exists tenancy._version_write(text);
drop function if exists tenancy._tenant_info(uuid, text, text);
drop function if exists tenancy._info_nonce_ok(text);
drop function if exists tenancy._set_tenant(uuid, boolean);
drop function if exists tenancy._ctx(text);
drop function if exists tenancy._ctx_visible(text);
drop function if exists tenancy._ctx_root(text);
drop function if exists tenancy._ctx_shaped(text, integer);
drop function if exists tenancy._ctx_partner(text, uuid);
drop function if exists tenancy._plan_partner();
drop function if exists tenancy._plan_visible();
drop function if exists tenancy._policy_tenant();
drop function if exists tenancy._audit(text, text, text, text);
-- the tenants' version counter the version file was keyed by (0.1.0's and 0.2.0-dev's caches)
drop sequence if exists tenancy._tenants_version;

-- The plan-shape marker: an empty schema that set_tenant puts last on the search_path of a customer
-- context (sql/idempotent/20_context.sql). It holds nothing and nobody may create anything in it;
-- everyone may look it up (a schema without USAGE would drop out of the search path). A schema of
-- that name that the extension did not make is refused, as a squatted `tenancy` would be.
do $marker$
begin
    if exists (select from pg_catalog.pg_namespace n where n.nspname = 'tenancy_customer') then
        raise exception 'schema tenancy_customer already exists: tenancy creates it, empty, as the mark of customer '
            'plans on the search_path'
            using errcode = '42P06',
            hint = 'Drop or rename that schema (after moving anything it holds), then create the extension again.';
    end if;
end
$marker$;
create schema tenancy_customer;
comment on schema tenancy_customer is
'tenancy: the mark of a customer context on the search_path (empty; docs/decisions/0002-context-core-v3.md).';
grant usage on schema tenancy_customer to public;
drop function if exists tenancy._policy_defs_citus(regclass, name, text, boolean);
