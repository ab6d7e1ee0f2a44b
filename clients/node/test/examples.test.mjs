// The Node.js examples of examples/node, run against the test server: the Next.js-style route
// handler with a Clerk-shaped RS256 token verified in the database (withJwt, tenant claim o.id),
// and the worker that rotates tenants over one pool behind PgBouncer in transaction mode.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { hasServer, makeDatabase, rsaIssuer, serverParams, urlOf } from "./helpers.mjs";
import { pgbouncerBinary, startPgBouncer } from "./pgbouncer.mjs";

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "examples", "node");
const installed = existsSync(join(EXAMPLES, "node_modules", "pg-tenancy"));
const skip =
  (!hasServer && "no server: run under scripts/with-cluster.sh") ||
  (!installed && "examples/node/node_modules is missing: run scripts/deps.sh");

const CLERK = "https://clerk.example.test"; // Clerk's issuer is the instance's Frontend API URL
const now = () => Math.floor(Date.now() / 1000);

describe("Next.js-style route handler with a Clerk-shaped token (withJwt)", { skip }, () => {
  let db;
  let route;
  let clerk;
  before(async () => {
    db = await makeDatabase("pgtenancy_route");
    clerk = rsaIssuer("ins_2abc");
    await db.pools.super.query(
      "select tenancy.add_jwt_issuer($1, $2::jsonb, tenant_claim => 'o.id', audiences => array['http://localhost:3000'])",
      [CLERK, JSON.stringify(clerk.jwks)],
    );
    process.env.DATABASE_URL = urlOf({ ...db.params, user: db.roles.strict, password: db.password });
    route = await import(join(EXAMPLES, "next_route.mjs"));
  });
  after(async () => {
    await route?.close();
    await db?.close();
  });

  // A Clerk v2 session token: the organization in o.id, azp the app's origin.
  const session = (org, extra = {}) =>
    clerk.sign({ iss: CLERK, sub: "user_2xyz", azp: "http://localhost:3000", sid: "sess_1", v: 2, iat: now(), nbf: now() - 5, exp: now() + 60, o: { id: org, rol: "admin", slg: "acme" }, ...extra });
  const request = (method, token, body) =>
    new Request("http://localhost:3000/api/notes", {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });

  test("POST writes into the token's organization, GET reads only its notes", async () => {
    const created = await route.POST(request("POST", session("org_acme"), { body: "from the route" }));
    assert.equal(created.status, 201);
    assert.equal((await created.json()).tenantId, db.tree.acme);
    const res = await route.GET(request("GET", session("org_acme")));
    assert.equal(res.status, 200);
    const rows = await res.json();
    assert.ok(rows.some((r) => r.body === "from the route"));
    assert.ok(rows.every((r) => r.body !== "welcome, globex"));
    const other = await (await route.GET(request("GET", session("org_globex")))).json();
    assert.deepEqual(other.map((r) => r.body), ["welcome, globex"]);
  });

  test("refusals answer with the class's status: 401 no token, 403 TN008, 404 TN001", async () => {
    assert.equal((await route.GET(request("GET", null))).status, 401);
    const expired = await route.GET(request("GET", session("org_acme", { exp: now() - 600 })));
    assert.equal(expired.status, 403);
    assert.deepEqual(
      { ...(await expired.json()), message: undefined },
      { error: "IdentityTokenRefused", sqlstate: "TN008", message: undefined },
    );
    const foreign = rsaIssuer("ins_2abc").sign({ iss: CLERK, azp: "http://localhost:3000", exp: now() + 60, o: { id: "org_acme" } });
    assert.equal((await route.GET(request("GET", foreign))).status, 403);
    const wrongApp = await route.GET(request("GET", session("org_acme", { azp: "https://evil.example" })));
    assert.equal(wrongApp.status, 403);
    const unknown = await route.GET(request("GET", session("org_nobody")));
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).sqlstate, "TN001");
  });
});

describe("worker rotating tenants over one pool behind PgBouncer (transaction mode)", {
  skip: skip || (!pgbouncerBinary() && "PgBouncer is not installed (scripts/deps.sh installs it)"),
}, () => {
  let db;
  let bouncer;
  let worker;
  const poolThroughBouncer = () =>
    new pg.Pool({ host: "127.0.0.1", port: bouncer.port, database: db.name, user: db.roles.app, password: db.password, max: 4 });

  before(async () => {
    db = await makeDatabase("pgtenancy_worker");
    const { host, port } = serverParams();
    // PgBouncer reaches the server over TCP (127.0.0.1), as in production
    bouncer = await startPgBouncer({ host: host.startsWith("/") ? "127.0.0.1" : host, port }, [db.name], { [db.roles.app]: db.password });
    worker = await import(join(EXAMPLES, "worker.mjs"));
  });
  after(async () => {
    await bouncer?.stop();
    await db?.close();
  });

  test("30 jobs for 3 tenants over one server connection: each sees only its tenant, no borrower finds a context", async () => {
    const pool = poolThroughBouncer();
    try {
      const tenants = [db.tree.acme, db.tree.globex, db.tree.initech];
      const jobs = Array.from({ length: 30 }, (_, i) => ({ tenant: tenants[i % 3], body: `job ${i}` }));
      const r = await worker.runJobs(pool, jobs, 4);
      assert.equal(r.jobs, 30);
      assert.deepEqual(r.foreign, []);
      assert.deepEqual(r.leaks, []);
      assert.equal(r.serverPids.size, 1, "every transaction went through the same server connection");
      assert.ok(pool.totalCount > 1, "more clients than server connections");
    } finally {
      await pool.end();
    }
  });

  test("control: a session context (local => false) does survive into the next borrower here", async () => {
    const pool = poolThroughBouncer();
    try {
      await pool.query("select tenancy.set_tenant($1)", [db.tree.acme]);
      const c = await pool.connect(); // another client, the same (only) server connection
      try {
        assert.equal((await c.query("select tenancy.current_tenant() as t")).rows[0].t, db.tree.acme);
        await c.query("select tenancy.reset_tenant()");
      } finally {
        c.release();
      }
    } finally {
      await pool.end();
    }
  });
});
