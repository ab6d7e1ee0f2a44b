-- Tenant context. The authoritative context lives in the backend's PL/Python GD (see
-- plpython/context.py); the setting tenancy.ctx carries only an opaque token.

-- Bumped by every write to tenancy.tenants; set_tenant's per-backend cache follows it.

create or replace function tenancy._tenants_bump()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $fn$
begin
    perform pg_catalog.nextval('tenancy._tenants_version'::regclass);
    return null;
end
$fn$;

create or replace trigger tenants_version
after insert or update or delete or truncate on tenancy.tenants
for each statement execute function tenancy._tenants_bump();

-- Tier, status and visible set of one tenant, past RLS (the cache-miss path of set_tenant).
--@grant app
create or replace function tenancy._tenant_info(
    p_tenant uuid, out tier smallint, out status text, out visible uuid[]
)
returns record
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
begin
    select t.tier, t.status into tier, status from tenancy.tenants t where t.id = p_tenant;
    if tier = 2 then
        visible := array[p_tenant];
    elsif tier = 1 then
        visible := array(
            select t.id from tenancy.tenants t where t.id = p_tenant or t.parent_id = p_tenant order by t.id
        );
    end if;
end
$fn$;

-- Verifiers: called once per statement by the policies (inside an InitPlan), never per row, with
-- the setting passed in so that no SPI is needed. Not SECURITY DEFINER: GD is per backend.
--@grant public
create or replace function tenancy._ctx(p_token text, p_txn float8)
returns tenancy._context
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy
ctx = T.context.current(T.gd, p_token, repr(p_txn), T.context.forged(plpy, T.gd))
return (None, None) if ctx is None else (ctx.tenant, ctx.tier)
$fn$;

--@grant public
create or replace function tenancy._ctx_visible(p_token text, p_txn float8)
returns uuid[]
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy
ctx = T.context.current(T.gd, p_token, repr(p_txn), T.context.forged(plpy, T.gd))
return None if ctx is None else ctx.visible
$fn$;

--@grant public
create or replace function tenancy._ctx_root(p_token text, p_txn float8)
returns boolean
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy
ctx = T.context.current(T.gd, p_token, repr(p_txn), T.context.forged(plpy, T.gd))
return ctx is not None and ctx.tier == 0
$fn$;

-- Validates and issues a context: {token}, or {sqlstate, message, hint} on a refusal (already
-- written to the audit log). It checks everything itself, so calling it directly gives no more
-- than set_tenant does.
--@grant app
create or replace function tenancy._set_tenant(p_tenant uuid, p_local boolean, p_version bigint, p_txn float8)
returns text[]
language plpython3u
volatile
as $fn$
#@tenancy
import time
# issue 17: a strict role passes only inside set_tenant_from_jwt (plpython/strict.py)
refused = T.strict.refusal(plpy, T.gd, p_tenant, bool(p_local))
if refused is not None:
    return refused
return T.context.set_tenant(plpy, T.gd, p_tenant, bool(p_local), p_version, repr(p_txn), time.monotonic())
$fn$;

-- The PL/Python functions answer {value} or {sqlstate, message[, hint[, detail]]}, and this raises
-- the second kind (a PL/Python exception would prefix the message with its class name). Used by
-- set_tenant, normalize_host and the token functions. STABLE: no snapshot work per call.
--@grant public
create or replace function tenancy._result_or_raise(p_res text[])
returns text
language plpgsql
stable
as $fn$
begin
    if pg_catalog.cardinality(p_res) = 1 then
        return p_res[1];
    elsif coalesce(p_res[4], '') <> '' then
        raise exception using errcode = p_res[1], message = p_res[2], hint = coalesce(p_res[3], ''),
            detail = p_res[4];
    elsif coalesce(p_res[3], '') <> '' then
        raise exception using errcode = p_res[1], message = p_res[2], hint = p_res[3];
    end if;
    raise exception using errcode = p_res[1], message = p_res[2];
end
$fn$;

-- Plain SQL, inlined by the planner: one PL/Python call and one set_config. A session context is
-- set with is_local = false, a transaction context with is_local = true, on the same setting, so
-- PostgreSQL itself puts the session's token back when the transaction ends.
--@grant app
create or replace function tenancy.set_tenant(tenant uuid, local boolean default false)
returns uuid
language sql
volatile
as $fn$
    select case when tenancy._route(tenant, coalesce(local, false)) and pg_catalog.set_config( -- placements (issue 16)
        'tenancy.ctx',
        tenancy._result_or_raise(tenancy._set_tenant(
            tenant, coalesce(local, false),
            pg_catalog.pg_sequence_last_value('tenancy._tenants_version'::regclass),
            pg_catalog.date_part('epoch', pg_catalog.now())
        )),
        coalesce(local, false)
    ) is not null then tenant end
$fn$;

comment on function tenancy.set_tenant(uuid, boolean) is
'Validate a tenant (TN001 unknown, TN002 suspended, TN007 tier 0 without tenancy_platform) and make it the context: '
'for the session, or with local => true until the end of the transaction (for transaction pooling). Returns the id.';

