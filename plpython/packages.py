"""The two distribution packages that server-side Python may use besides the standard library (SPEC §0).

``cryptography`` (Debian/Ubuntu: python3-cryptography) verifies identity-token signatures
(``identity.py``); ``idna`` (python3-idna) converts internationalized host names (``hosts.py``).
Both are imported at their first use in a backend, not when the module loads, so that a server
without them still runs everything else, and a missing one is one clear error naming the package.
"""

from __future__ import annotations

MISSING_SQLSTATE = "58P01"  # undefined_file: what PostgreSQL says of a library it cannot load


class MissingPackage(Exception):
    """A distribution package that tenancy needs cannot be imported by the server's Python 3."""

    sqlstate = MISSING_SQLSTATE

    def __init__(self, module: str, debian: str, needed_for: str, cause: BaseException | None = None) -> None:
        detail = f" ({cause.__class__.__name__}: {cause})" if cause is not None else ""
        self.message = (
            f"tenancy needs the Python package {module} for {needed_for}, and the server's Python 3"
            f" cannot import it{detail}"
        )
        self.hint = (
            f"Install the distribution's package {debian} on the database server (Debian/Ubuntu:"
            f" apt-get install {debian}; other systems: the package that provides {module} for the"
            " Python 3 that PL/Python uses), then reconnect."
        )
        super().__init__(self.message)
        self.module = module
        self.debian = debian
