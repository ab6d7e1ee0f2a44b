// tenancy from Node.js with a node-postgres (pg) Pool and the pg-tenancy package.
//
// One request = one transaction: withDomain(pool, host, fn) runs fn(client) in a transaction whose
// first statement is set_tenant_for_domain(host, local => true). The context ends at COMMIT, so this
// works the same directly, with session pooling or behind PgBouncer in transaction mode
// (node-postgres sends unnamed statements, which PgBouncer routes).
//
//   node examples/node/pg_example.mjs postgresql://tenancy_example_app:example@127.0.0.1:5432/tenancy_example
//
// (or set TENANCY_EXAMPLE_DSN; the schema is examples/schema.sql). Exits 1 on any isolation failure.
import pg from "pg";
import { withDomain } from "pg-tenancy";

const ACME = "acme.example.com"; // a customer's own domain
const GLOBEX = "globex.brandsyncup.com"; // another customer, through the partner's wildcard

const url = process.argv[2] ?? process.env.TENANCY_EXAMPLE_DSN;
if (!url) {
  console.error("usage: node pg_example.mjs postgresql://...   (or set TENANCY_EXAMPLE_DSN)");
  process.exit(2);
}
const pool = new pg.Pool({ connectionString: url, max: 4 });

const failures = [];
function check(ok, line) {
  console.log(ok ? line : `FAIL: ${line}`);
  if (!ok) failures.push(line);
}

try {
  // Which tenant owns this host? Needs no context.
  const resolve = async (host) =>
    (await pool.query("select tenancy.resolve_domain($1) as id", [host])).rows[0].id;
  const acme = await resolve(ACME);
  const globex = await resolve(GLOBEX);
  console.log(`resolved ${ACME} -> ${acme}, ${GLOBEX} -> ${globex}`);

  await withDomain(pool, ACME, async (client) => {
    const { rows: [note] } = await client.query(
      "insert into notes (body) values ('hello from node-postgres') returning id",
    );
    const { rows } = await client.query("select tenant_id from notes");
    check(
      rows.length > 0 && rows.every((r) => r.tenant_id === acme),
      `acme: wrote note ${note.id}, sees ${rows.length} notes, all its own`,
    );
    await client.query("SAVEPOINT cross_tenant"); // the refusal does not end the request
    try {
      await client.query("insert into notes (tenant_id, body) values ($1, 'sneaky')", [globex]);
      check(false, "acme: writing into globex was accepted");
    } catch (err) {
      check(err.code === "42501", `acme: writing into globex refused with SQLSTATE ${err.code}`);
      await client.query("ROLLBACK TO SAVEPOINT cross_tenant");
    }
    const { rows: [{ n }] } = await client.query(
      "select count(*)::int as n from notes where tenant_id = $1",
      [globex],
    );
    check(n === 0, `acme: notes of globex visible: ${n}`);
  });

  const { rows: [{ n }] } = await pool.query("select count(*)::int as n from notes");
  check(n === 0, `no context after commit: ${n} notes visible`);
} finally {
  await pool.end();
}

console.log(failures.length === 0 ? "isolation OK" : `isolation FAILED: ${failures.length} check(s)`);
process.exitCode = failures.length === 0 ? 0 : 1;
