"""The gate on its own (ASGI in, ASGI out): API keys in every client's convention, origins,
the metrics token, refusals in each route's error shape, overload answers; a refused
WebSocket is never accepted and never reaches a route."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from orpheus_ws.http.auth import KeyRing, route_kind
from orpheus_ws.http.gate import Gate
from orpheus_ws.logs import RequestIds
from orpheus_ws.metrics import HTTP_RESPONSES
from orpheus_ws.transport.http_glue import CALLER

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
        caller = scope["state"][CALLER]
        self.reached.append((caller.key, caller.route))
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
                allowed_origins=list(origins), max_body_bytes=1024, body_timeout_s=30,
                metrics_token=metrics_token)
    scope = {"type": kind, "path": path, "query_string": query.encode(),
             "headers": [(k.lower().encode(), v.encode("latin-1"))  # as HTTP carries them
                         for k, v in (headers or {}).items()],
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


@pytest.mark.parametrize("content,line", [("placeholder:\n", 1), ("# keys\nok:k-1\nblank:   \n", 3),
                                          ("ok:k-1\nspaces:\u00a0\u00a0\n", 2),
                                          ("nbsp:\u00a0\n", 1)])
def test_an_empty_key_in_the_file_is_refused_naming_file_and_line(
        tmp_path: Path, content: str, line: int) -> None:
    file = tmp_path / "keys.txt"
    file.write_text(content)
    with pytest.raises(ValueError, match=rf"{file}, line {line}: .*empty"):
        KeyRing([], str(file))


@pytest.mark.parametrize("given", [[""], ["ok", "  "], ["\u00a0"]])
def test_an_empty_given_key_is_refused(given: list[str]) -> None:
    with pytest.raises(ValueError, match="empty"):
        KeyRing(given)


def test_a_reload_that_finds_an_empty_key_keeps_the_old_keys(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "keys.txt"
    file.write_text("alice:key-a\n")
    ring = KeyRing([], str(file))
    file.write_text("alice:key-a\nplaceholder:\n")
    ring.reload()
    assert ring.name_of("key-a") == "alice" and ring.name_of("") is None
    assert any(r.levelname == "ERROR" and "line 2" in r.getMessage() for r in caplog.records)


def test_an_unreadable_keys_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not read"):
        KeyRing([], str(tmp_path / "missing"))


@pytest.mark.parametrize("headers,query", [
    ({"X-API-Key": "\u00a0"}, ""), ({"xi-api-key": "\u00a0"}, ""),
    ({"Authorization": "Bearer \u00a0"}, ""), ({"X-API-Key": " \t"}, ""),
    ({}, "api_key=%C2%A0"), ({}, "api_key="), ({"Sec-WebSocket-Protocol": "token, \u00a0"}, ""),
])
async def test_unicode_whitespace_is_not_stripped_and_an_empty_key_matches_nothing(
        headers: dict[str, str], query: str) -> None:
    ring = KeyRing([KEY])
    ring.keys["placeholder"] = ""  # as a keys file with an empty entry once loaded it
    done = await call("/api/tts/ws", headers=headers, query=query, keys=ring)
    assert done.reached == [] and done.status == 401


async def test_only_http_whitespace_around_a_key_is_ignored() -> None:
    assert (await call("/api/tts/ws", headers={"X-API-Key": f" \t{KEY}\t "})).reached
    assert (await call("/api/tts/ws", headers={"Authorization": f"Bearer  {KEY} "})).reached
    padded = await call("/api/tts/ws", headers={"X-API-Key": f"{KEY}\u00a0"})
    assert padded.reached == []


@pytest.mark.parametrize("query", [
    f"api_key={KEY}", f"api%5Fkey={KEY}", f"%61pi_key={KEY}", f"access%5ftoken={KEY}",
    f"x=1&api%5Fkey={KEY}&y=2", f"key={KEY}", f"token={KEY}", f"xi-api-key={KEY}",
    f"api+key={KEY}", f"API_KEY={KEY}", f"api_key={KEY}%22x",
])
def test_a_key_in_the_query_is_hidden_however_its_name_is_spelled(query: str) -> None:
    import logging

    path = f"/api/tts/ws?{query}"
    for args in (("127.0.0.1", "GET", path), ("127.0.0.1", f"GET {path} HTTP/1.1", "")):
        record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s "%s %s"', args,
                                   None)
        RequestIds().filter(record)
        assert KEY not in record.getMessage(), record.getMessage()


@pytest.mark.parametrize("query", [f"api%5Fkey={KEY}", f"access%5Ftoken={KEY}",
                                   f"%61pi_key={KEY}"])
async def test_what_authenticates_in_a_query_is_what_the_logs_hide(query: str) -> None:
    import logging

    assert (await call("/api/tts/ws", query=query)).reached == [("key1", "native")]
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, "%s",
                               (f"/api/tts/ws?{query}",), None)
    RequestIds().filter(record)
    assert KEY not in record.getMessage()


def test_every_query_name_auth_takes_is_one_the_logs_hide() -> None:
    from orpheus_ws.http.auth import QUERY_KEYS
    from orpheus_ws.logs import is_secret_name

    assert all(is_secret_name(name) for name in QUERY_KEYS)
    assert not is_secret_name("voice") and not is_secret_name("keyboard")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_one_record_is_one_line_whatever_its_message_holds(fmt: str) -> None:
    import io
    import logging

    from orpheus_ws.logs import JsonLines, TextLines

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIds())
    handler.setFormatter(JsonLines() if fmt == "json" else TextLines())
    logger = logging.getLogger("orpheus_ws.test_one_line")
    logger.addHandler(handler)
    logger.propagate = False
    path = "/nope\nFAKE LINE\x1b[31m\r\u2028\x85\x9b\u00a0"
    try:
        logger.warning("refused %s %s: %d", "http", path, 404)
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert out.endswith("\n") and out[:-1].isprintable(), repr(out)
    assert len(out.splitlines()) == 1
    if fmt == "json":
        assert orjson.loads(out)["message"] == f"refused http {path}: 404"
    else:
        assert "/nope\\nFAKE LINE\\x1b[31m" in out


def test_a_traceback_still_follows_its_escaped_message() -> None:
    import logging

    from orpheus_ws.logs import TextLines

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, "", 0, "bad\npath", None, sys.exc_info())
    RequestIds().filter(record)
    out = TextLines().format(record)
    first, *rest = out.splitlines()
    assert first.endswith("bad\\npath") and rest[0].startswith("Traceback")


def counted(path: str, status: str) -> float:
    """The responses counted for ``path``'s route kind with ``status``."""
    route = route_kind(path).name
    return float(HTTP_RESPONSES.labels(route, status)._value.get())


