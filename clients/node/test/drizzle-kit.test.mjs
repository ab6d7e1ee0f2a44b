// What drizzle-kit does with a registered table, and the documented workflow that keeps tenancy's
// policies, index and column default: `generate`, a custom migration calling
// tenancy.register_table, `migrate`. The schema is test/drizzle-kit/schema.ts (tenantColumn()).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { hasServer, serverParams, urlOf } from "./helpers.mjs";

const HERE = join(dirname(fileURLToPath(import.meta.url)), "drizzle-kit");
const KIT = join(HERE, "..", "..", "node_modules", ".bin", "drizzle-kit");
const OUT = `out-${randomBytes(4).toString("hex")}`; // relative: drizzle-kit mangles absolute paths
const NAME = `pgtenancy_kit_${randomBytes(4).toString("hex")}`;
let pool;

function kit(args, env = {}) {
  const r = spawnSync(KIT, args, {
    cwd: HERE,
    encoding: "utf8",
    input: "",
    timeout: 120_000,
    env: { ...process.env, DATABASE_URL: urlOf({ ...serverParams(), database: NAME }), DRIZZLE_OUT: `./${OUT}`, ...env },
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

// What tenancy.register_table made: policies, forced RLS, the index, the default.
async function tenancyState() {
  const { rows } = await pool.query(`
    select c.relrowsecurity as rls, c.relforcerowsecurity as forced,
           (select count(*)::int from pg_policy p where p.polrelid = c.oid) as policies,
           (select count(*)::int from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
             where i.indrelid = c.oid and a.attname = 'tenant_id') as tenant_indexes,
           (select pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
             where d.adrelid = c.oid and a.attname = 'tenant_id') as default,
           exists (select from tenancy.scoped_tables s where s.relid = c.oid) as registered
    from pg_class c where c.oid = 'public.notes'::regclass`);
  return rows[0];
}

const REGISTERED = { rls: true, forced: true, tenant_indexes: 1, default: "tenancy._default_tenant()", registered: true };

describe("drizzle-kit and a registered table", { skip: !hasServer && "no server: run under scripts/with-cluster.sh" }, () => {
  let registered;

  before(async () => {
    const adminPool = new pg.Pool(serverParams());
    await adminPool.query(`create database ${NAME}`);
    await adminPool.end();
    pool = new pg.Pool({ ...serverParams(), database: NAME, max: 2 });
    await pool.query("set client_min_messages = warning; create extension tenancy cascade");
  });
  after(async () => {
    rmSync(join(HERE, OUT), { recursive: true, force: true });
    await pool?.end();
    const adminPool = new pg.Pool(serverParams());
    await adminPool.query(`drop database if exists ${NAME} with (force)`);
    await adminPool.end();
  });

  test("generate: the table with tenantColumn's default, and nothing of tenancy's", () => {
    const r = kit(["generate", "--name", "init"]);
    assert.equal(r.status, 0, r.out);
    const [file] = readdirSync(join(HERE, OUT)).filter((f) => f.endsWith(".sql"));
    const ddl = readFileSync(join(HERE, OUT, file), "utf8");
    assert.match(ddl, /"tenant_id" uuid DEFAULT tenancy\._default_tenant\(\) NOT NULL/);
    assert.doesNotMatch(ddl, /POLICY|ROW LEVEL SECURITY|CREATE INDEX/i);
  });

  test("the documented workflow: a custom migration calls tenancy.register_table; migrate applies both", async () => {
    let r = kit(["generate", "--custom", "--name", "register_notes"]);
    assert.equal(r.status, 0, r.out);
    const custom = readdirSync(join(HERE, OUT)).find((f) => f.endsWith("_register_notes.sql"));
    // drizzle-kit leaves a comment without a newline at the end: start a new line
    appendFileSync(join(HERE, OUT, custom), "\nselect tenancy.register_table('public.notes');\n");
    r = kit(["migrate"]);
    assert.equal(r.status, 0, r.out);
    registered = await tenancyState();
    assert.ok(registered.policies >= 4, `policies: ${registered.policies}`);
    assert.deepEqual({ ...registered, policies: undefined }, { ...REGISTERED, policies: undefined });
  });

  test("generate again: no changes, no new migration (generate diffs its snapshots, never the database)", async () => {
    const before = readdirSync(join(HERE, OUT)).length;
    const r = kit(["generate", "--name", "again"]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /No schema changes/);
    assert.equal(readdirSync(join(HERE, OUT)).length, before);
    assert.deepEqual(await tenancyState(), registered);
  });

  test("push would disable RLS, drop the index and the policies: tenancy's guard refuses it, nothing changes", async () => {
    const r = kit(["push", "--force", "--verbose"]);
    // what push computed from the database against the schema
    assert.match(r.out, /ALTER TABLE "notes" DISABLE ROW LEVEL SECURITY/);
    assert.match(r.out, /DROP INDEX "notes_tenant_id_idx"/);
    assert.match(r.out, /DROP POLICY "tenancy_select" ON "notes"/);
    // its first statement is refused (TN006); drizzle-kit 0.31 still exits 0, so read its output
    assert.match(r.out, /TN006/);
    assert.match(r.out, /managed by tenancy/);
    assert.deepEqual(await tenancyState(), registered);
  });

  test("a tablesFilter that leaves the table out does not help: push then tries to create it", async () => {
    const r = kit(["push", "--force", "--verbose"], { DRIZZLE_TABLES_FILTER: JSON.stringify(["!notes"]) });
    assert.match(r.out, /already exists/);
    assert.deepEqual(await tenancyState(), registered);
  });
});
