-- Schema `tenancy` is created by CREATE EXTENSION (tenancy.control: schema = tenancy).
comment on schema tenancy is
'tenancy: multi-tenant isolation as a property of the database. See tenancy.check() and the README.';

-- tenancy_platform: its members may take a tier-0 (platform) context. tenancy_app: what an
-- application login needs (grant_app makes a role a member). tenancy_pooled: logins behind a
-- transaction-pooling pooler (PgBouncer's pool_mode = transaction), where a session context would
-- outlive the client's transaction and become the next client's: set_tenant refuses them one (TN007,
-- hint: local => true); grant_app(role, pooled => true) makes a role a member. Roles are cluster-wide,
-- so they are created only if missing and survive DROP EXTENSION.
do $roles$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'tenancy_platform') then
        create role tenancy_platform nologin;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'tenancy_app') then
        create role tenancy_app nologin;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'tenancy_pooled') then
        create role tenancy_pooled nologin;
    end if;
end
$roles$;

--@python

-- Audit trail: one structured server-log line per refused or forged context. RAISE LOG reaches the
-- server log (log_min_messages defaults to warning, which includes LOG) and never the client, and
-- a log line survives the caller's rollback. PUBLIC may call it (the policies' forged-value path
-- runs as whoever queries); a caller can name only a role it can act as (tenancy's SECURITY DEFINER
-- functions, run by a superuser owner, name their caller), so no line speaks for another role.
-- STABLE: it writes nothing to the database, so it also runs inside a parallel-mode statement (a
-- VOLATILE function's statements would need a new command there, which PostgreSQL refuses).
--@grant public
create or replace function tenancy._audit(
    p_event text, p_asked text, p_reason text, p_sqlstate text, p_role name default current_user
)
returns void
language plpgsql
stable
parallel restricted
set search_path = pg_catalog, pg_temp
as $fn$
begin
    if p_role is distinct from current_user
       and not coalesce(pg_catalog.pg_has_role(current_user, pg_catalog.to_regrole(p_role::text), 'MEMBER'), false) then
        p_role := current_user;
    end if;
    raise log 'TENANCY_AUDIT %', pg_catalog.json_build_object(
        'time', pg_catalog.clock_timestamp(),
        'event', p_event,
        'sqlstate', p_sqlstate,
        'role', p_role,
        'session_user', session_user,
        'pid', pg_catalog.pg_backend_pid(),
        'client_addr', pg_catalog.inet_client_addr(),
        'application_name', pg_catalog.current_setting('application_name', true),
        'database', pg_catalog.current_database(),
        'asked', p_asked,
        'reason', p_reason
    );
end
$fn$;
