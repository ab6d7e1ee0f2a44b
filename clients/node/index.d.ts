import type { ClientBase, Pool, PoolClient } from "pg";

export * from "./errors.js";

/** A Drizzle database or transaction (any PostgreSQL driver): what `with*` accepts besides pg's. */
export interface DrizzleDatabase {
  transaction(fn: (tx: any) => Promise<any>, config?: any): Promise<any>;
  execute(query: any): PromiseLike<unknown>;
}
/** The transaction object a Drizzle database hands to `db.transaction(fn)`. */
export type DrizzleTransaction<D extends DrizzleDatabase> = Parameters<Parameters<D["transaction"]>[0]>[0];

/**
 * The callback of `with*`: the transaction (a pg client, or a Drizzle transaction) and the id of
 * the tenant whose context it holds.
 */
export type TenantCallback<Tx, T> = (tx: Tx, tenant: string) => T | Promise<T>;

/**
 * Run `fn` in one transaction whose first statement is
 * `select tenancy.set_tenant(tenant, local => true)`: commit when it returns, roll back when it
 * throws. Errors of tenancy's SQLSTATEs are thrown as the classes of `pg-tenancy` (`UnknownTenant`
 * ...). On a pool, the client is checked out for the transaction and released after it.
 */
export declare function withTenant<T>(db: Pool, tenant: string, fn: TenantCallback<PoolClient, T>): Promise<T>;
export declare function withTenant<C extends ClientBase, T>(db: C, tenant: string, fn: TenantCallback<C, T>): Promise<T>;
export declare function withTenant<D extends DrizzleDatabase, T>(
  db: D,
  tenant: string,
  fn: TenantCallback<DrizzleTransaction<D>, T>,
): Promise<T>;

/** As `withTenant`, the context being the tenant that owns `host` (`set_tenant_for_domain`). */
export declare function withDomain<T>(db: Pool, host: string, fn: TenantCallback<PoolClient, T>): Promise<T>;
export declare function withDomain<C extends ClientBase, T>(db: C, host: string, fn: TenantCallback<C, T>): Promise<T>;
export declare function withDomain<D extends DrizzleDatabase, T>(
  db: D,
  host: string,
  fn: TenantCallback<DrizzleTransaction<D>, T>,
): Promise<T>;

/** As `withTenant`, the context being the tenant an identity token names, verified in the database (`set_tenant_from_jwt`). */
export declare function withJwt<T>(db: Pool, token: string, fn: TenantCallback<PoolClient, T>): Promise<T>;
export declare function withJwt<C extends ClientBase, T>(db: C, token: string, fn: TenantCallback<C, T>): Promise<T>;
export declare function withJwt<D extends DrizzleDatabase, T>(
  db: D,
  token: string,
  fn: TenantCallback<DrizzleTransaction<D>, T>,
): Promise<T>;

/**
 * `select tenancy.reset_tenant()` on this connection: call it before a client that took a session
 * context (`local => false`) goes back to its pool.
 */
export declare function reset(client: ClientBase | DrizzleDatabase): Promise<void>;
