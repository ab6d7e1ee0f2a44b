// pg-tenancy: tenant contexts of the tenancy PostgreSQL extension for node-postgres and Drizzle ORM.
//
//   await withTenant(pool, tenantId, async (client) => client.query("select * from orders"));
//
// Each with* runs fn in one transaction whose first statement takes the context with
// `local => true`, so the context ends with the transaction: right with no pooler, with a client-side
// pool and behind PgBouncer in transaction mode. This module imports neither pg nor drizzle-orm (it
// recognises them by shape), so it works with whichever copies the application has.
import { translateError } from "./errors.js";

export * from "./errors.js";

const STATEMENTS = {
  tenant: "select tenancy.set_tenant($1::uuid, local => true) as tenant",
  host: "select tenancy.set_tenant_for_domain($1, local => true) as tenant",
  jwt: "select tenancy.set_tenant_from_jwt($1, local => true) as tenant",
};

/**
 * Run fn in one transaction whose context is `tenant` (a uuid).
 * @template T
 * @param {any} db a pg.Pool, a pg.Client (or a pool's client), or a Drizzle database
 * @param {string} tenant
 * @param {(tx: any, tenant: string) => T | Promise<T>} fn
 * @returns {Promise<T>}
 */
export function withTenant(db, tenant, fn) {
  return withContext(db, "tenant", tenant, fn);
}

/** Run fn in one transaction whose context is the tenant that owns `host` (set_tenant_for_domain). */
export function withDomain(db, host, fn) {
  return withContext(db, "host", host, fn);
}

/** Run fn in one transaction whose context is the tenant named by the identity token (set_tenant_from_jwt). */
export function withJwt(db, token, fn) {
  return withContext(db, "jwt", token, fn);
}

/**
 * End any tenant context the connection holds (`tenancy.reset_tenant()`): call it before a client
 * that took a session context (`local => false`) goes back to its pool. DISCARD ALL / RESET ALL
 * alone only hide the context.
 * @param {any} client a pg client (or a Drizzle database / transaction)
 */
export async function reset(client) {
  try {
    if (isDrizzle(client)) await client.execute("select tenancy.reset_tenant()");
    else await client.query("select tenancy.reset_tenant()");
  } catch (err) {
    throw translateError(err);
  }
}

function kindOf(db) {
  if (db == null || typeof db !== "object") return null;
  if (isDrizzle(db)) return "drizzle";
  if (typeof db.query !== "function") return null;
  if (typeof db.release === "function") return "client"; // a pool's client, already checked out
  if (typeof db.connect === "function" && "totalCount" in db && "idleCount" in db) return "pool";
  if (typeof db.connect === "function") return "client";
  return null;
}

// A Drizzle database or transaction: transaction() and execute(); node-postgres has neither.
function isDrizzle(db) {
  return typeof db.transaction === "function" && typeof db.execute === "function";
}

async function withContext(db, what, value, fn) {
  if (typeof fn !== "function") throw new TypeError("pg-tenancy: fn must be a function (tx) => ...");
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`pg-tenancy: the ${what} must be a non-empty string, not ${describe(value)}`);
  }
  switch (kindOf(db)) {
    case "drizzle":
      return inDrizzle(db, what, value, fn);
    case "pool":
      return inPool(db, what, value, fn);
    case "client":
      return inClient(db, what, value, fn);
    default:
      throw new TypeError(
        `pg-tenancy: db must be a pg.Pool, a pg.Client or a Drizzle database, not ${describe(db)}`,
      );
  }
}

function describe(value) {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "an object";
  return typeof value;
}

async function inPool(pool, what, value, fn) {
  const client = await pool.connect();
  let broken;
  try {
    return await inClient(client, what, value, fn, (err) => {
      broken = err;
    });
  } finally {
    // a client whose transaction could not be closed is destroyed, never handed to the next borrower
    client.release(broken);
  }
}

async function inClient(client, what, value, fn, onBroken = () => {}) {
  // Already in a transaction (pg >= 8.13 reports it): a savepoint, as Drizzle nests transactions.
  // The context then lasts until that outer transaction ends (SPEC §2: a local context belongs to the
  // transaction), and a rollback of the savepoint puts the previous one back.
  const status = typeof client.getTransactionStatus === "function" ? client.getTransactionStatus() : null;
  const nested = status === "T" || status === "E";
  const begin = nested ? "savepoint pg_tenancy" : "begin";
  const commit = nested ? "release savepoint pg_tenancy" : "commit";
  const rollback = nested ? "rollback to savepoint pg_tenancy; release savepoint pg_tenancy" : "rollback";
  let result;
  try {
    await client.query(begin);
    const { rows } = await client.query(STATEMENTS[what], [value]);
    result = await fn(client, rows[0].tenant);
    await client.query(commit);
  } catch (err) {
    // after a failed COMMIT the transaction is already over: the ROLLBACK is then a harmless warning
    await client.query(rollback).catch(onBroken);
    throw translateError(err);
  }
  return result;
}

async function inDrizzle(db, what, value, fn) {
  try {
    return await db.transaction(async (tx) => {
      const result = await tx.execute(bound(STATEMENTS[what], [value]));
      const rows = Array.isArray(result) ? result : result.rows;
      return fn(tx, rows[0].tenant);
    });
  } catch (err) {
    throw translateError(err);
  }
}

// A statement with bind parameters for Drizzle's execute(), without a copy of drizzle-orm's `sql`:
// execute(query) builds its query as query.getSQL().toQuery(dialect) -> { sql, params } (every
// PostgreSQL driver of Drizzle numbers parameters $1, $2, ...). Parameters, never literals: a
// refused token must not reach the server log inside the statement text (log_min_error_statement).
function bound(text, params) {
  const sequel = {
    toQuery: () => ({ sql: text, params, typings: [] }),
    getSQL() {
      return sequel;
    },
  };
  return sequel;
}
