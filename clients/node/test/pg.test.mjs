// pg-tenancy over node-postgres: pg.Pool and pg.Client, as application roles.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  BY_SQLSTATE,
  ContextNotAllowed,
  IdentityTokenRefused,
  InvariantGuard,
  NoTenantContext,
  TenancyError,
  TenantPlacedElsewhere,
  TenantSuspended,
  TokenGovernance,
  UnknownDomain,
  UnknownTenant,
  reset,
  translateError,
  withDomain,
  withJwt,
  withTenant,
} from "pg-tenancy";
import { hasServer, makeDatabase, rsaIssuer, serverLog } from "./helpers.mjs";

const ISS = "https://clerk.pgtenancy.test";
let db;
let issuer;
const now = () => Math.floor(Date.now() / 1000);

before(async () => {
  if (!hasServer) return;
  db = await makeDatabase();
  issuer = rsaIssuer();
  await db.pools.super.query("select tenancy.add_jwt_issuer($1, $2::jsonb, tenant_claim => 'o.id', audiences => null)", [
    ISS,
    JSON.stringify(issuer.jwks),
  ]);
});
after(async () => db?.close());

const slugsSeen = async (client) =>
  (await client.query("select distinct t.slug from notes n join tenancy.tenants t on t.id = n.tenant_id order by 1")).rows.map(
    (r) => r.slug,
  );

describe("isolation per tier", { skip: !hasServer && "no server: run under scripts/with-cluster.sh" }, () => {
  test("a customer sees only its own rows, and writes land in it", async () => {
    const r = await withTenant(db.pools.app, db.tree.acme, async (client, tenant) => {
      assert.equal(tenant, db.tree.acme);
      await client.query("insert into notes (body) values ('from node')");
      return slugsSeen(client);
    });
    assert.deepEqual(r, ["acme"]);
  });

  test("a partner sees itself and its customers", async () => {
    const r = await withTenant(db.pools.app, db.tree.brandsyncup, (client) => slugsSeen(client));
    assert.deepEqual(r, ["acme", "brandsyncup", "globex"]);
  });

  test("the platform sees every tenant (platform role), and is refused to an application role", async () => {
    const r = await withTenant(db.pools.platform, db.tree.platform, (client) => slugsSeen(client));
    assert.deepEqual(r, ["acme", "brandsyncup", "globex", "initech", "pixelworks", "platform"]);
    await assert.rejects(withTenant(db.pools.app, db.tree.platform, slugsSeen), ContextNotAllowed);
  });

  test("a write into another tenant is refused (42501) and rolls the transaction back", async () => {
    const before = (await db.pools.super.query("select count(*)::int as n from notes")).rows[0].n;
    await assert.rejects(
      withTenant(db.pools.app, db.tree.acme, async (client) => {
        await client.query("insert into notes (body) values ('kept?')");
        await client.query("insert into notes (tenant_id, body) values ($1, 'sneaky')", [db.tree.globex]);
      }),
      (err) => err.code === "42501" && !(err instanceof TenancyError),
    );
    assert.equal((await db.pools.super.query("select count(*)::int as n from notes")).rows[0].n, before);
  });

  test("withDomain takes the context of the host's tenant (exact and wildcard)", async () => {
    assert.deepEqual(await withDomain(db.pools.app, "ACME.example.com.", (_c, t) => t), db.tree.acme);
    assert.deepEqual(await withDomain(db.pools.app, "globex.brandsyncup.com", slugsSeen), ["globex"]);
  });

  test("withJwt takes the context of the organization in o.id, also for a strict role", async () => {
    const token = issuer.sign({ iss: ISS, sub: "user_1", exp: now() + 60, iat: now(), o: { id: "org_globex" } });
    assert.deepEqual(await withJwt(db.pools.strict, token, slugsSeen), ["globex"]);
    await assert.rejects(withTenant(db.pools.strict, db.tree.globex, slugsSeen), ContextNotAllowed);
  });

  test("a pg.Client works the same, and its context ends with the transaction", async () => {
    const client = db.client("app");
    await client.connect();
    try {
      assert.deepEqual(await withTenant(client, db.tree.initech, slugsSeen), ["initech"]);
      assert.equal((await client.query("select tenancy.current_tenant() as t")).rows[0].t, null);
      assert.deepEqual(await slugsSeen(client), []);
    } finally {
      await client.end();
    }
  });

  test("no context is left on the pool's connections afterwards", async () => {
    await Promise.all(
      [db.tree.acme, db.tree.globex, db.tree.brandsyncup, db.tree.initech].map((t) => withTenant(db.pools.app, t, slugsSeen)),
    );
    for (let i = 0; i < 4; i++) {
      const { rows } = await db.pools.app.query("select tenancy.current_tenant() as t, (select count(*)::int from notes) as n");
      assert.deepEqual(rows[0], { t: null, n: 0 });
    }
  });
});

