"""The gate on its own (ASGI in, ASGI out): API keys in every client's convention, origins,
the metrics token, refusals in each route's error shape, overload answers; a refused
WebSocket is never accepted and never reaches a route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from orpheus_ws.engine import current_key, current_route
from orpheus_ws.http.auth import KeyRing
from orpheus_ws.http.gate import Gate
from orpheus_ws.logs import RequestIds

KEY = "s3cret-key"


class Managed:
    def __init__(self, state: str) -> None:
        self.state = state

    def health(self) -> dict[str, Any]:
        return {"state": self.state}


class Call:
    """One request or handshake through a gate: what reached the route, what was sent."""

    def __init__(self) -> None:
        self.reached: list[tuple[str | None, str]] = []
        self.sent: list[dict[str, Any]] = []

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        self.reached.append((current_key.get(), current_route.get()))
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})

    async def send(self, message: Any) -> None:
        self.sent.append(message)

    async def receive(self) -> Any:
        return {"type": "websocket.connect"}

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> Any:
        return orjson.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


async def call(path: str, *, kind: str = "websocket", headers: dict[str, str] | None = None,
               query: str = "", keys: KeyRing | None = None, origins: tuple[str, ...] = ("*",),
               state: dict[str, Any] | None = None, metrics_token: str = "") -> Call:
    done = Call()
    gate = Gate(done.app, keys=keys or KeyRing([KEY]), max_connections=10,
                allowed_origins=list(origins), metrics_token=metrics_token)
    scope = {"type": kind, "path": path, "query_string": query.encode(),
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
             "extensions": {"websocket.http.response": {}}, "state": state or {}}
    if kind == "http":
        scope["method"] = "GET"
    await gate(scope, done.receive, done.send)
    return done


@pytest.mark.parametrize("path,headers,query", [
    ("/v1/audio/speech", {"Authorization": f"Bearer {KEY}"}, ""),  # OpenAI, our client
    ("/v1/speak", {"Authorization": f"Token {KEY}"}, ""),  # Deepgram
    ("/v1/baseten", {"Authorization": f"Api-Key {KEY}"}, ""),  # Baseten
    ("/v1/text-to-speech/tara/multi-stream-input", {"xi-api-key": KEY}, ""),  # ElevenLabs
    ("/tts/websocket", {"X-API-Key": KEY}, ""),  # Cartesia
    ("/api/tts/ws", {}, f"api_key={KEY}"),  # a browser
    ("/tts/websocket", {}, f"access_token={KEY}"),  # Cartesia's browsers
    ("/api/tts/ws", {"Sec-WebSocket-Protocol": f"token, {KEY}"}, ""),  # a browser, no query
])
async def test_every_clients_way_of_presenting_the_key_is_taken(
        path: str, headers: dict[str, str], query: str) -> None:
    done = await call(path, headers=headers, query=query)
    assert done.reached and done.reached[0][0] == "key1"
    assert done.sent[0]["type"] == "websocket.accept"
    wrong = await call(path, headers={k: v.replace(KEY, "nope") for k, v in headers.items()},
                       query=query.replace(KEY, "nope"))
    missing = await call(path)
    for refused in (wrong, missing):
        assert refused.reached == []
        assert refused.sent[0]["type"] == "websocket.http.response.start"
        assert refused.status == 401 and refused.headers[b"www-authenticate"] == b"Bearer"


async def test_a_browser_offering_a_subprotocol_gets_one_back() -> None:
    done = await call("/api/tts/ws", headers={"Sec-WebSocket-Protocol": f"token, {KEY}"})
    assert done.sent[0] == {"type": "websocket.accept", "subprotocol": "token"}


@pytest.mark.parametrize("path,shape", [
    ("/v1/audio/speech", lambda b: b["error"]["code"] == "invalid_api_key"
     and b["error"]["type"] == "invalid_request_error"),
    ("/v1/speak", lambda b: b["err_code"] == "INVALID_API_KEY" and b["err_msg"]),
    ("/v1/text-to-speech/tara", lambda b: b["detail"]["status"] == "invalid_api_key"),
    ("/tts/bytes", lambda b: b["code"] == "invalid_api_key" and b["error"]),
    ("/v1/baseten", lambda b: b["code"] == "invalid_api_key"),
    ("/api/tts", lambda b: b["error"]["code"] == "invalid_api_key" and b["detail"]),
])
async def test_http_refusals_come_in_the_routes_own_error_shape(path: str, shape: Any) -> None:
    done = await call(path, kind="http", headers={"Authorization": "Bearer wrong"})
    assert done.reached == [] and done.status == 401
    assert shape(done.body), done.body


@pytest.mark.parametrize("path", ["/", "/health", "/ready", "/client/", "/client/app.js"])
async def test_liveness_readiness_and_the_player_page_need_no_key(path: str) -> None:
    assert (await call(path, kind="http")).reached == [(None, "other")]


async def test_no_keys_no_check_and_the_route_kind_goes_along() -> None:
    done = await call("/v1/speak", keys=KeyRing())
    assert done.reached == [(None, "deepgram")]


async def test_keys_file_names_reload_and_comments(tmp_path: Path) -> None:
    file = tmp_path / "keys"
    file.write_text("# operators\nalice:key-a\n\nkey-b\n")
    ring = KeyRing(["key-c"], str(file))
    assert ring.name_of("key-a") == "alice" and ring.name_of("key-c") == "key1"
    assert ring.name_of("key-b") == "keys:4" and ring.name_of("key-x") is None
    file.write_text("bob:key-d\n")
    ring.reload()
    assert ring.name_of("key-a") is None and ring.name_of("key-d") == "bob"
    file.unlink()
    ring.reload()  # unreadable: the keys already loaded stay
    assert ring.name_of("key-d") == "bob"


async def test_a_refused_origin_is_403_at_the_handshake() -> None:
    origins = ("https://app.example",)
    refused = await call("/api/tts/ws", headers={"Origin": "https://evil.example",
                                                 "Authorization": f"Bearer {KEY}"},
                         origins=origins)
    assert refused.reached == [] and refused.status == 403
    allowed = await call("/api/tts/ws", headers={"Origin": "https://app.example",
                                                 "Authorization": f"Bearer {KEY}"},
                         origins=origins)
    assert allowed.reached == [("key1", "native")]


async def test_metrics_take_their_own_token() -> None:
    ok = await call("/metrics", kind="http", headers={"Authorization": "Bearer m-token"},
                    metrics_token="m-token")
    refused = await call("/metrics", kind="http", metrics_token="m-token")
    assert ok.reached and refused.status == 401


@pytest.mark.parametrize("state,status", [("restarting", 503), ("starting", 503),
                                          ("failed", 503), ("ready", None)])
async def test_while_the_managed_llama_server_is_not_ready_sockets_get_503(
        state: str, status: int | None) -> None:
    done = await call("/v1/speak", keys=KeyRing(), state={"managed": Managed(state)})
    if status is None:
        assert done.reached and done.sent[0]["type"] == "websocket.accept"
    else:
        assert done.reached == [] and done.status == status
        assert done.headers[b"retry-after"] == b"2"


def test_keys_in_a_query_never_reach_the_logs() -> None:
    import logging

    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s "%s %s"',
                               ("127.0.0.1", "GET", f"/api/tts/ws?api_key={KEY}&x=1"), None)
    RequestIds().filter(record)
    assert KEY not in record.getMessage() and "api_key=***&x=1" in record.getMessage()
