-- Tenant context (docs/decisions/0002-context-core-v3.md, plpython/context.py). set_tenant
-- validates a tenant with SQL in the caller's snapshot (a standby answers from what it replayed),
-- mints a token in the backend's PL/Python registry and puts it into the setting tenancy.ctx;
-- PostgreSQL's setting machinery restores it on rollback, ROLLBACK TO SAVEPOINT and transaction end.
-- The policies verify the setting once per statement (an InitPlan), without SQL.

-- The plan shape of customer contexts is carried by the search_path: set_tenant puts the schema
-- tenancy_customer (empty; sql/incremental/007_context_v3.sql) last on the path of a customer
-- context and takes it off for any other, so PostgreSQL's plan cache, which re-plans a cached
-- statement when the search_path differs, never reuses a customer plan under a path without the
-- mark; the policies' shaped branch is folded at plan time from this function. A statement planned
-- while the mark is there but the context in force is not a customer's (a session value set again
-- by hand) gets the plan valid for every context, so the shape follows the setting in force for
-- every new plan; a customer plan cached before refuses any other tier at run time (TN007).
-- IMMUTABLE on purpose (docs/decisions/0003-plan-shapes-on-the-search-path.md).
--@grant public
create or replace function tenancy._plan_shape()
returns integer
language plpgsql
immutable
parallel restricted
as $fn$
begin
    if 'tenancy_customer' = any(pg_catalog.current_schemas(false))
       and (tenancy._ctx(pg_catalog.current_setting('tenancy.ctx', true),
                         pg_catalog.date_part('epoch', pg_catalog.now()))).tier = 2 then
        return 2;
    end if;
    return null;
end
$fn$;

-- The search_path with tenancy_customer last (p_customer) or without it.
--@grant app
create or replace function tenancy._shape_path(p_path text, p_customer boolean)
returns text
language plpgsql
immutable
parallel safe
as $fn$
declare
    v_path text := pg_catalog.btrim(pg_catalog.regexp_replace(
        coalesce(p_path, ''), '(^|,)[[:space:]]*"?tenancy_customer"?[[:space:]]*(?=,|$)', '', 'g'
    ), ', ');
begin
    if p_customer then
        return case when v_path = '' then 'tenancy_customer' else v_path || ', tenancy_customer' end;
    end if;
    return v_path;
end
$fn$;

-- Put the search_path in the shape of the context just set (only where it changes: a plain string
-- test first, the rewrite only when the mark must be added or taken off).
--@grant app
create or replace function tenancy._set_shape(p_customer boolean, p_local boolean)
returns void
language plpgsql
volatile
as $fn$
declare
    v_now text := pg_catalog.current_setting('search_path');
    v_has boolean := pg_catalog.strpos(v_now, 'tenancy_customer') > 0;
    v_want text;
begin
    if p_customer = v_has and (not v_has or pg_catalog.right(v_now, 16) = 'tenancy_customer') then
        return;
    end if;
    v_want := tenancy._shape_path(v_now, p_customer);
    if v_want is distinct from v_now then
        v_now := pg_catalog.set_config('search_path', v_want, p_local);
    end if;
end
$fn$;

-- The verifiers: called by the policies once per statement (in an InitPlan), never per row, with
-- the setting and the transaction's start passed in. No SQL runs in them (`#@tenancy nospi`): they
-- run in parallel mode too. Each answers null for a value in tenancy.ctx that is not a context in
-- force here (forged); the policies then ask tenancy._ctx_forged_audit, which writes the audit line.
-- Not SECURITY DEFINER: the registry is per backend.

-- (tenant, tier) of the context in force; (null, null) without one; null when forged.
--@grant public
create or replace function tenancy._ctx(p_token text, p_xact double precision)
returns tenancy._context
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy nospi
if not p_token:
    return (None, None)
reg = None if T is None else T.gd.get("tenancy.ctx")
e = None if reg is None else reg.entries.get(p_token)
if e is None or (e[3] and e[4] != p_xact):
    return None
return (e[0], e[1])
$fn$;

-- The visible set as an array literal: '{}' without a context and for tier 0 (its rows come
-- through the policies of tenancy_platform); null when forged.
--@grant public
create or replace function tenancy._ctx_visible(p_token text, p_xact double precision)
returns text
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy nospi
if not p_token:
    return "{}"