@pytest.mark.parametrize("path,code_of", [
    ("/v1/audio/speech", lambda b: b["error"]["code"]),
    ("/v1/speak", lambda b: b["err_code"].lower()),
    ("/v1/text-to-speech/tara", lambda b: b["detail"]["status"]),
    ("/tts/bytes", lambda b: b["code"]),
    ("/api/tts", lambda b: b["error"]["code"]),
])
async def test_a_route_that_fails_unexpectedly_gets_the_policys_500_in_its_shape(
        path: str, code_of: Callable[[Any], str]) -> None:
    """A bug in a route is a 500 in the route's own shape, counted, with nothing of the
    exception's text (Starlette's own answer would be a plain-text 500, uncounted)."""

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("secret /internal/path.py")

    done = Call()
    gate = Gate(broken, keys=KeyRing(), max_connections=10, allowed_origins=["*"],
                max_body_bytes=1024, body_timeout_s=30)
    before = counted(path, "500")
    await gate({"type": "http", "method": "POST", "path": path, "query_string": b"",
                "headers": [], "state": {}}, done.receive, done.send)
    assert done.status == 500
    assert code_of(done.body) == "internal_error"
    assert b"secret" not in b"".join(m.get("body", b"") for m in done.sent)
    assert counted(path, "500") == before + 1
