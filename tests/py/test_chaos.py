"""The chaos test (tests/py/chaos.py) for a fixed set of seeds: about a minute of `make test`.

`make chaos` runs it longer with a random or chosen seed (CHAOS_SECONDS, CHAOS_SEED). A failure
prints the seed and the last steps as SQL per connection; docs/development.md says how to replay one.
"""

from __future__ import annotations

import os

import pytest
from chaos import ChaosFailure, run_chaos

SEEDS = [101, 202, 303]
SECONDS = float(os.environ.get("CHAOS_TEST_SECONDS", "20"))


@pytest.mark.parametrize("seed", SEEDS)
def test_chaos(server_dsn: str, seed: int) -> None:
    failure = None
    try:
        run_chaos(server_dsn, seed, SECONDS, log_path=os.environ.get("TENANCY_TEST_LOG"))
    except ChaosFailure as e:
        failure = str(e)
    if failure:
        pytest.fail(failure, pytrace=False)
