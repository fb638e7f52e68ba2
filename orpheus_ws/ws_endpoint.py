"""The WebSocket endpoint /api/tts/ws: glue between a socket, the session state and the engine.

Per socket: a receive loop and a send loop; every context runs the engine in its own task.
Everything the server sends goes through one bounded outgoing queue, in order, so a cancel can
purge a context's queued audio and no frame of it follows the acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from typing import Any

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .audio import ENCODINGS, SAMPLE_RATES, AudioFormat
from .config import Settings
from .engine import Engine
from .request_fields import DEFAULTS
from .tokens import EMOTION_TAGS, SAMPLE_RATE
from .ws_context import ContextRunner
from .ws_outbox import Outbox
from .ws_protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_IDLE,
    CLOSE_INTERNAL,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOO_BIG,
    CLOSE_TOO_MANY_CONTEXTS,
    CLOSE_UNSUPPORTED,
    PROTOCOL_VERSION,
    Cancel,
    Configure,
    End,
    Flush,
    Options,
    Ping,
    ProtocolError,
    Text,
    error_event,
    event,
    options_dict,
    parse_client_message,
)
from .ws_session import Context, Session, TooManyContexts

log = logging.getLogger("orpheus_ws.ws")
CLOSE_LINGER_S = 10.0  # how long a close frame may wait behind unread audio (protocol.md, 4002)


class ConnectionFault(Exception):
    def __init__(self, close_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.code = code


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
        self.runners: dict[Context, ContextRunner] = {}
        self.outbox = Outbox(settings.ws_max_buffered_bytes)
        self.sending = False  # a send is under way (a blocked one is not idleness)

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
        pending: asyncio.Future[Any] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(self.ws.receive())
                done, _ = await asyncio.wait({pending}, timeout=self.settings.ws_idle_timeout)
                if not done:
                    if self.sending or self.outbox or any(r.busy for r in self.runners.values()):
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
            item = await self.outbox.get()
            data = item.data() if callable(item.data) else item.data
            self.sending = True
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
            self.sending = False

    def enqueue(self, data: str) -> None:
        self.outbox.put(data)

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
            runner = ContextRunner(context, self.session, self.engine, self.outbox)
            self.runners[context] = runner
            self.enqueue(event("context_started", context_id=context.id,
                               options=options_dict(context.options)))
            runner.task = asyncio.ensure_future(runner.run())
            runner.task.add_done_callback(functools.partial(self.forget_runner, context))
        self.runners[context].push(segments)
        if message.flush:
            self.on_flush(context, message.flush_id)
        if message.end:
            self.on_end(context)

    def on_flush(self, context: Context, flush_id: str | None) -> None:
        runner = self.runners[context]
        runner.push(self.session.flush(context, flush_id))
        runner.deliver_flushes()

    def on_end(self, context: Context) -> None:
        self.runners[context].end_input(self.session.end(context))

    def on_cancel(self, context_id: str | None) -> None:
        """Stops contexts now (protocol.md, "cancel"): queued audio is dropped at once, and the
        acknowledgement leaves once the context's LLM requests are closed."""
        for context in self.session.cancel(context_id):
            runner = self.runners.pop(context, None)
            self.outbox.purge(context)
            self.session.forget(context)
            task = runner.task if runner is not None else None
            if task is None or task.done():
                self.acknowledge_cancel(context)
            else:
                task.cancel()  # aborts its LLM requests (engine.synthesize's finally)
                task.add_done_callback(functools.partial(self.acknowledge_cancel, context))

    def forget_runner(self, context: Context, _: object = None) -> None:
        self.runners.pop(context, None)

    def acknowledge_cancel(self, context: Context, _: object = None) -> None:
        # Formatted when sent, so samples_sent counts every frame written before it.
        self.outbox.put(lambda: event(
            "cancelled", context_id=context.id, samples_sent=context.samples_sent,
            duration_ms=round(context.samples_sent * 1000 / context.options.format.sample_rate,
                              1)))

    async def stop_contexts(self) -> None:
        tasks = [r.task for r in self.runners.values() if r.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.runners.clear()