describe("errors per SQLSTATE", { skip: !hasServer && "no server" }, () => {
  const check = (cls, sqlstate, httpStatus, words) => (err) => {
    assert.ok(err instanceof cls, `${err?.name}: ${err?.message}`);
    assert.ok(err instanceof TenancyError);
    assert.equal(err.sqlstate, sqlstate);
    assert.equal(err.httpStatus, httpStatus);
    assert.equal(err.name, cls.name);
    assert.match(err.message, words);
    assert.equal(err.cause?.code, sqlstate, "the driver's error is the cause");
    return true;
  };

  test("the classes agree with python/tenancy/errors.py", () => {
    const expected = {
      TN001: ["UnknownTenant", 404],
      TN002: ["TenantSuspended", 403],
      TN003: ["NoTenantContext", 500],
      TN004: ["TokenGovernance", 422],
      TN005: ["UnknownDomain", 404],
      TN006: ["InvariantGuard", 500],
      TN007: ["ContextNotAllowed", 403],
      TN008: ["IdentityTokenRefused", 403],
      TN009: ["TenantPlacedElsewhere", 503],
    };
    const actual = Object.fromEntries(Object.entries(BY_SQLSTATE).map(([k, c]) => [k, [c.name, c.httpStatus]]));
    assert.deepEqual(actual, expected);
  });

  test("TN001 unknown tenant", async () => {
    await assert.rejects(
      withTenant(db.pools.app, "00000000-0000-0000-0000-0000000000ff", slugsSeen),
      check(UnknownTenant, "TN001", 404, /00000000-0000-0000-0000-0000000000ff/),
    );
  });

  test("TN002 suspended tenant, with the server's hint", async () => {
    await db.pools.super.query("update tenancy.tenants set status = 'suspended' where slug = 'initech'");
    try {
      await assert.rejects(withTenant(db.pools.app, db.tree.initech, slugsSeen), (err) => {
        check(TenantSuspended, "TN002", 403, /suspended/)(err);
        assert.equal(err.hint, err.cause.hint);
        return true;
      });
    } finally {
      await db.pools.super.query("update tenancy.tenants set status = 'active' where slug = 'initech'");
    }
  });

  test("TN003 no context, raised inside fn, and by translateError on a plain query", async () => {
    await assert.rejects(
      withTenant(db.pools.app, db.tree.acme, async (client) => {
        await client.query("select tenancy.reset_tenant()");
        await client.query("insert into notes (body) values ('no context')");
      }),
      check(NoTenantContext, "TN003", 500, /context/),
    );
    const err = await db.pools.app.query("insert into notes (body) values ('x')").catch((e) => e);
    assert.ok(!(err instanceof TenancyError));
    check(NoTenantContext, "TN003", 500, /context/)(translateError(err));
  });

  test("TN004 token governance", async () => {
    await db.pools.super.query(
      `select tenancy.set_tokens($1, '{"color": {"error": {"$type": "color", "$value": "#d00000"}}}');
       select tenancy.set_token_rule($1, 'color.error', 'lock')`.replaceAll("$1", `'${db.tree.platform}'`),
    );
    await assert.rejects(
      withTenant(db.pools.super, db.tree.platform, (client) =>
        client.query("select tenancy.set_tokens($1, $2::jsonb)", [
          db.tree.acme,
          JSON.stringify({ color: { error: { $value: "#ff0000" } } }),
        ]),
      ),
      check(TokenGovernance, "TN004", 422, /color\.error/),
    );
  });

  test("TN005 unknown domain", async () => {
    await assert.rejects(withDomain(db.pools.app, "nobody.example.org", slugsSeen), check(UnknownDomain, "TN005", 404, /nobody\.example\.org/));
  });

  test("TN006 invariant guard", async () => {
    const err = await db.pools.super.query("alter table notes disable row level security").catch((e) => e);
    check(InvariantGuard, "TN006", 500, /notes/)(translateError(err));
  });

  test("TN007 context not allowed", async () => {
    await assert.rejects(withTenant(db.pools.app, db.tree.platform, slugsSeen), check(ContextNotAllowed, "TN007", 403, /./));
  });

  test("TN008 identity token refused, naming the check", async () => {
    const expired = issuer.sign({ iss: ISS, exp: now() - 3600, o: { id: "org_acme" } });
    await assert.rejects(withJwt(db.pools.app, expired, slugsSeen), (err) => {
      check(IdentityTokenRefused, "TN008", 403, /expired/)(err);
      assert.equal(err.check, "expired");
      return true;
    });
    const forged = `${expired.split(".").slice(0, 2).join(".")}.${Buffer.from("nope").toString("base64url")}`;
    await assert.rejects(withJwt(db.pools.app, forged, slugsSeen), check(IdentityTokenRefused, "TN008", 403, /./));
  });

  test("TN009 tenant placed elsewhere", async () => {
    await db.pools.super.query(
      "insert into tenancy.placements (tenant_id, kind, database, status) values ($1, 'database', 'elsewhere_db', 'active')",
      [db.tree.globex],
    );
    try {
      await assert.rejects(withTenant(db.pools.app, db.tree.globex, slugsSeen), check(TenantPlacedElsewhere, "TN009", 503, /elsewhere_db/));
    } finally {
      await db.pools.super.query("delete from tenancy.placements where tenant_id = $1", [db.tree.globex]);
    }
  });

  test("other errors pass through unchanged (22023 malformed host, 22P02 bad uuid)", async () => {
    await assert.rejects(withDomain(db.pools.app, "bad host!", slugsSeen), (err) => err.code === "22023" && !(err instanceof TenancyError));
    await assert.rejects(withTenant(db.pools.app, "not-a-uuid", slugsSeen), (err) => err.code === "22P02");
    const plain = new Error("plain");
    assert.equal(translateError(plain), plain);
  });

  test("bad arguments are TypeErrors before any query", async () => {
    await assert.rejects(withTenant({}, db.tree.acme, slugsSeen), TypeError);
    await assert.rejects(withTenant(db.pools.app, undefined, slugsSeen), TypeError);
    await assert.rejects(withTenant(db.pools.app, db.tree.acme), TypeError);
  });
});

