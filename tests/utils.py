"""Helpers shared by the tests (import as ``from .utils import ...``).

Every wait in the tests goes through :data:`TIMEOUT_SCALE`, as in websockets' ``tests/utils.py``:
a slow machine sets ``ORPHEUS_WS_TEST_TIMEOUT_SCALE=5`` instead of the tests growing flaky.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

TIMEOUT_SCALE = float(os.environ.get("ORPHEUS_WS_TEST_TIMEOUT_SCALE", "1"))


def scaled(seconds: float) -> float:
    """A wait of ``seconds`` on this machine."""
    return seconds * TIMEOUT_SCALE


async def eventually(
    predicate: Callable[[], bool], timeout: float = 3.0, *, what: str = "condition"
) -> None:
    """Polls ``predicate`` until it holds; fails after ``timeout`` (scaled) seconds."""
    deadline = time.monotonic() + scaled(timeout)
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {scaled(timeout):g} s"
        await asyncio.sleep(0.01)
