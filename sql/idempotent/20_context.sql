-- Tenant context. The authoritative context lives in the backend's PL/Python GD (see
-- plpython/context.py); the setting tenancy.ctx carries only an opaque token.

-- Every write to tenancy.tenants replaces the database's version file (plpython/context.py) with
-- the writing transaction's id, writers one at a time (a transaction-level advisory lock), so that
-- set_tenant knows without SQL whether its cache is current and whether a lookup's snapshot saw the
-- latest write. SECURITY DEFINER: whoever writes tenants, the file is written by the extension.

create or replace function tenancy._version_write(p_xid text)
returns void
language plpython3u
volatile
as $fn$
#@tenancy
ident = T.gd.get("tenancy.audit_who") or T.context.who(plpy, T.gd)
T.context.write_version(T.context.version_path(ident["dboid"]), p_xid)
$fn$;

create or replace function tenancy._tenants_bump()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $fn$
begin
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('tenancy.tenants'), 0);
    perform pg_catalog.nextval('tenancy._tenants_version'::regclass);
    perform tenancy._version_write(pg_catalog.pg_current_xact_id()::text);
    return null;
end
$fn$;

create or replace trigger tenants_version
after insert or update or delete or truncate on tenancy.tenants
for each statement execute function tenancy._tenants_bump();

-- The nonce set_tenant holds while it calls _tenant_info: nobody else can make _tenant_info answer.
create or replace function tenancy._info_nonce_ok(p_nonce text)
returns boolean
language plpython3u
volatile
as $fn$
#@tenancy
return T.context.nonce_ok(T.gd, p_nonce)
$fn$;

-- Tier, status and visible set of one tenant, past RLS (the cache-miss path of set_tenant), and
-- whether this snapshot saw the latest tenants write finished (fresh), or is older than it in a
-- REPEATABLE READ or SERIALIZABLE transaction (stale). Answers only set_tenant's own call: an
-- application role calling it directly gets 42501 (it would list any partner's customers).
--@grant app
create or replace function tenancy._tenant_info(
    p_tenant uuid, p_nonce text, p_xid text,
    out tier smallint, out status text, out visible uuid[], out fresh boolean, out stale boolean
)
returns record
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_xid xid8 := coalesce(nullif(p_xid, ''), '0')::xid8;
begin
    if not tenancy._info_nonce_ok(p_nonce) then
        raise exception 'tenancy._tenant_info is set_tenant''s own: it answers no other caller'
            using errcode = '42501';
    end if;
    fresh := v_xid = '0'::xid8 or pg_catalog.pg_visible_in_snapshot(v_xid, pg_catalog.pg_current_snapshot());
    stale := not fresh and v_xid is distinct from pg_catalog.pg_current_xact_id_if_assigned()
        and pg_catalog.current_setting('transaction_isolation') in ('repeatable read', 'serializable');
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
-- the setting passed in so that no SQL runs in them (they work in parallel mode and in any
-- snapshot; a forged token is logged with plpy.log). Not SECURITY DEFINER: GD is per backend.
--@grant public
create or replace function tenancy._ctx(p_token text)
returns tenancy._context
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy
ctx = T.context.current(T.gd, p_token, plpy.log)
return (None, None) if ctx is None else (ctx.tenant, ctx.tier)
$fn$;

--@grant public
create or replace function tenancy._ctx_visible(p_token text)
returns uuid[]
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy
ctx = T.context.current(T.gd, p_token, plpy.log)
return None if ctx is None else ctx.visible
$fn$;

--@grant public
create or replace function tenancy._ctx_root(p_token text)
returns boolean
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy
ctx = T.context.current(T.gd, p_token, plpy.log)
return ctx is not None and ctx.tier == 0
$fn$;

-- The verifiers of the shaped policies: the customer's tenant for an equality (null without a
-- context, and for tier 0, whose rows come through the platform policies), and the no-row-test of
-- the platform shape; a context of another tier is refused (TN007), never answered with no rows.
--@grant public
create or replace function tenancy._ctx_shaped(p_token text, p_shape integer)
returns uuid
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy
try:
    ctx = T.context.for_shape(T.context.current(T.gd, p_token, plpy.log), p_shape)
except T.context.StalePlan as exc:
    plpy.error(str(exc), hint=T.context.STALE_HINT, sqlstate="TN007")
return None if ctx is None or ctx.tier == 0 else ctx.tenant
$fn$;

-- The plan shape (plpython/context.py): the tier of the live context, folded by the planner into
-- each plan (IMMUTABLE on purpose); every cached plan is invalidated when it changes, and each
-- shaped policy checks it again at run time.
--@grant public
create or replace function tenancy._plan_shape()
returns integer
language plpython3u
immutable
parallel restricted
as $fn$
#@tenancy
st = T.gd.get(T.context.STATE_KEY)
return None if st is None else st.shape
$fn$;