--@grant app
create or replace function tenancy.reset_tenant()
returns void
language plpython3u
volatile
as $fn$
#@tenancy
T.context.reset(T.gd)
plan = T.gd.get("tenancy.plan.reset")
if plan is None:
    plan = T.gd["tenancy.plan.reset"] = plpy.prepare("select pg_catalog.set_config('tenancy.ctx', '', false)")
plpy.execute(plan)
$fn$;

comment on function tenancy.reset_tenant() is
'Clear the tenant context (session and transaction). Every context taken before is dead afterwards.';

-- The context in force. Plain SQL, so the planner inlines it (no function-call layer).
--@grant public
create or replace function tenancy._current()
returns tenancy._context
language sql
stable
parallel restricted
as $fn$
    select tenancy._ctx(
        pg_catalog.current_setting('tenancy.ctx', true),
        pg_catalog.date_part('epoch', pg_catalog.now())
    )
$fn$;

--@grant app
create or replace function tenancy.current_tenant()
returns uuid
language sql
stable
parallel restricted
as $fn$
    select (tenancy._current()).tenant
$fn$;

comment on function tenancy.current_tenant() is
'The tenant of the current context, or null when there is no valid context.';

--@grant app
create or replace function tenancy.current_tier()
returns smallint
language sql
stable
parallel restricted
as $fn$
    select (tenancy._current()).tier
$fn$;

comment on function tenancy.current_tier() is
'The tier of the current context (0 platform, 1 partner, 2 customer), or null when there is no context.';

-- Policy helpers, inlined into each policy's scalar subquery (an InitPlan: once per statement).
-- For tier 0 the visible set is null: the tier-0 rows come through the policy of tenancy_platform,
-- so a platform query never compares each row against an array of every tenant.
--@grant public
create or replace function tenancy._policy_visible()
returns uuid[]
language sql
stable
parallel restricted
as $fn$
    select tenancy._ctx_visible(
        pg_catalog.current_setting('tenancy.ctx', true),
        pg_catalog.date_part('epoch', pg_catalog.now())
    )
$fn$;

--@grant public
create or replace function tenancy._policy_is_root()
returns boolean
language sql
stable
parallel restricted
as $fn$
    select tenancy._ctx_root(
        pg_catalog.current_setting('tenancy.ctx', true),
        pg_catalog.date_part('epoch', pg_catalog.now())
    )
$fn$;

--@grant public
create or replace function tenancy._policy_has_context()
returns boolean
language sql
stable
parallel restricted
as $fn$
    select (tenancy._current()).tenant is not null
$fn$;

--@grant app
create or replace function tenancy.visible_tenants()
returns uuid[]
language plpgsql
stable
parallel restricted
as $fn$
declare
    v_ctx tenancy._context := tenancy._current();
begin
    if v_ctx.tenant is null then
        return '{}'::uuid[];
    elsif v_ctx.tier = 0 then
        -- every tenant this role may see under the tenants policies (all, for a platform role)
        return coalesce((select pg_catalog.array_agg(t.id) from tenancy.tenants t), '{}'::uuid[]);
    end if;
    return coalesce(tenancy._policy_visible(), '{}'::uuid[]);
end
$fn$;

comment on function tenancy.visible_tenants() is
'Ids the current context may see: tier 0 every tenant, tier 1 itself and its children, tier 2 itself; empty without '
'context. The set of a partner is fixed when its context is set.';

-- The tenant of the context, or TN003 naming what needed one: the one place the error is raised
-- (the write policies and the tenant column's default).
--@grant public
create or replace function tenancy._context_tenant(p_needed_by text)
returns uuid
language plpgsql
stable
parallel restricted
as $fn$
declare
    v_tenant uuid := (tenancy._current()).tenant;
begin
    if v_tenant is null then
        raise exception 'no tenant context: %', p_needed_by
            using errcode = 'TN003',
            hint = 'Call tenancy.set_tenant(id) or tenancy.set_tenant_for_domain(host) first, or give the tenant '
                'column a value.';
    end if;
    return v_tenant;
end
$fn$;

-- The tenant a write must carry; TN003 when there is no context (names the table).
--@grant public
create or replace function tenancy._policy_write_tenant(p_table regclass)
returns uuid
language sql
stable
parallel restricted
as $fn$
    select tenancy._context_tenant(pg_catalog.format('writing to %s needs one', p_table))
$fn$;

--@grant public
create or replace function tenancy._policy_write_visible(p_table regclass)
returns uuid[]
language sql
stable
parallel restricted
as $fn$
    select case when tenancy._context_tenant(pg_catalog.format('writing to %s needs one', p_table)) is not null
        then tenancy._policy_visible() end
$fn$;

-- Column default of registered tables: the current tenant, TN003 without context. Its signature is
-- fixed for good: the defaults of registered tables depend on it.
--@grant public
create or replace function tenancy._default_tenant()
returns uuid
language sql
stable
parallel restricted
as $fn$
    select tenancy._context_tenant('a row without a tenant cannot be written without one')
$fn$;
