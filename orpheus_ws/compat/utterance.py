"""What the vendor sockets share below their wire formats: one utterance's text in through the
engine's ``TextFeed`` (segmented as the native protocol's ``auto`` buffering), its audio out
in the socket's format, in order, with flush marks where they fall; cancelled at once.

An adapter gives a ``Sink`` (what to send for audio, a flush, the end, a failure) and an
``Outbox`` (the native protocol's ordered, flow-controlled send queue); it never touches the
engine's internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import orjson

from ..engine import (
    AudioChunk,
    Engine,
    Flushed,
    PlayoutClock,
    SegmentFinished,
    SynthesisEvent,
    TextFeed,
)
from ..exceptions import OrpheusError
from ..formats import AudioFormat
from ..params import DEFAULTS, SamplingParams
from ..timings import SegmentTiming, SpeechTimer
from ..ws.frame_audio import FrameAudio
from ..ws.outbox import Outbox

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

log = logging.getLogger("orpheus_ws.compat")


def dumps(payload: dict[str, Any]) -> str:
    """A vendor's JSON message, as sent."""
    return orjson.dumps(payload).decode()


async def send_from(outbox: Outbox, websocket: WebSocket, timeout_s: float) -> None:
    """A vendor socket's send loop: the outbox's messages in order, each bounded by
    ``timeout_s`` (a client that stopped reading ends the loop with TimeoutError)."""
    while True:
        item = await outbox.get()
        data = item.data() if callable(item.data) else item.data
        async with asyncio.timeout(timeout_s):  # not wait_for: it can lose a cancel (3.11)
            if isinstance(data, bytes):
                await websocket.send_bytes(data)
            else:
                await websocket.send_text(data)


async def flushed_out(outbox: Outbox, sender: asyncio.Future[None]) -> None:
    """Waits until everything queued has been sent (or the send loop has ended)."""
    while len(outbox) and not sender.done():
        await asyncio.sleep(0.01)


async def stop_socket(sender: asyncio.Future[None], *utterances: Utterance | None) -> None:
    """A vendor socket's end: its utterances stopped (their LLM requests closed), then its
    send loop."""
    for utterance in utterances:
        if utterance is not None:
            await utterance.cancel()
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await sender


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

    def __init__(self, engine: Engine, voice: str, fmt: AudioFormat, sink: Sink,
                 outbox: Outbox, *, params: SamplingParams = DEFAULTS,
                 idle_flush_s: float = 0.3, bit_rate: int | None = None,
                 timed: bool = False) -> None:
        self.feed = TextFeed(max_tokens=params.max_tokens, idle_flush_s=idle_flush_s)
        self._engine = engine
        self._audio = FrameAudio(fmt, bit_rate=bit_rate)
        self._sink = sink
        self._outbox = outbox
        self._timer = SpeechTimer() if timed else None
        self.task = asyncio.ensure_future(self._run(voice, params))

    @property
    def busy(self) -> bool:
        return not self.task.done()

    async def _run(self, voice: str, params: SamplingParams) -> None:
        try:
            # aclosing: a cancel that lands outside the engine's stream (waiting for room)
            # closes it, and so its LLM requests, at once, not when it is collected
            async with contextlib.aclosing(self._engine.synthesize(
                    self.feed, voice=voice, params=params, clock=PlayoutClock())) as events:
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

    async def finish(self, websocket: WebSocket, outbox: Outbox,
                     sender: asyncio.Future[None]) -> bool:
        """Waits until the utterance is spoken and sent; False if the client left (or sent
        more) first, in which case the caller cancels it."""
        listener = asyncio.ensure_future(websocket.receive())
        try:
            await asyncio.wait({self.task, listener}, return_when=asyncio.FIRST_COMPLETED)
            if listener.done():
                return False
            while len(outbox) and not sender.done() and not listener.done():
                await asyncio.sleep(0.01)
            return not listener.done()
        finally:
            listener.cancel()

    async def cancel(self) -> None:
        """Stops now: the engine closes the utterance's LLM requests."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
