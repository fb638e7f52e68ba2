"""The socket runtime: the one receive loop and send loop under every WebSocket route.

A wire protocol (the native one, each vendor's) is an :class:`Adapter`: it turns the client's
messages into commands on the engine and the engine's events into messages on the socket's
:class:`Outbox`, and does no I/O of its own. The runtime runs the two loops in one
``asyncio.TaskGroup`` and applies every limit of :class:`SocketLimits`, the same for every
route:

- a message over ``max_message_bytes`` ends the socket (``message_too_big``);
- no message for ``idle_timeout_s`` while nothing is being generated or sent ends it
  (``idle_timeout``);
- a client that reads nothing for ``send_timeout_s`` ends it (``slow_consumer``), and audio
  producers wait while ``max_buffered_bytes`` are queued (the outbox);
- an adapter that raises :class:`ConnectionFault` ends it with that fault.

A fault is answered in the adapter's own words (:meth:`Adapter.refusal`: its last messages
and close code). The adapter's utterances are stopped whenever the socket ends, however it
ends, so no generation outlives its socket. Every open runtime is in :class:`SocketRegistry`,
which the drain waits on and the shutdown closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..exceptions import ConnectionFault
from ..metrics import PROTOCOL_ERRORS
from .limits import SocketLimits
from .outbox import CloseFrame, Outbox

log = logging.getLogger("orpheus_ws.transport")
CLOSE_LINGER_S = 10.0  # how long a slow reader's close frame may wait behind its audio
LAST_WORDS_S = 2.0  # how long a refusal's messages and close frame may take to send
GOING_AWAY = "going_away"


@dataclass(frozen=True, slots=True)
class Refusal:
    """How a protocol says goodbye for a fault: messages sent first, then the close frame."""

    close_code: int
    messages: list[str] = field(default_factory=list)
    reason: str = ""


class Adapter(Protocol):
    """One wire protocol over the runtime: a translation, with no I/O of its own."""

    route: str  # the route's name, for metrics and logs
    idle_timeout_s: float | None  # the protocol's own idle time, if shorter than the server's

    def opened(self) -> None:
        """The socket is open: queue what the protocol sends first, or raise
        :class:`ConnectionFault` to refuse it (a query it can't serve)."""

    async def received(self, text: str | None, data: bytes | None) -> None:
        """One client message (text or binary, within the size cap). Raises
        :class:`ConnectionFault` to end the socket."""

    def busy(self) -> bool:
        """Audio is being generated for the client: a quiet client is not idle."""

    def refusal(self, fault: ConnectionFault) -> Refusal:
        """The protocol's answer to ``fault``, which ends the socket."""

    async def stop(self) -> None:
        """Stops every utterance (their LLM requests closed); the socket is ending."""


class _Gone(Exception):
    """The client closed the socket or went away."""


class _Closed(Exception):
    """The adapter's close frame has been sent."""


class SocketRuntime:
    """One socket: its receive loop feeds the adapter, its send loop drains the outbox."""

    def __init__(self, websocket: WebSocket, adapter: Adapter, outbox: Outbox,
                 limits: SocketLimits) -> None:
        self.ws = websocket
        self.adapter = adapter
        self.outbox = outbox
        self.limits = limits
        self.sending = False  # a send is under way (a blocked one is not idleness)

    @property
    def busy(self) -> bool:
        """Something is being generated or is still to be sent."""
        return self.sending or bool(self.outbox) or self.adapter.busy()

    async def run(self) -> None:
        """Runs the socket until it ends; never raises for the client's doing."""
        fault: ConnectionFault | None = None
        try:
            self.adapter.opened()  # may refuse the socket (a bad query, say)
            fault = await self._loops()
        except ConnectionFault as refused:
            fault = refused
        except asyncio.CancelledError:  # the server is stopping
            fault = ConnectionFault(GOING_AWAY, "the server is shutting down")
            raise
        finally:
            await self.adapter.stop()
            if fault is not None:
                await self.refuse(fault)

    async def _loops(self) -> ConnectionFault | None:
        """Both loops until one ends the socket: the fault that ended it, or None."""
        fault: ConnectionFault | None = None
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._receive())
                group.create_task(self._send())
        except* ConnectionFault as faults:
            first = faults.exceptions[0]
            assert isinstance(first, ConnectionFault)
            fault = first
        except* (_Gone, _Closed, WebSocketDisconnect, OSError):
            pass
        except* Exception as errors:
            log.error("%s socket failed", self.adapter.route, exc_info=errors.exceptions[0])
            fault = ConnectionFault("internal_error", "internal error")
        return fault

    async def shut_down(self) -> None:
        """Ends the socket for the server's shutdown: utterances stopped, then 1001."""
        await self.adapter.stop()
        await self.refuse(ConnectionFault(GOING_AWAY, "the server is shutting down"))

    async def refuse(self, fault: ConnectionFault) -> None:
        """Sends the adapter's answer to ``fault`` and closes (a slow reader gets only the
        close frame, behind the audio it has yet to read)."""
        PROTOCOL_ERRORS.labels(fault.code).inc()
        refusal = self.adapter.refusal(fault)
        log.info("%s socket closed: %s (%d)", self.adapter.route, fault, refusal.close_code)
        if self.ws.application_state != WebSocketState.CONNECTED:
            return
        slow = fault.code == "slow_consumer"
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_LINGER_S if slow else LAST_WORDS_S):
                if not slow:
                    for message in refusal.messages:
                        await self.ws.send_text(message)
                await self.ws.close(refusal.close_code, (refusal.reason or str(fault))[:120])

    async def _receive(self) -> None:
        max_bytes = self.limits.max_message_bytes
        pending: asyncio.Future[Message] | None = None
        try:
            while True:
                if pending is None:  # one receive, waited on across idle checks: none lost
                    pending = asyncio.ensure_future(self.ws.receive())
                idle_s = min(self.limits.idle_timeout_s,
                             self.adapter.idle_timeout_s or self.limits.idle_timeout_s)
                done, _ = await asyncio.wait({pending}, timeout=idle_s)
                if not done:
                    if self.busy:
                        continue
                    raise ConnectionFault("idle_timeout", f"no message for {idle_s:g} s")
                message, pending = pending.result(), None
                if message["type"] == "websocket.disconnect":
                    raise _Gone
                text, data = message.get("text"), message.get("bytes")
                if data is not None:
                    size = len(data)
                else:  # characters are at most 4 bytes: encode only a text that may be over
                    text = str(text or "")
                    size = len(text) if len(text) <= max_bytes // 4 else len(text.encode())
                if size > max_bytes:
                    raise ConnectionFault("message_too_big", f"a message over {max_bytes} bytes")
                await self.adapter.received(text if data is None else None, data)
        finally:
            if pending is not None:
                pending.cancel()

    async def _send(self) -> None:
        timeout = self.limits.send_timeout_s
        while True:
            item = await self.outbox.get()
            data = item.data() if callable(item.data) else item.data
            self.sending = True
            try:
                async with asyncio.timeout(timeout):  # not wait_for: it can lose a cancel
                    if isinstance(data, CloseFrame):
                        await self.ws.close(data.code, data.reason[:120])
                        raise _Closed
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


