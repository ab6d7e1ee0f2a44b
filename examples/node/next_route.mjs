// A Next.js App Router route handler (app/api/notes/route.ts in a real application), as a plain
// module: the same shape, no Next.js needed. The browser sends the identity provider's session
// token (Clerk: `await getToken()`); the database verifies it (tenancy.set_tenant_from_jwt, RS256
// against the JWKS registered with tenancy.add_jwt_issuer, tenant claim `o.id`) and takes the
// context of the organization it names. The application never decides the tenant itself, so the
// login may be strict: tenancy.grant_app(role, strict => true).
//
//   DATABASE_URL=postgresql://app@host/db   (the pool is made on first use)
//
// GET  -> 200 [{ id, body }] the organization's notes
// POST -> 201 { id } a note, tenant_id filled by the database
// Refusals answer with the error class's httpStatus (TN008 403, TN001 404, ...).
import { desc } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { bigserial, pgTable, text } from "drizzle-orm/pg-core";
import pg from "pg";
import { TenancyError, tenantColumn, withJwt } from "pg-tenancy/drizzle";

export const notes = pgTable("notes", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  tenantId: tenantColumn(),
  body: text("body").notNull(),
});

let db;
function database() {
  // one pool per process (in Next.js: module scope, reused across requests)
  db ??= drizzle(new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 }));
  return db;
}

/** Close the pool (for scripts and tests; a server keeps it). */
export async function close() {
  await db?.$client.end();
  db = undefined;
}

function bearer(request) {
  const m = /^Bearer\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "");
  return m?.[1] ?? null;
}

function refused(err) {
  if (err instanceof TenancyError) {
    // message and hint are the database's; the check that failed (TN008) is useful to the client
    return Response.json({ error: err.name, sqlstate: err.sqlstate, message: err.message }, { status: err.httpStatus });
  }
  throw err;
}

export async function GET(request) {
  const token = bearer(request);
  if (!token) return Response.json({ error: "no bearer token" }, { status: 401 });
  try {
    const rows = await withJwt(database(), token, (tx) =>
      tx.select({ id: notes.id, body: notes.body }).from(notes).orderBy(desc(notes.id)),
    );
    return Response.json(rows);
  } catch (err) {
    return refused(err);
  }
}

export async function POST(request) {
  const token = bearer(request);
  if (!token) return Response.json({ error: "no bearer token" }, { status: 401 });
  const { body } = await request.json();
  try {
    const [row] = await withJwt(database(), token, (tx) =>
      tx.insert(notes).values({ body }).returning({ id: notes.id, tenantId: notes.tenantId }),
    );
    return Response.json(row, { status: 201 });
  } catch (err) {
    return refused(err);
  }
}
