"""The middleware: the whole response in one transaction with the tenant's context.

Django's ``ATOMIC_REQUESTS`` wraps only the view, and middleware runs in autocommit, so a context set
in a middleware before ``get_response`` dies at once. This middleware opens ``transaction.atomic()``
itself, takes the context with ``local => true`` (it ends with the transaction: a pooled or reused
connection never carries it), and runs the rest of the stack — views, templates, other middleware —
inside. TN005 (unknown host) → 404; TN002, TN007, TN008 → 403; TN001 (no tenant for the token's
organization) → 403.

Inside a transaction that is already open (Django's ``TestCase`` runs each test in one), the
middleware's transaction is a savepoint, which a ``local`` context outlives: the middleware then ends
the context when the response is done (``tenancy.reset_tenant()``), so the test body after a request
has no context, as a real client after a real request.

Streaming responses: their iterator runs after this middleware has returned, i.e. after the
transaction has ended, so it would read with no context (zero rows). By default the middleware
therefore consumes a streaming response's iterator inside the transaction (correct, not streamed).
A view that must really stream returns ``StreamingHttpResponse(stream_in_tenant(request, rows()))``:
the iterator then runs in a transaction of its own with the same context, while it is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound

from ..errors import TenancyError, translate
from ..pg import context_sql

NOT_FOUND = {"TN005"}
FORBIDDEN = {"TN001", "TN002", "TN007", "TN008"}


def _config() -> dict[str, Any]:
    return {"SOURCE": "host", "DATABASE": "default", "COOKIE": None, "BUFFER_STREAMING": True,
            **getattr(settings, "TENANCY", {})}  # fmt: skip


def _source(request: HttpRequest, config: dict[str, Any]) -> dict[str, Any]:
    if config["SOURCE"] == "jwt":
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if token is None and config["COOKIE"]:
            token = request.COOKIES.get(config["COOKIE"])
        return {"jwt": token or ""}
    return {"host": request.get_host()}


def set_context(using: str, **source: Any) -> Any:
    """Take the context in the current transaction of ``using``; tenancy.errors on a refusal."""
    sql, params = context_sql(source.get("tenant"), source.get("host"), source.get("jwt"))
    try:
        with connections[using].cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()[0]
    except Exception as exc:
        new = translate(exc)
        if new is exc:
            raise
        raise new from exc


def end_context(using: str) -> None:
    """No context any more in the current transaction of ``using`` (tenancy.reset_tenant())."""
    with connections[using].cursor() as cur:
        cur.execute("select tenancy.reset_tenant()")


@contextmanager
def tenant(using: str = "default", **source: Any) -> Iterator[Any]:
    """``with tenant(tenant=id):`` (or host= / jwt=) — a transaction with the context, for management
    commands and background jobs (Celery tasks, ...). Inside an outer transaction (a TestCase) it is a
    savepoint, which a local context outlives: the context is ended when the block ends."""
    nested = connections[using].in_atomic_block
    with transaction.atomic(using=using):
        yield set_context(using, **source)
        if nested:
            end_context(using)


def refusal_response(exc: TenancyError) -> HttpResponse:
    if exc.sqlstate in NOT_FOUND:
        return HttpResponseNotFound("unknown site")
    if exc.sqlstate in FORBIDDEN:
        return HttpResponseForbidden("not allowed")
    raise exc


def stream_in_tenant(request: HttpRequest, iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate ``iterable`` in a transaction with the request's context (for real streaming)."""
    using, source = request.tenancy_source  # type: ignore[attr-defined]
    with tenant(using, **source):
        yield from iterable


class TenancyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        config = _config()
        using = config["DATABASE"]
        source = _source(request, config)
        request.tenancy_source = (using, source)  # type: ignore[attr-defined]
        # inside a transaction already (a TestCase, a view called from a job): the atomic block below is
        # a savepoint, and a local context outlives its release; it must not outlive the request
        nested = connections[using].in_atomic_block
        with transaction.atomic(using=using):
            try:
                with transaction.atomic(using=using):  # a savepoint: a refusal leaves the outer usable
                    request.tenant_id = set_context(using, **source)  # type: ignore[attr-defined]
            except TenancyError as exc:
                return refusal_response(exc)
            response = self.get_response(request)
            if response.streaming and config["BUFFER_STREAMING"] and not _streams_itself(response):
                response.streaming_content = list(response.streaming_content)
            if nested:
                end_context(using)
        return response


def _streams_itself(response: Any) -> bool:
    it = getattr(response, "_iterator", None)
    return getattr(getattr(it, "gi_code", None), "co_name", "") == "stream_in_tenant"
