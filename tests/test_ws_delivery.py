"""One context's delivery (orpheus_ws/ws/delivery.py) against a fake engine: the order of
events and frames on the outbox, the frames' headers, the totals, failures and cancelling.
The tests play the send loop: they drain the outbox and report frames as sent."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from orpheus_ws.engine import (
    AudioChunk,
    Caller,
    Flushed,
    PlayoutClock,
    SegmentFinished,
    Segments,
    SegmentStarted,
    SynthesisEvent,
    TextFeed,
)
from orpheus_ws.engine.feed import FlushMark
from orpheus_ws.exceptions import (
    BackendError,
    BackendProtocolError,
    BackendUnavailable,
    DecoderError,
    OrpheusError,
)
from orpheus_ws.formats import AudioFormat
from orpheus_ws.params import DEFAULTS, SamplingParams
from orpheus_ws.transport.outbox import Outbox
from orpheus_ws.ws.delivery import Delivery
from orpheus_ws.ws.protocol import (
    FLAG_SEGMENT_END,
    FLAG_SEGMENT_START,
    FrameHeader,
    Options,
    decode_audio_frame,
)
from orpheus_ws.ws.session import ContextState, Session

from .fakes import EngineBase, speech_engine
from .utils import eventually, scaled

FRAME = 2048  # samples of one model frame at 24 kHz
START, END = FLAG_SEGMENT_START, FLAG_SEGMENT_END


class FakeEngine(EngineBase):
    """Speaks each segment as ``frames`` model frames, in chunks of ``chunks`` frames, with
    fixed times; raises ``fail`` before chunk number ``fail_at``; waits forever after
    ``hold_after`` chunks. ``open`` counts its streams not yet closed (each stands for the
    LLM requests a real engine holds until its stream is closed)."""

    def __init__(self, chunks: tuple[int, ...] = (1, 2), *, fail: Exception | None = None,
                 fail_at: int = 1, hold_after: int | None = None) -> None:
        super().__init__()
        self.sizes = chunks
        self.frames = sum(chunks)
        self.fail = fail
        self.fail_at = fail_at
        self.hold_after = hold_after
        self.chunks: list[AudioChunk] = []
        self.calls: list[tuple[str, SamplingParams]] = []
        self.open = 0

    async def synthesize(self, segments: Segments, *, voice: str, params: SamplingParams,
                         caller: Caller = Caller(), clock: PlayoutClock | None = None,
                         first_index: int = 0,
                         trim_quiet: bool | None = None, normalize: bool | None = None,
                   ssml: bool = False) -> AsyncGenerator[SynthesisEvent, None]:
        feed = segments
        assert isinstance(feed, TextFeed)
        self.calls.append((voice, params))
        self.open += 1
        try:
            index = 0
            async for item in feed:
                if isinstance(item, FlushMark):
                    yield Flushed(item.mark)
                    continue
                assert isinstance(item, str)  # no pauses here
                yield SegmentStarted(index, item)
                frame = 0
                for size in self.sizes:
                    if self.fail is not None and len(self.chunks) == self.fail_at:
                        raise self.fail
                    if len(self.chunks) == self.hold_after:
                        await asyncio.Event().wait()
                    pcm = np.full(size * FRAME, 100 * (index + 1) + frame, dtype=np.int16)
                    chunk = AudioChunk(pcm, index, frame, size, frame + size == self.frames,
                                       ready_at=10.0, window_ready_at=9.9, decode_s=0.01)
                    self.chunks.append(chunk)
                    yield chunk
                    frame += size
                feed.delivered(index + 1)
                yield SegmentFinished(index, item, self.frames, self.frames * FRAME,
                                      started_at=100.0, first_audio_at=100.0625,
                                      finished_at=100.5)
                index += 1
        finally:
            self.open -= 1


@dataclass
class Frame:
    header: FrameHeader
    payload: bytes


Message = dict[str, Any] | Frame


def setup(engine: FakeEngine, fmt: AudioFormat = AudioFormat(), *,
          max_bytes: int = 1 << 24) -> tuple[Session[Delivery], Delivery, Outbox]:
    """A session with context ``r1`` open, its delivery attached."""
    session: Session[Delivery] = Session(Options("tara", DEFAULTS, fmt, "none"), ["tara", "leo"],
                                         max_contexts=4)
    context, opened = session.text("r1", {"voice": "leo"})
    assert opened
    outbox = Outbox(max_bytes)
    context.handle = Delivery(context, speech_engine(engine), outbox)
    return session, context.handle, outbox


def feed_and_end(session: Session[Delivery], delivery: Delivery, *pieces: str) -> None:
    """Pushes the pieces (``|name`` flushes with that id) and ends the context."""
    for piece in pieces:
        if piece.startswith("|"):
            delivery.feed.flush(piece[1:])
        else:
            delivery.feed.push(piece)
    session.end(delivery.context.id)
    delivery.feed.end()


async def drain(outbox: Outbox, *, send: int | None = None) -> list[Message]:
    """Everything queued, in order; the first ``send`` frames (all: None) reported as sent
    at 1000.0, 1001.0, ..."""
    out: list[Message] = []
    frames = 0
    while len(outbox):
        item = await asyncio.wait_for(outbox.get(), scaled(5))
        data = item.data() if callable(item.data) else item.data
        if isinstance(data, bytes):
            out.append(Frame(*decode_audio_frame(data)))
            if item.on_sent is not None and (send is None or frames < send):
                item.on_sent(1000.0 + frames)
            frames += 1
        else:
            assert isinstance(data, str)  # the native socket queues no close frame
            out.append(json.loads(data))
    return out


async def take(outbox: Outbox, count: int) -> list[Message]:
    """The next ``count`` messages, frames reported as sent."""
    out: list[Message] = []
    for _ in range(count):
        item = await asyncio.wait_for(outbox.get(), scaled(5))
        data = item.data() if callable(item.data) else item.data
        if isinstance(data, bytes):
            out.append(Frame(*decode_audio_frame(data)))
            if item.on_sent is not None:
                item.on_sent(2000.0)
        else:
            assert isinstance(data, str)  # the native socket queues no close frame
            out.append(json.loads(data))
    return out


def kinds(messages: list[Message]) -> list[str]:
    return ["frame" if isinstance(m, Frame) else str(m["type"]) for m in messages]


def frames_of(messages: list[Message]) -> list[Frame]:
    return [m for m in messages if isinstance(m, Frame)]


def event(messages: list[Message], kind: str) -> dict[str, Any]:
    found = [m for m in messages if not isinstance(m, Frame) and m["type"] == kind]
    assert len(found) == 1, kinds(messages)
    return found[0]


def check_offsets(frames: list[Frame], bytes_per_sample: int) -> int:
    """Frames follow each other without gaps; returns the samples in all."""
    offset = 0
    for sequence, frame in enumerate(frames):
        assert frame.header.sequence == sequence
        assert frame.header.sample_offset == offset
        offset += len(frame.payload) // bytes_per_sample
    return offset


SEGMENT_EVENTS = ["segment_started", "frame", "frame", "segment_finished"]


async def test_a_whole_context_in_order() -> None:
    engine = FakeEngine()
    session, delivery, outbox = setup(engine)
    feed_and_end(session, delivery, "Hello there.", "How are you?", "|f1", "Bye.")
    await delivery.run()
    messages = await drain(outbox)
    assert kinds(messages) == SEGMENT_EVENTS * 2 + ["flushed"] + SEGMENT_EVENTS + ["done"]
    assert [(m["segment"], m["text"]) for m in messages
            if not isinstance(m, Frame) and m["type"] == "segment_started"] == \
        [(0, "Hello there."), (1, "How are you?"), (2, "Bye.")]
    assert event(messages, "flushed") == {"type": "flushed", "context_id": "r1",
                                          "flush_id": "f1", "samples": 2 * 3 * FRAME}
    assert event(messages, "done") == {
        "type": "done", "context_id": "r1", "samples": 9 * FRAME, "duration_ms": 768.0,
        "frames": 9, "source_samples": 9 * FRAME, "trimmed_samples": 0, "segments": 3,
        "ttfa_ms": delivery.since_created(delivery.first_audio_at),
        "ttfs_ms": None}  # the fake's audio is far below speech level (engine/level.py)
    assert delivery.first_audio_at is not None
    finished = messages[3]
    assert finished == {"type": "segment_finished", "context_id": "r1", "segment": 0,
                        "text": "Hello there.", "samples": 3 * FRAME,
                        "source_samples": 3 * FRAME, "frames": 3, "duration_ms": 256.0,
                        "trimmed_samples": 0, "ttfa_ms": 62.5, "ttfs_ms": None,
                        "generation_ms": 500.0}
    assert delivery.context.state is ContextState.DONE
    assert engine.calls == [("leo", DEFAULTS)]


async def test_frames_carry_the_audio_with_consecutive_offsets() -> None:
    engine = FakeEngine()
    session, delivery, outbox = setup(engine)
    feed_and_end(session, delivery, "One.", "Two.", "Three.")
    await delivery.run()
    frames = frames_of(await drain(outbox))
    assert check_offsets(frames, 2) == 9 * FRAME
    assert [f.header.segment for f in frames] == [0, 0, 1, 1, 2, 2]
    assert [f.header.flags for f in frames] == [START, END] * 3
    assert {(f.header.context_id, f.header.encoding, f.header.sample_rate) for f in frames} == \
        {("r1", "pcm_s16le", 24000)}
    assert b"".join(f.payload for f in frames) == \
        b"".join(c.pcm.astype("<i2").tobytes() for c in engine.chunks)
    assert (delivery.sequence, delivery.frames, delivery.segments) == (6, 9, 3)


async def test_a_one_chunk_segment_starts_and_ends_in_one_frame() -> None:
    session, delivery, outbox = setup(FakeEngine(chunks=(1,)))
    feed_and_end(session, delivery, "Hi.", "Yo.")
    await delivery.run()
    messages = await drain(outbox)
    assert [f.header.flags for f in frames_of(messages)] == [START | END] * 2
    assert event(messages, "done")["source_samples"] == 2 * FRAME


async def test_samples_sent_counts_only_frames_reported_sent() -> None:
    engine = FakeEngine()
    session, delivery, outbox = setup(engine)
    feed_and_end(session, delivery, "One.", "Two.", "Three.")
    await delivery.run()
    await drain(outbox, send=3)  # 1 + 2 + 1 model frames
    assert delivery.samples_queued == 9 * FRAME
    assert delivery.samples_sent == 4 * FRAME
    assert engine.first_audio == [(engine.chunks[0], 1000.0)]


async def test_first_audio_is_recorded_once_when_it_is_sent() -> None:
    engine = FakeEngine()
    session, delivery, outbox = setup(engine)
    feed_and_end(session, delivery, "One.", "Two.")
    await delivery.run()
    await drain(outbox, send=0)
    assert engine.first_audio == []
    assert delivery.samples_sent == 0


async def test_an_empty_context_is_done_without_audio() -> None:
    session, delivery, outbox = setup(FakeEngine())
    feed_and_end(session, delivery)
    await delivery.run()
    assert await drain(outbox) == [{
        "type": "done", "context_id": "r1", "samples": 0, "duration_ms": 0.0, "frames": 0,
        "source_samples": 0, "trimmed_samples": 0, "segments": 0, "ttfa_ms": None,
        "ttfs_ms": None}]
    assert delivery.context.state is ContextState.DONE


@pytest.mark.parametrize("exc", [BackendUnavailable("the LLM backend refused"),
                                 BackendProtocolError("not audio"),
                                 BackendError("stream broke off"), DecoderError("no decode")])
async def test_an_engine_error_fails_the_context(exc: OrpheusError) -> None:
    session, delivery, outbox = setup(FakeEngine(fail=exc, fail_at=1))
    feed_and_end(session, delivery, "One.", "Two.")
    await delivery.run()
    messages = await drain(outbox)
    assert kinds(messages) == ["segment_started", "frame", "error"]
    assert messages[-1] == {"type": "error", "code": exc.code, "message": str(exc),
                            "context_id": "r1"}
    assert delivery.context.state is ContextState.FAILED
    assert session.live == []


async def test_an_unexpected_error_is_an_internal_error_without_its_text() -> None:
    session, delivery, outbox = setup(FakeEngine(fail=RuntimeError("secret failure text"),
                                                 fail_at=3))
    feed_and_end(session, delivery, "One.", "Two.")
    await delivery.run()
    messages = await drain(outbox)
    assert kinds(messages) == [*SEGMENT_EVENTS, "segment_started", "frame", "error"]
    error = messages[-1]
    assert isinstance(error, dict)
    assert (error["code"], error["context_id"]) == ("internal_error", "r1")
    assert all("secret" not in json.dumps(m) for m in messages if isinstance(m, dict))
    assert delivery.context.state is ContextState.FAILED


async def test_cancel_drops_queued_audio_and_reports_samples_sent() -> None:
    engine = FakeEngine(hold_after=2)
    session, delivery, outbox = setup(engine)
    delivery.feed.push("One.")
    delivery.feed.push("Two.")
    task = delivery.start()
    # segment_started, both frames of segment 0, segment_finished, segment_started
    await eventually(lambda: len(outbox) == 5, what="segment 0 queued")
    assert kinds(await take(outbox, 2)) == ["segment_started", "frame"]
    assert session.cancel("r1") == [delivery.context]
    outbox.purge(delivery)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert kinds(await drain(outbox)) == ["segment_finished", "segment_started"]
    assert delivery.context.state is ContextState.CANCELLED
    assert json.loads(delivery.cancelled_event()) == {
        "type": "cancelled", "context_id": "r1", "samples_sent": FRAME, "duration_ms": 85.3}
    delivery.send_audio(b"\x00\x00" * 8, 8, 1, START)  # nothing more of a cancelled context
    assert (len(outbox), delivery.sequence) == (0, 2)


async def test_the_cancelled_event_counts_frames_sent_before_it_is_made() -> None:
    session, delivery, outbox = setup(FakeEngine())
    feed_and_end(session, delivery, "One.")
    await delivery.run()
    outbox.put(delivery.cancelled_event)  # made when sent, as the endpoint queues it
    messages = await drain(outbox)
    assert messages[-1] == {"type": "cancelled", "context_id": "r1",
                            "samples_sent": 3 * FRAME, "duration_ms": 256.0}


async def test_audio_waits_for_room_in_the_outbox() -> None:
    session, delivery, outbox = setup(FakeEngine(), max_bytes=1)
    feed_and_end(session, delivery, "One.", "Two.")
    task = delivery.start()
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()
    assert len(outbox) == 1  # segment_started filled it: the first chunk waits
    messages: list[Message] = []
    while not messages or kinds(messages)[-1] != "done":
        messages += await take(outbox, 1)
    await asyncio.wait_for(task, scaled(5))
    assert kinds(messages) == SEGMENT_EVENTS * 2 + ["done"]
    assert check_offsets(frames_of(messages), 2) == 6 * FRAME
    assert delivery.samples_sent == 6 * FRAME


async def test_a_cancel_while_audio_waits_for_room_closes_the_engine_stream_at_once() -> None:
    engine = FakeEngine()
    session, delivery, outbox = setup(engine, max_bytes=1)
    feed_and_end(session, delivery, "One.")
    task = delivery.start()
    await eventually(lambda: len(outbox) == 1 and engine.open == 1, what="audio waiting")
    gc.disable()  # a stream left open is closed only when collected: not here
    try:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert engine.open == 0
    finally:
        gc.enable()
