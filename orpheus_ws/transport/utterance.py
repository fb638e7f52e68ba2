"""What the vendor sockets share below their wire formats: one utterance's text in through the
engine's ``TextFeed`` (segmented as the native protocol's ``auto`` buffering), its audio out
in the socket's format, in order, with flush marks where they fall; cancelled at once.

An adapter gives a ``Sink`` (what to send for audio, a flush, the end, a failure) and the
socket's ``Outbox`` (ordered, flow-controlled); it never touches the engine's internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from ..engine import (
    AudioChunk,
    Caller,
    Flushed,
    PlayoutClock,
    SegmentFinished,
    SpeechEngine,
    SsmlFeed,
    SynthesisEvent,
    TextFeed,
)
from ..exceptions import OrpheusError
from ..formats import AudioFormat
from ..params import DEFAULTS, SamplingParams
from ..timings import SegmentTiming, SpeechTimer
from .frame_audio import FrameAudio
from .limits import SocketLimits
from .outbox import Outbox

log = logging.getLogger("orpheus_ws.compat")


def dumps(payload: dict[str, Any]) -> str:
    """A vendor's JSON message, as sent."""
    return orjson.dumps(payload).decode()


class Sink:
    """An adapter's answers, called in the order the listener must hear them; an adapter
    overrides those its protocol has a message for."""

    def audio(self, payload: bytes, chunk: AudioChunk | None) -> None:
        raise NotImplementedError

    def segment_finished(self, event: SegmentFinished, timing: SegmentTiming | None) -> None:
        """A segment's audio is all out, with its estimated timing if the utterance is
        ``timed``."""

    def flushed(self, mark: str | None) -> None:
        """Everything before the flush ``mark`` is out."""

    def finished(self) -> None:
        """The utterance is spoken."""

    def failed(self, error: OrpheusError) -> None:
        """The utterance failed; its audio stops here."""


class Utterance:
    """One utterance of a vendor socket, running as soon as it is made."""

    def __init__(self, engine: SpeechEngine, voice: str, fmt: AudioFormat, sink: Sink,
                 outbox: Outbox, *, caller: Caller = Caller(),
                 params: SamplingParams = DEFAULTS,
                 idle_flush_s: float = 0.3, bit_rate: int | None = None,
                 timed: bool = False, ssml: bool = False,
                 normalize: bool | None = None) -> None:
        self.feed = TextFeed(max_tokens=params.max_tokens, idle_flush_s=idle_flush_s)
        # where its text goes: the feed, or (``ssml``) its SSML reader (engine/markup.py)
        self.input: TextFeed | SsmlFeed = self.feed
        if ssml:
            self.input = SsmlFeed(self.feed, language=engine.lineup.language_of(voice),
                                  keep_tags=engine.lineup.emotion_tags)
        self._normalize = normalize
        self._engine = engine
        self._caller = caller
        self._audio = FrameAudio(fmt, bit_rate=bit_rate)
        self._sink = sink
        self._outbox = outbox
        self._timer = SpeechTimer() if timed else None
        self.task = asyncio.ensure_future(self._run(voice, params))

    @property
    def busy(self) -> bool:
        """The utterance is open: it takes more text."""
        return not self.task.done()

    @property
    def generating(self) -> bool:
        """It has text or audio still to deliver (a quiet client is not idle then)."""
        return self.busy and (self.feed.busy or self.input.held_chars > 0)

    async def _run(self, voice: str, params: SamplingParams) -> None:
        try:
            # aclosing: a cancel that lands outside the engine's stream (waiting for room)
            # closes it, and so its LLM requests, at once, not when it is collected
            async with contextlib.aclosing(self._engine.synthesize(
                    self.feed, voice=voice, params=params, caller=self._caller,
                    clock=PlayoutClock(), normalize=self._normalize)) as events:
                async for event in events:
                    await self._deliver(event)
            self._drain()
            self._sink.finished()
        except OrpheusError as exc:
            log.warning("utterance failed: %s", exc)
            self._sink.failed(exc)
        except Exception:
            log.exception("utterance failed unexpectedly")
            self._sink.failed(OrpheusError("internal error"))

    async def _deliver(self, event: SynthesisEvent) -> None:
        if isinstance(event, AudioChunk):
            if self._timer is not None:
                self._timer.add(event.pcm)
            await self._outbox.wait_for_room()
            payload, _ = self._audio.chunk(event.pcm, segment_end=event.final)
            if payload:
                self._sink.audio(payload, event)
        elif isinstance(event, SegmentFinished):
            timing = (self._timer.finish(event.text, event.samples)
                      if self._timer is not None else None)
            self._sink.segment_finished(event, timing)
        elif isinstance(event, Flushed):
            self._drain()
            self._sink.flushed(event.mark)

    def _drain(self) -> None:
        tail = self._audio.drain()
        if tail:
            self._sink.audio(tail, None)

    @property
    def held_chars(self) -> int:
        """Text pushed and not yet spoken."""
        return self.input.held_chars

    def push(self, text: str, limits: SocketLimits, socket_held: int,
             *, context_id: str | None = None) -> None:
        """Adds text, unless it would hold more than the socket's limits allow
        (``text_too_long``, and the text is not taken)."""
        limits.check_text(len(text), self.held_chars, socket_held, context_id=context_id)
        self.input.push(text)

    async def cancel(self) -> None:
        """Stops now: the engine closes the utterance's LLM requests."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
