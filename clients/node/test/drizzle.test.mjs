// pg-tenancy with Drizzle ORM (drizzle-orm/node-postgres): a Drizzle database hands fn a Drizzle
// transaction; tenantColumn leaves the tenant to the database default.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { count, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { bigserial, getTableConfig, pgTable, text } from "drizzle-orm/pg-core";
import {
  ContextNotAllowed,
  IdentityTokenRefused,
  TenancyError,
  UnknownDomain,
  UnknownTenant,
  reset,
  tenantColumn,
  withDomain,
  withJwt,
  withTenant,
} from "pg-tenancy/drizzle";
import { hasServer, makeDatabase, rsaIssuer, serverLog, sqlstate } from "./helpers.mjs";

const notes = pgTable("notes", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  tenantId: tenantColumn(),
  body: text("body").notNull(),
});

const ISS = "https://clerk.drizzle.test";
let db;
let orm;
let issuer;

before(async () => {
  if (!hasServer) return;
  db = await makeDatabase("pgtenancy_drizzle");
  orm = { app: drizzle(db.pools.app), strict: drizzle(db.pools.strict), platform: drizzle(db.pools.platform) };
  issuer = rsaIssuer("drizzle-key");
  await db.pools.super.query("select tenancy.add_jwt_issuer($1, $2::jsonb, tenant_claim => 'o.id', audiences => null)", [
    ISS,
    JSON.stringify(issuer.jwks),
  ]);
});
after(async () => db?.close());

const tenantsSeen = async (tx) =>
  [...new Set((await tx.select({ t: notes.tenantId }).from(notes)).map((r) => r.t))].sort();

test("tenantColumn: uuid, not null, the default register_table sets", () => {
  const col = getTableConfig(notes).columns.find((c) => c.name === "tenant_id");
  assert.equal(col.getSQLType(), "uuid");
  assert.equal(col.notNull, true);
  assert.equal(col.hasDefault, true);
  const named = pgTable("t", { org: tenantColumn("org_id") });
  assert.equal(getTableConfig(named).columns[0].name, "org_id");
});

describe("Drizzle paths", { skip: !hasServer && "no server: run under scripts/with-cluster.sh" }, () => {
  test("withTenant hands fn a Drizzle transaction; an insert without tenantId lands in the tenant", async () => {
    const { acme } = db.tree;
    const [row, seen] = await withTenant(orm.app, acme, async (tx, tenant) => {
      assert.equal(tenant, acme);
      const [r] = await tx.insert(notes).values({ body: "drizzle" }).returning();
      return [r, await tenantsSeen(tx)];
    });
    assert.equal(row.tenantId, acme);
    assert.deepEqual(seen, [acme]);
  });

  test("isolation per tier through Drizzle", async () => {
    const { brandsyncup, acme, globex, platform } = db.tree;
    assert.deepEqual(await withTenant(orm.app, brandsyncup, tenantsSeen), [acme, brandsyncup, globex].sort());
    assert.equal((await withTenant(orm.platform, platform, tenantsSeen)).length, 6);
    await assert.rejects(withTenant(orm.app, platform, tenantsSeen), ContextNotAllowed);
  });

  test("withDomain and withJwt through Drizzle", async () => {
    assert.deepEqual(await withDomain(orm.app, "globex.brandsyncup.com", tenantsSeen), [db.tree.globex]);
    const token = issuer.sign({ iss: ISS, exp: Math.floor(Date.now() / 1000) + 60, o: { id: "org_initech" } });
    assert.deepEqual(await withJwt(orm.strict, token, tenantsSeen), [db.tree.initech]);
    await assert.rejects(withJwt(orm.strict, `${token}x`, tenantsSeen), IdentityTokenRefused);
  });

  test("errors wrapped by Drizzle are translated (message and hint kept)", async () => {
    await assert.rejects(withTenant(orm.app, "00000000-0000-0000-0000-00000000abcd", tenantsSeen), (err) => {
      assert.ok(err instanceof UnknownTenant && err instanceof TenancyError);
      assert.equal(err.sqlstate, "TN001");
      assert.equal(err.httpStatus, 404);
      assert.match(err.message, /00000000-0000-0000-0000-00000000abcd/);
      assert.equal(sqlstate(err.cause), "TN001");
      return true;
    });
    await assert.rejects(withDomain(orm.app, "nobody.example.net", tenantsSeen), UnknownDomain);
  });

  test("a quote or backslash in the value cannot escape its parameter", async () => {
    const before = (await db.pools.super.query("select count(*)::int as n from notes")).rows[0].n;
    for (const host of ["x'); delete from notes; --", "x\\'); delete from notes; --", "a'b"]) {
      await assert.rejects(withDomain(orm.app, host, tenantsSeen), (err) => sqlstate(err) === "22023");
    }
    await assert.rejects(withTenant(orm.app, "'; select 1; --", tenantsSeen), (err) => sqlstate(err) === "22P02");
    assert.equal((await db.pools.super.query("select count(*)::int as n from notes")).rows[0].n, before);
  });

  test("an error in fn rolls back the Drizzle transaction", async () => {
    const marker = `drizzle-rollback-${Date.now()}`;
    await assert.rejects(
      withTenant(orm.app, db.tree.acme, async (tx) => {
        await tx.insert(notes).values({ body: marker });
        throw new Error("boom");
      }),
      /boom/,
    );
    const [{ n }] = await drizzle(db.pools.super).select({ n: count() }).from(notes).where(eq(notes.body, marker));
    assert.equal(n, 0);
  });

  test("a cross-tenant write is refused (42501) in a nested Drizzle transaction (savepoint)", async () => {
    await withTenant(orm.app, db.tree.acme, async (tx) => {
      await assert.rejects(
        tx.transaction((sp) => sp.insert(notes).values({ tenantId: db.tree.globex, body: "sneaky" })),
        (err) => sqlstate(err) === "42501",
      );
      assert.deepEqual(await tenantsSeen(tx), [db.tree.acme]);
    });
  });

  test("a Drizzle transaction passed as db nests: a savepoint whose failure puts the context back", async () => {
    await withTenant(orm.app, db.tree.acme, async (tx) => {
      assert.deepEqual(await withTenant(tx, db.tree.globex, tenantsSeen), [db.tree.globex]);
      await assert.rejects(withTenant(tx, db.tree.initech, () => Promise.reject(new Error("inner"))), /inner/);
      assert.deepEqual(await tenantsSeen(tx), [db.tree.globex]); // the released savepoint's context stays
    });
  });

  test("no context outside withTenant, and reset() on a Drizzle database", async () => {
    const [{ n }] = await orm.app.select({ n: count() }).from(notes);
    assert.equal(n, 0);
    await reset(orm.app);
  });
});

test("a refused token is sent as a parameter: the server log has the statement, never the token (Drizzle)", { skip: !hasServer && "no server" }, async (t) => {
  if ((await serverLog()) === null) return t.skip("no server log (TENANCY_TEST_LOG)");
  const token = issuer.sign({ iss: ISS, exp: Math.floor(Date.now() / 1000) - 3600, o: { id: "org_acme" } });
  await assert.rejects(withJwt(orm.app, token, () => 0), IdentityTokenRefused);
  const log = await serverLog();
  assert.match(log, /STATEMENT:\s+select tenancy\.set_tenant_from_jwt\(\$1, local => true\)/);
  assert.ok(!log.includes(token.split(".")[2]), "the token's signature is in the server log");
});
