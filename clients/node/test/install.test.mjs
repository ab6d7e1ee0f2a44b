// The README's promise: `npm install --install-links <repo>/clients/node` in a fresh project, then
// the README's Node.js lines, give an isolated application. Installs from npm's cache (the same
// versions scripts/deps.sh installed here), so it needs no network.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { hasServer, makeDatabase, urlOf } from "./helpers.mjs";

const PACKAGE = join(dirname(fileURLToPath(import.meta.url)), "..");
const dev = JSON.parse(readFileSync(join(PACKAGE, "package.json"), "utf8")).devDependencies;
const npm = spawnSync("npm", ["--version"], { encoding: "utf8" }).status === 0;

// What a fresh application writes, after the README.
const APP = `
import pg from "pg";
import { drizzle } from "drizzle-orm/node-postgres";
import { pgTable, bigserial, text } from "drizzle-orm/pg-core";
import { withDomain, withTenant, UnknownDomain } from "pg-tenancy";
import { tenantColumn } from "pg-tenancy/drizzle";

const notes = pgTable("notes", { id: bigserial("id", { mode: "number" }).primaryKey(), tenantId: tenantColumn(), body: text("body").notNull() });
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const db = drizzle(pool);

const seen = await withDomain(pool, "acme.example.com", async (client) => (await client.query("select distinct tenant_id from notes")).rows);
const [row] = await withTenant(db, process.env.GLOBEX, (tx) => tx.insert(notes).values({ body: "fresh app" }).returning());
const outside = (await pool.query("select count(*)::int as n from notes")).rows[0].n;
const status = await withDomain(pool, "nobody.example.org", () => 0).catch((e) => e instanceof UnknownDomain && e.httpStatus);
console.log(JSON.stringify({ seen: seen.map((r) => r.tenant_id), inserted: row.tenantId, outside, status }));
await pool.end();
`;

describe("a fresh project installs pg-tenancy from the repository", {
  skip: (!hasServer && "no server: run under scripts/with-cluster.sh") || (!npm && "npm not found"),
}, () => {
  let db;
  let dir;
  before(async () => {
    db = await makeDatabase("pgtenancy_install");
    dir = mkdtempSync(join(tmpdir(), "pg-tenancy-app."));
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "fresh-app", private: true, type: "module" }));
    writeFileSync(join(dir, "app.mjs"), APP);
  });
  after(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    await db?.close();
  });

  test("npm install --install-links <repo>/clients/node, then the README's lines", () => {
    const args = ["install", "--no-audit", "--no-fund", "--install-links", `pg@${dev.pg}`, `drizzle-orm@${dev["drizzle-orm"]}`, PACKAGE];
    let r = spawnSync("npm", [...args, "--offline"], { cwd: dir, encoding: "utf8", timeout: 300_000 });
    if (r.status !== 0) r = spawnSync("npm", [...args, "--prefer-offline"], { cwd: dir, encoding: "utf8", timeout: 300_000 });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    const run = spawnSync(process.execPath, ["app.mjs"], {
      cwd: dir,
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, DATABASE_URL: urlOf({ ...db.params, user: db.roles.app, password: db.password }), GLOBEX: db.tree.globex },
    });
    assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
    const out = JSON.parse(run.stdout.trim().split("\n").at(-1));
    assert.deepEqual(out, { seen: [db.tree.acme], inserted: db.tree.globex, outside: 0, status: 404 });
  });
});
