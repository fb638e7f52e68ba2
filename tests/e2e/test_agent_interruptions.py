"""pipecat's realtime TTS services against the real server process on the real llama-server
(tiny GGUF) and real SNAC, through pipecat's own ``run_test``: a whole utterance, a long reply
interrupted in the middle (barge-in), then the next utterance. Each whole utterance is exactly
what the server made (its frames x 2048 samples at the asked rate); the interruption leaves
every llama-server slot idle within 100 ms; nothing of the interrupted reply is heard after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from pipecat.frames.frames import Frame, InterruptionFrame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.deepgram.tts import DeepgramTTSService
from pipecat.services.elevenlabs.tts import ElevenLabsTTSService
from pipecat.services.together.tts import TogetherTTSService
from pipecat.tests.utils import SleepFrame, run_test

from orpheus_ws.devtools.llama_server import LlamaServerProcess

from .harness import SAMPLES_PER_FRAME, ServerProcess, idle_deadline, llama_slots

# The server's defaults: max_tokens 512 per segment, and the tiny model speaks until it.
FRAMES = 512 // 7
SHORT, NEXT = "Hello there.", "Next one."
LONG = " ".join(f"This is sentence number {n} of a long reply." for n in range(1, 11))


class InterruptionClock(FrameProcessor):
    """Passes every frame on; holds the interruption until ``busy()`` (a llama-server slot is
    generating: between segments none may be), and notes when it went by. The next speech
    waits until the interruption has been out ``gap`` seconds, however long it was held: sent
    right behind it, its generation would take over the freed slot before anyone saw it idle.
    """

    def __init__(self, busy: Callable[[], bool], gap: float = 0.5) -> None:
        super().__init__()
        self.busy = busy
        self.gap = gap
        self.interrupted_at: float | None = None
        self.interrupting = False
        self.released = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame) and not self.interrupting:
            self.interrupting = True
            deadline = time.monotonic() + 10
            while not self.busy() and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
            self.interrupted_at = time.monotonic()
            self.released.set()
        elif isinstance(frame, TTSSpeakFrame) and self.interrupting:
            await self.released.wait()
            assert self.interrupted_at is not None
            await asyncio.sleep(max(0.0, self.interrupted_at + self.gap - time.monotonic()))
        await self.push_frame(frame, direction)


@dataclass
class SlotWatch:
    """llama-server's slots every 5 ms: (time, busy slots, most tokens any slot decoded)."""

    llama: LlamaServerProcess
    samples: list[tuple[float, int, int]] = field(default_factory=list)

    async def run(self, http: aiohttp.ClientSession) -> None:
        while True:
            slots = await llama_slots(http, self.llama)
            busy = sum(1 for slot in slots if slot["is_processing"])
            decoded = [int(entry.get("n_decoded", 0)) for slot in slots
                       for entry in _progress(slot)]
            self.samples.append((time.monotonic(), busy, max(decoded, default=0)))
            await asyncio.sleep(0.005)

    def busy(self) -> bool:
        return bool(self.samples) and self.samples[-1][1] > 0

    def at(self, when: float) -> tuple[int, float]:
        """Slots busy at ``when``, and seconds per token in the 0.3 s before it."""
        before = [s for s in self.samples if s[0] <= when]
        window = [s for s in before if s[0] >= when - 0.3 and s[1]]
        made = window[-1][2] - window[0][2] if len(window) > 1 else 0
        per_token = (window[-1][0] - window[0][0]) / made if made > 0 else 0.0
        return before[-1][1], per_token

    def idle_after(self, when: float) -> float:
        """Seconds from ``when`` to the first sample with no slot busy."""
        for at, busy, _ in self.samples:
            if at >= when and not busy:
                return at - when
        raise AssertionError("llama-server's slots stayed busy")


def _progress(slot: dict[str, Any]) -> list[dict[str, Any]]:
    progress = slot.get("next_token") or {}
    return progress if isinstance(progress, list) else [progress]


