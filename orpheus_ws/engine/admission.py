"""Who may start a generation now (an utterance: a context, a request, a vendor turn), and
who must come back later. No I/O.

An utterance holds a generation slot while it has audio to generate or deliver; one that sits
quiet, waiting for more text, gives its slot back and asks again (and may be refused) when
more text comes (``Engine.synthesize``).

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
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable

from ..exceptions import Draining, Overloaded, RateLimited
from ..metrics import CONTEXTS_OPEN, GENERATIONS_QUEUED
from ..policy import RETRY_AFTER_S


class Admission:
    """Generation slots: ``acquire`` takes one for an utterance (or raises what refuses it),
    ``release`` gives it back. An utterance holds one while it has audio to generate or
    deliver, and gives it back while it is quiet (``Engine.synthesize``)."""

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
        self.running = 0  # slots held
        self.queued = 0
        self.by_key: Counter[str] = Counter()
        self.draining = False
        self._waiters: deque[asyncio.Future[None]] = deque()  # the queue, first come first

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
            async with asyncio.timeout(self.queue_timeout_s):
                while self._full():
                    await self._wait_for_release()
        except TimeoutError:
            raise Overloaded(f"no generation slot freed within {self.queue_timeout_s:g} s; "
                             f"try again in {RETRY_AFTER_S} s", RETRY_AFTER_S) from None
        finally:
            self.queued -= 1
            GENERATIONS_QUEUED.dec()

    async def _wait_for_release(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # woken, but leaving: wake the next
                self._wake_one()
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def acquire(self, key: str | None = None, *, returning: bool = False) -> None:
        """Takes one generation slot for ``key`` (waiting in the queue if the server is full);
        raises what refuses it. ``returning``: an utterance admitted before, back with more
        to say, which a drain lets finish (only new utterances are refused then)."""
        if self.draining and not returning:
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

    def release(self, key: str | None = None) -> None:
        """Gives back a slot ``acquire(key)`` took; the first in the queue may take it."""
        self.running -= 1
        if key is not None:
            self.by_key[key] -= 1
            if not self.by_key[key]:
                del self.by_key[key]
        self._wake_one()

    @contextlib.asynccontextmanager
    async def enter(self, key: str | None = None) -> AsyncIterator[None]:
        """Holds one generation slot for the block; raises what refuses it."""
        await self.acquire(key)
        try:
            yield
        finally:
            self.release(key)


class UtteranceSlot:
    """An utterance's generation slot, for the caller that opened it: taken when it has a
    segment to generate, given back when it goes quiet, taken again (or refused) when it has
    more to say. ``count(+1 / -1)`` follows the slots held."""

    def __init__(self, admission: Admission, key: str | None,
                 count: Callable[[int], None]) -> None:
        self._admission = admission
        self._key = key
        self._count = count
        self.held = False
        self.opened_at = 0.0  # when first taken: the utterance's start

    async def take(self) -> None:
        if self.held:
            return
        await self._admission.acquire(self._key, returning=bool(self.opened_at))
        self.held = True
        self._count(+1)
        if not self.opened_at:
            self.opened_at = time.monotonic()
            CONTEXTS_OPEN.inc()

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self._count(-1)
            self._admission.release(self._key)

    def close(self) -> None:
        """The utterance is over."""
        self.give_back()
        if self.opened_at:
            CONTEXTS_OPEN.dec()
