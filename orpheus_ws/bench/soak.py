"""``bench soak``: does the server leak under a long, messy load?

N sessions for M minutes, one asyncio loop, against the stand-in LLM (paced, a set number of
frames a generation) and an ``orpheus-ws serve`` process with the pass-through codec. Each
session opens contexts one after another with a random short text (one or two sentences, sent
whole), and at random points cancels a context or drops its whole socket (an abort, as a
vanished client does, or a close), then reconnects.

Measured: the server process's resident memory and open file descriptors (psutil) and its
asyncio tasks (``GET /api/stats``), sampled over the run; their growth after warm-up (the mean
of the last 20 % of the samples over the mean of the 20 % right after the first 20 %); the
contexts completed, cancelled and dropped; and the completed contexts that were not
sample-exact: the samples received, ``done.samples`` and ``done.source_samples`` must all be
``done.frames x 2048``, and ``done.frames`` the stand-in's frames a generation times
``done.segments``. Met: every growth under 5 % and no inexact context.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import psutil
import websockets

from ..client import ContextCancelled, ContextHandle, OrpheusClient, ServerError
from ..formats import SAMPLES_PER_FRAME
from ..vocabulary import TOKENS_PER_FRAME
from .harness import BenchSetupError, llm_backend, orpheus_server

SENTENCES = (
    "Sure, I can help with that.", "Your order shipped this morning.",
    "It should arrive on Thursday.", "Is there anything else?", "Let me check that for you.",
    "The meeting moved to three.", "Thanks for waiting.", "That works for me.",
    "I found two flights.", "The weather looks fine today.", "Please hold on a moment.",
)
CANCEL_P = 0.2  # per context: cancel it at a random point
DROP_P = 0.1  # per context: drop the socket at a random point
CONTEXT_TIMEOUT_S = 60.0
GROWTH_LIMIT = 0.05


@dataclass
class SoakCounts:
    """What the sessions saw, counted over the run."""

    completed: int = 0  # done, no cancel sent: checked for exactness
    inexact: int = 0
    cancelled: int = 0  # the cancelled event came
    cancel_crossed_end: int = 0  # the cancel arrived after the context had finished
    sockets_dropped: int = 0
    dropped_mid_context: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # error events, by code
    timeouts: int = 0
    connect_errors: int = 0
    inexact_examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Sample:
    """The server process at one moment of the run."""

    t_s: float
    rss_mb: float
    fds: int
    tasks: int


@dataclass(frozen=True, slots=True)
class SoakLoad:
    """What every session needs to know of the run."""

    ws_url: str
    frames: int  # the stand-in's frames a generation
    tps: float
    deadline: float  # loop time


async def _receive(handle: ContextHandle) -> int:
    """The samples of a context's frames (pcm_s16le) until ``done``."""
    samples = 0
    async for chunk in handle:
        samples += len(chunk.payload) // 2
    return samples


async def _settle(receiving: asyncio.Future[int]) -> str:
    """How a context ended: done, cancelled, timeout, or an error code."""
    try:
        await asyncio.wait_for(receiving, CONTEXT_TIMEOUT_S)
    except ContextCancelled:
        return "cancelled"
    except ServerError as exc:
        return exc.code
    except TimeoutError:
        return "timeout"
    return "done"


def _check(handle: ContextHandle, samples: int, load: SoakLoad, counts: SoakCounts) -> None:
    done = handle.done or {}
    frames, segments = int(done.get("frames", -1)), int(done.get("segments", 0))
    exact = (samples == done.get("samples") == done.get("source_samples")
             == frames * SAMPLES_PER_FRAME and segments > 0 and frames == load.frames * segments)
    if not exact:
        counts.inexact += 1
        if len(counts.inexact_examples) < 10:
            counts.inexact_examples.append({"context_id": handle.context_id,
                                            "received_samples": samples, "done": done})


def _record(outcome: str, counts: SoakCounts) -> bool:
    """Counts an outcome other than done; False: the socket is gone."""
    if outcome == "timeout":
        counts.timeouts += 1
        return False
    counts.failed[outcome] += 1
    return outcome != "connection_closed"


async def _context(client: OrpheusClient, context_id: str, rng: random.Random,
                   load: SoakLoad, counts: SoakCounts) -> bool:
    """One context, maybe cancelled or cut off by a dropped socket; False: the socket is gone."""
    sentences = rng.randint(1, 2)
    text = " ".join(rng.sample(SENTENCES, sentences))
    roll = rng.random()
    action = "cancel" if roll < CANCEL_P else "drop" if roll < CANCEL_P + DROP_P else "complete"
    handle = await client.open_context(context_id)
    await handle.send_text(text, end=True)
    receiving = asyncio.ensure_future(_receive(handle))
    if action != "complete":  # a random point from before first audio to past the end
        horizon = 1.3 * sentences * load.frames * TOKENS_PER_FRAME / load.tps
        await asyncio.wait({receiving}, timeout=rng.uniform(0, horizon))
    if receiving.done() or action == "complete":
        outcome = await _settle(receiving)
        if outcome == "done":
            counts.completed += 1
            _check(handle, receiving.result(), load, counts)
        elif not _record(outcome, counts):
            return False
        if action != "drop":
            return True
    elif action == "cancel":
        await client.send({"type": "cancel", "context_id": context_id})
        outcome = await _settle(receiving)
        if outcome == "cancelled":
            counts.cancelled += 1
        elif outcome in ("done", "unknown_context"):  # protocol.md: a cancel crossing the end
            counts.cancel_crossed_end += 1
        else:
            return _record(outcome, counts)
        return True
    else:
        counts.dropped_mid_context += 1
    counts.sockets_dropped += 1
    if rng.random() < 0.5:
        client.connection.transport.abort()  # a vanished client: no close handshake
    else:
        await client.connection.close()
    await _settle(receiving)
    return False


