"""tenancy.errors.translate and tenancy.pg.context_sql, without a server."""

from __future__ import annotations

import pytest
from tenancy import errors
from tenancy.pg import context_sql


class FakeDiag:
    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message_primary = message
        self.message_hint = hint


class FakeDriverError(Exception):
    def __init__(self, sqlstate: str | None, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.diag = FakeDiag(message, "a hint")


@pytest.mark.parametrize("code", sorted(errors.BY_SQLSTATE))
def test_every_tn_code_has_its_class(code: str) -> None:
    exc = errors.translate(FakeDriverError(code, f"refused {code}"))
    assert isinstance(exc, errors.TenancyError) and exc.sqlstate == code
    assert exc.message == f"refused {code}" and exc.hint == "a hint"
    assert errors.BY_SQLSTATE[code] is type(exc)


def test_codes_cover_tn001_to_tn009() -> None:
    assert sorted(errors.BY_SQLSTATE) == [f"TN00{i}" for i in range(1, 10)]


def test_other_errors_are_returned_unchanged() -> None:
    other = FakeDriverError("42501", "permission denied")
    assert errors.translate(other) is other
    plain = ValueError("x")
    assert errors.translate(plain) is plain


def test_wrapped_errors_are_followed() -> None:
    class Wrapper(Exception):
        orig = FakeDriverError("TN005", "unknown domain 'x'")

    assert isinstance(errors.translate(Wrapper()), errors.UnknownDomain)
    try:
        try:
            raise FakeDriverError("TN008", "identity token refused: it expired 5 s ago")
        except FakeDriverError as inner:
            raise RuntimeError("django wrapper") from inner
    except RuntimeError as outer:
        exc = errors.translate(outer)
    assert isinstance(exc, errors.IdentityTokenRefused) and exc.check == "expired"
    assert exc.http_status == 403


def test_http_statuses() -> None:
    assert errors.UnknownDomain.http_status == 404
    assert {errors.TenantSuspended.http_status, errors.ContextNotAllowed.http_status} == {403}


def test_context_sql_needs_exactly_one_source() -> None:
    assert context_sql(host="a.example")[0] == "select tenancy.set_tenant_for_domain(%s, true)"
    assert context_sql(jwt="t")[0] == "select tenancy.set_tenant_from_jwt(%s, true)"
    assert context_sql(tenant="0" * 32)[1] == ["0" * 32]
    for bad in ({}, {"host": "a", "jwt": "b"}):
        with pytest.raises(ValueError, match="exactly one"):
            context_sql(**bad)
