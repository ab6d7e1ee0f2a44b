-- Design tokens through SQL: tables, merge down the tiers, governance (TN004) for the tenant and its
-- descendants, malformed documents (22023), CSS, contrast, cache invalidation, visibility.
begin;
select plan(68);

-- platform -> brandsyncup (acme, globex), pixelworks (initech)
insert into tenancy.tenants (id, slug, name) values ('00000000-0000-0000-0000-000000000001', 'platform', 'Platform');
insert into tenancy.tenants (id, parent_id, slug, name) values
('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'brandsyncup', 'BrandSyncUp'),
('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-000000000001', 'pixelworks', 'Pixelworks');
insert into tenancy.tenants (id, parent_id, slug, name) values
('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'acme', 'Acme'),
('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-00000000000a', 'globex', 'Globex'),
('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000b', 'initech', 'Initech');

-- objects ---------------------------------------------------------------------------------------
select has_table('tenancy', 'token_layers', 'token_layers table');
select has_table('tenancy', 'token_rules', 'token_rules table');
select col_is_pk('tenancy', 'token_layers', 'tenant_id', 'token_layers: one layer per tenant');
select columns_are('tenancy', 'token_rules', array['tenant_id', 'path', 'rule', 'params', 'id', 'created_at', 'revision']);
select fk_ok('tenancy', 'token_layers', 'tenant_id', 'tenancy', 'tenants', 'id');
select fk_ok('tenancy', 'token_rules', 'tenant_id', 'tenancy', 'tenants', 'id');
select ok(
    (select array['tenancy.token_layers'::regclass, 'tenancy.token_rules'::regclass] <@ extconfig::regclass[]
     from pg_extension where extname = 'tenancy'),
    'token tables are registered with pg_extension_config_dump'
);
select ok(
    (select bool_and(relrowsecurity and relforcerowsecurity) from pg_class
     where oid in ('tenancy.token_layers'::regclass, 'tenancy.token_rules'::regclass)),
    'token tables have row-level security enabled and forced'
);
select function_returns('tenancy', 'effective_tokens', array['uuid'], 'jsonb');
select function_returns('tenancy', 'set_tokens', array['uuid', 'jsonb'], 'void');
select function_returns('tenancy', 'tokens_css', array['uuid', 'text'], 'text');
select function_returns('tenancy', 'contrast_ratio', array['text', 'text'], 'numeric');
select function_returns('tenancy', 'token_violations', array['uuid', 'jsonb'], 'setof record');

-- the chain ---------------------------------------------------------------------------------------
select lives_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-000000000001', '{
  "color": {"$type": "color",
    "brand": {"primary": {"$value": "#333333"}},
    "text": {"$value": "{color.brand.primary}"},
    "bg": {"$value": "#ffffff"},
    "error": {"$value": "#d32f2f"},
    "focus": {"$value": "{color.brand.primary}"},
    "status": {"ok": {"$value": "#2e7d32"}},
    "statusbar": {"$value": "#eeeeee"}},
  "space": {"$type": "dimension", "md": {"$value": "16px"}},
  "font": {"weight": {"$type": "fontWeight", "$value": 400}}}')$$, 'the platform sets its layer');
select lives_ok(
    $$select tenancy.set_token_rule('00000000-0000-0000-0000-000000000001', 'color.error', 'lock')$$,
    'the platform protects color.error'
);
select lives_ok(
    $$select tenancy.set_token_rule('00000000-0000-0000-0000-000000000001', 'color.focus', 'lock')$$,
    'the platform protects color.focus (an alias)'
);
select lives_ok(
    $$select tenancy.set_token_rule('00000000-0000-0000-0000-000000000001', 'color.status', 'lock')$$,
    'the platform protects the group color.status'
);
select lives_ok($$select tenancy.set_token_rule('00000000-0000-0000-0000-000000000001', 'color.text',
    'min_contrast', '{"against": "color.bg", "ratio": 4.5}')$$, 'the platform requires text contrast');
select lives_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-00000000000a',
    '{"color": {"brand": {"primary": {"$value": "#0050b3"}}}, "space": {"md": {"$value": "12px"}}}')$$,
    'the partner brands');
select lives_ok($$select tenancy.set_token_rule('00000000-0000-0000-0000-00000000000a', 'space.md', 'range',
    '{"min": "8px", "max": "24px"}')$$, 'the partner sets a range for its customers');
select lives_ok($$select tenancy.set_token_rule('00000000-0000-0000-0000-00000000000a', 'font.weight', 'one_of',
    '{"values": [400, 700]}')$$, 'and a one_of');
select lives_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-0000000000a1',
    '{"space": {"md": {"$value": "20px"}}, "font": {"weight": {"$value": 700}}, "color": {"statusbar": {"$value": "#101010"}}}')$$,
    'the customer fine-tunes within the rules (color.statusbar is not under the lock on color.status)');

