// A real PgBouncer in front of the test server, for the node tests (the node-side twin of
// tests/py/pgbouncer.py): /usr/sbin/pgbouncer (Debian package `pgbouncer`, installed by
// scripts/deps.sh) on 127.0.0.1 and a free port, config, auth file and log in a temporary directory,
// stopped and removed by stop(). PgBouncer refuses to run as root: as root it runs as `postgres`.
import { execFileSync, spawn } from "node:child_process";
import { accessSync, chmodSync, chownSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The pgbouncer executable, or null when PgBouncer is not installed. */
export function pgbouncerBinary() {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin"])) {
    try {
      accessSync(join(dir, "pgbouncer"), constants.X_OK);
      return join(dir, "pgbouncer");
    } catch {
      // not here
    }
  }
  return null;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function listening(port) {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Start PgBouncer for `databases` on the server at `server` ({host, port}), logins `users`
 * (name -> password). Returns { port, log(), stop() }.
 */
export async function startPgBouncer(server, databases, users, { poolMode = "transaction", poolSize = 1 } = {}) {
  const exe = pgbouncerBinary();
  if (!exe) throw new Error("PgBouncer is not installed");
  const dir = mkdtempSync(join(tmpdir(), "pg-tenancy-pgbouncer."));
  const port = await freePort();
  writeFileSync(join(dir, "userlist.txt"), Object.entries(users).map(([u, p]) => `"${u}" "${p}"\n`).join(""));
  const ini = [
    "[databases]",
    ...databases.map((db) => `${db} = host=${server.host} port=${server.port} dbname=${db}`),
    "",
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${port}`,
    "unix_socket_dir =",
    "auth_type = scram-sha-256",
    `auth_file = ${join(dir, "userlist.txt")}`,
    `pool_mode = ${poolMode}`,
    `default_pool_size = ${poolSize}`,
    "min_pool_size = 0",
    "reserve_pool_size = 0",
    "max_client_conn = 100",
    `logfile = ${join(dir, "pgbouncer.log")}`,
    `pidfile = ${join(dir, "pgbouncer.pid")}`,
    "server_login_retry = 1",
    "",
  ].join("\n");
  writeFileSync(join(dir, "pgbouncer.ini"), ini);
  const spawnOptions = { cwd: dir, stdio: "ignore" };
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    for (const f of ["", "userlist.txt", "pgbouncer.ini"]) chownSync(join(dir, f), uid, gid);
    Object.assign(spawnOptions, { uid, gid });
  }
  chmodSync(dir, 0o700);
  const proc = spawn(exe, [join(dir, "pgbouncer.ini")], spawnOptions);
  let exited = null;
  proc.once("exit", (code) => {
    exited = code;
  });
  const log = () => {
    try {
      return readFileSync(join(dir, "pgbouncer.log"), "utf8");
    } catch {
      return "";
    }
  };
  const stop = async () => {
    if (exited === null) {
      const gone = new Promise((resolve) => proc.once("exit", resolve));
      proc.kill("SIGTERM");
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 300 && !(await listening(port)); i++) {
    if (exited !== null) {
      const text = log();
      await stop();
      throw new Error(`pgbouncer exited with ${exited}:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, log, stop };
}
