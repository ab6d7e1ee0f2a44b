-- Run once (issue 24, SPEC v0.3 §2 and §4): functions whose signature or result type changes.
-- The re-runnable part (sql/idempotent/) creates them again.

-- check() gains a first column code (a stable identifier per kind of finding): a new result type.
drop function if exists tenancy."check"();
drop function if exists tenancy._check_citus();

-- grant_app(role, strict) becomes grant_app(role, strict, pooled): a new signature (calls with one or
-- two arguments keep working through the defaults).
drop function if exists tenancy.grant_app(regrole, boolean);
