"""The door in front of every route (ASGI middleware): a request or WebSocket handshake the
server won't take is answered here, before any route sees it, with a status the voice-agent
frameworks read right. pipecat and LiveKit retry 429 and 5xx and give up for good on other
4xx, so:

- 401 without a valid API key (when keys are set; ``auth.py`` reads every client's way of
  presenting one), in the route's own error shape; the key's name goes on with the request;
- 403 for a WebSocket from an origin ``--allowed-origins`` doesn't list;
- 503 with ``Retry-After`` for overload: too many open sockets, the llama-server this server
  runs not ready, or the server draining;
- 404 for a WebSocket to a path with no socket: retrying can't help;
- 413 for an HTTP body over ``--http-max-body-bytes``, 408 for one slower than
  ``--http-body-timeout`` (``limits.py``), in the route's own error shape.

A refused WebSocket is never accepted: it gets an HTTP response (a JSON body, and the message
in a ``dg-error`` header, which pipecat's Deepgram service reads).
"""

from __future__ import annotations

import hmac
import logging
import uuid
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from ..engine import Caller
from ..exceptions import ClientGone
from ..logs import log_id
from ..metrics import AUTH_REFUSALS, HTTP_RESPONSES, OVERLOAD_REFUSALS, SOCKETS_OPEN
from ..policy import RETRY_AFTER_S, decide
from ..transport.http_glue import CALLER
from .auth import KeyRing, is_open, presented_key, route_kind, subprotocols
from .limits import BoundedBody, Refusal, declared_too_large

log = logging.getLogger("orpheus_ws.gate")


async def refuse(scope: Scope, receive: Receive, send: Send, status: int,
                 body: dict[str, Any], message: str, *, retry: bool = False,
                 close: bool = False) -> None:
    """Answers with ``status`` instead of serving: an HTTP response, or for a WebSocket one
    in place of the handshake (a plain close, which becomes 403, where the ASGI server can't
    send one). ``close``: the connection closes after it (a body left unread)."""
    headers = {"dg-error": message}
    if retry:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if close:
        headers["Connection"] = "close"
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    response = JSONResponse(body, status_code=status, headers=headers)
    if scope["type"] == "http":
        await response(scope, receive, send)
        return
    websocket = WebSocket(scope, receive, send)
    if "websocket.http.response" not in scope.get("extensions", {}):
        await websocket.close(1013 if retry else 1008, message[:120])
        return
    await websocket.send_denial_response(response)


async def no_such_socket(scope: Scope, receive: Receive, send: Send) -> None:
    """A WebSocket to a path the server has no socket on: 404."""
    message = f"no WebSocket route at {scope.get('path', '')}"
    await refuse(scope, receive, send, 404, route_kind(scope.get("path", "")).error(
        "not_found", message), message)


