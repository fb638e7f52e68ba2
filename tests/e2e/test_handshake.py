"""WebSocket handshakes the server can't take are refused before they are accepted, with a
status the voice-agent frameworks read right: 503 and Retry-After for overload (they retry),
404 for a path with no socket (retrying can't help). Nothing already open is touched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import websockets
from websockets.exceptions import InvalidStatus

from orpheus_ws.client import OrpheusClient
from orpheus_ws.config import Settings
from orpheus_ws.devtools.standin_llm import StandinLLMServer
from orpheus_ws.engine import PassThroughCodec

from .harness import serve_in_process

PATHS = ["/api/tts/ws", "/v1/speak", "/tts/websocket", "/v1/baseten",
         "/v1/audio/speech/websocket", "/v1/text-to-speech/tara/multi-stream-input"]


@pytest_asyncio.fixture
async def two_socket_server(standin: StandinLLMServer) -> AsyncIterator[str]:
    async for address in serve_in_process(standin, PassThroughCodec(),
                                          Settings(ws_max_connections=2)):
        yield address


async def refused(url: str) -> Any:
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(url):
            pass
    return info.value.response


async def test_past_the_socket_cap_every_route_answers_503_with_retry_after(
        two_socket_server: str) -> None:
    base = f"ws://{two_socket_server}"
    async with OrpheusClient.connect(base + "/api/tts/ws") as first, \
            websockets.connect(base + "/v1/speak"):
        for path in PATHS:
            response = await refused(base + path)
            assert response.status_code == 503, path
            assert response.headers["Retry-After"] == "2"
            assert "server_full" in response.body.decode().lower()  # in the route's shape
            assert response.headers["dg-error"]  # pipecat's Deepgram service reads it
        handle = await first.open_context("still")  # the open sockets carry on
        await handle.send_text("Still here.", end=True)
        _, done = await handle.collect()
        assert done["samples"] == 4 * 2048
    async with OrpheusClient.connect(base + "/api/tts/ws") as again:  # room again
        assert again.ready["protocol"] == 1


async def test_a_path_without_a_socket_is_404(two_socket_server: str) -> None:
    response = await refused(f"ws://{two_socket_server}/v1/no-such-socket")
    assert response.status_code == 404
    assert "Retry-After" not in response.headers
