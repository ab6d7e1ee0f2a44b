"""The container backend is exercised only with TENANCY_TEST_BACKEND=container and a Docker engine."""

from __future__ import annotations

import os

import pytest


def test_container_backend_available_or_skipped() -> None:
    if os.environ.get("TENANCY_TEST_BACKEND") != "container":
        pytest.skip(
            "container backend not requested (set TENANCY_TEST_BACKEND=container, needs a Docker engine)"
        )
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine answers here ({exc.__class__.__name__}); container tests skipped")
