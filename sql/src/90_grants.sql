-- Visibility of the extension's own tables, privileges, and the grant helpers.

-- The extension's own tables: the same visibility as every scoped table (tier 0 all, tier 1 itself
-- and its children, tier 2 itself). Application roles only read tenants and domain_mappings; token
-- writers (grant_token_admin) also write the token tables.
select tenancy._protect_own_table('tenancy.tenants', 'id', array['select']);
select tenancy._protect_own_table('tenancy.domain_mappings', 'tenant_id', array['select']);
-- token writers: the generated policies of write_scope 'visible' (a tier-1 context writes itself and
-- its customers, tier 0 everyone, no context TN003), as on a registered table
select tenancy._protect_own_table('tenancy.token_layers', 'tenant_id', null);
select tenancy._protect_own_table('tenancy.token_rules', 'tenant_id', null);

-- Functions an application login needs (context, domain and token reads). Looked up by name so
-- that every overload is covered.
create function tenancy._app_functions()
returns setof regprocedure
language sql
stable
set search_path = pg_catalog, pg_temp
as $fn$
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    where p.pronamespace = 'tenancy'::regnamespace
      and p.proname = any(array[
          'set_tenant', '_set_tenant', 'set_tenant_for_domain', 'reset_tenant', 'current_tenant', 'current_tier',
          'visible_tenants', 'tenant_id', 'tenant_path', 'normalize_host', 'resolve_domain',
          'resolve_domain_details', 'primary_domain', 'effective_tokens', 'tokens_css',
          'token_violations', 'contrast_ratio', 'check', '_tenant_info', '_tokens_call', '_tokens_ctx', '_contrast'
      ])
$fn$;

create function tenancy.grant_app(role regrole)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_fn regprocedure;
    v_tbl regclass;
begin
    if role is null then
        raise exception 'grant_app needs a role' using errcode = '22023';
    end if;
    execute pg_catalog.format('grant usage on schema tenancy to %s', role);
    for v_fn in select * from tenancy._app_functions() loop
        execute pg_catalog.format('grant execute on function %s to %s', v_fn, role);
    end loop;
    for v_tbl in
        select c.oid::regclass
        from pg_catalog.pg_class c
        where c.relnamespace = 'tenancy'::regnamespace
          and c.relkind in ('r', 'p')
          and c.relname in ('tenants', 'domain_mappings', 'token_layers', 'token_rules', 'scoped_tables')
    loop
        execute pg_catalog.format('grant select on table %s to %s', v_tbl, role);
    end loop;
end
$fn$;

comment on function tenancy.grant_app(regrole) is
'Grant what an application login needs: usage on schema tenancy, execute on the context, domain and token '
'read functions, and select (under row-level security) on the extension''s tables. No writes, no user tables.';

create function tenancy.grant_platform(role regrole)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
begin
    perform tenancy.grant_app(role);
    execute pg_catalog.format('grant tenancy_platform to %s', role);
end
$fn$;

comment on function tenancy.grant_platform(regrole) is
'grant_app plus membership in tenancy_platform: the role may take a tier-0 (platform) context.';

-- Nothing is executable by PUBLIC unless listed here. Policy helpers must be: a policy's
-- functions run with the privileges of the role that queries the table. None of them can set a
-- context; they only read the one that is verified.
revoke all on all functions in schema tenancy from public;
grant execute on function
tenancy._ctx(text, float8),
tenancy._ctx_visible(text, float8),
tenancy._ctx_root(text, float8),
tenancy._result_or_raise(text[]),
tenancy._current(),
tenancy._policy_visible(),
tenancy._policy_is_root(),
tenancy._policy_has_context(),
tenancy._policy_write_tenant(regclass),
tenancy._policy_write_visible(regclass),
tenancy._default_tenant(),
-- a log line names the real role and backend pid, so nothing can be blamed on another session
tenancy._audit(text, text, text, text),
-- the two halves of normalize_host (pure functions of their argument)
tenancy._normalize_host_full(text),
tenancy._normalize_host_py(text),
-- check() runs as its caller (it reports on the current role): its catalog readers
tenancy._scope(),
tenancy._policy_defs(regclass, name, text, boolean)
to public;

-- Any role that can read a scoped table must be able to evaluate its policies (which name functions
-- in this schema): without it, a role given SELECT on a table but not grant_app would get
-- "permission denied for schema tenancy" instead of the zero rows of "no context". Usage only lets
-- names be looked up: PUBLIC can execute the policy helpers above and nothing that sets a context.
grant usage on schema tenancy to public;

-- set_tenant reads the tenants' version counter (a number, nothing else)
grant select on sequence tenancy._tenants_version to public;