-- Shape 1, a partner's plans: the partner and its visible set, folded into each plan as constants
-- (IMMUTABLE on purpose, like _plan_shape; another partner's context invalidates the cached plans),
-- so a partner's statement builds no array at run time and a filter on the set is hashed.
--@grant public
create or replace function tenancy._plan_partner()
returns uuid
language plpython3u
immutable
parallel restricted
as $fn$
#@tenancy
ctx = T.context.plan_partner(T.gd)
return None if ctx is None else ctx.tenant
$fn$;

--@grant public
create or replace function tenancy._plan_visible()
returns uuid[]
language plpython3u
immutable
parallel restricted
as $fn$
#@tenancy
ctx = T.context.plan_partner(T.gd)
return None if ctx is None else ctx.visible
$fn$;

-- The run-time guard of a partner-shaped plan (once per statement, an InitPlan): true in the
-- context of the partner the plan was made for, false without a context or in a tier-0 one (whose
-- rows come through the platform policies), TN007 in any other (a cursor opened before a change).
--@grant public
create or replace function tenancy._ctx_partner(p_token text, p_partner uuid)
returns boolean
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy
try:
    return T.context.for_partner(T.context.current(T.gd, p_token, plpy.log), p_partner)
except T.context.StalePlan as exc:
    plpy.error(str(exc), hint=T.context.STALE_HINT, sqlstate="TN007")
$fn$;

-- Validates and issues a context: {token}, or {sqlstate, message, hint} on a refusal (already
-- written to the audit log). It reads everything it checks itself (no version or time passed in),
-- so calling it directly gives no more than set_tenant does.
--@grant app
create or replace function tenancy._set_tenant(p_tenant uuid, p_local boolean)
returns text[]
language plpython3u
volatile
as $fn$
#@tenancy
# issue 17: a strict role passes only inside set_tenant_from_jwt (plpython/strict.py)
refused = T.strict.refusal(plpy, T.gd, p_tenant, bool(p_local))
if refused is not None:
    return refused
return T.context.set_tenant(plpy, T.gd, p_tenant, bool(p_local))
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

-- One PL/Python call and one set_config. A session context is set with is_local = false, a
-- transaction context with is_local = true, on the same setting, so PostgreSQL itself puts the
-- session's token back when the transaction ends. PL/pgSQL rather than an inlined SQL function:
-- its statements are planned once per backend, where an SQL body (and the SQL functions it calls)
-- would be parsed again for every statement that is planned, i.e. every simple-protocol call.
--@grant app
create or replace function tenancy.set_tenant(tenant uuid, local boolean default false)
returns uuid
language plpgsql
volatile
as $fn$
declare
    v_local boolean := coalesce(set_tenant.local, false);
    v_res text[];
    v_set text;
begin
    -- placements (issue 16): while this database never had a placement, one sequence read
    if pg_catalog.pg_sequence_last_value('tenancy._placements_version'::regclass) is not null then
        perform tenancy._route_placed(set_tenant.tenant, v_local);
    end if;
    v_res := tenancy._set_tenant(set_tenant.tenant, v_local);
    if v_res is null or pg_catalog.cardinality(v_res) <> 1 then
        perform tenancy._result_or_raise(v_res);
    end if;
    -- an assignment, not PERFORM: a simple expression, evaluated without a query through SPI
    v_set := pg_catalog.set_config('tenancy.ctx', v_res[1], v_local);
    return tenancy._citus_propagate(set_tenant.tenant, v_local); -- citus (issue 15)
end
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
plpy.execute("select tenancy._citus_propagate(null, false)")  # citus (issue 15): the signed context too
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
    select tenancy._ctx(pg_catalog.current_setting('tenancy.ctx', true))
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
    select tenancy._ctx_visible(pg_catalog.current_setting('tenancy.ctx', true))
$fn$;

--@grant public
create or replace function tenancy._policy_is_root()
returns boolean
language sql
stable
parallel restricted
as $fn$
    select tenancy._ctx_root(pg_catalog.current_setting('tenancy.ctx', true))
$fn$;

-- The customer's tenant as the shape-2 policy reads it (the generated policies call
-- tenancy._ctx_shaped directly, so that planning does not inline a wrapper; kept for measuring).
--@grant public
create or replace function tenancy._policy_tenant()
returns uuid
language sql
stable
parallel restricted
as $fn$
    select tenancy._ctx_shaped(pg_catalog.current_setting('tenancy.ctx', true), 2)
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
