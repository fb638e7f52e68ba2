"""Every socket route lives under the same limits (the socket runtime), each answered in its
own protocol's words: a message over the cap, text past the buffer cap, an idle client, a
client that stops reading, and a message far over the cap while other clients are served.

Against the strict server (tests/e2e/harness.py, STRICT_LIMITS: 2000-byte messages, 1.5 s
idle, 2 s send timeout; 5000 characters held per context).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
import websockets
from websockets.asyncio.client import ClientConnection

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from ..utils import eventually, scaled
from .harness import STRICT_LIMITS, ServerProcess, serve_command, serving

CAP = int(STRICT_LIMITS["ws_max_message_bytes"])
IDLE_S = float(STRICT_LIMITS["ws_idle_timeout"])
HELD = 5000  # ws_max_text_chars: characters held per context


def dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


@dataclass(frozen=True)
class Route:
    """One socket route as a client speaks it."""

    name: str
    path: str
    speak: Callable[[str], list[str]]  # messages that add text to one context
    error: Callable[[dict[str, Any]], str | None]  # a message's error code, if it is one
    too_big: tuple[str | None, int]  # (error code, close code) for a message over the cap
    too_much_text: tuple[str | None, int | None]  # close None: the socket stays usable
    idle: tuple[str | None, int]
    opening: list[str] = field(default_factory=list)


def _cartesia(text: str) -> list[str]:
    return [dumps({"context_id": "a", "transcript": text, "continue": True,
                   "voice": {"id": "tara"}, "output_format": {
                       "container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000}})]


ROUTES = [
    Route("native", "/api/tts/ws",
          lambda t: [dumps({"type": "text", "context_id": "a", "text": t})],
          lambda m: m.get("code") if m.get("type") == "error" else None,
          ("message_too_big", 1009), ("text_too_long", None), ("idle_timeout", 4000)),
    Route("deepgram", "/v1/speak?encoding=linear16&sample_rate=24000",
          lambda t: [dumps({"type": "Speak", "text": t})],
          lambda m: str(m.get("err_code") or m.get("warn_code")).lower()
          if m.get("type") in ("Error", "Warning") else None,
          ("message_too_big", 1009), ("text_too_long", None), ("idle_timeout", 4000)),
    Route("elevenlabs", "/v1/text-to-speech/tara/multi-stream-input?output_format=pcm_24000",
          lambda t: [dumps({"text": t, "context_id": "a"})],
          lambda m: m.get("error") if "error" in m else None,
          ("message_too_big", 1008), ("text_too_long", 1008), ("input_timeout_exceeded", 1008)),
    Route("elevenlabs-single", "/v1/text-to-speech/tara/stream-input?output_format=pcm_24000",
          lambda t: [dumps({"text": t})],
          lambda m: m.get("error") if "error" in m else None,
          ("message_too_big", 1008), ("text_too_long", 1008), ("input_timeout_exceeded", 1008)),
    Route("cartesia", "/tts/websocket", _cartesia,
          lambda m: str(m.get("status_code")) if m.get("type") == "error" else None,
          ("413", 1009), ("400", None), ("408", 4000)),
    Route("together", "/v1/audio/speech/websocket",
          lambda t: [dumps({"type": "input_text_buffer.append", "text": t}),
                     dumps({"type": "input_text_buffer.commit"})],
          lambda m: m["error"].get("code") if m.get("type") == "error" else None,
          ("message_too_big", 1009), ("text_too_long", None), ("idle_timeout", 4000)),
    Route("baseten", "/v1/baseten", lambda t: [t], lambda m: None,
          (None, 1009), (None, 1008), (None, 4000), opening=[dumps({"voice": "tara"})]),
]
BY_NAME = {route.name: route for route in ROUTES}


async def connect(server: ServerProcess, route: Route, **kwargs: Any) -> ClientConnection:
    socket = await websockets.connect(server.url.replace("http", "ws") + route.path,
                                      compression=None, **kwargs)
    for message in route.opening:
        await socket.send(message)
    return socket


async def errors_until_closed(socket: ClientConnection, route: Route,
                              timeout: float = 10.0) -> tuple[list[str], int | None]:
    """The error codes the socket received, and its close code, once it has closed."""
    codes: list[str] = []
    async with asyncio.timeout(scaled(timeout)):
        with contextlib.suppress(websockets.ConnectionClosed):  # closed with an error code
            async for message in socket:
                if isinstance(message, str):
                    code = route.error(orjson.loads(message))
                    if code is not None:
                        codes.append(code)
    return codes, socket.close_code


async def next_error(socket: ClientConnection, route: Route, timeout: float = 10.0) -> str:
    async with asyncio.timeout(scaled(timeout)):
        while True:
            message = await socket.recv()
            if isinstance(message, str):
                code = route.error(orjson.loads(message))
                if code is not None:
                    return code


@pytest.mark.parametrize("name", list(BY_NAME))
async def test_a_message_over_the_cap_is_refused_in_the_protocols_words(
        name: str, strict_server: ServerProcess) -> None:
    route = BY_NAME[name]
    socket = await connect(strict_server, route)
    await socket.send(route.speak("a" * (CAP + 100))[0])
    codes, close = await errors_until_closed(socket, route)
    code, expected_close = route.too_big
    assert close == expected_close, (codes, close)
    assert codes == ([code] if code is not None else []), codes


@pytest.mark.parametrize("name", list(BY_NAME))
async def test_a_megabyte_message_leaves_the_server_responsive(
        name: str, strict_server: ServerProcess, http: aiohttp.ClientSession) -> None:
    """The probe's message: 1 MB of text (it froze every client for 5.5 s). /health answers
    in under 50 ms (the median of the probes while it is refused)."""
    route = BY_NAME[name]
    socket = await connect(strict_server, route)
    latencies: list[float] = []

    async def probe() -> None:
        for _ in range(20):
            started = time.perf_counter()
            async with http.get(strict_server.url + "/health") as response:
                assert response.status == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)

    prober = asyncio.ensure_future(probe())
    try:
        await asyncio.sleep(0.02)
        with contextlib.suppress(websockets.ConnectionClosed):
            await socket.send(route.speak("Hello there. " * 80_000)[0])
        await errors_until_closed(socket, route)
    finally:
        await prober
    assert sorted(latencies)[len(latencies) // 2] < 0.05, latencies
    assert max(latencies) < scaled(1.0), latencies
    assert socket.close_code in (1009, 1008), socket.close_code


@pytest.mark.parametrize("name", list(BY_NAME))
async def test_text_past_the_buffer_cap_is_refused(
        name: str, strict_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    """Text arrives far faster than it can be spoken (the stand-in at 20 tokens/s): once a
    context holds 5000 characters not yet spoken, more is refused."""
    fake_llm.config.tokens_per_second = 20
    route = BY_NAME[name]
    socket = await connect(strict_server, route)
    piece = "Words to speak, one after another, and more of them. " * 30  # 1590 characters
    code, close = route.too_much_text
    try:
        for _ in range(3):  # 4770 characters: within the cap
            for message in route.speak(piece):
                await socket.send(message)
        await socket.send(dumps({"type": "ping", "id": 1}) if name == "native" else
                          route.speak(" ")[0])  # nothing refused so far
        for message in route.speak(piece):
            await socket.send(message)
        if close is None:  # refused, and the socket stays open
            assert await next_error(socket, route) == code
            assert socket.close_code is None
        else:
            codes, closed = await errors_until_closed(socket, route)
            assert closed == close, (codes, closed)
            assert codes == ([code] if code is not None else []), codes
    finally:
        await socket.close()
    await eventually(lambda: fake_llm.active == 0, timeout=5, what="stand-in slots free")


@pytest.mark.parametrize("name", list(BY_NAME))
async def test_an_idle_socket_is_closed(name: str, strict_server: ServerProcess) -> None:
    route = BY_NAME[name]
    socket = await connect(strict_server, route)
    started = time.monotonic()
    codes, close = await errors_until_closed(socket, route, timeout=IDLE_S + 10)
    code, expected_close = route.idle
    assert close == expected_close, (codes, close)
    assert codes == ([code] if code is not None else []), codes
    assert time.monotonic() - started >= IDLE_S - 0.1


@pytest.mark.parametrize("name", list(BY_NAME))
async def test_a_client_that_stops_reading_is_closed(
        name: str, strict_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    """The socket's buffers fill, the outbox holds the audio, the blocked send times out
    (2 s): 4002, and the generations stop."""
    fake_llm.config.tokens_per_second = 2000
    route = BY_NAME[name]
    socket = await connect(strict_server, route, max_queue=1, ping_interval=None)
    text = " ".join(f"Sentence {n} goes on for a while." for n in range(40)) + " "
    for message in route.speak(text):
        await socket.send(message)
    if name == "deepgram":
        await socket.send(dumps({"type": "Flush"}))
    await asyncio.sleep(scaled(8))  # buffers fill, the blocked send times out
    async with asyncio.timeout(scaled(30)):  # now read everything that was waiting
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in socket:
                pass
    assert socket.close_code == 4002
    await eventually(lambda: fake_llm.active == 0, timeout=5, what="stand-in slots free")


@pytest_asyncio.fixture(scope="module")
async def two_slot_server(shared_standin: StandinLLMServer, snac_dir: Path,
                          tmp_path_factory: pytest.TempPathFactory
                          ) -> AsyncIterator[ServerProcess]:
    """Two generations at once, server-wide, and no queue: a third is refused at once."""
    async with serving(lambda port: serve_command(
            port, shared_standin.url, snac_dir, "--codec", "passthrough", "--max-generations",
            "2", "--max-queued", "0"),
            tmp_path_factory.mktemp("logs") / "two_slot_server.log") as server:
        yield server


async def settle(socket: ClientConnection, quiet_s: float = 0.5) -> int:
    """Reads until the socket has been quiet for ``quiet_s``; the messages read."""
    count = 0
    async with asyncio.timeout(scaled(20)):
        while True:
            try:
                async with asyncio.timeout(quiet_s if count else scaled(10)):
                    await socket.recv()
                count += 1
            except TimeoutError:
                return count


@pytest.mark.parametrize("name", list(BY_NAME))
async def test_two_quiet_sockets_hold_no_generation_slot(
        name: str, two_slot_server: ServerProcess, fake_llm: StandinLLMServer,
        http: aiohttp.ClientSession) -> None:
    """Each socket says a sentence, hears it, and stays open saying nothing: with
    --max-generations 2, other clients are still served."""
    fake_llm.config.frames = 2
    route = BY_NAME[name]
    sockets = [await connect(two_slot_server, route) for _ in range(2)]
    try:
        for socket in sockets:
            for message in route.speak("Hello there. "):
                await socket.send(message)
            if name in ("native", "deepgram"):
                await socket.send(dumps({"type": "flush", "context_id": "a"} if name == "native"
                                        else {"type": "Flush"}))
            assert await settle(socket) > 0  # its audio came
        for _ in range(3):
            async with http.post(two_slot_server.url + "/api/tts/wav",
                                 json={"text": "Hi.", "max_tokens": 70}) as response:
                assert response.status == 200, await response.text()
        for socket in sockets:  # still open, and still speaking when asked
            for message in route.speak("Again. "):
                await socket.send(message)
            if name in ("native", "deepgram"):
                await socket.send(dumps({"type": "flush", "context_id": "a"} if name == "native"
                                        else {"type": "Flush"}))
            assert await settle(socket) > 0
    finally:
        for socket in sockets:
            await socket.close()