describe("rollback on error", { skip: !hasServer && "no server" }, () => {
  test("an error thrown by fn rolls back what fn wrote, and the client goes back clean", async () => {
    const marker = `rollback-${Date.now()}`;
    const boom = new Error("boom");
    await assert.rejects(
      withTenant(db.pools.app, db.tree.acme, async (client) => {
        await client.query("insert into notes (body) values ($1)", [marker]);
        throw boom;
      }),
      (err) => err === boom,
    );
    const { rows } = await db.pools.super.query("select count(*)::int as n from notes where body = $1", [marker]);
    assert.equal(rows[0].n, 0);
    assert.equal(db.pools.app.totalCount >= 1, true);
    for (let i = 0; i < db.pools.app.totalCount; i++) {
      const c = await db.pools.app.connect();
      try {
        assert.equal(c.getTransactionStatus(), "I");
        assert.equal((await c.query("select tenancy.current_tenant() as t")).rows[0].t, null);
      } finally {
        c.release();
      }
    }
  });

  test("inside a transaction the client already has, a savepoint: the outer transaction goes on", async () => {
    const client = await db.pools.app.connect();
    try {
      await client.query("begin");
      await withTenant(client, db.tree.acme, (c) => c.query("insert into notes (body) values ('nested')"));
      await assert.rejects(withTenant(client, db.tree.globex, () => Promise.reject(new Error("inner"))), /inner/);
      // the failed inner one put the previous (acme) context back
      assert.equal((await client.query("select tenancy.current_tenant() as t")).rows[0].t, db.tree.acme);
      await client.query("rollback");
      assert.equal((await client.query("select tenancy.current_tenant() as t")).rows[0].t, null);
    } finally {
      client.release();
    }
  });
});

describe("pool reset", { skip: !hasServer && "no server" }, () => {
  test("a session context survives release unless reset() ends it", async () => {
    const pool = new (await import("pg")).default.Pool({ ...db.params, user: db.roles.app, password: db.password, max: 1 });
    try {
      const c1 = await pool.connect();
      await c1.query("select tenancy.set_tenant($1)", [db.tree.acme]); // a session context
      c1.release();
      const c2 = await pool.connect(); // the same connection (max 1): the context came along
      assert.equal((await c2.query("select tenancy.current_tenant() as t")).rows[0].t, db.tree.acme);
      await reset(c2);
      c2.release();
      const c3 = await pool.connect();
      assert.equal((await c3.query("select tenancy.current_tenant() as t")).rows[0].t, null);
      assert.equal((await c3.query("select count(*)::int as n from notes")).rows[0].n, 0);
      c3.release();
    } finally {
      await pool.end();
    }
  });
});

test("a refused token is sent as a parameter: the server log has the statement, never the token (pg)", { skip: !hasServer && "no server" }, async (t) => {
  if ((await serverLog()) === null) return t.skip("no server log (TENANCY_TEST_LOG)");
  const token = issuer.sign({ iss: ISS, exp: Math.floor(Date.now() / 1000) - 3600, o: { id: "org_acme" } });
  await assert.rejects(withJwt(db.pools.app, token, () => 0), IdentityTokenRefused);
  const log = await serverLog();
  assert.match(log, /STATEMENT:\s+select tenancy\.set_tenant_from_jwt\(\$1, local => true\)/);
  assert.ok(!log.includes(token.split(".")[2]), "the token's signature is in the server log");
});