reg = None if T is None else T.gd.get("tenancy.ctx")
e = None if reg is None else reg.entries.get(p_token)
if e is None or (e[3] and e[4] != p_xact):
    return None
return e[2]
$fn$;

-- A tier-0 context is in force: false without a context or for another tier; null when forged.
--@grant public
create or replace function tenancy._ctx_root(p_token text, p_xact double precision)
returns boolean
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy nospi
if not p_token:
    return False
reg = None if T is None else T.gd.get("tenancy.ctx")
e = None if reg is None else reg.entries.get(p_token)
if e is None or (e[3] and e[4] != p_xact):
    return None
return e[1] == 0
$fn$;

-- The verifier of a customer-shaped plan (an equality on the tenant column): the tenant of a
-- tier-2 context; null for anything else (no context, tier 0, whose rows come through the platform
-- policies, a partner, or a forged value), which the policy then hands to _ctx_customer_else.
--@grant public
create or replace function tenancy._ctx_customer(p_token text, p_xact double precision)
returns uuid
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy nospi
if not p_token:
    return None
reg = None if T is None else T.gd.get("tenancy.ctx")
e = None if reg is None else reg.entries.get(p_token)
if e is None or (e[3] and e[4] != p_xact) or e[1] != 2:
    return None
return e[0]
$fn$;

-- What a customer-shaped plan does when its verifier found no customer: zero rows without a context
-- and for tier 0; the audit line for a forged value; and for a partner's context a refusal (TN007),
-- never an answer of no rows: the plan was made for another context (a cursor opened before).
--@grant public
create or replace function tenancy._ctx_customer_else(p_token text, p_xact double precision)
returns uuid
language plpgsql
stable
parallel restricted
as $fn$
declare
    v_ctx tenancy._context;
begin
    if coalesce(p_token, '') = '' then
        return null;
    end if;
    v_ctx := tenancy._ctx(p_token, p_xact);
    if v_ctx is null then
        perform tenancy._ctx_forged_audit(p_token, p_xact);
    elsif v_ctx.tier = 1 then
        raise exception 'this statement''s plan was made for a customer (tier-2) context and cannot run under the '
            'tier-1 context of tenant %', v_ctx.tenant
            using errcode = 'TN007',
            hint = 'Run the statement again: it is planned anew. A cursor opened under another context must be '
                'reopened.';
    end if;
    return null;
end
$fn$;

-- Whether a value in tenancy.ctx is forged (not a context in force in this session).
--@grant public
create or replace function tenancy._ctx_forged(p_token text, p_xact double precision)
returns boolean
language plpython3u
stable
parallel restricted
as $fn$
#@tenancy nospi
if not p_token:
    return False
reg = None if T is None else T.gd.get("tenancy.ctx")
e = None if reg is None else reg.entries.get(p_token)
return e is None or (e[3] and e[4] != p_xact)
$fn$;

-- Asked by the policies when a verifier answered null: writes one audit line for a forged value
-- (role, session user, database and client address filled by tenancy._audit) and answers false.
-- PL/pgSQL: the line needs SQL, which PL/Python cannot run in parallel mode.
--@grant public
create or replace function tenancy._ctx_forged_audit(p_token text, p_xact double precision)
returns boolean
language plpgsql
stable
parallel restricted
as $fn$
begin
    if coalesce(p_token, '') <> '' and tenancy._ctx_forged(p_token, p_xact) then
        perform tenancy._audit(
            'forged_context', 'tenancy.ctx=' || p_token,
            'the tenancy.ctx setting holds a value that is not a context in force in this session (typed by hand, '
            || 'copied from another session, or a transaction context replayed after its transaction ended); '
            || 'treated as no context',
            'TN007'
        );
    end if;
    return false;
end
$fn$;

-- The context in force, audited when forged. Plain SQL, inlined into its callers.
--@grant public
create or replace function tenancy._current()
returns tenancy._context
language sql
stable
parallel restricted
as $fn$
    select coalesce(
        tenancy._ctx(pg_catalog.current_setting('tenancy.ctx', true), pg_catalog.date_part('epoch', pg_catalog.now())),
        case when tenancy._ctx_forged_audit(
            pg_catalog.current_setting('tenancy.ctx', true), pg_catalog.date_part('epoch', pg_catalog.now())
        ) then null::tenancy._context else (null, null)::tenancy._context end
    )