select is(tenancy.effective_tokens('00000000-0000-0000-0000-0000000000a1') #>> '{color,brand,primary,$value}', '#0050b3',
    'a customer inherits its partner''s brand');
select is(tenancy.effective_tokens('00000000-0000-0000-0000-0000000000a1') #>> '{color,text,$value}', '#0050b3',
    'an alias follows the partner''s brand (resolved after the merge)');
select is(tenancy.effective_tokens('00000000-0000-0000-0000-0000000000a1') #>> '{color,focus,$value}', '#333333',
    'a locked alias keeps the value it resolves to in the locking tenant''s tree');
select is(tenancy.effective_tokens('00000000-0000-0000-0000-0000000000a1') #>> '{space,md,$value}', '20px',
    'the customer''s own value wins');
select is(tenancy.effective_tokens('00000000-0000-0000-0000-0000000000a1') #>> '{space,md,$type}', 'dimension',
    'every token carries its $type');
select is(tenancy.effective_tokens('00000000-0000-0000-0000-0000000000a2') #>> '{space,md,$value}', '12px',
    'a customer without a layer has its partner''s values');
select is(tenancy.effective_tokens('00000000-0000-0000-0000-0000000000b1') #>> '{color,brand,primary,$value}', '#333333',
    'another partner''s customer has the platform''s values');
select is(tenancy.effective_tokens('00000000-0000-0000-0000-000000000001') #>> '{color,statusbar,$value}', '#eeeeee',
    'the platform''s own tokens');

-- governance: TN004, nothing written ---------------------------------------------------------------
select throws_like($$select tenancy.set_tokens('00000000-0000-0000-0000-0000000000a1',
    '{"color": {"error": {"$value": "#ff0000"}}}')$$, '%color.error is protected by tenant ''platform''%',
    'overriding a protected token is refused, naming path, rule and owner');
select throws_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-0000000000a1',
    '{"color": {"error": {"$value": "#ff0000"}}}')$$, 'TN004', null, 'with TN004');
select is(
    (select tokens #>> '{space,md,$value}' from tenancy.token_layers where tenant_id = '00000000-0000-0000-0000-0000000000a1'),
    '20px', 'and the previous layer is intact'
);
select throws_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-0000000000a1',
    '{"color": {"status": {"ok": {"$value": "#00ff00"}}}}')$$, 'TN004', null, 'a token under a locked group is refused');
select throws_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-0000000000a1',
    '{"space": {"md": {"$value": "30px"}}}')$$, 'TN004', null, 'a value outside the partner''s range is refused');
select throws_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-0000000000a1',
    '{"font": {"weight": {"$value": 500}}}')$$, 'TN004', null, 'a value outside one_of is refused');
select throws_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-0000000000a1',
    '{"color": {"brand": {"primary": {"$value": "#eeeeee"}}}}')$$, 'TN004', null,
    'a brand color that breaks the text contrast is refused');
select throws_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-0000000000a1',
    '{"space": {"md": {"$value": "#fff", "$type": "color"}}}')$$, 'TN004', null,
    'changing an inherited token''s $type is refused');
-- the descendant check
select throws_like($$select tenancy.set_tokens('00000000-0000-0000-0000-00000000000a',
    '{"color": {"brand": {"primary": {"$value": "#eeeeee"}}}}')$$, '%contrast%',
    'a partner change that breaks contrast in its customers'' trees is refused');
select throws_ok($$select tenancy.set_token_rule('00000000-0000-0000-0000-00000000000a', 'space.md', 'range',
    '{"min": "8px", "max": "16px"}')$$, 'TN004', null, 'a rule that an existing customer layer breaks is refused');
select is(
    (select params ->> 'max' from tenancy.token_rules where tenant_id = '00000000-0000-0000-0000-00000000000a' and rule = 'range'),
    '24px', 'and the old rule is intact'
);
select throws_ok($$select tenancy.set_token_rule('00000000-0000-0000-0000-00000000000a', 'space', 'lock')$$,
    'TN004', null, 'a lock over a path a customer already overrides is refused');
select throws_ok($$insert into tenancy.token_layers (tenant_id, tokens) values
    ('00000000-0000-0000-0000-0000000000a2', '{"color": {"error": {"$value": "#000000"}}}')$$, 'TN004', null,
    'a direct INSERT into token_layers is governed the same way');
select is(
    (select count(*)::int from tenancy.token_violations('00000000-0000-0000-0000-0000000000a1',
        '{"color": {"error": {"$value": "#ff0000"}}, "space": {"md": {"$value": "40px"}}}')),
    2, 'token_violations lists every violation of a candidate layer'
);
select results_eq(
    $$select path, rule, owner from tenancy.token_violations('00000000-0000-0000-0000-0000000000a1',
        '{"color": {"error": {"$value": "#ff0000"}}}')$$,
    $$values ('color.error', 'lock', '00000000-0000-0000-0000-000000000001'::uuid)$$,
    'with path, rule and owning tenant'
);
select is_empty($$select * from tenancy.token_violations('00000000-0000-0000-0000-0000000000a1',
    '{"space": {"md": {"$value": "10px"}}}')$$, 'no rows for an acceptable layer');