class SocketRoute:
    """The ASGI app of a socket route: accept, make the route's adapter for this socket (from
    its query and path), and run it on the runtime, in the registry."""

    def __init__(self, registry: SocketRegistry, limits: SocketLimits,
                 adapter: Callable[[WebSocket, Outbox], Adapter]) -> None:
        self.registry = registry
        self.limits = limits
        self.adapter = adapter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        outbox = Outbox(self.limits.max_buffered_bytes)
        runtime = SocketRuntime(websocket, self.adapter(websocket, outbox), outbox, self.limits)
        await self.registry.serve(runtime)


class SocketRegistry:
    """Every open socket of every route: what the drain waits for, what shutdown closes."""

    def __init__(self) -> None:
        self.runtimes: set[SocketRuntime] = set()

    def __len__(self) -> int:
        return len(self.runtimes)

    async def serve(self, runtime: SocketRuntime) -> None:
        self.runtimes.add(runtime)
        try:
            await runtime.run()
        finally:
            self.runtimes.discard(runtime)

    def busy(self) -> bool:
        """Some socket still has audio being generated or to send."""
        return any(runtime.busy for runtime in self.runtimes)

    async def sent(self) -> None:
        """Returns once every socket has sent what is queued for it."""
        await asyncio.gather(*(runtime.outbox.sent() for runtime in list(self.runtimes)))

    async def shutdown(self) -> None:
        """Closes every socket with 1001 after its protocol's goodbye."""
        await asyncio.gather(*(r.shut_down() for r in list(self.runtimes)),
                             return_exceptions=True)
