"""The bounds on an HTTP request (limits.py), as the gate applies them to every route: a body
over the cap is 413 (at once when its ``Content-Length`` says so, else as soon as the count
passes it, never read further), a body that doesn't arrive in time is 408, both in the
route's own error shape and counted; the request head is bounded by uvicorn, set up in
serving.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import uvicorn
from prometheus_client import REGISTRY
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Message

from orpheus_ws.cli import main as cli_main
from orpheus_ws.config import Settings
from orpheus_ws.http.auth import KeyRing
from orpheus_ws.http.gate import Gate
from orpheus_ws.serving import http_options

from .utils import scaled

CAP = 1000


class Exchange:
    """One HTTP request through a gate: what the client sent, what the route read, what came
    back."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0  # messages the gate pulled from the client
        self.read = b""  # the body as the route saw it
        self.route_error: BaseException | None = None
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.pulled += 1
        try:
            chunk = await anext(self.chunks)
        except StopAsyncIteration:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        """A route that reads the whole body, and answers 500 whatever went wrong (as a
        route with a broad ``except`` does)."""
        try:
            self.read = await Request(scope, receive).body()
            response = JSONResponse({"read": len(self.read)})
        except Exception as exc:
            self.route_error = exc
            response = JSONResponse({"error": "internal"}, status_code=500)
        await response(scope, receive, send)

    @property
    def status(self) -> int:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.sent
        return int(starts[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> Any:
        return orjson.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


async def chunks_of(size: int, count: int | None = None, *,
                    stall_after: int | None = None) -> AsyncIterator[bytes]:
    """``count`` chunks of ``size`` bytes (None: without end); after ``stall_after`` of them
    the client sends nothing more (a slow client)."""
    sent = 0
    while count is None or sent < count:
        if stall_after is not None and sent >= stall_after:
            await asyncio.Event().wait()
        sent += 1
        yield b"x" * size


async def post(path: str, chunks: AsyncIterator[bytes], *, length: int | None = None,
               body_timeout: float = 30.0) -> Exchange:
    exchange = Exchange(chunks)
    gate = Gate(exchange.app, keys=KeyRing(), max_connections=10, allowed_origins=["*"],
                max_body_bytes=CAP, body_timeout_s=body_timeout)
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"",
             "headers": headers, "state": {}}
    await asyncio.wait_for(gate(scope, exchange.receive, exchange.send), scaled(10))
    return exchange


def responses(route: str, status: int) -> float:
    return REGISTRY.get_sample_value("orpheus_ws_http_responses_total",
                                     {"route": route, "status": str(status)}) or 0.0


async def test_a_body_within_the_cap_reaches_the_route_whole() -> None:
    done = await post("/api/tts", chunks_of(100, 10), length=1000)
    assert done.status == 200 and done.read == b"x" * 1000


async def test_a_declared_length_over_the_cap_is_413_before_any_body_is_read() -> None:
    before = responses("openai", 413)
    done = await post("/v1/audio/speech", chunks_of(100), length=200 * 1024 * 1024)
    assert done.pulled == 0 and done.read == b""
    assert done.status == 413 and done.headers[b"connection"] == b"close"
    assert done.body["error"]["code"] == "body_too_large"
    assert responses("openai", 413) == before + 1


async def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_cap() -> None:
    before = responses("native", 413)
    done = await post("/api/tts", chunks_of(100))  # no Content-Length, no end
    assert done.pulled == CAP // 100 + 1  # not one message past the cap
    assert done.status == 413 and done.headers[b"connection"] == b"close"
    assert done.body["error"]["code"] == "body_too_large" and done.body["detail"]
    assert responses("native", 413) == before + 1


@pytest.mark.parametrize("path,shape", [
    ("/v1/audio/speech", lambda b: b["error"]["code"] == "body_too_large"
     and b["error"]["type"] == "invalid_request_error"),
    ("/v1/text-to-speech/tara", lambda b: b["detail"]["status"] == "body_too_large"),
    ("/tts/bytes", lambda b: b["code"] == "body_too_large" and b["error"]),
    ("/v1/baseten/predict", lambda b: b["code"] == "body_too_large"),
    ("/v1/speak", lambda b: b["err_code"] == "BODY_TOO_LARGE"),
])
async def test_the_413_comes_in_the_routes_own_error_shape(path: str, shape: Any) -> None:
    done = await post(path, chunks_of(100))
    assert done.status == 413 and shape(done.body), done.body


async def test_a_body_that_stalls_is_408_in_the_routes_shape() -> None:
    before = responses("cartesia", 408)
    done = await post("/tts/bytes", chunks_of(100, stall_after=2), body_timeout=0.05)
    assert done.status == 408 and done.headers[b"connection"] == b"close"
    assert done.body["code"] == "body_timeout"
    assert responses("cartesia", 408) == before + 1


async def test_once_the_body_is_in_waiting_for_a_disconnect_is_not_timed() -> None:
    listened: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await Request(scope, receive).body()
        listened.append((await receive())["type"])  # a streaming route listens for this
        await JSONResponse({})(scope, receive, send)

    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await asyncio.sleep(0.2)  # well past the body timeout
        return {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    gate = Gate(app, keys=KeyRing(), max_connections=10, allowed_origins=["*"],
                max_body_bytes=CAP, body_timeout_s=0.05)
    await gate({"type": "http", "method": "POST", "path": "/api/tts/stream",
                "query_string": b"", "headers": [], "state": {}}, receive, send)
    assert listened == ["http.disconnect"] and sent[0]["status"] == 200


def test_the_limits_are_settings_with_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert defaults.http_max_body_bytes == 1024 * 1024
    assert defaults.http_body_timeout == 30.0
    assert defaults.http_max_header_bytes == 64 * 1024
    seen: list[Settings] = []

    def serve(settings: Settings, workers: int) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr("orpheus_ws.cli._serve", serve)
    assert cli_main(["serve", "--http-max-body-bytes", "2048", "--http-body-timeout", "5",
                     "--http-max-header-bytes", "8192", "--http-keepalive-timeout", "7"]) == 0
    assert (seen[0].http_max_body_bytes, seen[0].http_body_timeout,
            seen[0].http_max_header_bytes, seen[0].http_keepalive_timeout) == (2048, 5, 8192, 7)


@pytest.mark.parametrize("field", ["http_max_body_bytes", "http_body_timeout",
                                   "http_max_header_bytes", "http_keepalive_timeout"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Settings.from_env({}, **{field: 0})


def test_uvicorn_bounds_the_request_head_and_keeps_alive_as_set() -> None:
    settings = Settings(http_max_header_bytes=8192, http_keepalive_timeout=7)
    options = http_options(settings)
    assert options["http"] == "h11"  # httptools can't be bounded (serving.py)
    assert options["h11_max_incomplete_event_size"] == 8192
    assert options["timeout_keep_alive"] == 7
    config = uvicorn.Config(lambda: None, **options)  # type: ignore[arg-type]
    assert config.h11_max_incomplete_event_size == 8192