$fn$;

-- The xid8 of an xid seen in this snapshot's epoch (xmax of a row version, for _enter_tenant's check).
create or replace function tenancy._xid8(p_xid xid, p_snap pg_catalog.pg_snapshot)
returns xid8
language sql
immutable
parallel safe
as $fn$
    select (case when v.full > v.top then v.full - 4294967296 else v.full end)::text::xid8
    from (select (((pg_catalog.pg_snapshot_xmax(p_snap)::text::bigint >> 32) << 32) | p_xid::text::bigint) as full,
        pg_catalog.pg_snapshot_xmax(p_snap)::text::bigint as top) v
$fn$;

-- Validate a tenant for the role p_user (the caller's current_user: the login or a role it
-- belongs to) and mint its context: {token, tier}, or {sqlstate, message, hint} for a refusal,
-- already written to the audit log. SECURITY DEFINER: it reads tenancy.tenants past row-level
-- security (a tenant is checked before there is a context to see it by). Calling it directly gives
-- no more than set_tenant does (it returns only what set_tenant would set).
--@grant app
create or replace function tenancy._enter_tenant(p_tenant uuid, p_local boolean, p_user name, p_via text)
returns text[]
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_tier smallint;
    v_status text;
    v_visible text;
    v_bypass boolean;
    v_token text;
    v_snap pg_catalog.pg_snapshot;
    v_asked text;
