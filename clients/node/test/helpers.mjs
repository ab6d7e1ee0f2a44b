// Test fixtures: a fresh database with the extension on the server of scripts/with-cluster.sh
// (PGHOST/PGPORT/PGUSER, or TENANCY_TEST_DSN), a platform -> partners -> customers tree, a
// registered table public.notes, and login roles made with grant_app / grant_platform. Dropped again
// by close(). Isolation is asserted over real connections as those roles, never as a superuser.
import { createSign, generateKeyPairSync, randomBytes } from "node:crypto";
import pg from "pg";

/** Connection parameters of the superuser, from PG* or a libpq key=value TENANCY_TEST_DSN. */
export function serverParams() {
  const params = {};
  for (const part of (process.env.TENANCY_TEST_DSN ?? "").trim().split(/\s+/)) {
    const eq = part.indexOf("=");
    if (eq > 0) params[part.slice(0, eq)] = part.slice(eq + 1).replace(/^'(.*)'$/, "$1");
  }
  return {
    host: params.host ?? process.env.PGHOST ?? "/var/run/postgresql",
    port: Number(params.port ?? process.env.PGPORT ?? 5432),
    user: params.user ?? process.env.PGUSER ?? "postgres",
    password: params.password ?? process.env.PGPASSWORD,
    database: params.dbname ?? process.env.PGDATABASE ?? "postgres",
  };
}

/** A postgresql:// URL for `params` (the socket directory as ?host=). */
export function urlOf(params) {
  const auth = encodeURIComponent(params.user) + (params.password ? `:${encodeURIComponent(params.password)}` : "");
  const db = encodeURIComponent(params.database);
  if (params.host.startsWith("/")) {
    return `postgresql://${auth}@/${db}?host=${encodeURIComponent(params.host)}&port=${params.port}`;
  }
  return `postgresql://${auth}@${params.host}:${params.port}/${db}`;
}

export const hasServer = Boolean(process.env.TENANCY_TEST_DSN || process.env.PGHOST);

async function admin(database, statements) {
  const client = new pg.Client({ ...serverParams(), database });
  await client.connect();
  try {
    for (const s of statements) await client.query(s);
  } finally {
    await client.end();
  }
}

/**
 * A fresh database: tree, notes, roles `app` (grant_app), `platform` (grant_platform), `strict`
 * (grant_app strict => true), each with a password (used through PgBouncer). `pools.super` is a
 * superuser pool for set-up; every other pool connects as its role.
 */
export async function makeDatabase(prefix = "pgtenancy_node") {
  const suffix = randomBytes(4).toString("hex");
  const name = `${prefix}_${suffix}`;
  const roles = {
    app: `pgt_app_${suffix}`,
    platform: `pgt_platform_${suffix}`,
    strict: `pgt_strict_${suffix}`,
  };
  const password = randomBytes(8).toString("hex");
  await admin(serverParams().database, [`create database ${name}`]);
  const params = { ...serverParams(), database: name };
  const superPool = new pg.Pool({ ...params, max: 4 });
  await superPool.query("set client_min_messages = warning; create extension tenancy cascade");
  await superPool.query(`
    insert into tenancy.tenants (slug, name) values ('platform', 'The Platform');
    insert into tenancy.tenants (parent_id, slug, name)
    select tenancy.tenant_id(''), v.slug, v.slug from (values ('brandsyncup'), ('pixelworks')) as v (slug);
    insert into tenancy.tenants (parent_id, slug, name, external_id)
    select tenancy.tenant_id(v.parent), v.slug, v.slug, v.ext
    from (values ('brandsyncup', 'acme', 'org_acme'), ('brandsyncup', 'globex', 'org_globex'),
                 ('pixelworks', 'initech', 'org_initech')) as v (parent, slug, ext);
    insert into tenancy.domain_mappings (domain, tenant_id, is_primary) values
        ('acme.example.com', tenancy.tenant_id('brandsyncup/acme'), true),
        ('*.brandsyncup.com', tenancy.tenant_id('brandsyncup'), false);
    create table public.notes (
        id bigserial primary key,
        tenant_id uuid not null,
        body text not null
    );
    select tenancy.register_table('public.notes');
    insert into public.notes (tenant_id, body) select id, 'welcome, ' || slug from tenancy.tenants;
  `);
  for (const [kind, role] of Object.entries(roles)) {
    await superPool.query(`create role ${role} login password '${password}'`);
    const grant =
      kind === "platform"
        ? `select tenancy.grant_platform('${role}')`
        : `select tenancy.grant_app('${role}', strict => ${kind === "strict"})`;
    await superPool.query(grant);
    await superPool.query(`grant select, insert, update, delete on public.notes to ${role}`);
    await superPool.query(`grant usage on sequence public.notes_id_seq to ${role}`);
  }
  const { rows } = await superPool.query("select slug, id, tenancy.tenant_path(id) as path from tenancy.tenants");
  const tree = Object.fromEntries(rows.map((r) => [r.slug, r.id]));
  const pools = { super: superPool };
  for (const [kind, role] of Object.entries(roles)) pools[kind] = new pg.Pool({ ...params, user: role, password, max: 4 });
  return {
    name,
    params,
    roles,
    password,
    tree,
    pools,
    /** A pg.Client (not connected) for a role kind. */
    client(kind) {
      return new pg.Client(kind === "super" ? params : { ...params, user: roles[kind], password });
    },
    async close() {
      await Promise.all(Object.values(pools).map((p) => p.end()));
      await admin(serverParams().database, [
        `drop database if exists ${name} with (force)`,
        ...Object.values(roles).map((r) => `drop role if exists ${r}`),
      ]);
    },
  };
}

const b64url = (data) => Buffer.from(data).toString("base64url");

/** An RS256 key as an identity provider has it: sign(claims) and its public JWKS. */
export function rsaIssuer(kid = "k1") {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid, use: "sig", alg: "RS256" };
  return {
    jwks: { keys: [jwk] },
    sign(claims, header = {}) {
      const input = `${b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid, ...header }))}.${b64url(JSON.stringify(claims))}`;
      const signature = createSign("SHA256").update(input).sign(privateKey);
      return `${input}.${b64url(signature)}`;
    },
  };
}

/** The SQLSTATE of a driver error, also through Drizzle's wrapper. */
export const sqlstate = (err) => err?.code ?? err?.cause?.code;

/** The server log written so far (scripts/with-cluster.sh's TENANCY_TEST_LOG), or null. */
export async function serverLog() {
  const { readFile } = await import("node:fs/promises");
  if (!process.env.TENANCY_TEST_LOG) return null;
  return readFile(process.env.TENANCY_TEST_LOG, "utf8").catch(() => null);
}
