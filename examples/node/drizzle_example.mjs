// tenancy from Node.js with Drizzle ORM (drizzle-orm/node-postgres over a pg Pool) and pg-tenancy.
//
// withTenant(db, tenantId, fn) runs fn(tx) in one Drizzle transaction whose first statement is
// set_tenant(tenantId, local => true): every query of fn sees only that tenant, and the context ends
// with the transaction, so this works the same directly or behind PgBouncer in transaction mode.
//
//   node examples/node/drizzle_example.mjs postgresql://tenancy_example_app:example@127.0.0.1:5432/tenancy_example
//
// (or set TENANCY_EXAMPLE_DSN; the schema is examples/schema.sql). Exits 1 on any isolation failure.
import { count, eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { bigserial, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import pg from "pg";
import { tenantColumn, withTenant } from "pg-tenancy/drizzle";

const ACME = "acme.example.com"; // a customer's own domain
const GLOBEX = "globex.brandsyncup.com"; // another customer, through the partner's wildcard

// tenantColumn(): uuid, not null, filled by the database from the context: leave it out of inserts.
const notes = pgTable("notes", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  tenantId: tenantColumn(),
  body: text("body").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

const url = process.argv[2] ?? process.env.TENANCY_EXAMPLE_DSN;
if (!url) {
  console.error("usage: node drizzle_example.mjs postgresql://...   (or set TENANCY_EXAMPLE_DSN)");
  process.exit(2);
}
const pool = new pg.Pool({ connectionString: url, max: 4 });
const db = drizzle(pool);

async function resolveDomain(host) {
  const { rows } = await db.execute(sql`select tenancy.resolve_domain(${host}) as id`);
  return rows[0].id;
}

// Drizzle wraps driver errors (DrizzleQueryError); the SQLSTATE is on the pg error.
const sqlstate = (err) => err?.code ?? err?.cause?.code;

const failures = [];
function check(ok, line) {
  console.log(ok ? line : `FAIL: ${line}`);
  if (!ok) failures.push(line);
}

try {
  // Which tenant owns this host? Needs no context.
  const acme = await resolveDomain(ACME);
  const globex = await resolveDomain(GLOBEX);
  console.log(`resolved ${ACME} -> ${acme}, ${GLOBEX} -> ${globex}`);

  await withTenant(db, acme, async (tx) => {
    const [note] = await tx.insert(notes).values({ body: "hello from drizzle" }).returning({ id: notes.id });
    const rows = await tx.select({ tenantId: notes.tenantId }).from(notes);
    check(
      rows.length > 0 && rows.every((r) => r.tenantId === acme),
      `acme: wrote note ${note.id}, sees ${rows.length} notes, all its own`,
    );
    try {
      // a nested transaction is a savepoint: the refusal does not end the request
      await tx.transaction((sp) => sp.insert(notes).values({ tenantId: globex, body: "sneaky" }));
      check(false, "acme: writing into globex was accepted");
    } catch (err) {
      check(sqlstate(err) === "42501", `acme: writing into globex refused with SQLSTATE ${sqlstate(err)}`);
    }
    const [{ n }] = await tx.select({ n: count() }).from(notes).where(eq(notes.tenantId, globex));
    check(n === 0, `acme: notes of globex visible: ${n}`);
  });

  const [{ n }] = await db.select({ n: count() }).from(notes);
  check(n === 0, `no context after commit: ${n} notes visible`);
} finally {
  await pool.end();
}

console.log(failures.length === 0 ? "isolation OK" : `isolation FAILED: ${failures.length} check(s)`);
process.exitCode = failures.length === 0 ? 0 : 1;
