"""The WebSocket gate on its own (ASGI in, ASGI out): while the llama-server this server runs
is not ready, a handshake is refused with 503 and Retry-After before any route sees it."""

from __future__ import annotations

from typing import Any

import pytest

from orpheus_ws.http.gate import SocketGate


class Managed:
    def __init__(self, state: str) -> None:
        self.state = state

    def health(self) -> dict[str, Any]:
        return {"state": self.state}


@pytest.mark.parametrize("state,status", [("restarting", 503), ("starting", 503),
                                          ("failed", 503), ("ready", None)])
async def test_while_the_managed_llama_server_is_not_ready_sockets_get_503(
        state: str, status: int | None) -> None:
    reached: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    scope = {"type": "websocket", "path": "/v1/speak", "headers": [], "query_string": b"",
             "extensions": {"websocket.http.response": {}},
             "state": {"managed": Managed(state)}}
    await SocketGate(app, max_connections=10)(scope, receive, send)
    if status is None:
        assert reached == [True] and sent == []
    else:
        assert reached == []
        assert sent[0]["type"] == "websocket.http.response.start"
        assert sent[0]["status"] == status
        assert (b"retry-after", b"2") in sent[0]["headers"]
