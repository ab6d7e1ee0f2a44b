// The Drizzle schema of the drizzle-kit test: a registered table whose tenant column is tenantColumn().
import { bigserial, pgTable, text } from "drizzle-orm/pg-core";
import { tenantColumn } from "pg-tenancy/drizzle";

export const notes = pgTable("notes", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  tenantId: tenantColumn(),
  body: text("body").notNull(),
});
