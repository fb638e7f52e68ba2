"""One context's delivery: its segments into the engine, the engine's events onto the socket
(protocol.md: segments, flush, done, binary frames). No socket: it writes to an Outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator

import numpy as np

from .audio import FormatConverter
from .engine import Engine, SegmentFinished, SegmentStarted
from .exceptions import OrpheusError
from .segment_stream import AudioChunk, PlayoutClock
from .tokens import SAMPLE_RATE
from .ws_outbox import Outbox
from .ws_protocol import (
    FLAG_SEGMENT_END,
    FLAG_SEGMENT_START,
    encode_audio_frame,
    error_event,
    event,
)
from .ws_session import Context, ContextState, Session

log = logging.getLogger("orpheus_ws.ws")


class ContextRunner:
    """Feeds a context's released segments to the engine and sends what comes back."""

    def __init__(self, context: Context, session: Session, engine: Engine,
                 outbox: Outbox) -> None:
        self.context = context
        self.session = session
        self.engine = engine
        self.outbox = outbox
        self.converter = FormatConverter(context.options.format)
        self.pending: deque[str] = deque()
        self.input_ended = False
        self.changed = asyncio.Event()
        self.last_text_at = time.monotonic()
        self.segment_samples = 0
        self.task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Text or audio still to deliver."""
        return bool(self.pending) or not self.context.idle

    def push(self, segments: list[str]) -> None:
        self.pending.extend(segments)
        self.last_text_at = time.monotonic()
        self.changed.set()

    def end_input(self, segments: list[str]) -> None:
        self.push(segments)
        self.input_ended = True

    async def segments(self) -> AsyncIterator[str]:
        """The context's segments as released; text left unsent for ``buffer_delay_ms`` while
        the context has nothing else to say is spoken anyway (protocol.md, rule 5)."""
        context = self.context
        delay = context.options.buffer_delay_ms / 1000
        while True:
            self.changed.clear()
            if self.pending:
                yield self.pending.popleft()
                continue
            if self.input_ended:
                return
            timeout = None
            if context.segmenter.buffered.strip() and context.idle:
                timeout = max(0.0, self.last_text_at + delay - time.monotonic())
                if timeout == 0.0:
                    self.pending.extend(self.session.release(context, context.segmenter.flush()))
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout)

    async def run(self) -> None:
        context = self.context
        options = context.options
        try:
            async for item in self.engine.synthesize(
                self.segments(), voice=options.voice, params=options.params,
                clock=PlayoutClock(options.client_buffer_ms / 1000),
            ):
                if isinstance(item, AudioChunk):
                    await self.outbox.wait_for_room()
                    flags = (FLAG_SEGMENT_START if item.frame_start == 0 else 0) | \
                        (FLAG_SEGMENT_END if item.final else 0)
                    self.send_audio(self.converter.convert(item.pcm), item.segment, flags, item)
                    context.frames += item.frames
                    context.source_samples += item.samples
                elif isinstance(item, SegmentStarted):
                    self.segment_samples = 0
                    self.outbox.put(event("segment_started", context_id=context.id,
                                          segment=item.segment, text=item.text))
                elif isinstance(item, SegmentFinished):
                    self.segment_finished(item)
            self.drain()
            context.move(ContextState.DONE)
            self.outbox.put(event(
                "done", context_id=context.id, samples=context.samples_queued,
                duration_ms=self.ms(context.samples_queued), frames=context.frames,
                source_samples=context.source_samples, segments=context.finished,
                ttfa_ms=self.ttfa_ms()))
        except OrpheusError as exc:
            if context.live:
                context.move(ContextState.FAILED)
                log.warning("context %s failed: %s", context.id, exc)
                self.outbox.put(error_event(exc.code, str(exc), context_id=context.id))
        except Exception:
            log.exception("context %s failed unexpectedly", context.id)
            if context.live:
                context.move(ContextState.FAILED)
                self.outbox.put(error_event("internal_error", "internal error",
                                            context_id=context.id))
        finally:
            self.session.forget(context)

    def segment_finished(self, item: SegmentFinished) -> None:
        context = self.context
        context.finished += 1
        self.outbox.put(event(
            "segment_finished", context_id=context.id, segment=item.segment, text=item.text,
            samples=self.segment_samples, source_samples=item.samples, frames=item.frames,
            duration_ms=self.ms(self.segment_samples),
            ttfa_ms=round((item.first_audio_at - item.started_at) * 1000, 1),
            generation_ms=round((item.finished_at - item.started_at) * 1000, 1)))
        self.deliver_flushes()

    def deliver_flushes(self) -> None:
        """``flushed`` for every flush whose text has been delivered (protocol.md, flush)."""
        due = self.context.due_flushes()
        if due:
            self.drain()
        for flush_id in due:
            self.outbox.put(event("flushed", context_id=self.context.id, flush_id=flush_id,
                                  samples=self.context.samples_queued))

    def drain(self) -> None:
        """Sends what the resampler still holds and starts a fresh one."""
        if self.converter.format.sample_rate == SAMPLE_RATE:
            return
        tail = self.converter.convert(np.zeros(0, dtype=np.int16), last=True)
        self.converter = FormatConverter(self.context.options.format)
        if tail:
            self.send_audio(tail, max(0, self.context.finished - 1), 0)

    def send_audio(self, payload: bytes, segment: int, flags: int,
                   chunk: AudioChunk | None = None) -> None:
        """One binary frame (protocol.md, "Binary audio frames")."""
        context = self.context
        if not context.live or not payload:
            return
        fmt = context.options.format
        samples = len(payload) // fmt.bytes_per_sample
        frame = encode_audio_frame(context.id, payload, encoding=fmt.encoding,
                                   sample_rate=fmt.sample_rate,
                                   sample_offset=context.samples_queued,
                                   sequence=context.sequence, segment=segment, flags=flags)
        context.sequence += 1
        context.samples_queued += samples
        self.segment_samples += samples
        first = context.first_audio_at is None
        if first:
            context.first_audio_at = time.monotonic()
        self.outbox.put(frame, context, samples, chunk if first else None)

    def ms(self, samples: int) -> float:
        return round(samples * 1000 / self.context.options.format.sample_rate, 1)

    def ttfa_ms(self) -> float | None:
        context = self.context
        if context.first_audio_at is None:
            return None
        return round((context.first_audio_at - context.created_at) * 1000, 1)
