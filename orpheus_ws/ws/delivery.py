"""One context's delivery: its text into the engine, the engine's events onto the socket
(protocol.md: segments, flush, done, binary frames). No socket: it writes to an Outbox.

The delivery owns what delivering counts (samples queued and sent, frames, sequence numbers,
first audio); the context's protocol state stays on the session's ``Context``, and its text
in the engine's ``TextFeed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time

from ..engine import (
    AudioChunk,
    Caller,
    Flushed,
    PlayoutClock,
    SegmentFinished,
    SegmentStarted,
    SpeechEngine,
    SsmlFeed,
    SynthesisEvent,
    TextFeed,
)
from ..exceptions import OrpheusError
from ..timings import SpeechTimer
from ..transport.frame_audio import FrameAudio
from ..transport.outbox import Outbox
from . import events
from .protocol import FLAG_SEGMENT_END, FLAG_SEGMENT_START, encode_audio_frame
from .session import Context, ContextState

log = logging.getLogger("orpheus_ws.ws")


class Delivery:
    """Feeds a context's text to the engine and sends what comes back, in order."""

    def __init__(self, context: Context[Delivery], engine: SpeechEngine, outbox: Outbox,
                 caller: Caller = Caller()) -> None:
        self.context = context
        self.engine = engine
        self.outbox = outbox
        self.caller = caller
        options = context.options
        self.feed = TextFeed(max_tokens=options.params.max_tokens, buffering=options.buffering,
                             idle_flush_s=options.buffer_delay_ms / 1000)
        # where the context's text goes: the feed, or (text_format "ssml") its SSML reader
        self.input: TextFeed | SsmlFeed = self.feed
        if options.text_format == "ssml":
            lineup = engine.lineup
            self.input = SsmlFeed(self.feed, language=lineup.language_of(options.voice),
                                  keep_tags=lineup.emotion_tags, context_id=context.id)
        self.audio = FrameAudio(options.format)
        self.sample_rate = options.format.sample_rate
        self.bytes_queued = 0  # compressed encodings: frames' offsets count stream bytes
        self.first_audio_at: float | None = None
        self.first_speech_at: float | None = None  # its first frame of speech queued
        self.trimmed = 0  # leading quiet left out, at 24 kHz (engine/trim.py)
        self.samples_queued = 0  # in the context's format, queued on the socket
        self.samples_sent = 0  # of those, written to the socket
        self.source_samples = 0  # at 24 kHz
        self.frames = 0
        self.segments = 0  # segments delivered in full
        self.sequence = 0
        self._segment_samples = 0
        self._segment_frames = 0  # frames of the segment's chunks sent
        self._timer = SpeechTimer() if options.timestamps else None
        self.task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Text or audio still to deliver."""
        return self.feed.busy

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.ensure_future(self.run())
        return self.task

    async def run(self) -> None:
        context = self.context
        options = context.options
        try:
            # aclosing: a cancel that lands outside the engine's stream (waiting for room)
            # closes it, and so its LLM requests, at once, not when it is collected
            async with contextlib.aclosing(self.engine.synthesize(
                self.feed, voice=options.voice, params=options.params, caller=self.caller,
                clock=PlayoutClock(options.client_buffer_ms / 1000),
                trim_quiet=options.trim_quiet, normalize=options.normalize,
            )) as stream:
                async for item in stream:
                    await self.deliver(item)
            self.drain()
            context.move(ContextState.DONE)
            self.outbox.put(events.dumps(events.done(
                context.id, samples=self.samples_queued, sample_rate=self.sample_rate,
                frames=self.frames, source_samples=self.source_samples,
                segments=self.segments, ttfa_ms=self.since_created(self.first_audio_at),
                ttfs_ms=self.since_created(self.first_speech_at), trimmed_samples=self.trimmed)))
        except OrpheusError as exc:
            if context.live:
                context.move(ContextState.FAILED)
                log.warning("context %s failed: %s", context.id, exc)
                self.outbox.put(events.dumps(events.error(exc.code, str(exc),
                                                          context_id=context.id)))
        except Exception:
            log.exception("context %s failed unexpectedly", context.id)
            if context.live:
                context.move(ContextState.FAILED)
                self.outbox.put(events.dumps(events.error(
                    "internal_error", "internal error", context_id=context.id)))

    async def deliver(self, item: SynthesisEvent) -> None:
        """One event of the engine's stream onto the outbox."""
        if isinstance(item, AudioChunk):
            await self.outbox.wait_for_room()
            flags = (FLAG_SEGMENT_START if item.frame_start == 0 else 0) | \
                (FLAG_SEGMENT_END if item.final else 0)
            # A segment's last chunk drains the resampler: the samples it held back
            # are this segment's, in its last frame (protocol.md, segment_finished).
            payload, samples = self.audio.chunk(item.pcm, segment_end=item.final)
            if self._timer is not None:
                self._timer.add(item.pcm)
            self.send_audio(payload, samples, item.segment, flags, item)
            if self.first_speech_at is None and item.speech_from is not None:
                self.first_speech_at = time.monotonic()  # queued with the frame before it
            self.frames += item.frames
            self._segment_frames += item.frames
            self.source_samples += item.samples
        elif isinstance(item, SegmentStarted):
            self._segment_samples = self._segment_frames = 0
            self.outbox.put(events.dumps(events.segment_started(
                self.context.id, item.segment, item.text)))
        elif isinstance(item, SegmentFinished):
            self.segment_finished(item)
        elif isinstance(item, Flushed):
            self.drain()
            self.outbox.put(events.dumps(events.flushed(
                self.context.id, item.mark, self.samples_queued)))

    def segment_finished(self, item: SegmentFinished) -> None:
        self.segments += 1
        self.trimmed += item.trimmed
        self.frames += item.frames - self._segment_frames  # chunks trimmed away entirely
        if item.cut is not None:  # the runaway guard ended its generation: say why
            self.outbox.put(events.dumps(events.warning(self.context.id, item.segment,
                                                        item.cut)))
        self.outbox.put(events.dumps(events.segment_finished(
            self.context.id, item.segment, item.text, samples=self._segment_samples,
            source_samples=item.samples, frames=item.frames, sample_rate=self.sample_rate,
            ttfa_ms=round((item.first_audio_at - item.started_at) * 1000, 1),
            ttfs_ms=round((item.first_speech_at - item.started_at) * 1000, 1)
            if item.first_speech_at else None, trimmed_samples=item.trimmed,
            generation_ms=round((item.finished_at - item.started_at) * 1000, 1))))
        if self._timer is not None:
            timing = self._timer.finish(item.text, item.samples)
            self.outbox.put(events.dumps(events.timestamps(self.context.id, item.segment,
                                                           *timing.words())))

    def drain(self) -> None:
        """Sends what the format's converter still holds (a compressed stream ends)."""
        tail = self.audio.drain()
        if tail:
            fmt = self.context.options.format
            samples = 0 if fmt.compressed else len(tail) // fmt.bytes_per_sample
            self.send_audio(tail, samples, max(0, self.segments - 1), 0)

    def send_audio(self, payload: bytes, samples: int, segment: int, flags: int,
                   chunk: AudioChunk | None = None) -> None:
        """One binary frame (protocol.md, "Binary audio frames"). A compressed stream's
        frame goes out even when the encoder gave no bytes yet, for its flags and samples."""
        context = self.context
        fmt = context.options.format
        if not context.live or not (payload or (fmt.compressed and samples)):
            return
        offset = self.bytes_queued if fmt.compressed else self.samples_queued
        frame = encode_audio_frame(context.id, payload, encoding=fmt.encoding,
                                   sample_rate=fmt.sample_rate, sample_offset=offset,
                                   sequence=self.sequence, segment=segment, flags=flags)
        self.bytes_queued += len(payload)
        self.sequence += 1
        self.samples_queued += samples
        self._segment_samples += samples
        first = self.first_audio_at is None
        if first:
            self.first_audio_at = time.monotonic()
        self.outbox.put(frame, self, functools.partial(
            self._sent, samples, chunk if first else None))

    def _sent(self, samples: int, first_audio: AudioChunk | None, sent_at: float) -> None:
        self.samples_sent += samples
        if first_audio is not None:  # the server-added latency (BENCHMARKS.md)
            self.engine.record_first_audio(first_audio, sent_at)

    def cancelled_event(self) -> str:
        """``cancelled``, made when sent so that it counts every frame written before it."""
        return events.dumps(events.cancelled(self.context.id, self.samples_sent,
                                             self.sample_rate))

    def since_created(self, moment: float | None) -> float | None:
        """Milliseconds from the context's first text to ``moment`` (time to first audio,
        time to first speech), or None if it never came."""
        if moment is None:
            return None
        return round((moment - self.context.created_at) * 1000, 1)
