-- Context core v2 (issue 13): the verifiers no longer take the transaction's start time, set_tenant's
-- issuer reads the tenants version itself, and _tenant_info answers set_tenant's own call only. Their
-- 0.1.0 signatures are dropped here (after the prelude dropped the policies that name them); the
-- re-runnable part creates the new ones.
drop function if exists tenancy._set_tenant(uuid, boolean, bigint, double precision);
drop function if exists tenancy._ctx(text, double precision);
drop function if exists tenancy._ctx_visible(text, double precision);
drop function if exists tenancy._ctx_root(text, double precision);
drop function if exists tenancy._tenant_info(uuid);
