-- Design tokens (docs/tokens.md). The pure core is plpython/tokens/ (parse, merge, aliases, rules, WCAG,
-- CSS); plpython/token_store.py is the glue (chains, subtrees, cache, messages). Here: the tables,
-- the governance triggers (every write to layers or rules is checked for the tenant and every
-- descendant, whoever writes it and however), and the public functions.

-- The tables are in sql/incremental/001_base.sql. Every write to a layer or a rule takes a new
-- revision; the per-backend cache of effective trees is keyed by the revisions of everything a tree
-- depends on, so it is exact inside any snapshot.

comment on table tenancy.token_layers is
'Each tenant''s own layer of design tokens (W3C Design Tokens JSON). Written through tenancy.set_tokens (or '
'directly by the DBA); every write is checked against the ancestors'' rules for the tenant and every descendant.';

comment on table tenancy.token_rules is
'Rules a tenant sets for its descendants: lock (at tier 0: protected), range, one_of, min_contrast. Written '
'through tenancy.set_token_rule / drop_token_rule (or directly by the DBA), checked for every descendant.';

-- Row shape and revision. Malformed input is 22023 here, before any constraint could say 23514.
create or replace function tenancy._tokens_before()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $fn$
begin
    if tg_table_name = 'token_layers' then
        if new.tokens is null or pg_catalog.jsonb_typeof(new.tokens) <> 'object' then
            raise exception 'the token layer of tenant % must be a JSON object, not %',
                new.tenant_id, coalesce(pg_catalog.jsonb_typeof(new.tokens), 'null')
                using errcode = '22023';
        end if;
    else
        if new.rule is null or new.rule not in ('lock', 'range', 'one_of', 'min_contrast') then
            raise exception 'unknown token rule % on %: expected lock, range, one_of or min_contrast',
                coalesce(pg_catalog.quote_literal(new.rule), 'null'), coalesce(new.path, 'null')
                using errcode = '22023';
        end if;
        new.params := coalesce(new.params, '{}');
        if pg_catalog.jsonb_typeof(new.params) <> 'object' then
            raise exception 'the params of the % rule on % must be a JSON object', new.rule, new.path
                using errcode = '22023';
        end if;
    end if;
    new.revision := pg_catalog.nextval('tenancy._token_revision'::regclass);
    if tg_op = 'UPDATE' and tg_table_name = 'token_layers' then
        new.updated_at := pg_catalog.now();
    end if;
    return new;
end
$fn$;

create or replace trigger token_layers_before
before insert or update on tenancy.token_layers
for each row execute function tenancy._tokens_before();

create or replace trigger token_rules_before
before insert or update on tenancy.token_rules
for each row execute function tenancy._tokens_before();