begin
    -- what the audit line says was asked (formatted here once; a few microseconds)
    v_asked := p_via || '(' || coalesce(p_tenant::text, 'NULL') || ', local => '
        || case when p_local then 'true' else 'false' end || ')';
    -- p_user is asked for the role checks only where the login could act as it (set role): a
    -- SECURITY DEFINER function that calls set_tenant does not lend the login its owner's roles,
    -- and a direct call naming another role is answered for the login itself
    if p_user is distinct from session_user
       and not coalesce(pg_catalog.pg_has_role(session_user, pg_catalog.to_regrole(p_user::text), 'MEMBER'), false) then
        p_user := session_user;
    end if;
    -- a strict role (tenancy_strict, not a superuser; the login or the caller) needs the pass that
    -- set_tenant_from_jwt grants for the tenant of a verified token
    if (pg_catalog.pg_has_role(session_user, 'tenancy_strict', 'MEMBER')
        or pg_catalog.pg_has_role(p_user, 'tenancy_strict', 'MEMBER'))
       and exists (select from pg_catalog.pg_authid r
                   where r.rolname in (session_user, p_user) and not r.rolsuper
                     and pg_catalog.pg_has_role(r.oid, 'tenancy_strict', 'MEMBER'))
       and not tenancy._take_pass(p_tenant) then
        perform tenancy._audit('refused_context', v_asked, 'strict role', 'TN007', p_user);
        return array['TN007',
            pg_catalog.format('role %s is a strict role: it may take a context only from an identity token, not with '
                '%s()', p_user, p_via),
            'Verify the user''s token with tenancy.set_tenant_from_jwt(token); a strict role is made with '
            'tenancy.grant_app(role, strict => true).'];
    end if;
    -- a pooled role (tenancy_pooled): a session context would outlive the transaction into the next
    -- client of the pooled server connection
    if not p_local
       and (pg_catalog.pg_has_role(session_user, 'tenancy_pooled', 'MEMBER')
            or pg_catalog.pg_has_role(p_user, 'tenancy_pooled', 'MEMBER'))
       and exists (select from pg_catalog.pg_authid r
                   where r.rolname in (session_user, p_user) and not r.rolsuper
                     and pg_catalog.pg_has_role(r.oid, 'tenancy_pooled', 'MEMBER')) then
        perform tenancy._audit('refused_context', v_asked, 'session context for a pooled role', 'TN007', p_user);
        return array['TN007',
            pg_catalog.format('role %s is a pooled role: it may not take a session context with %s(..., local => '
                'false), which would outlive the transaction into the next client of the pooled connection', p_user,
                p_via),
            pg_catalog.format('Call %s(..., local => true) inside the transaction.', p_via)];
    end if;
    select t.tier, t.status into v_tier, v_status from tenancy.tenants t where t.id = p_tenant;
    if v_tier is null then
        perform tenancy._audit('refused_context', v_asked, 'unknown tenant', 'TN001', p_user);
        return array['TN001',
            case when p_tenant is null then pg_catalog.format('unknown tenant NULL: %s needs a tenant id', p_via)
                else pg_catalog.format('unknown tenant %s: no tenant has this id', p_tenant) end,
            'Look the id up with tenancy.tenant_id(path) or tenancy.resolve_domain(host).'];
    end if;
    -- REPEATABLE READ / SERIALIZABLE: a snapshot older than a change of this tenant (or of a child
    -- of a partner) would answer from before it; refused rather than trusted (docs/security.md)
    if pg_catalog.current_setting('transaction_isolation') <> 'read committed' then
        v_snap := pg_catalog.pg_current_snapshot();
        if exists (
            select from tenancy.tenants t
            where (t.id = p_tenant or (v_tier = 1 and t.parent_id = p_tenant))
              and t.xmax::text <> '0'
              and not pg_catalog.pg_visible_in_snapshot(tenancy._xid8(t.xmax, v_snap), v_snap)
        ) then
            return array['40001',
                pg_catalog.format('tenant %s cannot be checked in this transaction: tenancy.tenants changed after its '
                    'snapshot was taken (%s)', p_tenant, pg_catalog.current_setting('transaction_isolation')),
                'Retry the transaction, or call set_tenant before its first query.'];
        end if;
    end if;
    if v_status <> 'active' then
        perform tenancy._audit('refused_context', v_asked, 'tenant is suspended', 'TN002', p_user);
        return array['TN002', pg_catalog.format('tenant %s is suspended: no context can be set for it', p_tenant),
            'A suspended tenant still resolves (resolve_domain) so a suspension page can be shown; set its status to '
            'active in tenancy.tenants to let it in again.'];
    end if;
    if v_tier = 0 and not pg_catalog.pg_has_role(p_user, 'tenancy_platform', 'MEMBER') then
        perform tenancy._audit('refused_context', v_asked, 'not a member of tenancy_platform', 'TN007', p_user);
        return array['TN007',
            pg_catalog.format('role %s may not take the tier-0 (platform) context of tenant %s: it is not a member of '
                'tenancy_platform', p_user, p_tenant),
            'A platform login is granted with tenancy.grant_platform(role).'];
    end if;
    if v_tier = 1 then
        select pg_catalog.array_agg(t.id order by t.id)::text into v_visible
        from tenancy.tenants t where t.id = p_tenant or t.parent_id = p_tenant;
    end if;
    v_token := tenancy._mint(p_tenant, v_tier, v_visible, p_local, pg_catalog.date_part('epoch', pg_catalog.now()));
    select r.rolsuper or r.rolbypassrls into v_bypass from pg_catalog.pg_authid r where r.rolname = p_user;
    if v_bypass then
        raise warning 'role % bypasses row-level security (superuser or BYPASSRLS): every row of every tenant stays '
            'visible to it, whatever the context; % sets only current_tenant() and the tenant column''s default',
            p_user, v_asked
            using hint = 'Connect the application as a role made with tenancy.grant_app(role).';
    end if;
    return array[v_token, v_tier::text];
end
$fn$;

