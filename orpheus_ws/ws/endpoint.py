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

from ..config import Settings
from ..engine import Engine
from ..exceptions import ConnectionFault, RequestError
from ..formats import ENCODINGS, SAMPLE_RATE, SAMPLE_RATES, AudioFormat
from ..logs import log_id
from ..metrics import PROTOCOL_ERRORS
from ..params import DEFAULTS
from ..vocabulary import EMOTION_TAGS
from . import events
from .delivery import Delivery
from .outbox import Outbox
from .protocol import (
    CLOSE_SLOW_CONSUMER,
    PROTOCOL_VERSION,
    Cancel,
    Configure,
    End,
    Flush,
    Options,
    Ping,
    Text,
    close_code,
    options_dict,
    parse_client_message,
)
from .session import Context, Session

log = logging.getLogger("orpheus_ws.ws")
CLOSE_LINGER_S = 10.0  # how long a close frame may wait behind unread audio (protocol.md, 4002)
GOING_AWAY = "going_away"


class WebSocketEndpoint:
    """ASGI app for one route; each connection gets a :class:`Connection`, with the engine
    from the application's lifespan state."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connections: set[Connection] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        engine: Engine = websocket.state.engine
        await websocket.accept()
        connection = Connection(websocket, engine, self.settings)
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)

    def busy(self) -> bool:
        """Some socket still has events or audio to send."""
        return any(len(c.outbox) for c in self.connections)

    async def shutdown(self) -> None:
        """Closes every socket with 1001 after an error event, stopping its contexts."""
        await asyncio.gather(*(c.shut_down() for c in list(self.connections)),
                             return_exceptions=True)


class Connection:
    """One socket: a receive loop feeding the session, a send loop draining the outbox."""

    def __init__(self, websocket: WebSocket, engine: Engine, settings: Settings) -> None:
        self.ws = websocket
        self.engine = engine
        self.settings = settings
        defaults = Options(settings.default_voice, DEFAULTS, AudioFormat(), "auto",
                           settings.ws_buffer_delay_ms)
        self.session: Session[Delivery] = Session(defaults, engine.voices,
                                                  max_contexts=settings.ws_max_contexts)
        self.session_id = uuid.uuid4().hex[:12]
        self.outbox = Outbox(settings.ws_max_buffered_bytes)
        self.sending = False  # a send is under way (a blocked one is not idleness)

    # -- the two loops ------------------------------------------------------------------

    async def run(self) -> None:
        log_id.set(self.session_id)  # the ready event's session_id on every log line
        self.enqueue(events.ready(
            protocol=PROTOCOL_VERSION, session_id=self.session_id, sample_rate=SAMPLE_RATE,
            encodings=list(ENCODINGS), sample_rates=list(SAMPLE_RATES),
            voices=self.engine.voices, emotion_tags=EMOTION_TAGS,
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
                    fault = ConnectionFault("internal_error", "internal error")
        except asyncio.CancelledError:
            fault = ConnectionFault(GOING_AWAY, "server shutting down")
            raise
        finally:
            for task in (receiver, sender):
                task.cancel()
            await self.stop_contexts()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(receiver, sender, return_exceptions=True)
            if fault is not None:
                await self.close(fault)

    def limits(self) -> events.LimitsDict:
        s = self.settings
        return {"max_contexts": s.ws_max_contexts, "max_message_bytes": s.ws_max_message_bytes,
                "max_text_chars": s.ws_max_text_chars, "idle_timeout_s": s.ws_idle_timeout,
                "max_buffered_bytes": s.ws_max_buffered_bytes, "send_timeout_s": s.ws_send_timeout}

    def busy(self) -> bool:
        """Audio still to send: the connection is not idle (protocol.md, 4000)."""
        return self.sending or bool(self.outbox) or any(
            c.handle.busy for c in self.session.live if c.handle is not None)

    async def receive_loop(self) -> None:
        max_bytes = self.settings.ws_max_message_bytes
        pending: asyncio.Future[Any] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(self.ws.receive())
                done, _ = await asyncio.wait({pending}, timeout=self.settings.ws_idle_timeout)
                if not done:
                    if self.busy():
                        continue
                    raise ConnectionFault("idle_timeout", "no message for "
                                          f"{self.settings.ws_idle_timeout:g} s")
                message, pending = pending.result(), None
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    raise ConnectionFault("binary_not_accepted",
                                          "the server accepts only text (JSON) messages")
                text = str(message.get("text") or "")
                if len(text) > max_bytes // 4 and len(text.encode()) > max_bytes:
                    raise ConnectionFault("message_too_big", f"message over {max_bytes} bytes")
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
                async with asyncio.timeout(timeout):  # not wait_for: it can lose a cancel
                    if isinstance(data, bytes):
                        await self.ws.send_bytes(data)
                    else:
                        await self.ws.send_text(data)
            except TimeoutError:
                raise ConnectionFault("slow_consumer", "the client did not read for "
                                      f"{timeout:g} s") from None
            if item.on_sent is not None:
                item.on_sent(time.monotonic())
            self.sending = False

    def enqueue(self, event: events.ServerEvent) -> None:
        self.outbox.put(events.dumps(event))

    async def shut_down(self) -> None:
        await self.stop_contexts()
        await self.close(ConnectionFault(GOING_AWAY, "the server is shutting down"))

    async def close(self, fault: ConnectionFault) -> None:
        code = close_code(fault)
        log.info("session %s closed: %s (%d)", self.session_id, fault, code)
        if self.ws.application_state != WebSocketState.CONNECTED:
            return
        with contextlib.suppress(Exception):
            if code != CLOSE_SLOW_CONSUMER:
                await asyncio.wait_for(self.ws.send_text(events.dumps(
                    events.error(fault.code, str(fault)))), 2)
            # A slow reader gets its close frame only behind the audio it has yet to read.
            linger = CLOSE_LINGER_S if code == CLOSE_SLOW_CONSUMER else 2
            await asyncio.wait_for(self.ws.close(code, str(fault)[:120]), linger)

    # -- client messages (protocol.md, "Client messages") ------------------------------------

    def handle(self, raw: str) -> None:
        """Acts on one client message; a RequestError is answered with an error event and the
        socket stays usable, a ConnectionFault ends the connection."""
        try:
            message = parse_client_message(raw, max_text_chars=self.settings.ws_max_text_chars)
            if isinstance(message, Ping):
                self.enqueue(events.pong(message.id, time.time()))
            elif isinstance(message, Configure):
                defaults = self.session.configure(message.overrides)
                self.enqueue(events.configured(options_dict(defaults)))
            elif isinstance(message, Text):
                self.on_text(message)
            elif isinstance(message, Flush):
                self.on_flush(self.session.get(message.context_id), message.flush_id)
            elif isinstance(message, End):
                self.on_end(self.session.get(message.context_id))
            elif isinstance(message, Cancel):
                self.on_cancel(message.context_id)
        except RequestError as exc:
            PROTOCOL_ERRORS.labels(exc.code).inc()
            self.enqueue(events.request_error(exc))

    @staticmethod
    def delivery(context: Context[Delivery]) -> Delivery:
        assert context.handle is not None  # attached when the context opened
        return context.handle

    def on_text(self, message: Text) -> None:
        context, opened = self.session.text(message.context_id, message.overrides)
        if opened:
            context.handle = Delivery(context, self.engine, self.outbox)
            self.enqueue(events.context_started(context.id, options_dict(context.options)))
            task = context.handle.start()
            task.add_done_callback(functools.partial(self.retire, context))
        self.delivery(context).feed.push(message.text)
        if message.flush:
            self.on_flush(context, message.flush_id)
        if message.end:
            self.on_end(context)

    def on_flush(self, context: Context[Delivery], flush_id: str | None) -> None:
        self.delivery(context).feed.flush(flush_id)

    def on_end(self, context: Context[Delivery]) -> None:
        self.session.end(context.id)
        self.delivery(context).feed.end()

    def on_cancel(self, context_id: str | None) -> None:
        """Stops contexts now (protocol.md, "cancel"): queued audio is dropped at once, and the
        acknowledgement leaves once the context's LLM requests are closed."""
        for context in self.session.cancel(context_id):
            delivery = self.delivery(context)
            self.outbox.purge(delivery)
            task = delivery.task
            if task is None or task.done():
                self.acknowledge_cancel(delivery)
            else:
                task.cancel()  # aborts its LLM requests (engine.synthesize's finally)
                task.add_done_callback(functools.partial(self.acknowledge_cancel, delivery))

    def acknowledge_cancel(self, delivery: Delivery, _: object = None) -> None:
        # Formatted when sent, so samples_sent counts every frame written before it.
        self.outbox.put(delivery.cancelled_event)

    def retire(self, context: Context[Delivery], _: object = None) -> None:
        """The one place a context is forgotten: once its delivery task is over."""
        self.session.forget(context)

    async def stop_contexts(self) -> None:
        tasks = [c.handle.task for c in self.session.contexts
                 if c.handle is not None and c.handle.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
