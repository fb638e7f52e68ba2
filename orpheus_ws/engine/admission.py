"""Who may start a generation now (an utterance: a context, a request, a vendor turn), and
who must come back later. No I/O.

- A server-wide cap on utterances generating at once; past it an utterance waits in a bounded
  queue, for a bounded time, then is refused (``Overloaded``: HTTP 503, WS ``server_busy``).
- A per-key cap (``RateLimited``: HTTP 429, WS ``rate_limited``), never queued.
- Real-time capacity, measured as the server runs (``capacity.py``): while the decoder or the
  LLM backend can't keep the utterances already admitted in real time, new ones are refused,
  so that those admitted keep playing instead of every listener running dry.
- While the server drains, nothing new starts (``Draining``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar

from ..exceptions import Draining, Overloaded, RateLimited
from ..metrics import GENERATIONS_QUEUED

RETRY_AFTER_S = 2
# Who asks, set by the transport for the request's or socket's task (and so inherited by the
# tasks it starts): the name of the API key, and the kind of route (for the metrics).
current_key: ContextVar[str | None] = ContextVar("orpheus_key", default=None)
current_route: ContextVar[str] = ContextVar("orpheus_route", default="other")


class Admission:
    def __init__(self, *, max_generations: int = 0, per_key: int = 0, max_queued: int = 0,
                 queue_timeout_s: float = 5.0,
                 over_capacity: Callable[[int], str | None] | None = None) -> None:
        """``0`` for a cap: none. ``over_capacity(running)`` names what can't take one more
        real-time stream (None: room)."""
        self.max_generations = max_generations
        self.per_key = per_key
        self.max_queued = max_queued
        self.queue_timeout_s = queue_timeout_s
        self.over_capacity = over_capacity
        self.running = 0
        self.queued = 0
        self.by_key: Counter[str] = Counter()
        self.draining = False
        self._room = asyncio.Condition()

    def _full(self) -> bool:
        return bool(self.max_generations) and self.running >= self.max_generations

    async def _wait_for_room(self) -> None:
        if not self._full():
            return
        if self.queued >= self.max_queued:
            raise Overloaded(f"{self.running} generations running, the server's most, and "
                             f"{self.queued} waiting; try again in {RETRY_AFTER_S} s",
                             RETRY_AFTER_S)
        self.queued += 1
        GENERATIONS_QUEUED.inc()
        try:
            async with self._room:
                async with asyncio.timeout(self.queue_timeout_s):
                    await self._room.wait_for(lambda: not self._full())
        except TimeoutError:
            raise Overloaded(f"no generation slot freed within {self.queue_timeout_s:g} s; "
                             f"try again in {RETRY_AFTER_S} s", RETRY_AFTER_S) from None
        finally:
            self.queued -= 1
            GENERATIONS_QUEUED.dec()

    @contextlib.asynccontextmanager
    async def enter(self, key: str | None = None) -> AsyncIterator[None]:
        """Holds one generation's place for the block; raises what refuses it."""
        if self.draining:
            raise Draining("the server is shutting down; try another", RETRY_AFTER_S)
        if key is not None and self.per_key and self.by_key[key] >= self.per_key:
            raise RateLimited(f"this API key has {self.by_key[key]} generations running, "
                              f"its most; try again in {RETRY_AFTER_S} s", RETRY_AFTER_S)
        if self.over_capacity is not None and self.running:
            reason = self.over_capacity(self.running)
            if reason is not None:
                raise Overloaded(f"{reason}: the streams already playing would run dry; "
                                 f"try again in {RETRY_AFTER_S} s", RETRY_AFTER_S)
        await self._wait_for_room()
        self.running += 1
        if key is not None:
            self.by_key[key] += 1
        try:
            yield
        finally:
            self.running -= 1
            if key is not None:
                self.by_key[key] -= 1
                if not self.by_key[key]:
                    del self.by_key[key]
            async with self._room:
                self._room.notify(1)