-- Loads the rows a computation needs: the tenants of the chains of p_tenants (and, with
-- p_down, of their subtrees), their layers (p_tenant's replaced by p_doc when given) and rules.
-- Shared by the functions below through GD (one prepared plan each).
create or replace function tenancy._tokens_core(p_op text, p_tenant uuid, p_doc jsonb, p_selector text)
returns text[]
language plpython3u
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
#@tenancy
import json

plans = T.gd.get("tenancy:tokens:plans")
if plans is None:
    plans = {
        "key": plpy.prepare(
            """
            with chain as (
                select t.id, 0 as up from tenancy.tenants t where t.id = $1
                union all
                select p.id, 1 from tenancy.tenants t join tenancy.tenants p on p.id = t.parent_id
                where t.id = $1
                union all
                select g.id, 2 from tenancy.tenants t join tenancy.tenants p on p.id = t.parent_id
                join tenancy.tenants g on g.id = p.parent_id where t.id = $1
            )
            select string_agg(
                c.id::text || ':' || coalesce(l.revision, 0)::text || ':' || coalesce((
                    select string_agg(r.revision::text, ',' order by r.revision)
                    from tenancy.token_rules r where r.tenant_id = c.id and c.up > 0
                ), ''), '/' order by c.up desc) as key
            from chain c left join tenancy.token_layers l on l.tenant_id = c.id
            """,
            ["uuid"],
        ),
        "up": plpy.prepare(
            """
            with recursive up as (
                select t.id, t.parent_id from tenancy.tenants t where t.id = any($1)
                union
                select t.id, t.parent_id from tenancy.tenants t join up u on t.id = u.parent_id
            )
            select t.id::text as id, t.parent_id::text as parent_id, t.tier, t.slug
            from tenancy.tenants t where t.id in (select id from up)
            """,
            ["uuid[]"],
        ),
        "down": plpy.prepare(
            """
            with recursive up as (
                select t.id, t.parent_id from tenancy.tenants t where t.id = any($1)
                union
                select t.id, t.parent_id from tenancy.tenants t join up u on t.id = u.parent_id
            ), down as (
                select t.id from tenancy.tenants t where t.id = any($1)
                union
                select t.id from tenancy.tenants t join down d on t.parent_id = d.id
            )
            select t.id::text as id, t.parent_id::text as parent_id, t.tier, t.slug
            from tenancy.tenants t where t.id in (select id from up union select id from down)
            """,
            ["uuid[]"],
        ),
        "layers": plpy.prepare(
            "select tenant_id::text as tenant_id, tokens::text as tokens from tenancy.token_layers"
            " where tenant_id = any($1)",
            ["uuid[]"],
        ),
        "rules": plpy.prepare(
            "select tenant_id::text as tenant_id, path, rule, params::text as params from tenancy.token_rules"
            " where tenant_id = any($1) order by tenant_id, path, rule, params::text",
            ["uuid[]"],
        ),
    }
    T.gd["tenancy:tokens:plans"] = plans

def load(ids, down):
    by_id = T.token_store.index(plpy.execute(plans["down" if down else "up"], [ids]))
    every = list(by_id)
    layers = {r["tenant_id"]: r["tokens"] for r in plpy.execute(plans["layers"], [every])}
    rules = list(plpy.execute(plans["rules"], [every]))
    return by_id, layers, rules

if p_op != "validate" and p_tenant is None:
    return ["TN003", "no tenant: set a tenant context with tenancy.set_tenant() or pass a tenant",
            "effective_tokens, tokens_css and token_violations default to tenancy.current_tenant()."]
by_id = None
try:
    if p_op in ("effective", "css"):
        cache = T.gd.get("tenancy:tokens:cache")
        if cache is None:
            cache = T.gd["tenancy:tokens:cache"] = T.token_store.Cache()
        key = plpy.execute(plans["key"], [p_tenant])[0]["key"]
        if key is None:
            return ["TN001", f"unknown tenant {p_tenant}", "See tenancy.tenants."]
        what = "json" if p_op == "effective" else "css:" + (p_selector or "")
        hit = cache.get(p_tenant, key, what)
        if hit is not None:
            return [hit]
        eff_json = cache.get(p_tenant, key, "json")
        if eff_json is None:
            by_id, layers, rules = load([p_tenant], False)
            tree = T.token_store.effective(by_id, layers, rules, p_tenant)
            eff_json = T.token_store.dumps(tree)
            cache.put(p_tenant, key, "json", eff_json)
        if p_op == "effective":
            return [eff_json]
        text = T.tokens.to_css(json.loads(eff_json), p_selector)
        cache.put(p_tenant, key, what, text)
        return [text]
    if p_op == "violations":
        if p_doc is None:
            return ["22023", "token_violations: the candidate layer must not be null", "Pass '{}' for an empty layer."]
        by_id, layers, rules = load([p_tenant], True)
        if p_tenant not in by_id:
            return ["TN001", f"unknown tenant {p_tenant}", "See tenancy.tenants."]
        layers[p_tenant] = p_doc
        found = T.token_store.check_subtree(by_id, layers, rules, p_tenant)
        return [T.token_store.dumps(found)]
    if p_op == "validate":
        # p_doc: {"tenants": [...], "rules": [rule rows to parse] | null}
        arg = json.loads(p_doc) if isinstance(p_doc, str) else p_doc
        for row in arg.get("rules") or ():
            T.tokens._normalize_rule({**row, "owner": row["tenant_id"]}, {})
        by_id, layers, rules = load(arg["tenants"], True)
        tops = T.token_store.check_tops(by_id, arg["tenants"])
        total = sum(len(T.token_store.subtree(by_id, t)) for t in tops)
        step = max(total // 10, 1)

        def progress(n, of):
            if of >= 500 and n % step == 0:
                plpy.notice(f"tenancy: checking design tokens of {of} tenants: {n}/{of}")

        for top in tops:
            found = T.token_store.check_subtree(by_id, layers, rules, top, progress)
            if found:
                return T.token_store.refusal(found, by_id, top)
        return [""]
    return ["XX000", f"unknown token operation {p_op}", ""]
except T.tokens.TokenError as exc:
    return T.token_store.error(exc, by_id)
$fn$;

-- The read path for everyone else: the tenant must be visible in the verified context.
--@grant app
create or replace function tenancy._tokens_ctx(p_op text, p_tenant uuid, p_doc jsonb, p_selector text)
returns text[]
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
begin
    if p_op not in ('effective', 'css', 'violations') then
        return array['42501', pg_catalog.format('token operation %s is not available here', p_op), ''];
    end if;
    if p_tenant is not null and not (p_tenant = any(tenancy.visible_tenants())) then
        return array[
            '42501',
            pg_catalog.format('tenant %s is not visible in the current tenant context', p_tenant),
            'Set a context that sees it with tenancy.set_tenant().'
        ];
    end if;
    return tenancy._tokens_core(p_op, p_tenant, p_doc, p_selector);
end
$fn$;

-- Dispatch and raise: superusers read any tenant, everyone else through _tokens_ctx.
--@grant app
create or replace function tenancy._tokens_call(p_op text, p_tenant uuid, p_doc jsonb, p_selector text)
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_res text[];
begin
    if (select r.rolsuper from pg_catalog.pg_roles r where r.rolname = current_user) then
        v_res := tenancy._tokens_core(p_op, p_tenant, p_doc, p_selector);
    else
        v_res := tenancy._tokens_ctx(p_op, p_tenant, p_doc, p_selector);
    end if;
    return tenancy._result_or_raise(v_res);
end
$fn$;

-- Governance of every write, at the end of the statement: the written tenants and all their
-- descendants must satisfy their ancestors' rules. SECURITY DEFINER: it reads every layer.
create or replace function tenancy._tokens_after()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_arg jsonb;
begin
    if tg_table_name = 'token_rules' then
        select pg_catalog.jsonb_build_object(
            'tenants', coalesce(pg_catalog.jsonb_agg(distinct c.tenant_id), '[]'),
            'rules', case when tg_op = 'DELETE' then '[]'::jsonb else coalesce(pg_catalog.jsonb_agg(
                pg_catalog.jsonb_build_object('tenant_id', c.tenant_id, 'path', c.path, 'rule', c.rule,
                    'params', c.params)), '[]') end
        ) into v_arg
        from changed c;
    else
        select pg_catalog.jsonb_build_object(
            'tenants', coalesce(pg_catalog.jsonb_agg(distinct c.tenant_id), '[]'), 'rules', null
        ) into v_arg
        from changed c;
    end if;
    if pg_catalog.jsonb_array_length(v_arg -> 'tenants') = 0 then
        return null;
    end if;
    perform tenancy._result_or_raise(tenancy._tokens_core('validate', null, v_arg, null));
    return null;
end
$fn$;

create or replace trigger token_layers_after_insert
after insert on tenancy.token_layers referencing new table as changed
for each statement execute function tenancy._tokens_after();
create or replace trigger token_layers_after_update
after update on tenancy.token_layers referencing new table as changed
for each statement execute function tenancy._tokens_after();
create or replace trigger token_layers_after_delete
after delete on tenancy.token_layers referencing old table as changed
for each statement execute function tenancy._tokens_after();
create or replace trigger token_rules_after_insert
after insert on tenancy.token_rules referencing new table as changed
for each statement execute function tenancy._tokens_after();
create or replace trigger token_rules_after_update
after update on tenancy.token_rules referencing new table as changed
for each statement execute function tenancy._tokens_after();
-- Dropping a lock un-pins what it pinned: the descendants must still satisfy the other rules.
create or replace trigger token_rules_after_delete
after delete on tenancy.token_rules referencing old table as changed
for each statement execute function tenancy._tokens_after();

-- Public functions --------------------------------------------------------------------------------

--@grant app
create or replace function tenancy.effective_tokens(tenant uuid default tenancy.current_tenant())
returns jsonb
language sql
stable
as $fn$
    select tenancy._tokens_call('effective', tenant, null, null)::jsonb
$fn$;

comment on function tenancy.effective_tokens(uuid) is
'The effective design tokens of a tenant (default: the current tenant): the layers from the platform down to '
'it deep-merged, locked tokens pinned, aliases resolved, $type on every token. Cached per backend until a '
'layer, rule or the hierarchy changes. TN001 unknown tenant, TN003 no tenant, 42501 tenant not visible.';

--@grant app
create or replace function tenancy.tokens_css(tenant uuid default tenancy.current_tenant(), selector text default ':root')
returns text
language sql
stable
as $fn$
    select tenancy._tokens_call('css', tenant, null, coalesce(selector, ':root'))
$fn$;

comment on function tenancy.tokens_css(uuid, text) is
'The effective tokens of a tenant as CSS custom properties (color.brand.primary -> --color-brand-primary) in one '
'rule for selector, sorted by path. 22023 for a selector that could break out of the rule.';

--@grant app
create or replace function tenancy.token_violations(tenant uuid, tokens jsonb)
returns table (path text, rule text, owner uuid, message text)
language sql
stable
as $fn$
    select v.path, v.rule, v.owner, v.message
    from pg_catalog.jsonb_to_recordset(
        tenancy._tokens_call('violations', token_violations.tenant, token_violations.tokens, null)::jsonb
    ) as v (path text, rule text, owner uuid, message text)
$fn$;

comment on function tenancy.token_violations(uuid, jsonb) is
'Dry run of set_tokens: every rule that the candidate layer would break, for the tenant and for each of its '
'descendants (owner is the tenant that set the rule). No rows: set_tokens would accept it. 22023 when malformed.';

create or replace function tenancy.set_tokens(tenant uuid, tokens jsonb)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
begin
    if tenant is null then
        raise exception 'set_tokens: tenant must not be null' using errcode = '22023';
    end if;
    if tokens is null or pg_catalog.jsonb_typeof(tokens) <> 'object' then
        raise exception 'set_tokens: the token layer of tenant % must be a JSON object, not %',
            tenant, coalesce(pg_catalog.jsonb_typeof(tokens), 'null')
            using errcode = '22023';
    end if;
    perform tenancy._tenant_must_exist(tenant);
    insert into tenancy.token_layers as l (tenant_id, tokens) values (tenant, tokens)
    on conflict (tenant_id) do update set tokens = excluded.tokens;
end
$fn$;

comment on function tenancy.set_tokens(uuid, jsonb) is
'Replace a tenant''s own token layer after validating it and every descendant against their ancestors'' rules: '
'TN004 naming the path, the rule and the tenant that owns it; 22023 malformed; TN001 unknown tenant. Nothing is '
'written on refusal. Superusers, or roles given tenancy.grant_token_admin for tenants their context sees.';

create or replace function tenancy.set_token_rule(tenant uuid, path text, rule text, params jsonb default '{}')
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
#variable_conflict use_column
begin
    if set_token_rule.tenant is null or set_token_rule.path is null then
        raise exception 'set_token_rule: tenant and path must not be null' using errcode = '22023';
    end if;
    perform tenancy._tenant_must_exist(set_token_rule.tenant);
    insert into tenancy.token_rules as r (tenant_id, path, rule, params)
    values (set_token_rule.tenant, set_token_rule.path, set_token_rule.rule, coalesce(set_token_rule.params, '{}'))
    on conflict (tenant_id, path, rule, (coalesce(params ->> 'against', '')))
    do update set params = excluded.params;
end
$fn$;

comment on function tenancy.set_token_rule(uuid, text, text, jsonb) is
'Add or replace a rule a tenant sets for its descendants: lock (at tier 0: protected), range {min,max}, one_of '
'{values}, min_contrast {against, ratio}. TN004 when a descendant already breaks it; nothing is written then.';

create or replace function tenancy.drop_token_rule(tenant uuid, path text, rule text)
returns integer
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    v_n integer;
begin
    delete from tenancy.token_rules r
    where r.tenant_id = drop_token_rule.tenant and r.path = drop_token_rule.path and r.rule = drop_token_rule.rule;
    get diagnostics v_n = row_count;
    return v_n;
end
$fn$;

comment on function tenancy.drop_token_rule(uuid, text, text) is
'Remove a tenant''s rule(s) of that kind on that path; returns how many were removed.';

create or replace function tenancy._tenant_must_exist(p_tenant uuid)
returns void
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
begin
    if not exists (select from tenancy.tenants t where t.id = p_tenant) then
        raise exception 'unknown tenant %', p_tenant using errcode = 'TN001', hint = 'See tenancy.tenants.';
    end if;
end
$fn$;

-- PARALLEL UNSAFE (the default), like every PL/Python function that loads tenancy's modules: the
-- first call in a backend runs SQL, which PL/Python cannot do in parallel mode.
--@grant app
create or replace function tenancy._contrast(p_fg text, p_bg text)
returns text[]
language plpython3u
immutable
as $fn$
#@tenancy
try:
    return [repr(T.tokens.contrast_ratio(p_fg, p_bg))]
except T.tokens.TokenError as exc:
    return [exc.sqlstate, exc.message]
$fn$;

--@grant app
create or replace function tenancy.contrast_ratio(fg text, bg text)
returns numeric
language sql
immutable
strict
as $fn$
    select tenancy._result_or_raise(tenancy._contrast(fg, bg))::numeric
$fn$;

comment on function tenancy.contrast_ratio(text, text) is
'WCAG 2.x contrast ratio (1 to 21, unrounded) of two sRGB colors (#rgb, #rrggbb, #rrggbbaa; a translucent '
'foreground is composited over the background). 22023 for a color it cannot read.';

-- Roles allowed to write tokens and rules, for the tenants their context sees.
create or replace function tenancy.grant_token_admin(role regrole)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
begin
    perform tenancy.grant_app(role);
    execute pg_catalog.format(
        'grant execute on function tenancy.set_tokens(uuid, jsonb), tenancy.set_token_rule(uuid, text, text, jsonb), '
        'tenancy.drop_token_rule(uuid, text, text), tenancy._tenant_must_exist(uuid) to %s', role
    );
    execute pg_catalog.format(
        'grant insert, update, delete on tenancy.token_layers, tenancy.token_rules to %s', role
    );
    execute pg_catalog.format('grant usage on sequence tenancy._token_revision to %s', role);
end
$fn$;

comment on function tenancy.grant_token_admin(regrole) is
'grant_app plus set_tokens, set_token_rule and drop_token_rule for the tenants the role''s context sees (row-level '
'security on the token tables); every write is still checked against the ancestors'' rules.';
