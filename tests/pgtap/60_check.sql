-- tenancy.check(): each finding.
begin;
select plan(30);

create table public.cust (id bigserial primary key, tenant_id uuid not null, email text unique);
create table public.ord (id bigserial primary key, tenant_id uuid not null, cust_id bigint references public.cust (id));
create table public.loose (id int, tenant_id uuid);
select tenancy.register_table('public.cust');
select tenancy.register_table('public.ord');
create view public.v_bad as select * from public.ord;
create view public.v_good with (security_invoker = true) as select * from public.ord;
create materialized view public.mv as select tenant_id, count(*) from public.ord group by 1;
create function public.leaky() returns bigint language sql security definer as $$ select count(*) from public.ord $$;

create temporary table findings as select * from tenancy.check();

select ok(exists (select from findings where object = 'public.loose' and problem ~ 'not a registered'),
    'an unregistered table with a tenant column');
select ok(exists (select from findings where object = 'public.v_bad' and severity = 'error'),
    'a view without security_invoker');
select ok(not exists (select from findings where object = 'public.v_good'), 'a security_invoker view is fine');
select ok(exists (select from findings where object = 'public.mv' and problem ~ 'materialized view'),
    'a materialized view over a scoped table');
select ok(exists (select from findings where object = 'public.leaky()' and problem ~ 'SECURITY DEFINER'),
    'a SECURITY DEFINER function reading a scoped table');
select ok(exists (select from findings where object = 'public.cust_email_key' and severity = 'warning'),
    'a unique index without the tenant column');
select ok(exists (select from findings where object ~ 'ord_cust_id_fkey' and problem ~ 'foreign key'),
    'a foreign key without the tenant column');
select ok(exists (select from findings where problem ~ 'superuser'), 'the current role is a superuser');
select ok(not exists (select from findings where coalesce(code, '') !~ '^[a-z][a-z0-9_]+$'),
    'every finding has a code');
select ok(exists (select from findings where object = 'public.v_bad' and code = 'view_bypasses_rls')
    and exists (select from findings where object = 'public.mv' and code = 'matview_stores_rows')
    and exists (select from findings where object = 'public.loose' and code = 'table_not_registered'),
    'codes name the kind of finding');

-- drift: a policy removed behind tenancy's back (event triggers do not fire in replica mode, as in a
-- careless restore script)
set local session_replication_role = replica;
drop policy tenancy_delete on public.cust;
set local session_replication_role = origin;
select ok(exists (select from tenancy.check() where object = 'public.cust' and problem ~ 'tenancy_delete is missing'),
    'a missing generated policy is drift');
select tenancy.refresh_policies();
select ok(not exists (select from tenancy.check() where object = 'public.cust' and problem ~ 'missing'),
    'refresh_policies repairs it');

-- v0.2 findings
create table public.acct (id int, tenant_id uuid, email text);
create unique index acct_email_incl on public.acct (email) include (tenant_id);
create unique index acct_email_ok on public.acct (tenant_id, email);
select tenancy.register_table('public.acct');
create policy narrow on public.acct as restrictive using (id > 0);
set local session_replication_role = replica;
create policy leftover on public.acct using (true);
alter policy tenancy_update on public.acct using (true);
alter table public.acct disable trigger tenancy_truncate_guard;
set local session_replication_role = origin;
create role check_bob;
grant truncate on public.acct to check_bob;
create view public.chain1 with (security_invoker = true) as select * from public.acct;
create view public.chain2 with (security_invoker = true) as select * from public.chain1;
create materialized view public.mv_chain as select * from public.chain2;
create view public.chain_bad as select * from public.chain2;
create function public.helper_count() returns bigint language sql as $$ select count(*) from public.acct $$;
create function public.helper_mid() returns bigint language plpgsql as $$ begin return public.helper_count(); end $$;
create function public.secdef_far() returns bigint language sql security definer as $$ select public.helper_mid() $$;
create function public.as_platform(t uuid) returns uuid language sql security definer
    as $$ select tenancy.set_tenant(t) $$;
create table public.inbox (tenant_id uuid, body text);
create rule inbox_copy as on insert to public.inbox do also insert into public.acct (tenant_id, email)
    values (new.tenant_id, new.body);
create role check_owner;
create table public.not_mine (id int, tenant_id uuid);
alter table public.not_mine owner to check_owner;
select tenancy.register_table('public.not_mine');

create temporary table findings2 as select * from tenancy.check();
select ok(exists (select from findings2 where object = 'public.acct' and severity = 'error'
    and problem ~ 'permissive policy leftover was not generated'), 'a foreign permissive policy: error');
select ok(exists (select from findings2 where object = 'public.acct' and severity = 'info'
    and problem ~ 'restrictive policy narrow'), 'a restrictive policy: info');
select ok(exists (select from findings2 where object = 'public.acct' and severity = 'error'
    and problem ~ 'tenancy_update was edited: its USING'), 'an edited generated policy: error');
select ok(not exists (select from findings2 where object = 'public.acct' and problem ~ 'tenancy_select was edited'),
    'an untouched generated policy is not reported');
select ok(exists (select from findings2 where object = 'public.acct' and problem ~ 'tenancy_truncate_guard is missing or disabled'),
    'a disabled TRUNCATE guard: error');
select ok(exists (select from findings2 where object = 'public.acct' and problem ~ 'TRUNCATE is granted to check_bob'),
    'TRUNCATE granted to a role that does not own the table');
select ok(exists (select from findings2 where object = 'public.mv_chain' and problem ~ 'materialized view.*through'),
    'a materialized view over a chain of security_invoker views');
select ok(exists (select from findings2 where object = 'public.chain_bad' and problem ~ 'as its owner'),
    'a view without security_invoker over a chain of views');
select ok(not exists (select from findings2 where object in ('public.chain1', 'public.chain2')),
    'security_invoker views in the chain are fine');
select ok(exists (select from findings2 where object = 'public.secdef_far()'
    and problem ~ 'helper_mid\(\) -> public.helper_count\(\)'),
    'a SECURITY DEFINER function reaching a scoped table through two ordinary functions');
select ok(not exists (select from findings2 where object in ('public.helper_count()', 'public.helper_mid()')),
    'the ordinary functions themselves are not reported');
select ok(exists (select from findings2 where object = 'public.as_platform(uuid)' and severity = 'error'
    and problem ~ 'tier-0'), 'a SECURITY DEFINER wrapper of set_tenant owned by a superuser');
select ok(exists (select from findings2 where object = 'inbox_copy on public.inbox' and severity = 'error'
    and problem ~ 'DO ALSO ON INSERT'), 'a rule on another table that writes into a scoped table');
select ok(exists (select from findings2 where object = 'public.acct_email_incl' and problem ~ 'key columns'),
    'a unique index with the tenant column only as INCLUDE column');
select ok(not exists (select from findings2 where object = 'public.acct_email_ok'),
    'a unique index with the tenant column as key column is fine');
select ok(not exists (select from findings2 where object = 'public.not_mine' and problem ~ 'owns'),
    'a superuser is not told it owns a table another role owns');
select ok(not exists (select from findings2 where coalesce(hint, '') = ''), 'every finding has a hint');
select ok(exists (select from findings2 where object = 'public.acct' and code = 'policy_edited')
    and exists (select from findings2 where object = 'public.acct' and code = 'restrictive_policy')
    and exists (select from findings2 where object = 'public.acct' and code = 'truncate_granted'),
    'v0.2 findings have their codes');

select * from finish();
rollback;
