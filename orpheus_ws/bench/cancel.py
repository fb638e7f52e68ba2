"""``bench cancel``: how fast a cancel frees llama-server, and whether audio follows it.

K cancels at random points against a real llama-server (``--llm-url``), through an
``orpheus-ws serve`` process (the pass-through codec: the slot's timing is llama-server's). One
socket; for each cancel, once every slot is idle: a context with a long generation
(``max_tokens`` 2048), its first audio, a random 0-500 ms more, then ``cancel``.

Measured: the time from sending ``cancel`` until llama-server's ``GET /slots`` shows no slot
``is_processing`` (polled every 5 ms), p50, p99 and max, over the cancels that found a slot
still generating; and the binary frames of a context received after its ``cancelled`` event,
which protocol.md forbids. Met: no such frame (the p99 is reported, not a target).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..client import Chunk, ContextCancelled, ContextHandle, OrpheusClient, ServerError
from .harness import BenchSetupError, llm_backend, orpheus_server
from .load import percentile

TEXT = ("Well, that is a long story, and I will tell you all of it from the very beginning "
        "so that nothing is left out")
MAX_TOKENS = 2048
POLL_S = 0.005
EXTRA_S = 0.5  # the cancel comes up to this long after the first audio


@dataclass(eq=False)
class CountingHandle(ContextHandle):
    """A context handle that counts the frames that arrive after its ``cancelled`` event."""

    frames_after_cancelled: int = 0

    def _on_frame(self, chunk: Chunk) -> None:
        if self.cancelled is not None:
            self.frames_after_cancelled += 1
        super()._on_frame(chunk)


async def _busy(http: aiohttp.ClientSession, llm_url: str) -> bool:
    async with http.get(llm_url + "/slots") as response:
        if response.status != 200:
            raise BenchSetupError(f"{llm_url}/slots answered {response.status}: a llama-server "
                                  "with its slots endpoint is needed")
        slots = await response.json()
    return any(slot.get("is_processing") for slot in slots)


async def _idle_at(http: aiohttp.ClientSession, llm_url: str, timeout: float = 60.0) -> float:
    """The loop time at which ``/slots`` first shows every slot idle, polled every 5 ms."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await _busy(http, llm_url):
        if loop.time() > deadline:
            raise BenchSetupError(f"llama-server's slots stayed busy for {timeout} s")
        await asyncio.sleep(POLL_S)
    return loop.time()


async def _drain(handle: CountingHandle) -> str:
    """How the context ended after the cancel: cancelled, done, or an error code."""
    try:
        async for _ in handle:
            pass
    except ContextCancelled:
        return "cancelled"
    except ServerError as exc:
        return exc.code
    return "done"


async def run_cancels(ws_url: str, llm_url: str, *, cancels: int, seed: int = 0
                      ) -> dict[str, Any]:
    """The cancels on one socket; the idle times, frames after ``cancelled`` and outcomes."""
    loop, rng = asyncio.get_running_loop(), random.Random(seed)
    handles: list[CountingHandle] = []
    rows: list[dict[str, Any]] = []  # one a cancel
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http, \
            OrpheusClient.connect(ws_url, open_timeout=60) as client:
        for k in range(cancels):
            await _idle_at(http, llm_url)  # each cancel starts from idle slots
            handle = CountingHandle(client, f"cancel-{k}", {"max_tokens": MAX_TOKENS})
            client.contexts[handle.context_id] = handle
            handles.append(handle)
            await handle.send_text(TEXT, end=True)
            try:
                first = await asyncio.wait_for(handle.queue.get(), 60)  # the first audio
            except TimeoutError:
                first = None
            if not isinstance(first, Chunk):
                raise BenchSetupError(f"no audio for {handle.context_id}: {handle.events}")
            await asyncio.sleep(rng.uniform(0, EXTRA_S))
            busy = await _busy(http, llm_url)
            sent = loop.time()
            await client.send({"type": "cancel", "context_id": handle.context_id})
            idle = await _idle_at(http, llm_url)
            rows.append({"busy_at_cancel": busy, "idle_ms": round((idle - sent) * 1000, 2),
                         "outcome": await asyncio.wait_for(_drain(handle), 30)})
        await client.ping()  # frames the server still had to send arrive before the pong
        await asyncio.sleep(0.2)
    for row, handle in zip(rows, handles, strict=True):
        row["frames_after_cancelled"] = handle.frames_after_cancelled
    # a cancel that found the generation over measured nothing of llama-server's
    idle_ms = [row["idle_ms"] for row in rows if row["busy_at_cancel"]]
    return {
        "cancels": cancels, "outcomes": dict(Counter(row["outcome"] for row in rows)),
        "generation_over_before_cancel": len(rows) - len(idle_ms),
        "idle_samples": len(idle_ms),
        "idle_ms_p50": round(percentile(idle_ms, 50), 2),
        "idle_ms_p99": round(percentile(idle_ms, 99), 2),
        "idle_ms_max": round(max(idle_ms), 2) if idle_ms else float("nan"),
        "frames_after_cancelled": sum(h.frames_after_cancelled for h in handles),
        "results": rows,  # in the JSON, not the table
    }


def cancel(snac_model: str | None, cancels: int = 1000, seed: int = 0,
           server: dict[str, Any] | None = None, llm_url: str | None = None, **_: Any
           ) -> dict[str, Any]:
    """The cancel scenario (module docstring): its report, with ``met``."""
    if llm_url is None:
        raise BenchSetupError("cancel measures a real llama-server: give --llm-url")
    settings = {"codec": "passthrough", **(server or {})}
    with llm_backend(llm_url, 0.0, 0, None) as llm, \
            orpheus_server(llm, snac_model or "unused", **settings) as (url, _proc):
        run = asyncio.run(run_cancels(url.replace("http://", "ws://") + "/api/tts/ws", llm,
                                      cancels=cancels, seed=seed))
    return {"name": "cancel", "target": "no frame after cancelled (p99 idle time reported)",
            "met": run["frames_after_cancelled"] == 0, **run}
