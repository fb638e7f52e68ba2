"""``orpheus-ws bench messages``: what one client message can make the event loop do.

In-process, no server and no LLM: the time of the segmenter on texts of growing length
(linear, so one message costs what its text costs), and of a Deepgram socket adapter's
``received()`` for a ``Speak`` as large as a context may hold and for one far past it (refused).
The engine behind the adapter never generates, so only the message's own work is timed.
Target: a single message costs the loop at most a few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import statistics
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson

from ..compat.deepgram_ws import DeepgramConnection
from ..config import Settings
from ..engine import (
    Caller,
    EngineHealth,
    Frame,
    PlayoutClock,
    RepeatWatch,
    Segments,
    SynthesisEvent,
    TextFeed,
)
from ..exceptions import RequestError
from ..lineup import Lineup
from ..params import SamplingParams
from ..transport.limits import SocketLimits
from ..transport.outbox import Outbox

SENTENCE = "Hello there my friend, this is a sentence. "
TARGET_MS = 5.0


class _QuietEngine:
    """A SpeechEngine whose utterances take their text and never speak."""

    voices = ["tara"]  # noqa: RUF012
    lineup = Lineup.of("", voices="tara")
    ready = True
    draining = False
    utterances = 0

    def check_voice(self, voice: str) -> None:
        return None

    async def synthesize(self, segments: Segments, *, voice: str, params: SamplingParams,
                         caller: Caller = Caller(), clock: PlayoutClock | None = None,
                         first_index: int = 0,
                         trim_quiet: bool | None = None, normalize: bool | None = None,
                   ssml: bool = False) -> AsyncGenerator[SynthesisEvent, None]:
        await asyncio.Event().wait()
        yield  # type: ignore[misc]  # never reached: an async generator that never speaks

    def speak(self, text: str, *, voice: str, params: SamplingParams, caller: Caller = Caller(),
              clock: PlayoutClock | None = None,
              trim_quiet: bool | None = None, normalize: bool | None = None,
                   ssml: bool = False) -> AsyncGenerator[SynthesisEvent, None]:
        return self.synthesize([text], voice=voice, params=params)

    async def health(self) -> EngineHealth:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        return {}

    def record_first_audio(self, chunk: Any, sent_at: float) -> None:
        return None

    def drain(self) -> None:
        return None

    async def idle(self) -> None:
        return None


def _timed(work: Callable[[], object], runs: int) -> tuple[float, float]:
    """(min, median) milliseconds of ``work``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1e3)
    return min(times), statistics.median(times)


def _segment(text: str) -> None:
    feed = TextFeed(max_tokens=512)  # segments of at most 85 characters
    feed.push(text)
    feed.flush()


async def _speak_ms(chars: int, runs: int) -> tuple[float, float]:
    limits = SocketLimits.from_settings(Settings())
    message = orjson.dumps({"type": "Speak", "text": (SENTENCE * (chars // 40 + 1))[:chars]})
    times = []
    for _ in range(runs):
        adapter = DeepgramConnection(_QuietEngine(), Caller(), "tara", "linear16", None, "",
                                     Outbox(1 << 30), limits)
        started = time.perf_counter()
        with contextlib.suppress(RequestError):  # the adapter answers it on the socket
            await adapter.received(message.decode(), None)
        times.append((time.perf_counter() - started) * 1e3)
        await adapter.stop()
    return min(times), statistics.median(times)


def _repeat_watch(frames: int = 20_000) -> dict[str, Any]:
    """The runaway guard's repeat watch on sampled (random) codes, as generated: what it costs
    a frame, and how often it takes speech for a loop (it must never)."""
    rng = random.Random(0)
    stream = [Frame(tuple(rng.randrange(4096) for _ in range(7)))  # type: ignore[arg-type]
              for _ in range(frames)]
    watch, found, seen = RepeatWatch(), 0, []
    started = time.perf_counter()
    for frame in stream:  # a frame at a time, as a generation's arrive
        seen.append(frame)
        if watch.feed(seen) is not None:
            found += 1
    elapsed = time.perf_counter() - started
    return {"repeat_watch_us_per_frame": round(elapsed / frames * 1e6, 2),
            "repeat_watch_false_loops": found, "repeat_watch_frames": frames}


# A sentence a voice agent says, in each language the normalizer reads (text/normalize.py).
NORMALIZE_SAMPLES = {
    "en": "Dr. Smith paid $4.50 at 3:30 pm on Jan. 5th, 2026; call +1 555-123-4567.",
    "fr": "Le Dr Martin a payé 5,50 € le 5 janvier 2026 à 15h30, au 06 12 34 56 78.",
    "de": "Dr. Schmidt zahlte am 5. Januar 2026 um 15:30 Uhr 4,50 € für 3 kg.",
    "es": "El Sr. García pagó 4,50 € el 5 de enero de 2026 a las 15:30.",
    "zh": "他在2026年1月5日15:30花了4.5元，打电话13812345678。",
}


def _normalize_cost(runs: int) -> dict[str, Any]:
    """What normalizing one segment's sentence costs the event loop, per language (the
    language's patterns warmed first, as the engine does at start)."""
    from ..text.normalize import normalize

    out: dict[str, Any] = {}
    for language, sentence in NORMALIZE_SAMPLES.items():
        normalize(sentence, language)
        _, mid = _timed(functools.partial(normalize, sentence, language), max(20, runs * 10))
        out[f"normalize_{language}_sentence_us"] = round(mid * 1e3, 1)
    return out


def run_messages(runs: int = 10) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for chars in (5_000, 65_536, 1_000_000):
        text = (SENTENCE * (chars // 40 + 1))[:chars]
        low, mid = _timed(functools.partial(_segment, text), max(3, runs // 2))
        result[f"segmenter_{chars}_chars_ms"] = round(mid, 2)
        result[f"segmenter_{chars}_us_per_char"] = round(low * 1e3 / chars, 3)
    held = Settings().ws_max_text_chars
    for chars in (held - 1, 65_000):
        _, mid = asyncio.run(_speak_ms(chars, runs))
        result[f"deepgram_speak_{chars}_chars_ms"] = round(mid, 2)
    result.update(_repeat_watch())
    result.update(_normalize_cost(runs))
    worst = result[f"deepgram_speak_{held - 1}_chars_ms"]
    result["target_ms"] = TARGET_MS
    result["met"] = worst <= TARGET_MS
    return result
