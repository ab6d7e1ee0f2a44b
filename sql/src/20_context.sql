-- Tenant context. The authoritative context lives in the backend's PL/Python GD (see
-- plpython/context.py); the settings tenancy.ctx_s / tenancy.ctx_l carry only an opaque token.
create type tenancy._context as (tenant uuid, tier smallint);

-- Verifier: the context in force, or (null, null). Called once per statement by the policies (inside
-- an InitPlan), never per row. Not SECURITY DEFINER: GD is per backend, whoever calls.
create function tenancy._ctx(p_session text, p_local text, p_txn float8)
returns tenancy._context
language plpython3u
stable
parallel restricted
as $fn$
#@module context
ctx = context.verify(GD, p_session, p_local, repr(p_txn))
if ctx is not None:
    return (ctx.tenant, ctx.tier)
if (p_session or p_local) and context.is_forgery(GD, p_session, p_local, repr(p_txn)):
    seen = GD.setdefault("tenancy.forgeries", set())
    key = (p_session, p_local)
    if key not in seen and len(seen) < 1000:
        seen.add(key)
        plan = GD.get("tenancy.plan.audit")
        if plan is None:
            plan = GD["tenancy.plan.audit"] = plpy.prepare(
                "select tenancy._audit($1, $2, $3, $4)", ["text", "text", "text", "text"]
            )
        plpy.execute(plan, [
            "forged_context",
            "tenancy.ctx_s=%s tenancy.ctx_l=%s" % (p_session or "", p_local or ""),
            "a tenancy context setting holds a token that set_tenant did not issue in this session "
            "(typed by hand, copied from another session, or replayed); treated as no context",
            "TN007",
        ])
return (None, None)
$fn$;

-- The settings are read here so that callers pass nothing.
create function tenancy._current()
returns tenancy._context
language plpgsql
stable
parallel restricted
as $fn$
begin
    return tenancy._ctx(
        pg_catalog.current_setting('tenancy.ctx_s', true),
        pg_catalog.current_setting('tenancy.ctx_l', true),
        pg_catalog.date_part('epoch', pg_catalog.now())
    );
end
$fn$;

-- Validates and issues a context; returns null on success, or {sqlstate, message, hint} on a
-- refusal (already written to the audit log). It checks everything itself, so calling it directly
-- gives no more than set_tenant does; the plpgsql wrapper raises (PL/Python would prefix messages).
create function tenancy._set_tenant(p_tenant uuid, p_local boolean)
returns text[]
language plpython3u
volatile
as $fn$
#@module context
def refuse(sqlstate, message, hint=""):
    audit = GD.get("tenancy.plan.audit")
    if audit is None:
        audit = GD["tenancy.plan.audit"] = plpy.prepare(
            "select tenancy._audit($1, $2, $3, $4)", ["text", "text", "text", "text"]
        )
    asked = "set_tenant(%s, local => %s)" % (p_tenant, "true" if p_local else "false")
    plpy.execute(audit, ["refused_context", asked, message, sqlstate])
    return [sqlstate, message, hint]

if p_tenant is None:
    return refuse("TN001", "unknown tenant NULL: set_tenant needs a tenant id",
                  "Look the id up with tenancy.tenant_id(path) or tenancy.resolve_domain(host).")
plan = GD.get("tenancy.plan.set_tenant")
if plan is None:
    plan = GD["tenancy.plan.set_tenant"] = plpy.prepare(
        "select i.tier, i.status,"
        " pg_catalog.pg_has_role(current_user, 'tenancy_platform', 'MEMBER') as platform,"
        " current_user::text as role,"
        " pg_catalog.date_part('epoch', pg_catalog.now()) as txn"
        " from tenancy._tenant_info($1) as i",
        ["uuid"],
    )
row = plpy.execute(plan, [p_tenant])[0]
if row["tier"] is None:
    return refuse("TN001", "unknown tenant %s: no tenant has this id" % p_tenant,
                  "Look the id up with tenancy.tenant_id(path) or tenancy.resolve_domain(host).")
if row["status"] != "active":
    return refuse("TN002", "tenant %s is suspended: no context can be set for it" % p_tenant)
if row["tier"] == 0 and not row["platform"]:
    return refuse("TN007",
                  "role %s may not take the tier-0 (platform) context of tenant %s: it is not a member of "
                  "tenancy_platform" % (row["role"], p_tenant),
                  "A platform login is granted with tenancy.grant_platform(role).")
token = context.issue(GD, p_tenant, row["tier"], row["role"], bool(p_local), repr(row["txn"]))
if p_local:
    setp = GD.get("tenancy.plan.set_local")
    if setp is None:
        setp = GD["tenancy.plan.set_local"] = plpy.prepare(
            "select pg_catalog.set_config('tenancy.ctx_l', $1, true)", ["text"])
else:
    setp = GD.get("tenancy.plan.set_session")
    if setp is None:
        setp = GD["tenancy.plan.set_session"] = plpy.prepare(
            "select pg_catalog.set_config('tenancy.ctx_s', $1, false),"
            " pg_catalog.set_config('tenancy.ctx_l', '', false)", ["text"])
plpy.execute(setp, [token])
return None
$fn$;

create function tenancy.set_tenant(tenant uuid, local boolean default false)
returns uuid
language plpgsql
volatile
as $fn$
declare
    v_err text[] := tenancy._set_tenant(tenant, coalesce(local, false));
begin
    if v_err is not null then
        raise exception using errcode = v_err[1], message = v_err[2], hint = v_err[3];
    end if;
    return tenant;
