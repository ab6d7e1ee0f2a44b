-- Run once (0.2.0, issue 23): a database placement on any server. tenancy.placements.database names
-- a database of the control server, or 'service=NAME', the database the libpq service NAME names
-- (host, port, database and credentials from the service file, a password file or the environment).
-- Nothing else fits the column, so no connection string, and no password, can be stored there.
alter table tenancy.placements add constraint placements_database_value check (
    database is null
    or pg_catalog.strpos(database, '=') = 0
    or pg_catalog.regexp_like(database, '^service=[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$')
);
