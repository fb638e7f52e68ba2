"""The door of every WebSocket route (native and vendor sockets alike): a handshake the server
can't take is refused with an HTTP status before it is accepted, in the way the voice-agent
frameworks read it. pipecat and LiveKit retry 429 and 5xx and give up for good on other 4xx,
so overload is 503 with ``Retry-After`` (too many open sockets, or the llama-server this
server runs is not ready), and a 4xx is kept for what retrying can't mend (no such path: 404).

Each refusal carries a JSON body ``{"error": {"code", "message"}}`` and, for Deepgram's
clients, the message in a ``dg-error`` header (pipecat reads it from a refused handshake).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

log = logging.getLogger("orpheus_ws.gate")
RETRY_AFTER_S = 2


async def refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str,
                 message: str, *, retry: bool) -> None:
    """Answers a WebSocket handshake with ``status`` instead of accepting it (a plain close,
    which servers answer with 403, where the ASGI server can't send a response)."""
    headers = {"dg-error": message}
    if retry:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    websocket = WebSocket(scope, receive, send)
    if "websocket.http.response" not in scope.get("extensions", {}):
        await websocket.close(1013 if retry else 1008, message[:120])
        return
    await websocket.send_denial_response(JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers))


async def no_such_socket(scope: Scope, receive: Receive, send: Send) -> None:
    """A WebSocket to a path the server has no socket on: 404."""
    await refuse(scope, receive, send, 404, "not_found",
                 f"no WebSocket route at {scope.get('path', '')}", retry=False)


class SocketGate:
    """ASGI middleware counting open WebSockets; refuses a handshake past
    ``max_connections`` or while the managed llama-server is not ready."""

    def __init__(self, app: ASGIApp, max_connections: int) -> None:
        self.app = app
        self.max_connections = max_connections
        self.open = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            log.info("refused a WebSocket to %s: %s", scope.get("path"), refusal[1])
            await refuse(scope, receive, send, 503, *refusal, retry=True)
            return
        self.open += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open -= 1

    def refusal(self, scope: Scope) -> tuple[str, str] | None:
        """(code, message) of why the server can't take a socket now, or None."""
        if self.open >= self.max_connections:
            return ("server_full", f"the server has {self.open} open sockets, its most; "
                    f"try again in {RETRY_AFTER_S} s")
        state: dict[str, Any] = scope.get("state") or {}
        managed = state.get("managed")
        if managed is not None:
            llama = managed.health()
            if llama.get("state") != "ready":
                return ("backend_unavailable", f"the llama-server is {llama.get('state')}; "
                        f"try again in {RETRY_AFTER_S} s")
        return None