class Gate:
    """Counts open WebSockets, checks keys and origins, refuses overload, bounds bodies."""

    def __init__(self, app: ASGIApp, *, keys: KeyRing, max_connections: int,
                 allowed_origins: list[str], max_body_bytes: int, body_timeout_s: float,
                 metrics_token: str = "") -> None:
        self.app = app
        self.keys = keys
        self.max_connections = max_connections
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.origins = None if "*" in allowed_origins else set(allowed_origins)
        self.metrics_token = metrics_token
        self.open = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        log_id.set(uuid.uuid4().hex[:12])  # this request's or socket's (logs.py)
        path: str = scope.get("path", "")
        kind = route_kind(path)
        socket = scope["type"] == "websocket"
        if socket and not self.origin_allowed(scope):
            message = "this origin may not open sockets here (--allowed-origins)"
            await self.refuse(scope, receive, send, 403, "origin", kind.error(
                "forbidden_origin", message), message)
            return
        name = None
        if path == "/metrics" and self.metrics_token:
            presented = presented_key(scope) or ""
            if not hmac.compare_digest(presented.encode(), self.metrics_token.encode()) \
                    and self.keys.name_of(presented) is None:
                message = "the metrics token (or an API key) is required"
                await self.refuse(scope, receive, send, 401, "auth", kind.error(
                    "invalid_api_key", message), message)
                return
        elif self.keys.enabled and not is_open(path):
            name = self.keys.name_of(presented_key(scope))
            if name is None:
                message = "a valid API key is required"
                await self.refuse(scope, receive, send, 401, "auth", kind.error(
                    "invalid_api_key", message), message)
                return
        # Who asks goes on with the request, in its own state (a copy per request), for the
        # transports to pass to the engine explicitly.
        scope["state"] = {**(scope.get("state") or {}), CALLER: Caller(name, kind.name)}
        if socket:
            await self.socket(scope, receive, send, kind.name)
        else:
            await self.request(scope, receive, send, kind.name)

    @staticmethod
    def counting(send: Send, route: str) -> Send:
        """``send``, counting the response's status."""

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                HTTP_RESPONSES.labels(route, str(message["status"])).inc()
            await send(message)

        return counted

    async def request(self, scope: Scope, receive: Receive, send: Send, route: str) -> None:
        """An HTTP request, its body bounded (limits.py)."""

        async def refuse_body(refusal: Refusal) -> None:
            await self.refuse(scope, receive, send, refusal.status, "body", route_kind(
                scope.get("path", "")).error(refusal.code, refusal.message), refusal.message,
                close=True)

        declared = declared_too_large(scope, self.max_body_bytes)
        if declared is not None:
            await refuse_body(declared)
            return
        body = BoundedBody(receive, self.counting(send, route), max_bytes=self.max_body_bytes,
                           timeout_s=self.body_timeout_s, refuse=refuse_body)
        try:
            await self.app(scope, body.receive, body.send)
        except ClientGone:
            if body.refused is None:
                raise
        except Exception as exc:  # a bug: the policy's 500 in the route's shape, counted
            if body.started:
                raise
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            decision = decide(exc)
            await self.refuse(scope, receive, send, decision.status, "internal", route_kind(
                scope.get("path", "")).error(decision.code, decision.message), decision.message)

    async def socket(self, scope: Scope, receive: Receive, send: Send, route: str) -> None:
        reason = self.overload(scope)
        if reason is not None:
            code, message = reason
            await self.refuse(scope, receive, send, 503, code, route_kind(
                scope.get("path", "")).error(code, message), message, retry=True)
            return
        offered = subprotocols(scope)

        async def accept_with_protocol(message: Message) -> None:
            # A browser that offered subprotocols (a key as "token, KEY") fails a socket
            # accepted without one: answer with the first it offered.
            if message["type"] == "websocket.accept" and offered and \
                    not message.get("subprotocol"):
                message = {**message, "subprotocol": offered[0]}
            await send(message)

        self.open += 1
        SOCKETS_OPEN.labels(route).inc()
        try:
            await self.app(scope, receive, accept_with_protocol)
        finally:
            self.open -= 1
            SOCKETS_OPEN.labels(route).dec()

    def origin_allowed(self, scope: Scope) -> bool:
        if self.origins is None:
            return True
        origin = dict(scope.get("headers", [])).get(b"origin")
        return origin is None or origin.decode("latin-1") in self.origins

    def overload(self, scope: Scope) -> tuple[str, str] | None:
        """(code, message) of why the server can't take a socket now, or None."""
        state: dict[str, Any] = scope.get("state") or {}
        engine = state.get("engine")
        if engine is not None and engine.draining:
            return "draining", "the server is shutting down; connect to another"
        if self.open >= self.max_connections:
            return ("server_full", f"the server has {self.open} open sockets, its most; "
                    f"try again in {RETRY_AFTER_S} s")
        managed = state.get("managed")
        if managed is not None:
            llama = managed.health()
            if llama.get("state") != "ready":
                return ("backend_unavailable", f"the llama-server is {llama.get('state')}; "
                        f"try again in {RETRY_AFTER_S} s")
        return None

    async def refuse(self, scope: Scope, receive: Receive, send: Send, status: int,
                     reason: str, body: dict[str, Any], message: str, *,
                     retry: bool = False, close: bool = False) -> None:
        route = route_kind(scope.get("path", "")).name
        if reason == "auth":
            AUTH_REFUSALS.labels(route).inc()
        elif status == 503:
            OVERLOAD_REFUSALS.labels(reason).inc()
        if scope["type"] == "websocket":  # an HTTP refusal is counted on its way out
            HTTP_RESPONSES.labels(route, str(status)).inc()
        log.info("refused %s %s: %d %s", scope["type"], scope.get("path"), status, message)
        counted = self.counting(send, route) if scope["type"] == "http" else send
        await refuse(scope, receive, counted, status, body, message, retry=retry, close=close)
