import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./schema.ts",
  out: process.env.DRIZZLE_OUT ?? "./drizzle",
  dbCredentials: { url: process.env.DATABASE_URL ?? "" },
  schemaFilter: ["public"],
  // the documented filter for `drizzle-kit push`: leave registered tables to migrations
  ...(process.env.DRIZZLE_TABLES_FILTER ? { tablesFilter: JSON.parse(process.env.DRIZZLE_TABLES_FILTER) } : {}),
});
