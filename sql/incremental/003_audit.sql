-- Run once (0.2.0, issue 14): the name of the index register_table created on a registered table,
-- so that unregister_table drops that index and no index of the user's. Null when register_table
-- found an index led by the tenant column already, and for tables registered by 0.1.0 (which did
-- not record it: unregister_table keeps those indexes).
alter table tenancy.scoped_tables add column tenant_index name;
