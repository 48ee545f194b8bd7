"""How hard to fuzz: a short deterministic run by default, a long one on request.

FUZZ_EXAMPLES=N  examples per property (and N hostile messages for the MQTT fuzzer);
FUZZ_SEED=S      explore at random from seed S instead of the fixed derandomised run.
Without either, every run tries the same inputs (CI); docs/testing.md gives the long form.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, seed, settings

F = TypeVar("F", bound=Callable[..., Any])


def examples(ci: int) -> int:
    """FUZZ_EXAMPLES when set, else `ci`."""
    return int(os.environ.get("FUZZ_EXAMPLES", ci))


def long_run() -> bool:
    return bool(os.environ.get("FUZZ_EXAMPLES") or os.environ.get("FUZZ_SEED"))


def timeout_s(ci: float) -> float:
    """pytest-timeout for a fuzz test: none for a long run (0 turns it off)."""
    return 0 if long_run() else ci


def fuzz_seed() -> int | None:
    raw = os.environ.get("FUZZ_SEED")
    return int(raw) if raw else None


def fuzz(ci_examples: int) -> Callable[[F], F]:
    """Hypothesis settings for a fuzz property: `ci_examples` by default, see the module doc."""
    chosen = fuzz_seed()

    def apply(test: F) -> F:
        configured: F = settings(
            max_examples=examples(ci_examples),
            derandomize=chosen is None,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=list(HealthCheck),
        )(test)
        return seed(chosen)(configured) if chosen is not None else configured

    return apply
