// A background worker that serves many tenants over one pool: each job runs in withTenant(pool,
// job.tenant, fn), one transaction whose first statement takes the context with local => true.
// Behind PgBouncer in transaction mode the server connection passes to another client after every
// transaction, and PgBouncer runs no reset query: a local context ends with its transaction, so
// the next borrower of that server connection starts with none.
//
//   node examples/node/worker.mjs postgresql://tenancy_example_app:example@127.0.0.1:6432/tenancy_example
//
// (the schema is examples/schema.sql). Exits 1 if any job saw another tenant's rows or any
// borrower found a context it did not take.
import { pathToFileURL } from "node:url";
import pg from "pg";
import { withTenant } from "pg-tenancy";

/**
 * Run `jobs` ({ tenant, body }) over `pool`, `concurrency` at a time. After every job, a query
 * outside any transaction (the next borrower) must find no context and no rows.
 * Returns { jobs, leaks, foreign, serverPids }.
 */
export async function runJobs(pool, jobs, concurrency = 4) {
  const report = { jobs: 0, leaks: [], foreign: [], serverPids: new Set() };
  const queue = [...jobs];
  async function lane() {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const seen = await withTenant(pool, job.tenant, async (client) => {
        await client.query("insert into notes (body) values ($1)", [job.body]);
        const { rows } = await client.query("select distinct tenant_id from notes");
        return rows.map((r) => r.tenant_id);
      });
      report.jobs += 1;
      if (seen.some((t) => t !== job.tenant)) report.foreign.push({ job, seen });
      const { rows: [after] } = await pool.query(
        "select tenancy.current_tenant() as ctx, (select count(*)::int from notes) as n, pg_backend_pid() as pid",
      );
      report.serverPids.add(after.pid);
      if (after.ctx !== null || after.n !== 0) report.leaks.push({ after: job.tenant, found: after });
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return report;
}

async function main(url) {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  try {
    const { rows } = await pool.query(
      "select tenancy.tenant_id(p) as id from unnest(array['brandsyncup/acme', 'brandsyncup/globex', 'pixelworks/initech']) p",
    );
    const jobs = Array.from({ length: 30 }, (_, i) => ({ tenant: rows[i % rows.length].id, body: `job ${i}` }));
    const r = await runJobs(pool, jobs);
    console.log(`${r.jobs} jobs over ${r.serverPids.size} server connection(s)`);
    console.log(`jobs that saw another tenant's rows: ${r.foreign.length}`);
    console.log(`borrowers that found a context: ${r.leaks.length}`);
    const ok = r.jobs === jobs.length && r.foreign.length === 0 && r.leaks.length === 0;
    console.log(ok ? "isolation OK" : "isolation FAILED");
    return ok ? 0 : 1;
  } finally {
    await pool.end();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const url = process.argv[2] ?? process.env.TENANCY_EXAMPLE_DSN;
  if (!url) {
    console.error("usage: node worker.mjs postgresql://...   (or set TENANCY_EXAMPLE_DSN)");
    process.exit(2);
  }
  process.exitCode = await main(url);
}
