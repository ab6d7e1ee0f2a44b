"""PostgreSQL's role checks called directly (ctypes), for the per-transaction path of set_tenant.

A role check through SPI (``plpy.execute``) costs a PL/Python backend a subtransaction, its two
callbacks and an executor start: about 12 microseconds per set_tenant, more than everything else
set_tenant does. The same answers come from the server's own functions in about 2 microseconds:

- ``GetUserId()`` / ``GetSessionUserId()``: ``current_user`` and ``session_user``;
- ``get_role_oid(name, missing_ok => true)``: a syscache lookup that never raises;
- ``is_member_of_role(member, role)``: what ``pg_has_role(..., 'MEMBER')`` answers (true for a
  superuser), from the backend's membership cache, which PostgreSQL invalidates itself when
  ``pg_auth_members`` or ``pg_authid`` change, so a grant or revoke is seen at the next call;
- ``superuser_arg(role)``; ``GetUserNameFromId(role, noerr => true)``.

None of them raises an error for these arguments (an ``ereport(ERROR)`` would jump over the Python
frames between). Where ctypes or a symbol is missing, ``functions`` answers None and the callers
fall back to SQL.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs a new backend milliseconds
    from typing import Any

KEY = "tenancy.native"
_MISSING = object()


class Roles:
    """The bound functions (one instance per backend, kept in GD)."""

    __slots__ = ("member", "role_name", "role_oid", "session_user", "superuser", "user")

    def __init__(self, lib: Any, ctypes: Any) -> None:
        oid, flag = ctypes.c_uint, ctypes.c_bool
        self.user = _bind(lib.GetUserId, oid, [])
        self.session_user = _bind(lib.GetSessionUserId, oid, [])
        self.role_oid = _bind(lib.get_role_oid, oid, [ctypes.c_char_p, flag])
        self.member = _bind(lib.is_member_of_role, flag, [oid, oid])
        self.superuser = _bind(lib.superuser_arg, flag, [oid])
        self.role_name = _bind(lib.GetUserNameFromId, ctypes.c_char_p, [oid, flag])

    def current_user(self) -> str:
        name = self.role_name(self.user(), True)
        return "" if name is None else name.decode()

    def is_member(self, role: int, group: str) -> bool:
        """Whether ``role`` is a member of the role named ``group`` (false when there is none)."""
        target = self.role_oid(group.encode(), True)
        return bool(target) and bool(self.member(role, target))

    def confined(self, group: str) -> bool:
        """Whether current_user or session_user is a member of ``group`` and not a superuser."""
        target = self.role_oid(group.encode(), True)
        if not target:
            return False
        for role in {self.user(), self.session_user()}:
            if self.member(role, target) and not self.superuser(role):
                return True
        return False


def _bind(fn: Any, restype: Any, argtypes: list[Any]) -> Any:
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


def functions(gd: dict[str, Any]) -> Roles | None:
    """The backend's ``Roles``, bound on first use; None where ctypes cannot reach them."""
    found = gd.get(KEY, _MISSING)
    if found is _MISSING:
        try:
            import ctypes

            found = Roles(ctypes.CDLL(None), ctypes)
        except (ImportError, OSError, AttributeError):
            found = None
        gd[KEY] = found
    return found  # type: ignore[return-value]
