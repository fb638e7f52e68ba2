"""Several LLM backends behind one face (``--llm-url`` repeated or a comma list): each
generation goes to the least-loaded healthy backend, a failing one is taken out and put back
once it answers again, and a generation whose backend fails before any of its audio was
decoded for the listener is retried once on another, invisibly (``pipeline.py``).

Load is the generations this server has in flight on a backend; between two equally loaded
backends the one with fewer busy slots (llama-server's ``/slots``, read by the health check)
wins. The health check asks every backend's ``/health`` each ``check_interval_s``; a backend
that fails a generation (it can't be reached, refuses, breaks off or hangs past the read
timeout) is out at once, until a check passes. Each backend's token rate per running generation
is measured as the tokens come, for real-time admission (``capacity.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import BackendError, BackendProtocolError, BackendUnavailable
from ..params import SamplingParams
from .llm import LLMClient
from .llm_http import TokenSink

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Flow:
    """One generation's tokens as they come: its rate since the first (a stall counts)."""

    first_at: float | None = None
    tokens: int = 0

    def add(self, count: int, now: float | None = None) -> None:
        """A network read's tokens, at ``now`` (None: the clock, read only at the first)."""
        if self.first_at is None:  # the rate leaves out the prompt's processing
            self.first_at = time.monotonic() if now is None else now
        else:
            self.tokens += count

    def rate(self, now: float) -> float | None:
        """Tokens per second, once there is enough to tell (``MEASURED_*``)."""
        if self.first_at is None or now - self.first_at < MEASURED_AFTER_S or \
                self.tokens < MEASURED_AFTER_TOKENS:
            return None
        return self.tokens / (now - self.first_at)


MEASURED_AFTER_S = 0.5
MEASURED_AFTER_TOKENS = 28


@dataclass(eq=False)
class Backend:
    client: LLMClient
    healthy: bool = True
    in_flight: int = 0
    busy_slots: int = 0
    failures: int = 0
    last_error: str | None = None
    out_since: float | None = None
    generations: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    flows: set[Flow] = field(default_factory=set)
    best_rate: float | None = None  # the most tokens/s one generation got here (least load)

    @property
    def url(self) -> str:
        return self.client.base_url

    def stream_rate(self, now: float) -> float | None:
        """Tokens per second per generation running here (their mean), None before any has
        been measured; ``best_rate`` keeps the highest seen."""
        rates = [r for r in (flow.rate(now) for flow in self.flows) if r is not None]
        if not rates:
            return None
        self.best_rate = max(self.best_rate or 0.0, *rates)
        return sum(rates) / len(rates)

    def fail(self, error: BackendError) -> None:
        if self.healthy:
            log.warning("backend %s out: %s", self.url, error)
        self.healthy = False
        self.failures += 1
        self.last_error = str(error)
        self.out_since = self.out_since or time.monotonic()

    def state(self) -> dict[str, Any]:
        rate = self.stream_rate(time.monotonic())
        return {"url": self.url, "state": "healthy" if self.healthy else "out",
                "in_flight": self.in_flight, "generations": self.generations,
                "tokens_per_second_per_stream": None if rate is None else round(rate, 1),
                "best_tokens_per_second": None if self.best_rate is None
                else round(self.best_rate, 1),
                "failures": self.failures, "last_error": self.last_error,
                **({"slots": self.info["slots"]} if "slots" in self.info else {})}


class _Counted:
    """A sink's tokens counted into the generation's flow on their way."""

    __slots__ = ("_flow", "_sink", "awaiting")

    def __init__(self, sink: TokenSink, flow: Flow) -> None:
        self._sink, self._flow = sink, flow
        self.awaiting = sink.awaiting

    def take(self, ids: list[int]) -> bool:
        self._flow.add(len(ids))
        return self._sink.take(ids)


