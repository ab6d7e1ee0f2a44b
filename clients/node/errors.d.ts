/** An error raised by the tenancy extension: `sqlstate` is its code, `httpStatus` the answer to give. */
export declare class TenancyError extends Error {
  static readonly sqlstate: string;
  static readonly httpStatus: number;
  constructor(message?: string, options?: { hint?: string | null; detail?: string | null; cause?: unknown });
  /** The SQLSTATE (`TN001` ...); `""` for the base class. */
  readonly sqlstate: string;
  /** The HTTP status an application answers with (404 unknown, 403 refused, ...). */
  readonly httpStatus: number;
  /** The server's HINT, or null. */
  readonly hint: string | null;
  /** The server's DETAIL, or null. */
  readonly detail: string | null;
}
/** TN001, HTTP 404: unknown tenant (id, path or external id not found). */
export declare class UnknownTenant extends TenancyError {
  static readonly sqlstate: "TN001";
  static readonly httpStatus: 404;
}
/** TN002, HTTP 403: the tenant is suspended. */
export declare class TenantSuspended extends TenancyError {
  static readonly sqlstate: "TN002";
  static readonly httpStatus: 403;
}
/** TN003, HTTP 500: no tenant context where one is required. */
export declare class NoTenantContext extends TenancyError {
  static readonly sqlstate: "TN003";
  static readonly httpStatus: 500;
}
/** TN004, HTTP 422: design-token governance violation. */
export declare class TokenGovernance extends TenancyError {
  static readonly sqlstate: "TN004";
  static readonly httpStatus: 422;
}
/** TN005, HTTP 404: no tenant owns this host. */
export declare class UnknownDomain extends TenancyError {
  static readonly sqlstate: "TN005";
  static readonly httpStatus: 404;
}
/** TN006, HTTP 500: a tenancy invariant guard refused the statement. */
export declare class InvariantGuard extends TenancyError {
  static readonly sqlstate: "TN006";
  static readonly httpStatus: 500;
}
/** TN007, HTTP 403: this context is not allowed for this role. */
export declare class ContextNotAllowed extends TenancyError {
  static readonly sqlstate: "TN007";
  static readonly httpStatus: 403;
}
/** TN008, HTTP 403: the identity token was refused; the message says which check failed. */
export declare class IdentityTokenRefused extends TenancyError {
  static readonly sqlstate: "TN008";
  static readonly httpStatus: 403;
  /** The failed check's name (`expired`, `signature`, ...) when the message names one, else null. */
  readonly check: string | null;
}
/** TN009, HTTP 503: the tenant's data is not in this database (or is being moved). */
export declare class TenantPlacedElsewhere extends TenancyError {
  static readonly sqlstate: "TN009";
  static readonly httpStatus: 503;
}
/** The class of each TN SQLSTATE. */
export declare const BY_SQLSTATE: Readonly<Record<string, typeof TenancyError>>;
/**
 * The tenancy error for a driver error of a TN SQLSTATE (node-postgres' DatabaseError, or Drizzle's
 * error wrapping it), with message, hint and detail kept and the original as `cause`; any other
 * value is returned unchanged.
 */
export declare function translateError(err: unknown): unknown;
