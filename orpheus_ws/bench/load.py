"""The load generator: N concurrent WebSocket sessions through ``orpheus_ws.client``.

Each session speaks ``contexts`` utterances one after another, sending the text whole or word
by word at an LLM's pace, and measures per context: time to first audio, underruns of a
simulated real-time player, real-time factor and sample exactness, and time to first
speech: to the first chunk with a frame loud enough to be speech (engine/level.py), read off
the audio as received (None where none was: a silent stand-in codec).
"""

from __future__ import annotations

import asyncio
import random
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from ..client import OrpheusClient, ServerError
from ..engine import first_speech_sample
from ..formats import SAMPLE_RATE, SAMPLES_PER_FRAME
from .player import simulate_player


@dataclass(frozen=True, slots=True)
class ContextResult:
    ttfa_s: float
    start_s: float  # when the simulated player started: its jitter buffer full
    samples: int
    frames: int
    exact: bool
    underruns: int
    early_underruns: int
    underrun_s: float
    audio_s: float
    wall_s: float
    gaps: tuple[tuple[float, float], ...] = ()
    refused: bool = False  # the server had no room (server_busy): nothing was played
    ttfs_s: float | None = None  # to the first chunk with speech in it; None: none had

    @property
    def rtf(self) -> float:
        """Wall time per second of audio (below 1: faster than real time)."""
        return self.wall_s / self.audio_s if self.audio_s else float("inf")


async def _speak(client: OrpheusClient, context_id: str, text: str, *, paced: bool,
                 word_interval_s: float, jitter_s: float, options: dict[str, Any]
                 ) -> ContextResult:
    loop = asyncio.get_running_loop()
    ctx = await client.open_context(context_id, **options)
    started = loop.time()

    async def send() -> None:
        if not paced:
            await ctx.send_text(text, end=True)
            return
        for word in text.split(" "):
            await ctx.send_text(word + " ")
            await asyncio.sleep(word_interval_s)
        await ctx.end()

    sender = asyncio.ensure_future(send())
    arrivals: list[tuple[float, float]] = []
    samples = 0
    ttfs: float | None = None
    try:
        async for chunk in ctx:
            count = len(chunk.payload) // 2
            samples += count
            arrivals.append((chunk.received_at, count / SAMPLE_RATE))
            if ttfs is None and chunk.header.encoding == "pcm_s16le" and \
                    first_speech_sample(chunk.samples()) is not None:
                ttfs = chunk.received_at - started
    except ServerError as refusal:
        if refusal.code != "server_busy" or arrivals:
            raise
        sender.cancel()
        return ContextResult(ttfa_s=0.0, start_s=0.0, samples=0, frames=0, exact=True,
                             underruns=0, early_underruns=0, underrun_s=0.0, audio_s=0.0,
                             wall_s=0.0, refused=True)
    await sender
    done = ctx.done or {}
    frames = int(done.get("frames", 0))
    player = simulate_player(arrivals, jitter_s=jitter_s)
    return ContextResult(
        ttfa_s=arrivals[0][0] - started if arrivals else float("inf"),
        start_s=player.started_at - started if player.started_at is not None else float("inf"),
        samples=samples, frames=frames,
        exact=samples == frames * SAMPLES_PER_FRAME == done.get("samples"),
        underruns=player.underruns, early_underruns=player.early_underruns,
        underrun_s=player.underrun_s, audio_s=samples / SAMPLE_RATE,
        wall_s=(arrivals[-1][0] - started) if arrivals else 0.0, gaps=player.gaps,
        ttfs_s=ttfs,
    )


async def run_load(ws_url: str, *, streams: int, contexts: int, text: str, paced: bool,
                   word_interval_s: float = 0.05, jitter_s: float = 0.2,
                   stagger_s: float = 1.0, options: dict[str, Any] | None = None,
                   seed: int = 0) -> list[ContextResult]:
    """Every context's result; the sessions start spread over ``stagger_s``."""
    rng = random.Random(seed)
    offsets = sorted(rng.uniform(0, stagger_s) for _ in range(streams))

    async def session(index: int) -> list[ContextResult]:
        await asyncio.sleep(offsets[index])
        results = []
        async with OrpheusClient.connect(ws_url, open_timeout=60) as client:
            # Tell the server the player's jitter buffer, so it knows the audio in hand.
            await client.configure(client_buffer_ms=round(jitter_s * 1000))
            for k in range(contexts):
                results.append(await _speak(
                    client, f"s{index}-c{k}", text, paced=paced,
                    word_interval_s=word_interval_s, jitter_s=jitter_s,
                    options=options or {}))
        return results

    per_session = await asyncio.gather(*(session(i) for i in range(streams)))
    return [result for results in per_session for result in results]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def summarize(every: list[ContextResult]) -> dict[str, Any]:
    """Over the contexts the server took; ``refused`` counts the others."""
    results = [r for r in every if not r.refused]
    ttfa = [r.ttfa_s * 1000 for r in results]
    starts = [r.start_s * 1000 for r in results]
    ttfs = [r.ttfs_s * 1000 for r in results if r.ttfs_s is not None]
    return {
        "contexts": len(results),
        "refused": len(every) - len(results),
        "exact": sum(r.exact for r in results),
        "audio_s": round(sum(r.audio_s for r in results), 2),
        "ttfa_ms_p50": round(percentile(ttfa, 50), 1),
        "ttfa_ms_p99": round(percentile(ttfa, 99), 1),
        "ttfs_ms_p50": round(percentile(ttfs, 50), 1) if ttfs else None,
        "ttfs_ms_p99": round(percentile(ttfs, 99), 1) if ttfs else None,
        "playback_start_ms_p50": round(percentile(starts, 50), 1),
        "playback_start_ms_p99": round(percentile(starts, 99), 1),
        "underruns_after_1s": sum(r.underruns for r in results),
        "underruns_first_1s": sum(r.early_underruns for r in results),
        "underrun_s": round(sum(r.underrun_s for r in results), 3),
        "rtf_mean": round(statistics.fmean(r.rtf for r in results), 3) if results else None,
        "results": [asdict(r) for r in every],
    }