@dataclass(frozen=True)
class Service:
    name: str
    make: Callable[[ServerProcess], Any]
    rate: int = 24000
    width: int = 2  # bytes per sample


def ws(server: ServerProcess, path: str = "") -> str:
    return server.url.replace("http", "ws") + path


SERVICES = [
    Service("deepgram-24k", lambda s: DeepgramTTSService(
        api_key="unused", base_url=ws(s), sample_rate=24000,
        settings=DeepgramTTSService.Settings(voice="aura-2-leo-en"))),
    Service("deepgram-16k", lambda s: DeepgramTTSService(
        api_key="unused", base_url=ws(s), sample_rate=16000,
        settings=DeepgramTTSService.Settings(voice="aura-2-leo-en")), 16000),
    Service("deepgram-mulaw", lambda s: DeepgramTTSService(
        api_key="unused", base_url=ws(s), sample_rate=8000, encoding="mulaw",
        settings=DeepgramTTSService.Settings(voice="aura-2-leo-en")), 8000, 1),
    Service("cartesia", lambda s: CartesiaTTSService(
        api_key="unused", url=ws(s, "/tts/websocket"),
        settings=CartesiaTTSService.Settings(voice="leo"))),
    Service("elevenlabs", lambda s: ElevenLabsTTSService(
        api_key="unused", url=ws(s), settings=ElevenLabsTTSService.Settings(voice="leo"))),
    Service("together", lambda s: TogetherTTSService(
        api_key="unused", url=ws(s, "/v1/audio/speech/websocket"),
        settings=TogetherTTSService.Settings(model="canopylabs/orpheus-3b-0.1-ft",
                                             voice="leo"))),
]


def audio_by_context(down: Sequence[Frame]) -> list[tuple[set[int], int]]:
    """Each context's audio, in the order the contexts began: (sample rates, bytes)."""
    contexts: dict[Any, tuple[set[int], int]] = {}
    for frame in down:
        if isinstance(frame, TTSAudioRawFrame):
            rates, size = contexts.get(frame.context_id, (set(), 0))
            contexts[frame.context_id] = (rates | {frame.sample_rate}, size + len(frame.audio))
    return list(contexts.values())


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
async def test_whole_then_interrupted_then_whole(service: Service, real_server: ServerProcess,
                                                 llama_server: LlamaServerProcess) -> None:
    watch = SlotWatch(llama_server)
    clock = InterruptionClock(watch.busy)
    async with aiohttp.ClientSession() as http:
        watcher = asyncio.ensure_future(watch.run(http))
        try:
            down, _ = await run_test(Pipeline([clock, service.make(real_server)]),
                                     frames_to_send=[
                TTSSpeakFrame(SHORT), SleepFrame(8), TTSSpeakFrame(LONG), SleepFrame(2),
                InterruptionFrame(), SleepFrame(0.5), TTSSpeakFrame(NEXT), SleepFrame(8)])
        finally:
            watcher.cancel()
    assert clock.interrupted_at is not None
    busy, per_token = watch.at(clock.interrupted_at)
    assert busy > 0, "the long reply had finished generating before the interruption"
    assert watch.idle_after(clock.interrupted_at) <= idle_deadline(per_token)

    contexts = audio_by_context(down)
    # the interrupted reply may have had no audio out yet (then pipecat shows none of it)
    assert len(contexts) in (2, 3), [size for _, size in contexts]
    (first_rates, first), (next_rates, after) = contexts[0], contexts[-1]
    cut = contexts[1][1] if len(contexts) == 3 else 0
    assert first_rates == next_rates == {service.rate}
    # Whole, and nothing stale after the interruption: the frames' samples, exactly at 24 kHz,
    # within a millisecond resampled (protocol.md, segment_finished).
    whole = FRAMES * SAMPLES_PER_FRAME * service.rate / 24000
    slack = 0 if service.rate == 24000 else service.rate / 1000
    for size in (first, after):
        assert abs(size / service.width - whole) <= slack, (size, whole)
    assert 0 <= cut / service.width < 10 * whole
