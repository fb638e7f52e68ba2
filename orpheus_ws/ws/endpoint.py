"""The WebSocket endpoint /api/tts/ws: the native protocol as an adapter on the socket runtime.

The runtime (``sockets/runtime.py``) runs the receive and send loops and every limit; this
adapter turns client messages into the session's state and the engine's work, and queues
events and frames on the socket's outbox: one ordered, flow-controlled queue, so a cancel can
purge a context's queued audio and no frame of it follows the acknowledgement.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid

from starlette.websockets import WebSocket

from ..config import Settings
from ..engine import Caller, SpeechEngine
from ..exceptions import ConnectionFault, RequestError
from ..formats import ENCODINGS, SAMPLE_RATE, SAMPLE_RATES, AudioFormat
from ..logs import log_id
from ..metrics import PROTOCOL_ERRORS
from ..params import DEFAULTS
from ..policy import CLOSE_SLOW_CONSUMER, close_code
from ..transport.http_glue import caller_of, engine_of
from ..transport.limits import SocketLimits
from ..transport.outbox import Outbox
from ..transport.runtime import Refusal, SocketRegistry, SocketRoute
from . import events
from .delivery import Delivery
from .protocol import (
    PROTOCOL_VERSION,
    Cancel,
    Configure,
    End,
    Flush,
    Options,
    Ping,
    Text,
    options_dict,
    parse_client_message,
)
from .session import Context, Session


class WebSocketEndpoint(SocketRoute):
    """ASGI app for the route; each socket gets a :class:`Connection` on the runtime, with
    the engine from the application's lifespan state."""

    def __init__(self, settings: Settings, registry: SocketRegistry) -> None:
        self.settings = settings
        super().__init__(registry, SocketLimits.from_settings(settings), self.connection)

    def connection(self, websocket: WebSocket, outbox: Outbox) -> Connection:
        return Connection(engine_of(websocket), self.settings, outbox, caller_of(websocket))


class Connection:
    """One socket's protocol state: the session, its contexts' deliveries, the outbox."""

    route = "native"
    idle_timeout_s: float | None = None

    def __init__(self, engine: SpeechEngine, settings: Settings, outbox: Outbox | None = None,
                 caller: Caller = Caller()) -> None:
        self.engine = engine
        self.caller = caller
        self.settings = settings
        defaults = Options(settings.lineup.default, DEFAULTS, AudioFormat(), "auto",
                           settings.ws_buffer_delay_ms, trim_quiet=settings.trim_quiet,
                           normalize=settings.normalize)
        self.session: Session[Delivery] = Session(defaults, engine.voices,
                                                  max_contexts=settings.ws_max_contexts)
        self.session_id = uuid.uuid4().hex[:12]
        self.outbox = outbox if outbox is not None else Outbox(settings.ws_max_buffered_bytes)
        self.text_limits = SocketLimits.from_settings(settings)

    # -- the runtime's adapter --------------------------------------------------------------

    def opened(self) -> None:
        log_id.set(self.session_id)  # the ready event's session_id on every log line
        self.enqueue(events.ready(
            protocol=PROTOCOL_VERSION, session_id=self.session_id, sample_rate=SAMPLE_RATE,
            encodings=list(ENCODINGS), sample_rates=list(SAMPLE_RATES),
            voices=self.engine.voices, emotion_tags=self.engine.lineup.tags,
            defaults=options_dict(self.session.defaults), limits=self.limits()))

    async def received(self, text: str | None, data: bytes | None) -> None:
        if text is None:
            raise ConnectionFault("binary_not_accepted",
                                  "the server accepts only text (JSON) messages")
        self.handle(text)

    def busy(self) -> bool:
        """Audio still being made (protocol.md, 4000)."""
        return any(c.handle.busy for c in self.session.live if c.handle is not None)

    def refusal(self, fault: ConnectionFault) -> Refusal:
        code = close_code(fault)
        if code == CLOSE_SLOW_CONSUMER:  # it reads nothing: only the close frame
            return Refusal(code)
        return Refusal(code, [events.dumps(events.error(fault.code, str(fault)))])

    async def stop(self) -> None:
        await self.stop_contexts()

    def limits(self) -> events.LimitsDict:
        s = self.settings
        return {"max_contexts": s.ws_max_contexts, "max_message_bytes": s.ws_max_message_bytes,
                "max_text_chars": s.ws_max_text_chars, "idle_timeout_s": s.ws_idle_timeout,
                "max_buffered_bytes": s.ws_max_buffered_bytes, "send_timeout_s": s.ws_send_timeout}

    def enqueue(self, event: events.ServerEvent) -> None:
        self.outbox.put(events.dumps(event))

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

    def held_chars(self) -> int:
        """Text given to this socket's contexts and not yet spoken."""
        return sum(c.handle.input.held_chars for c in self.session.live if c.handle is not None)

    def on_text(self, message: Text) -> None:
        held = self.held_chars()
        self.text_limits.check_text(len(message.text), 0, held, context_id=message.context_id)
        context, opened = self.session.text(message.context_id, message.overrides)
        if opened:
            context.handle = Delivery(context, self.engine, self.outbox, self.caller)
            self.enqueue(events.context_started(context.id, options_dict(context.options)))
            task = context.handle.start()
            task.add_done_callback(functools.partial(self.retire, context))
        feed = self.delivery(context).input
        self.text_limits.check_text(len(message.text), feed.held_chars, held,
                                    context_id=context.id)
        feed.push(message.text)
        if message.flush:
            self.on_flush(context, message.flush_id)
        if message.end:
            self.on_end(context)

    def on_flush(self, context: Context[Delivery], flush_id: str | None) -> None:
        self.delivery(context).input.flush(flush_id)

    def on_end(self, context: Context[Delivery]) -> None:
        self.session.end(context.id)
        self.delivery(context).input.end()

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
