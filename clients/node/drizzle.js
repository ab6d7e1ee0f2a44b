// pg-tenancy/drizzle: everything of pg-tenancy, plus tenantColumn for drizzle-orm/pg-core schemas.
// A module of its own because it imports drizzle-orm, an optional peer dependency: applications
// that use node-postgres alone import "pg-tenancy" and never load it.
import { sql } from "drizzle-orm";
import { uuid } from "drizzle-orm/pg-core";

export * from "./index.js";

/**
 * The tenant column of a registered table: uuid, not null, and the default that
 * tenancy.register_table gives it (the current tenant; TN003 without a context). Leave it out of
 * inserts: the database fills it. Declaring the same default as register_table keeps
 * `drizzle-kit generate` and `drizzle-kit push` from seeing a difference to undo.
 * @param {string} [name]
 */
export function tenantColumn(name = "tenant_id") {
  return uuid(name)
    .notNull()
    .default(sql`tenancy._default_tenant()`);
}
