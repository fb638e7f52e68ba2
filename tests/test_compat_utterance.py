"""A vendor socket's utterance (orpheus_ws/compat/utterance.py) against a fake engine: its
audio waits for room in the outbox, and a cancel closes the engine's stream at once wherever
it lands (the stream holds the LLM requests: a barge-in must free the backend's slot now)."""

from __future__ import annotations

import asyncio
import gc

from orpheus_ws.engine import AudioChunk
from orpheus_ws.formats import AudioFormat
from orpheus_ws.transport.outbox import Outbox
from orpheus_ws.transport.utterance import Sink, Utterance

from .fakes import speech_engine
from .test_ws_delivery import FakeEngine
from .utils import eventually, scaled


class Collected(Sink):
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.marks: list[str | None] = []
        self.done = False

    def audio(self, payload: bytes, chunk: AudioChunk | None) -> None:
        self.outbox.put(payload)

    def flushed(self, mark: str | None) -> None:
        self.marks.append(mark)

    def finished(self) -> None:
        self.done = True


def start(engine: FakeEngine, max_bytes: int) -> tuple[Utterance, Collected, Outbox]:
    outbox = Outbox(max_bytes)
    sink = Collected(outbox)
    utterance = Utterance(speech_engine(engine), "tara", AudioFormat(), sink, outbox)
    return utterance, sink, outbox


async def test_audio_waits_for_room_then_all_of_it_goes_out() -> None:
    engine = FakeEngine()
    utterance, sink, outbox = start(engine, max_bytes=1)
    utterance.feed.push("One.")
    utterance.feed.flush("a")
    utterance.feed.end()
    await eventually(lambda: len(outbox) == 1, what="the first audio queued")
    await asyncio.sleep(0.05)
    assert len(outbox) == 1 and utterance.busy  # the next chunk waits for room
    sizes = []
    while utterance.busy or len(outbox):
        data = (await asyncio.wait_for(outbox.get(), scaled(5))).data
        assert isinstance(data, bytes)
        sizes.append(len(data))
    assert sum(sizes) == engine.frames * 2048 * 2
    assert (sink.marks, sink.done, engine.open) == (["a"], True, 0)


async def test_a_cancel_while_audio_waits_for_room_closes_the_engine_stream_at_once() -> None:
    engine = FakeEngine()
    utterance, _, outbox = start(engine, max_bytes=1)
    utterance.feed.push("One.")
    await eventually(lambda: len(outbox) == 1 and engine.open == 1, what="audio waiting")
    gc.disable()  # a stream left open is closed only when collected: not here
    try:
        await utterance.cancel()
        assert engine.open == 0
    finally:
        gc.enable()