class BackendPool:
    """The ``LLMClient`` face (``stream_tokens``, ``health``, ``close``) over several."""

    def __init__(self, clients: list[LLMClient], *, check_interval_s: float = 2.0) -> None:
        if not clients:
            raise ValueError("at least one LLM backend is needed")
        self.backends = [Backend(client) for client in clients]
        self.check_interval_s = check_interval_s
        self.base_url = ",".join(b.url for b in self.backends)
        self.api = clients[0].api
        self._checker: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts the health checks (only worth it with more than one backend)."""
        if len(self.backends) > 1 and self._checker is None:
            self._checker = asyncio.get_running_loop().create_task(self._check_forever(),
                                                                   name="backend-checks")

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
            self._checker = None
        for backend in self.backends:
            await backend.client.close()

    def pick(self) -> Backend | None:
        healthy = [b for b in self.backends if b.healthy] or \
            ([] if len(self.backends) > 1 else self.backends)  # one backend: always try it
        if not healthy:
            return None
        return min(healthy, key=lambda b: (b.in_flight, b.busy_slots))

    def stream_rates(self) -> list[tuple[float | None, float | None]]:
        """Each healthy backend's tokens per second per running generation now (``Backend.
        stream_rate``) and the best it has given: what real-time admission reads
        (``capacity.py``)."""
        now = time.monotonic()
        return [(b.stream_rate(now), b.best_rate) for b in self.backends if b.healthy]

    def can_fail_over(self) -> bool:
        """Another backend is healthy (a failed one is out as soon as it fails)."""
        return len(self.backends) > 1 and any(b.healthy for b in self.backends)

    async def generate(self, voice: str, text: str, params: SamplingParams,
                       sink: TokenSink) -> None:
        """The generation on the least-loaded healthy backend (``TokenSource.generate``). A
        backend that fails is out until a health check passes; the generation decides whether
        to retry (``pipeline.py``: once, while none of its audio has been decoded for the
        listener)."""
        backend = self.pick()
        if backend is None:
            raise BackendUnavailable("no LLM backend can serve: every one is out")
        backend.in_flight += 1
        backend.generations += 1
        flow = Flow()
        backend.flows.add(flow)
        try:
            await backend.client.generate(voice, text, params, _Counted(sink, flow))
        except BackendProtocolError:
            raise  # the backend answered, with something else: it is not down
        except BackendError as exc:
            if len(self.backends) > 1:
                backend.fail(exc)
            raise
        finally:
            backend.in_flight -= 1
            backend.flows.discard(flow)
            rate = flow.rate(time.monotonic())
            if rate is not None:
                backend.best_rate = max(backend.best_rate or 0.0, rate)

    async def check(self) -> None:
        """One round of health checks: every backend's ``/health`` (and slots)."""
        results = await asyncio.gather(*(b.client.health() for b in self.backends))
        for backend, info in zip(self.backends, results, strict=True):
            backend.info = info
            backend.busy_slots = int(info.get("slots", {}).get("busy", 0))
            ok = info.get("status") == "ok"
            if ok and not backend.healthy:
                log.info("backend %s back", backend.url)
                backend.healthy, backend.out_since = True, None
            elif not ok and backend.healthy:
                backend.fail(BackendUnavailable(f"health check: {info.get('status')}"))

    async def _check_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.check()
            await asyncio.sleep(self.check_interval_s)

    async def health(self) -> dict[str, Any]:
        """One backend: its own health. Several: ``ok`` while any is healthy, with each
        backend's state."""
        if len(self.backends) == 1:
            info = await self.backends[0].client.health()
            self.backends[0].info = info
            return {**info, "backends": [self.backends[0].state()]}
        await self.check()
        healthy = [b for b in self.backends if b.healthy]
        slots = [b.info["slots"] for b in self.backends if "slots" in b.info]
        return {"url": self.base_url, "api": self.api,
                "status": "ok" if healthy else "unavailable",
                **({"slots": {"total": sum(s["total"] for s in slots),
                              "busy": sum(s["busy"] for s in slots)}} if slots else {}),
                "backends": [b.state() for b in self.backends]}