select ok(
    (select bool_and(message like '%also in the tokens of ''brandsyncup/acme''%') and count(*) = 1
     from tenancy.token_violations(
        '00000000-0000-0000-0000-00000000000a', '{"color": {"brand": {"primary": {"$value": "#eeeeee"}}}}')),
    'a partner''s dry run reports each violation once, with the customers it would also break'
);
select lives_ok($$insert into tenancy.token_rules values
    ('00000000-0000-0000-0000-00000000000b', 'color.brand', 'lock', null)$$,
    'token_rules takes (tenant_id, path, rule, params) in that order; null params are {}');
select is((select params from tenancy.token_rules where tenant_id = '00000000-0000-0000-0000-00000000000b'), '{}'::jsonb,
    'stored as {}');
select matches(tenancy.tokens_css('00000000-0000-0000-0000-0000000000b1', null), '^:root \{', 'a null selector is :root');

select tenancy.set_tokens('00000000-0000-0000-0000-00000000000b', '{"brand": {"accent": {"$type": "color", "$value": "#123456"}}}');
select tenancy.set_tokens('00000000-0000-0000-0000-0000000000b1', '{"link": {"$value": "{brand.accent}"}}');
select throws_like($$select tenancy.set_tokens('00000000-0000-0000-0000-00000000000b', '{}')$$,
    '%in the tokens of descendant ''pixelworks/initech''%',
    'a partner cannot remove a token its customers'' layers need (the message names the descendant)');
select throws_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-00000000000b', '{}')$$, 'TN004', null,
    'with TN004');

-- malformed: 22023 ----------------------------------------------------------------------------------
select throws_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-0000000000a2', '[1]')$$, '22023', null,
    'a layer that is not an object');
select throws_like($$select tenancy.set_tokens('00000000-0000-0000-0000-0000000000a2',
    '{"color": {"x": {"$value": "{color.nope}"}}}')$$, '%color.nope%', 'a dangling alias names the alias');
select throws_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-0000000000a2',
    '{"a": {"$type": "color", "$value": "{b}"}, "b": {"$type": "color", "$value": "{a}"}}')$$, '22023', null,
    'a circular alias');
select throws_ok($$select tenancy.set_token_rule('00000000-0000-0000-0000-00000000000a', 'space.md', 'maximum')$$,
    '22023', null, 'an unknown rule');
select throws_ok($$select tenancy.set_token_rule('00000000-0000-0000-0000-00000000000a', 'space.md', 'range', '{}')$$,
    '22023', null, 'a range without bounds');
select throws_ok($$select tenancy.set_tokens('00000000-0000-0000-0000-0000000000ff', '{}')$$, 'TN001', null,
    'an unknown tenant');
select throws_ok($$select tenancy.effective_tokens()$$, 'TN003', null, 'no tenant and no context');

-- CSS and contrast -------------------------------------------------------------------------------------
select matches(tenancy.tokens_css('00000000-0000-0000-0000-0000000000a1'), '^:root \{\n  --color-bg: #ffffff;\n',
    'CSS custom properties in one :root rule, sorted by path');
select ok(tenancy.tokens_css('00000000-0000-0000-0000-0000000000a1') like '%  --color-brand-primary: #0050b3;%',
    'color.brand.primary becomes --color-brand-primary');
select ok(tenancy.tokens_css('00000000-0000-0000-0000-0000000000b1', '[data-tenant="initech"]')
    like '[data-tenant="initech"] {%--color-brand-primary: #333333;%', 'a selector of one''s own');
select throws_ok($$select tenancy.tokens_css('00000000-0000-0000-0000-0000000000a1', '} body {')$$, '22023', null,
    'a selector that would break out of the rule');
select is(tenancy.contrast_ratio('#000', '#fff'), 21::numeric, 'black on white is 21:1');
select is(round(tenancy.contrast_ratio('#777777', '#ffffff'), 2), 4.48, '#777 on white is 4.48:1 (WCAG example)');
select throws_ok($$select tenancy.contrast_ratio('red-ish', '#fff')$$, '22023', null, 'an unreadable color');

-- the cache follows writes ----------------------------------------------------------------------------
select is(tenancy.effective_tokens('00000000-0000-0000-0000-0000000000a2') #>> '{space,md,$value}', '12px', 'cached');
select tenancy.set_tokens('00000000-0000-0000-0000-00000000000a', '{"color": {"brand": {"primary": {"$value": "#0050b3"}}}, "space": {"md": {"$value": "14px"}}}');
select is(tenancy.effective_tokens('00000000-0000-0000-0000-0000000000a2') #>> '{space,md,$value}', '14px',
    'a partner''s write reaches its customers at once (same transaction)');

select * from finish();
rollback;