end
$fn$;

comment on function tenancy.set_tenant(uuid, boolean) is
'Validate a tenant (TN001 unknown, TN002 suspended, TN007 tier 0 without tenancy_platform) and make it the context: '
'for the session, or with local => true until the end of the transaction (for transaction pooling). Returns the id.';

create function tenancy.reset_tenant()
returns void
language plpython3u
volatile
as $fn$
#@module context
context.reset(GD)
plan = GD.get("tenancy.plan.reset")
if plan is None:
    plan = GD["tenancy.plan.reset"] = plpy.prepare(
        "select pg_catalog.set_config('tenancy.ctx_s', '', false), pg_catalog.set_config('tenancy.ctx_l', '', false)")
plpy.execute(plan)
$fn$;

comment on function tenancy.reset_tenant() is
'Clear the tenant context (session and transaction). Every context taken before is dead afterwards.';

create function tenancy.current_tenant()
returns uuid
language plpgsql
stable
parallel restricted
as $fn$
begin
    return (tenancy._current()).tenant;
end
$fn$;

comment on function tenancy.current_tenant() is
'The tenant of the current context, or null when there is no valid context.';

create function tenancy.current_tier()
returns smallint
language plpgsql
stable
parallel restricted
as $fn$
begin
    return (tenancy._current()).tier;
end
$fn$;

comment on function tenancy.current_tier() is
'The tier of the current context (0 platform, 1 partner, 2 customer), or null when there is no context.';

create function tenancy.visible_tenants()
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
    elsif v_ctx.tier = 2 then
        return array[v_ctx.tenant];
    elsif v_ctx.tier = 1 then
        return tenancy._partner_visible();
    end if;
    -- tier 0: every tenant this role may see under the tenants policies (all, for a platform role)
    return coalesce((select pg_catalog.array_agg(t.id) from tenancy.tenants t), '{}'::uuid[]);
end
$fn$;

comment on function tenancy.visible_tenants() is
'Ids the current context may see: tier 0 every tenant, tier 1 itself and its children, tier 2 itself; empty without context.';

-- Policy helpers: each is evaluated once per statement through a scalar subquery (an InitPlan).
-- For tier 0 the visible set is null: the tier-0 rows come through the policy of tenancy_platform,
-- so a platform query never compares each row against an array of every tenant.
create function tenancy._policy_visible()
returns uuid[]
language plpgsql
stable
parallel restricted
as $fn$
declare
    v_ctx tenancy._context := tenancy._current();
begin
    if v_ctx.tier = 2 then
        return array[v_ctx.tenant];
    elsif v_ctx.tier = 1 then
        return tenancy._partner_visible();
    end if;
    return null;
end
$fn$;

create function tenancy._policy_is_root()
returns boolean
language plpgsql
stable
parallel restricted
as $fn$
begin
    return coalesce((tenancy._current()).tier = 0, false);
end
$fn$;

create function tenancy._policy_has_context()
returns boolean
language plpgsql
stable
parallel restricted
as $fn$
begin
    return (tenancy._current()).tenant is not null;
end
$fn$;

-- The tenant a write must carry; raises TN003 when there is no context (names the table).
create function tenancy._policy_write_tenant(p_table regclass)
returns uuid
language plpgsql
stable
parallel restricted
as $fn$
declare
    v_tenant uuid := (tenancy._current()).tenant;
begin
    if v_tenant is null then
        raise exception 'no tenant context: writing to % needs one', p_table
            using errcode = 'TN003',
            hint = 'Call tenancy.set_tenant(id) or tenancy.set_tenant_for_domain(host) first.';
    end if;
    return v_tenant;
end
$fn$;

create function tenancy._policy_write_visible(p_table regclass)
returns uuid[]
language plpgsql
stable
parallel restricted
as $fn$
declare
    v_ctx tenancy._context := tenancy._current();
begin
    if v_ctx.tenant is null then
        raise exception 'no tenant context: writing to % needs one', p_table
            using errcode = 'TN003',
            hint = 'Call tenancy.set_tenant(id) or tenancy.set_tenant_for_domain(host) first.';
    elsif v_ctx.tier = 2 then
        return array[v_ctx.tenant];
    elsif v_ctx.tier = 1 then
        return tenancy._partner_visible();
    end if;
    return null;
end
$fn$;

-- Column default of registered tables: the current tenant, TN003 without context.
create function tenancy._default_tenant()
returns uuid
language plpgsql
stable
parallel restricted
as $fn$
declare
    v_tenant uuid := (tenancy._current()).tenant;
begin
    if v_tenant is null then
        raise exception 'no tenant context: a row without a tenant cannot be written'
            using errcode = 'TN003',
            hint = 'Call tenancy.set_tenant(id) first, or give the tenant column a value.';
    end if;
    return v_tenant;
end
$fn$;

-- A partner context's visible ids: itself and its children. SECURITY DEFINER to read tenants past
-- their own policies (which call this); it reads the verified context itself, so it tells nothing
-- about any other tenant.
create function tenancy._partner_visible()
returns uuid[]
language plpgsql
stable
security definer
parallel restricted
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_ctx tenancy._context := tenancy._current();
begin
    if v_ctx.tier is distinct from 1::smallint then
        return null;
    end if;
    return (
        select pg_catalog.array_agg(t.id)
        from tenancy.tenants t
        where t.id = v_ctx.tenant or t.parent_id = v_ctx.tenant
    );
end
$fn$;
