"""Waiting for something a test expects, by looking again until it is true or time is up."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    """Return once `predicate()` is true; fail after `timeout` seconds saying `what` was
    awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what or 'condition'} not met within {timeout:g} s")