-- Record a validated context in the backend's registry (plpython/context.py) and return its
-- token. Only _enter_tenant calls it (no grant: the extension owner's).
create or replace function tenancy._mint(
    p_tenant uuid, p_tier smallint, p_visible text, p_local boolean, p_xact double precision
)
returns text
language plpython3u
volatile
as $fn$
#@tenancy
return T.context.mint(T.gd, p_tenant, p_tier, p_visible, bool(p_local), p_xact)
$fn$;

-- The pass of set_tenant_from_jwt for this tenant (plpython/strict.py): taken, so gone afterwards.
create or replace function tenancy._take_pass(p_tenant uuid)
returns boolean
language plpython3u
volatile
as $fn$
#@tenancy
return T.strict.take_pass(T.gd, p_tenant)
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

-- set_tenant and set_tenant_for_domain: route (placements), validate and mint (_enter_tenant), then one
-- set_config of tenancy.ctx (is_local for a transaction context, so PostgreSQL itself puts the
-- session's value back when the transaction ends) and the search_path's shape. p_via names the
-- public function in messages.
--@grant app
create or replace function tenancy._set_tenant(p_tenant uuid, p_local boolean, p_via text)
returns uuid
language plpgsql
volatile
as $fn$
declare
    v_local boolean := coalesce(p_local, false);
    v_res text[];
    v_set text;
begin
    -- placements: while this database never had a placement, one sequence read
    if pg_catalog.pg_sequence_last_value('tenancy._placements_version'::regclass) is not null then
        perform tenancy._route_placed(p_tenant, v_local);
    end if;
    v_res := tenancy._enter_tenant(p_tenant, v_local, current_user, p_via);
    if pg_catalog.cardinality(v_res) <> 2 then
        perform tenancy._result_or_raise(v_res);
    end if;
    -- outside a transaction block: what a function can see of it is a statement that began the
    -- transaction (simple protocol; docs/poolers.md says where this cannot be seen)
    if v_local and pg_catalog.statement_timestamp() = pg_catalog.now() then
        raise warning '%(%, local => true) outside a transaction block: the context ends with this statement', p_via,
            p_tenant
            using hint = 'Call it after BEGIN, in the transaction whose queries need the context.';
    end if;
    -- assignments, not PERFORM: simple expressions, evaluated without a query through SPI
    v_set := pg_catalog.set_config('tenancy.ctx', v_res[1], v_local);
    perform tenancy._set_shape(v_res[2] = '2', v_local);
    return tenancy._citus_propagate(p_tenant, v_local); -- citus
end
$fn$;

--@grant app
create or replace function tenancy.set_tenant(tenant uuid, local boolean default false)
returns uuid
language plpgsql
volatile
as $fn$
begin
    return tenancy._set_tenant(set_tenant.tenant, set_tenant.local, 'set_tenant');
end
$fn$;

comment on function tenancy.set_tenant(uuid, boolean) is
'Validate a tenant (TN001 unknown, TN002 suspended, TN007 tier 0 without tenancy_platform, a strict role, or a '
'session context for a pooled role) and make it the context: for the session, or with local => true until the end '
'of the transaction (for transaction pooling). Returns the id.';

--@grant app
create or replace function tenancy.reset_tenant()
returns void
language plpgsql
volatile
as $fn$
declare
    v_set text;
begin
    v_set := pg_catalog.set_config('tenancy.ctx', '', false);
    perform tenancy._forget();
    perform tenancy._set_shape(false, false);
    perform tenancy._citus_propagate(null, false); -- citus: the signed context too
end
$fn$;

comment on function tenancy.reset_tenant() is
'Clear the tenant context (session and transaction). Every context taken before is dead afterwards, also when the '
'transaction that calls it rolls back (as for DISCARD).';

-- What reset_tenant adds to clearing the setting: every context this backend minted is forgotten,
-- so a value captured before (by a pooled connection's previous client, say) is no context.
--@grant app
create or replace function tenancy._forget()
returns void
language plpython3u
volatile
as $fn$
#@tenancy
T.context.forget(T.gd)
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

-- Policy helpers kept for the platform and Citus policies and for the guards (the generated
-- policies call the verifiers directly, so that planning does not inline a wrapper).
--@grant public
create or replace function tenancy._policy_visible()
returns uuid[]
language sql
stable
parallel restricted
as $fn$
    select coalesce(
        tenancy._ctx_visible(pg_catalog.current_setting('tenancy.ctx', true), pg_catalog.date_part('epoch', pg_catalog.now())),
        case when tenancy._ctx_forged_audit(
            pg_catalog.current_setting('tenancy.ctx', true), pg_catalog.date_part('epoch', pg_catalog.now())
        ) then null end
    )::uuid[]
$fn$;

--@grant public
create or replace function tenancy._policy_is_root()
returns boolean
language sql
stable
parallel restricted
as $fn$
    select coalesce(
        tenancy._ctx_root(pg_catalog.current_setting('tenancy.ctx', true), pg_catalog.date_part('epoch', pg_catalog.now())),
        tenancy._ctx_forged_audit(
            pg_catalog.current_setting('tenancy.ctx', true), pg_catalog.date_part('epoch', pg_catalog.now())
        )
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
            hint = 'Every write to a scoped table needs a tenant context: call tenancy.set_tenant(id, local => true) '
                '(or set_tenant_for_domain, set_tenant_from_jwt) in the transaction first.';
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
