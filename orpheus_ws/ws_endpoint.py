"""The WebSocket endpoint /api/tts/ws: glue between a socket, the session state and the engine.

Per socket: a receive loop and a send loop; every context runs the engine in its own task.
Everything the server sends goes through one bounded outgoing queue, in order, so a cancel can
purge a context's queued audio and no frame of it follows the acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .audio import ENCODINGS, SAMPLE_RATES, AudioFormat, FormatConverter
from .config import Settings
from .engine import Engine, SegmentFinished, SegmentStarted
from .exceptions import OrpheusError
from .http_api import EMOTION_TAGS
from .request_fields import DEFAULTS
from .segment_stream import AudioChunk, PlayoutClock
from .tokens import SAMPLE_RATE
from .ws_protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_IDLE,
    CLOSE_INTERNAL,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOO_BIG,
    CLOSE_TOO_MANY_CONTEXTS,
    CLOSE_UNSUPPORTED,
    FLAG_SEGMENT_END,
    FLAG_SEGMENT_START,
    PROTOCOL_VERSION,
    Cancel,
    Configure,
    End,
    Flush,
    Options,
    Ping,
    ProtocolError,
    Text,
    encode_audio_frame,
    error_event,
    event,
    options_dict,
    parse_client_message,
)
from .ws_session import Context, ContextState, Session, TooManyContexts

log = logging.getLogger("orpheus_ws.ws")
CLOSE_LINGER_S = 10.0  # how long a close frame may wait behind unread audio (protocol.md, 4002)


class ConnectionFault(Exception):
    def __init__(self, close_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.code = code


@dataclass(eq=False)
class Outgoing:
    data: str | bytes | Callable[[], str]
    context: Context | None = None
    samples: int = 0
    first_audio: AudioChunk | None = None  # set on a context's first frame, for the latency

    @property
    def size(self) -> int:
        return len(self.data) if isinstance(self.data, str | bytes) else 64


@dataclass(eq=False)
class Runtime:
    """What a live context needs beside its state: its segment feed, format, task."""

    context: Context
    converter: FormatConverter
    pending: deque[str] = field(default_factory=deque)
    input_ended: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    last_text_at: float = field(default_factory=time.monotonic)
    segment_samples: int = 0
    task: asyncio.Task[None] | None = None

    def push(self, segments: list[str]) -> None:
        self.pending.extend(segments)
        self.changed.set()


class WebSocketEndpoint:
    """ASGI app for one route; each connection gets a :class:`Connection`."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.connections: set[Connection] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        connection = Connection(websocket, self.engine, self.settings)
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)

    async def shutdown(self) -> None:
        """Closes every socket with 1001 after an error event, stopping its contexts."""
        await asyncio.gather(*(c.shut_down() for c in list(self.connections)),
                             return_exceptions=True)


