// One error class per SQLSTATE of the tenancy extension (SPEC v0.3 §0, §9), and translateError
// from driver errors. The names, SQLSTATEs and HTTP statuses are those of the Python package
// (python/tenancy/errors.py): both clients answer a refusal the same way.

export class TenancyError extends Error {
  static sqlstate = "";
  static httpStatus = 500;

  /**
   * @param {string} [message]
   * @param {{ hint?: string | null, detail?: string | null, cause?: unknown }} [options]
   */
  constructor(message = "", options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    /** The SQLSTATE (TN001 ...); "" for the base class. */
    this.sqlstate = new.target.sqlstate;
    /** The HTTP status an application answers with (404 unknown, 403 refused, ...). */
    this.httpStatus = new.target.httpStatus;
    /** The server's HINT, or null. */
    this.hint = options.hint ?? null;
    /** The server's DETAIL, or null. */
    this.detail = options.detail ?? null;
  }
}

export class UnknownTenant extends TenancyError {
  static sqlstate = "TN001";
  static httpStatus = 404;
}

export class TenantSuspended extends TenancyError {
  static sqlstate = "TN002";
  static httpStatus = 403;
}

export class NoTenantContext extends TenancyError {
  static sqlstate = "TN003";
  static httpStatus = 500;
}

export class TokenGovernance extends TenancyError {
  static sqlstate = "TN004";
  static httpStatus = 422;
}

export class UnknownDomain extends TenancyError {
  static sqlstate = "TN005";
  static httpStatus = 404;
}

export class InvariantGuard extends TenancyError {
  static sqlstate = "TN006";
  static httpStatus = 500;
}

export class ContextNotAllowed extends TenancyError {
  static sqlstate = "TN007";
  static httpStatus = 403;
}

const CHECKS = ["expired", "signature", "audience", "not valid", "not registered", "kid", "alg", "tenant claim"];

export class IdentityTokenRefused extends TenancyError {
  static sqlstate = "TN008";
  static httpStatus = 403;

  /** The failed check's name ("expired", "signature", ...) when the message names one, else null. */
  get check() {
    return CHECKS.find((name) => this.message.includes(name)) ?? null;
  }
}

export class TenantPlacedElsewhere extends TenancyError {
  static sqlstate = "TN009";
  static httpStatus = 503;
}

/** @type {Readonly<Record<string, typeof TenancyError>>} */
export const BY_SQLSTATE = Object.freeze(
  Object.fromEntries(
    [
      UnknownTenant,
      TenantSuspended,
      NoTenantContext,
      TokenGovernance,
      UnknownDomain,
      InvariantGuard,
      ContextNotAllowed,
      IdentityTokenRefused,
      TenantPlacedElsewhere,
    ].map((cls) => [cls.sqlstate, cls]),
  ),
);

// The driver's error: node-postgres' DatabaseError has the SQLSTATE in `code`; Drizzle wraps it
// (DrizzleQueryError) with the driver's error as `cause`.
function driverError(err) {
  const seen = new Set();
  for (let cur = err; cur != null && typeof cur === "object" && !seen.has(cur); cur = cur.cause) {
    seen.add(cur);
    if (typeof cur.code === "string" && /^[0-9A-Z]{5}$/.test(cur.code)) return cur;
  }
  return null;
}

/**
 * The tenancy error for a driver error of a TN SQLSTATE (message, hint and detail kept, the original
 * as `cause`); any other value is returned unchanged.
 * @param {unknown} err
 */
export function translateError(err) {
  if (err instanceof TenancyError) return err;
  const driver = driverError(err);
  const cls = driver ? BY_SQLSTATE[driver.code] : undefined;
  if (!cls) return err;
  return new cls(driver.message, { hint: driver.hint ?? null, detail: driver.detail ?? null, cause: err });
}
