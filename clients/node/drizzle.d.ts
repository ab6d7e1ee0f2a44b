import type { HasDefault, NotNull } from "drizzle-orm";
import type { PgUUIDBuilderInitial } from "drizzle-orm/pg-core";

export * from "./index.js";

/**
 * The tenant column of a registered table for `pgTable`: uuid, not null, with the default that
 * `tenancy.register_table` gives it (the current tenant). Optional in inserts: the database fills it.
 */
export declare function tenantColumn(): HasDefault<NotNull<PgUUIDBuilderInitial<"tenant_id">>>;
export declare function tenantColumn<TName extends string>(name: TName): HasDefault<NotNull<PgUUIDBuilderInitial<TName>>>;