class Connection:
    def __init__(self, websocket: WebSocket, engine: Engine, settings: Settings) -> None:
        self.ws = websocket
        self.engine = engine
        self.settings = settings
        defaults = Options(settings.default_voice, DEFAULTS, AudioFormat(), "auto",
                           settings.ws_buffer_delay_ms)
        self.session = Session(defaults, engine.voices, max_contexts=settings.ws_max_contexts)
        self.session_id = uuid.uuid4().hex[:12]
        self.runtimes: dict[Context, Runtime] = {}
        self.outgoing: deque[Outgoing] = deque()
        self.outgoing_bytes = 0
        self.wake_sender = asyncio.Event()
        # Flow control: contexts stop handing over audio while this much waits to be sent.
        self.room = asyncio.Event()
        self.room.set()

    # -- the two loops ------------------------------------------------------------------

    async def run(self) -> None:
        self.enqueue(event("ready", protocol=PROTOCOL_VERSION, session_id=self.session_id,
                           sample_rate=SAMPLE_RATE, encodings=list(ENCODINGS),
                           sample_rates=list(SAMPLE_RATES), voices=self.engine.voices,
                           emotion_tags=EMOTION_TAGS,
                           defaults=options_dict(self.session.defaults), limits=self.limits()))
        receiver = asyncio.ensure_future(self.receive_loop())
        sender = asyncio.ensure_future(self.send_loop())
        fault: ConnectionFault | None = None
        try:
            done, _ = await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if isinstance(exc, ConnectionFault):
                    fault = exc
                elif exc is not None and not isinstance(exc, WebSocketDisconnect | OSError):
                    log.error("session %s failed", self.session_id, exc_info=exc)
                    fault = ConnectionFault(CLOSE_INTERNAL, "internal_error", "internal error")
        except asyncio.CancelledError:
            fault = ConnectionFault(CLOSE_GOING_AWAY, "going_away", "server shutting down")
            raise
        finally:
            for task in (receiver, sender):
                task.cancel()
            await self.stop_contexts()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(receiver, sender, return_exceptions=True)
            if fault is not None:
                await self.close(fault)

    def limits(self) -> dict[str, object]:
        s = self.settings
        return {"max_contexts": s.ws_max_contexts, "max_message_bytes": s.ws_max_message_bytes,
                "max_text_chars": s.ws_max_text_chars, "idle_timeout_s": s.ws_idle_timeout,
                "max_buffered_bytes": s.ws_max_buffered_bytes, "send_timeout_s": s.ws_send_timeout}

    async def receive_loop(self) -> None:
        pending: asyncio.Future[dict[str, object]] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(self.ws.receive())
                done, _ = await asyncio.wait({pending}, timeout=self.settings.ws_idle_timeout)
                if not done:
                    if self.outgoing or any(not rt.context.idle or rt.pending
                                            for rt in self.runtimes.values()):
                        continue  # audio still to send: not idle (protocol.md, 4000)
                    raise ConnectionFault(CLOSE_IDLE, "idle_timeout", "no message for "
                                          f"{self.settings.ws_idle_timeout:g} s")
                message, pending = pending.result(), None
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    raise ConnectionFault(CLOSE_UNSUPPORTED, "binary_not_accepted",
                                          "the server accepts only text (JSON) messages")
                text = str(message.get("text") or "")
                if len(text) > self.settings.ws_max_message_bytes // 4 and \
                        len(text.encode()) > self.settings.ws_max_message_bytes:
                    raise ConnectionFault(CLOSE_TOO_BIG, "message_too_big", "message over "
                                          f"{self.settings.ws_max_message_bytes} bytes")
                self.handle(text)
        finally:
            if pending is not None:
                pending.cancel()

    async def send_loop(self) -> None:
        timeout = self.settings.ws_send_timeout
        while True:
            if not self.outgoing:
                self.wake_sender.clear()
                await self.wake_sender.wait()
                continue
            item = self.outgoing.popleft()
            self.outgoing_bytes -= item.size
            self.dequeued()
            data = item.data() if callable(item.data) else item.data
            try:
                if isinstance(data, bytes):
                    await asyncio.wait_for(self.ws.send_bytes(data), timeout)
                    if item.context is not None:
                        item.context.samples_sent += item.samples
                    if item.first_audio is not None:
                        self.engine.record_first_audio(item.first_audio, time.monotonic())
                else:
                    await asyncio.wait_for(self.ws.send_text(data), timeout)
            except TimeoutError:
                raise ConnectionFault(CLOSE_SLOW_CONSUMER, "slow_consumer", "the client "
                                      f"did not read for {timeout:g} s") from None

    def enqueue(self, data: str | bytes | Callable[[], str], context: Context | None = None,
                samples: int = 0, first_audio: AudioChunk | None = None) -> None:
        item = Outgoing(data, context, samples, first_audio)
        self.outgoing.append(item)
        self.outgoing_bytes += item.size
        if self.outgoing_bytes >= self.settings.ws_max_buffered_bytes:
            self.room.clear()
        self.wake_sender.set()

    def dequeued(self) -> None:
        if self.outgoing_bytes < self.settings.ws_max_buffered_bytes:
            self.room.set()

    async def wait_for_room(self) -> None:
        """Holds a context's audio while the client has not read what is queued; a client
        that stops reading is found by the send timeout (protocol.md, 4002)."""
        while not self.room.is_set():
            await self.room.wait()

    async def shut_down(self) -> None:
        await self.stop_contexts()
        await self.close(ConnectionFault(CLOSE_GOING_AWAY, "going_away",
                                         "the server is shutting down"))

    async def close(self, fault: ConnectionFault) -> None:
        log.info("session %s closed: %s (%d)", self.session_id, fault, fault.close_code)
        if self.ws.application_state != WebSocketState.CONNECTED:
            return
        with contextlib.suppress(Exception):
            if fault.close_code != CLOSE_SLOW_CONSUMER:
                await asyncio.wait_for(self.ws.send_text(error_event(fault.code, str(fault))), 2)
            # A slow reader gets its close frame only behind the audio it has yet to read.
            linger = CLOSE_LINGER_S if fault.close_code == CLOSE_SLOW_CONSUMER else 2
            await asyncio.wait_for(self.ws.close(fault.close_code, str(fault)[:120]), linger)

    # -- client messages (protocol.md, "Client messages") ------------------------------------

    def handle(self, raw: str) -> None:
        try:
            message = parse_client_message(raw, max_text_chars=self.settings.ws_max_text_chars)
            if isinstance(message, Ping):
                self.enqueue(event("pong", id=message.id, server_time=time.time()))
            elif isinstance(message, Configure):
                defaults = self.session.configure(message.overrides)
                self.enqueue(event("configured", defaults=options_dict(defaults)))
            elif isinstance(message, Text):
                self.on_text(message)
            elif isinstance(message, Flush):
                self.on_flush(self.session.get(message.context_id), message.flush_id)
            elif isinstance(message, End):
                self.on_end(self.session.get(message.context_id))
            elif isinstance(message, Cancel):
                self.on_cancel(message.context_id)
        except ProtocolError as exc:
            self.enqueue(error_event(exc.code, exc.message, context_id=exc.context_id,
                                     field=exc.field))
        except TooManyContexts as exc:
            raise ConnectionFault(CLOSE_TOO_MANY_CONTEXTS, "too_many_contexts", str(exc)) from exc

    def on_text(self, message: Text) -> None:
        context, opened, segments = self.session.text(message.context_id, message.text,
                                                      message.overrides)
        if opened:
            runtime = Runtime(context, FormatConverter(context.options.format))
            self.runtimes[context] = runtime
            self.enqueue(event("context_started", context_id=context.id,
                               options=options_dict(context.options)))
            runtime.task = asyncio.ensure_future(self.run_context(runtime))
        runtime = self.runtimes[context]
        runtime.last_text_at = time.monotonic()
        runtime.push(segments)
        if message.flush:
            self.on_flush(context, message.flush_id)
        if message.end:
            self.on_end(context)

    def on_flush(self, context: Context, flush_id: str | None) -> None:
        runtime = self.runtimes[context]
        runtime.push(self.session.flush(context, flush_id))
        self.deliver_flushes(runtime)

    def on_end(self, context: Context) -> None:
        runtime = self.runtimes[context]
        runtime.push(self.session.end(context))
        runtime.input_ended = True
        runtime.changed.set()

    def on_cancel(self, context_id: str | None) -> None:
        """Stops contexts now (protocol.md, "cancel"): queued audio is dropped at once, and the
        acknowledgement leaves once the context's LLM requests are closed."""
        for context in self.session.cancel(context_id):
            runtime = self.runtimes.pop(context, None)
            kept = [o for o in self.outgoing if o.context is not context]
            self.outgoing_bytes = sum(o.size for o in kept)
            self.outgoing = deque(kept)
            self.dequeued()
            self.session.forget(context)
            task = runtime.task if runtime is not None else None
            if task is None or task.done():
                self.acknowledge_cancel(context)
            else:
                task.cancel()  # aborts its LLM requests (engine.synthesize's finally)
                task.add_done_callback(lambda _, c=context: self.acknowledge_cancel(c))

    def acknowledge_cancel(self, context: Context) -> None:
        # Formatted when sent, so samples_sent counts every frame written before it.
        self.enqueue(lambda: event(
            "cancelled", context_id=context.id, samples_sent=context.samples_sent,
            duration_ms=round(context.samples_sent * 1000 / context.options.format.sample_rate,
                              1)))

    # -- a context's audio -------------------------------------------------------------------

    async def segments(self, runtime: Runtime) -> AsyncIterator[str]:
        """The context's segments as released; text left unsent for ``buffer_delay_ms`` while
        the context has nothing else to say is spoken anyway."""
        context = runtime.context
        delay = context.options.buffer_delay_ms / 1000
        while True:
            runtime.changed.clear()
            if runtime.pending:
                yield runtime.pending.popleft()
                continue
            if runtime.input_ended:
                return
            timeout = None
            if context.segmenter.buffered.strip() and context.idle:
                timeout = max(0.0, runtime.last_text_at + delay - time.monotonic())
                if timeout == 0.0:
                    runtime.push(self.session.release(context, context.segmenter.flush()))
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runtime.changed.wait(), timeout)

    async def run_context(self, runtime: Runtime) -> None:
        context = runtime.context
        options = context.options
        try:
            async for item in self.engine.synthesize(
                self.segments(runtime), voice=options.voice, params=options.params,
                clock=PlayoutClock(options.client_buffer_ms / 1000),
            ):
                if isinstance(item, AudioChunk):
                    await self.wait_for_room()
                    flags = (FLAG_SEGMENT_START if item.frame_start == 0 else 0) | \
                        (FLAG_SEGMENT_END if item.final else 0)
                    self.send_audio(runtime, runtime.converter.convert(item.pcm), item.segment,
                                    flags, item)
                    context.frames += item.frames
                    context.source_samples += item.samples
                elif isinstance(item, SegmentStarted):
                    runtime.segment_samples = 0
                    self.enqueue(event("segment_started", context_id=context.id,
                                       segment=item.segment, text=item.text))
                elif isinstance(item, SegmentFinished):
                    self.segment_finished(runtime, item)
            self.drain(runtime, context.finished)
            context.move(ContextState.DONE)
            self.enqueue(event(
                "done", context_id=context.id, samples=context.samples_queued,
                duration_ms=self.ms(context, context.samples_queued), frames=context.frames,
                source_samples=context.source_samples, segments=context.finished,
                ttfa_ms=self.ttfa_ms(context)))
        except OrpheusError as exc:
            if context.live:
                context.move(ContextState.FAILED)
                log.warning("context %s of session %s failed: %s", context.id, self.session_id,
                            exc)
                self.enqueue(error_event(exc.code, str(exc), context_id=context.id))
        finally:
            self.runtimes.pop(context, None)
            self.session.forget(context)

    def segment_finished(self, runtime: Runtime, item: SegmentFinished) -> None:
        context = runtime.context
        context.finished += 1
        self.enqueue(event(
            "segment_finished", context_id=context.id, segment=item.segment, text=item.text,
            samples=runtime.segment_samples, source_samples=item.samples, frames=item.frames,
            duration_ms=self.ms(context, runtime.segment_samples),
            ttfa_ms=round((item.first_audio_at - item.started_at) * 1000, 1),
            generation_ms=round((item.finished_at - item.started_at) * 1000, 1)))
        self.deliver_flushes(runtime)

    def deliver_flushes(self, runtime: Runtime) -> None:
        context = runtime.context
        due = context.due_flushes()
        if due:
            self.drain(runtime, context.finished)
        for flush_id in due:
            self.enqueue(event("flushed", context_id=context.id, flush_id=flush_id,
                               samples=context.samples_queued))

    def drain(self, runtime: Runtime, segment: int) -> None:
        """Sends what the resampler still holds and starts a fresh one."""
        if runtime.converter.format.sample_rate == SAMPLE_RATE:
            return
        tail = runtime.converter.convert(np.zeros(0, dtype=np.int16), last=True)
        runtime.converter = FormatConverter(runtime.context.options.format)
        if tail:
            self.send_audio(runtime, tail, max(0, segment - 1), 0)

    def send_audio(self, runtime: Runtime, payload: bytes, segment: int, flags: int,
                   chunk: AudioChunk | None = None) -> None:
        context = runtime.context
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
        runtime.segment_samples += samples
        first = context.first_audio_at is None
        if first:
            context.first_audio_at = time.monotonic()
        self.enqueue(frame, context, samples, chunk if first else None)

    @staticmethod
    def ms(context: Context, samples: int) -> float:
        return round(samples * 1000 / context.options.format.sample_rate, 1)

    @staticmethod
    def ttfa_ms(context: Context) -> float | None:
        if context.first_audio_at is None:
            return None
        return round((context.first_audio_at - context.created_at) * 1000, 1)

    async def stop_contexts(self) -> None:
        tasks = [rt.task for rt in self.runtimes.values() if rt.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.runtimes.clear()
