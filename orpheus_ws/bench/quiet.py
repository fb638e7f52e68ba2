"""``orpheus-ws bench quiet``: time to first speech, as heard, with the leading quiet trimmed
and without, side by side in one run (#20).

The stand-in LLM writes ``quiet_frames`` quiet frames, then loud ones, at 100 and at 200 tokens
a second; the ``level`` codec stand-in makes a frame as loud as its first code, so the level is
exact and SNAC's cost is out of the picture. A listener starts playing at the first audio and
plays on in order, waiting where audio is late: the time it hears the first frame of speech
is the time to first speech as heard. Without trimming it hears the quiet frames first;
with it, the audio starts 100 ms before the speech.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from ..devtools.standin_llm import StandinConfig, StandinLLMServer
from ..engine import (
    AudioChunk,
    DecoderService,
    Engine,
    LLMClient,
    PlayoutClock,
    load_codec,
)
from ..formats import SAMPLE_RATE
from ..params import SamplingParams

QUIET_FRAMES = 7  # canopyai #299: frames 0-6 of "Hello" near-silent
FRAMES = 24
RUNS = 5


def heard_at(arrivals: list[tuple[float, int, int | None]]) -> float | None:
    """When a listener who starts at the first audio and plays in order hears the first speech
    sample: ``arrivals`` are (arrival time, samples, first speech sample in it or None)."""
    clock = None  # when the audio queued so far ends playing
    for arrived, samples, speech in arrivals:
        start = arrived if clock is None else max(clock, arrived)
        if speech is not None:
            return start + speech / SAMPLE_RATE
        clock = start + samples / SAMPLE_RATE
    return None


async def _utterance(engine: Engine, trim: bool) -> float | None:
    started = time.monotonic()
    arrivals: list[tuple[float, int, int | None]] = []
    # a listener in real time, so windows are as small as its audio in hand asks for
    async for event in engine.speak("Hello there, this is the first sentence.", voice="tara",
                                    params=SamplingParams(), trim_quiet=trim,
                                    clock=PlayoutClock()):
        if isinstance(event, AudioChunk):
            speech = event.speech_from
            arrivals.append((time.monotonic() - started, event.samples, speech))
    heard = heard_at(arrivals)
    return None if heard is None else heard * 1000


async def _measure(tokens_per_second: float, runs: int) -> dict[str, Any]:
    config = StandinConfig(tokens_per_second=tokens_per_second, slots=2, frames=FRAMES,
                           quiet_frames=QUIET_FRAMES)
    async with StandinLLMServer(config) as llm_server:
        engine = Engine(LLMClient(llm_server.url), DecoderService(load_codec("", "cpu",
                                                                             kind="level")),
                        voices=["tara"])
        await engine.start()
        try:
            out: dict[str, Any] = {}
            for trim in (False, True):
                times = [await _utterance(engine, trim) for _ in range(runs)]
                heard = [t for t in times if t is not None]
                out["on" if trim else "off"] = round(statistics.median(heard), 1)
            return out
        finally:
            await engine.close()


def run_quiet(runs: int = RUNS) -> dict[str, Any]:
    result: dict[str, Any] = {"quiet_frames": QUIET_FRAMES,
                              "quiet_ms": round(QUIET_FRAMES * 2048 / SAMPLE_RATE * 1000, 1)}
    for tps in (100, 200):
        measured = asyncio.run(_measure(tps, runs))
        result[f"ttfs_heard_ms_{tps}_tps_trim_off"] = measured["off"]
        result[f"ttfs_heard_ms_{tps}_tps_trim_on"] = measured["on"]
        result[f"saving_ms_{tps}_tps"] = round(measured["off"] - measured["on"], 1)
    return result