async def _session(index: int, load: SoakLoad, counts: SoakCounts, seed: int) -> None:
    loop = asyncio.get_running_loop()
    rng = random.Random(seed * 100_003 + index)
    await asyncio.sleep(rng.uniform(0, 1.0))  # the sessions start spread over a second
    n = 0
    while loop.time() < load.deadline:
        try:
            async with OrpheusClient.connect(load.ws_url, open_timeout=60) as client:
                while loop.time() < load.deadline:
                    n += 1
                    if not await _context(client, f"s{index}-c{n}", rng, load, counts):
                        break
        except (OSError, TimeoutError, websockets.WebSocketException):
            counts.connect_errors += 1
            await asyncio.sleep(0.5)


async def _sample(proc: psutil.Process, http: aiohttp.ClientSession, url: str,
                  started: float) -> Sample:
    async with http.get(url + "/api/stats") as response:
        stats = await response.json()
    return Sample(t_s=round(time.monotonic() - started, 2),
                  rss_mb=round(proc.memory_info().rss / 2**20, 2), fds=proc.num_fds(),
                  tasks=int(stats["asyncio_tasks"]))


async def _sampler(proc: psutil.Process, url: str, started: float, interval: float,
                   samples: list[Sample], deadline: float) -> None:
    """Samples every ``interval`` until the deadline (not while the sessions wind down)."""
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        while loop.time() < deadline:
            samples.append(await _sample(proc, http, url, started))
            await asyncio.sleep(interval)


def growth(values: list[float]) -> float:
    """The mean of the last 20 % of ``values`` over the mean of the 20 % after the first 20 %,
    minus 1 (0.05: 5 % growth); 0.0 when there are too few values or the baseline is 0."""
    k = len(values) // 5
    if k == 0:
        return 0.0
    baseline, last = statistics.fmean(values[k:2 * k]), statistics.fmean(values[-k:])
    return last / baseline - 1 if baseline else 0.0


async def run_soak(url: str, proc: psutil.Process, *, streams: int, seconds: float,
                   frames: int, tps: float, seed: int = 0) -> dict[str, Any]:
    """The sessions and the sampler for ``seconds`` (a context open at the end finishes);
    then one sample with every socket closed. The counts and samples as a JSON-able dict."""
    loop = asyncio.get_running_loop()
    counts = SoakCounts()
    samples: list[Sample] = []
    load = SoakLoad(url.replace("http://", "ws://") + "/api/tts/ws", frames, tps,
                    loop.time() + seconds)
    started = time.monotonic()
    interval = min(10.0, max(0.5, seconds / 60))
    sampler = asyncio.ensure_future(_sampler(proc, url, started, interval, samples,
                                             load.deadline))
    await asyncio.gather(*(_session(i, load, counts, seed) for i in range(streams)))
    await sampler
    wall = time.monotonic() - started
    await asyncio.sleep(1.0)  # the server's side of the last sockets winds down
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        after = await _sample(proc, http, url, started)
    result = {key: value for key, value in asdict(counts).items() if key != "inexact_examples"}
    result["failed"] = dict(counts.failed)
    result.update(wall_s=round(wall, 2), sample_interval_s=interval,
                  inexact_examples=counts.inexact_examples)
    for name in ("rss_mb", "fds", "tasks"):
        values = [float(getattr(s, name)) for s in samples]
        result[f"{name}_growth_pct"] = round(100 * growth(values), 2)
        result[f"{name}_first_last"] = [values[0], values[-1]] if values else []
    result["after_close"] = asdict(after)
    result["samples"] = [asdict(s) for s in samples]
    return result


def soak(snac_model: str | None, streams: int = 200, minutes: float = 10.0,
         tps: float = 100.0, frames: int = 12, server: dict[str, Any] | None = None,
         llm_url: str | None = None, seed: int = 0, **_: Any) -> dict[str, Any]:
    """The soak scenario (module docstring): its report, with ``met``."""
    if llm_url is not None:
        raise BenchSetupError("soak runs on the stand-in LLM (exactness is checked against "
                              "its frames a generation): drop --llm-url")
    if not 1 <= frames * TOKENS_PER_FRAME <= 512:  # within the default max_tokens
        raise BenchSetupError("soak: --frames must be 1-73")
    settings = {"codec": "passthrough", "ws_max_connections": 2 * streams + 16,
                **(server or {})}
    with llm_backend(None, tps, 2 * streams, frames) as llm, \
            orpheus_server(llm, snac_model or "unused", **settings) as (url, proc):
        run = asyncio.run(run_soak(url, proc, streams=streams, seconds=60 * minutes,
                                   frames=frames, tps=tps, seed=seed))
    growths = [run[f"{name}_growth_pct"] for name in ("rss_mb", "fds", "tasks")]
    return {
        "name": "soak", "target": "rss, fds and asyncio tasks grow < 5 % after warm-up; "
        "every completed context sample-exact", "streams": streams, "minutes": minutes,
        "tokens_per_second": tps, "frames": frames,
        "met": all(g < 100 * GROWTH_LIMIT for g in growths) and run["inexact"] == 0
        and run["completed"] > 0,
        **run,
    }
