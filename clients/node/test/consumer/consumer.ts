// A small TypeScript consumer of pg-tenancy: `tsc -p test/consumer` (no emit) must accept it, so the
// declarations cannot drift from the API. Lines marked @ts-expect-error must stay errors.
import { drizzle } from "drizzle-orm/node-postgres";
import { bigserial, pgTable, text } from "drizzle-orm/pg-core";
import pg from "pg";
import {
  BY_SQLSTATE,
  IdentityTokenRefused,
  TenancyError,
  UnknownTenant,
  reset,
  translateError,
  withDomain,
  withJwt,
  withTenant,
} from "pg-tenancy";
import { tenantColumn } from "pg-tenancy/drizzle";

const notes = pgTable("notes", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  tenantId: tenantColumn(),
  body: text("body").notNull(),
});
const other = pgTable("other", { org: tenantColumn("org_id") });

// The declarations must give real types, not `any` (which would make every check below pass).
type IsAny<T> = 0 extends 1 & T ? true : false;
export const typed: [
  IsAny<typeof notes.$inferSelect.tenantId>,
  IsAny<typeof other.$inferInsert.org>,
  IsAny<ReturnType<typeof withTenant>>,
  IsAny<typeof TenancyError.prototype.httpStatus>,
] = [false, false, false, false];
// tenant_id is a string when read, and may be left out of an insert
export const read: typeof notes.$inferSelect.tenantId = "00000000-0000-0000-0000-000000000000";
export const insert: typeof notes.$inferInsert = { body: "no tenant_id needed" };

const pool = new pg.Pool();
const db = drizzle(pool);

export async function handler(tenant: string, host: string, token: string): Promise<number> {
  // pg.Pool: fn gets a PoolClient
  const n: number = await withTenant(pool, tenant, async (client, id) => {
    const { rows } = await client.query<{ n: number }>("select count(*)::int as n from notes where tenant_id = $1", [id]);
    client.release satisfies (err?: Error | boolean) => void;
    return rows[0].n;
  });
  // pg.Client: fn gets that client
  const client = new pg.Client();
  const path: number | null = await withDomain(client, host, async (c) => (await c.query("select 1")).rowCount);
  // Drizzle: fn gets a Drizzle transaction; tenantId may be left out of inserts
  const rows = await withJwt(db, token, async (tx, id) => {
    await tx.insert(notes).values({ body: "typed" });
    await tx.insert(notes).values({ body: "explicit", tenantId: id });
    return tx.select({ tenantId: notes.tenantId, org: other.org }).from(notes).leftJoin(other, undefined as never);
  });
  const firstTenant: string = rows[0].tenantId;
  // @ts-expect-error body is required, tenantColumn() is not
  await withTenant(db, tenant, (tx) => tx.insert(notes).values({}));
  // @ts-expect-error the tenant is a string (a uuid)
  await withTenant(pool, 42, async () => 1);
  await reset(client);
  await reset(db);
  return n + String(path).length + firstTenant.length;
}

export function status(err: unknown): number {
  const e = translateError(err);
  if (e instanceof IdentityTokenRefused) return e.check === "expired" ? 401 : e.httpStatus;
  if (e instanceof TenancyError) {
    const s: string = e.sqlstate;
    const h: string | null = e.hint;
    return s.length + (h ?? "").length > 0 ? e.httpStatus : 500;
  }
  const cls: typeof TenancyError | undefined = BY_SQLSTATE.TN001;
  const code: string = UnknownTenant.sqlstate;
  return cls && code === "TN001" ? 500 : 500;
}
