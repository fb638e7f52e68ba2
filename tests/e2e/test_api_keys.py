"""A server started with API keys, as an operator runs it on a network: each client presents
its key its own way (the openai SDK, pipecat's and LiveKit's services, our client, a browser),
and is served with the right key, refused with a wrong or missing one: HTTP 401 in the
route's shape, a WebSocket refused at the handshake, never accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import pytest_asyncio
import websockets
from livekit.plugins import baseten
from pipecat.frames.frames import ErrorFrame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.deepgram.tts import DeepgramTTSService
from pipecat.services.elevenlabs.tts import ElevenLabsTTSService
from pipecat.services.together.tts import TogetherTTSService
from pipecat.tests.utils import SleepFrame, run_test
from websockets.exceptions import InvalidStatus

from orpheus_ws.client import OrpheusClient
from orpheus_ws.devtools.standin_llm import StandinLLMServer

from .conftest import _server
from .harness import SAMPLES_PER_FRAME, ServerProcess, serve_command
from .livekit_audio import streamed

KEY, OTHER = "k-right-1234", "k-other-5678"
FRAMES = 4


@pytest_asyncio.fixture(scope="module")
async def keyed_server(shared_standin: StandinLLMServer, snac_dir: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    log = tmp_path_factory.mktemp("logs") / "keyed_server.log"
    async for server in _server(lambda port: serve_command(
            port, shared_standin.url, snac_dir, "--codec", "passthrough",
            "--api-key", KEY, "--api-key", OTHER), log):
        yield server


def ws(server: ServerProcess, path: str = "") -> str:
    return server.url.replace("http", "ws") + path


async def test_the_openai_sdk_bearer(keyed_server: ServerProcess,
                                     fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    client = openai.AsyncOpenAI(base_url=keyed_server.url + "/v1", api_key=KEY)
    audio = await client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.",
                                             response_format="pcm")
    assert len(audio.content) == FRAMES * SAMPLES_PER_FRAME * 2
    with pytest.raises(openai.AuthenticationError) as refused:
        await openai.AsyncOpenAI(base_url=keyed_server.url + "/v1", api_key="wrong",
                                 max_retries=0).audio.speech.create(
            model="tts-1", voice="alloy", input="Hi.")
    assert refused.value.status_code == 401
    async with aiohttp.ClientSession() as http, http.post(  # no key at all (the SDK needs one)
            keyed_server.url + "/v1/audio/speech",
            json={"model": "tts-1", "voice": "alloy", "input": "Hi."}) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "invalid_api_key"


async def test_our_client_and_a_browser_on_the_native_socket(keyed_server: ServerProcess) -> None:
    url = ws(keyed_server, "/api/tts/ws")
    for kwargs in ({"additional_headers": {"Authorization": f"Bearer {OTHER}"}},
                   {"subprotocols": ["token", KEY]}):  # a browser can't set headers
        async with OrpheusClient.connect(url, **kwargs) as client:
            assert client.ready["protocol"] == 1
    async with OrpheusClient.connect(url + f"?api_key={KEY}") as client:
        assert client.ready["protocol"] == 1
    for kwargs in ({}, {"additional_headers": {"Authorization": "Bearer wrong"}},
                   {"subprotocols": ["token", "wrong"]}):
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(url, **kwargs):
                pass
        assert refused.value.response.status_code == 401


async def test_the_seed_http_api_takes_the_key_and_health_needs_none(
        keyed_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/health", "/ready"):
            async with http.get(keyed_server.url + path) as response:
                assert response.status == 200, path
        request = {"text": "Hi.", "voice": "tara"}
        async with http.post(keyed_server.url + "/api/tts/wav", json=request) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "invalid_api_key"
        async with http.post(keyed_server.url + "/api/tts/wav", json=request,
                             headers={"Authorization": f"Bearer {KEY}"}) as response:
            assert response.status == 200 and len(await response.read()) > 44


def pipecat_services(server: ServerProcess, key: str) -> list[Any]:
    return [
        DeepgramTTSService(api_key=key, base_url=ws(server),  # Authorization: Token
                           settings=DeepgramTTSService.Settings(voice="aura-2-leo-en")),
        ElevenLabsTTSService(api_key=key, url=ws(server),  # xi-api-key
                             settings=ElevenLabsTTSService.Settings(voice="leo")),
        CartesiaTTSService(api_key=key, url=ws(server, "/tts/websocket"),  # X-API-Key
                           settings=CartesiaTTSService.Settings(voice="leo")),
        TogetherTTSService(api_key=key, url=ws(server, "/v1/audio/speech/websocket"),  # Bearer
                           settings=TogetherTTSService.Settings(
                               model="canopylabs/orpheus-3b-0.1-ft", voice="leo")),
    ]


@pytest.mark.parametrize("index", range(4), ids=["deepgram", "elevenlabs", "cartesia",
                                                  "together"])
async def test_pipecat_services_with_the_right_key_and_a_wrong_one(
        index: int, keyed_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    for key, served in ((KEY, True), ("wrong", False)):
        down, _ = await run_test(pipecat_services(keyed_server, key)[index], frames_to_send=[
            TTSSpeakFrame("Hello there."), SleepFrame(1.0)])
        audio = sum(len(f.audio) for f in down if isinstance(f, TTSAudioRawFrame))
        if served:
            assert audio == FRAMES * SAMPLES_PER_FRAME * 2
        else:
            assert audio == 0
            # pipecat's error frames travel upstream: the service reports, the pipeline lives
            assert not any(isinstance(f, ErrorFrame) and f.fatal for f in down)


async def test_livekit_baseten_api_key(keyed_server: ServerProcess,
                                       fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    async with aiohttp.ClientSession() as http:
        tts = baseten.TTS(api_key=KEY, model_endpoint=ws(keyed_server, "/v1/baseten"),
                          voice="leo", http_session=http)  # Authorization: Api-Key
        samples, _ = await streamed(tts, "Hello there.")
        assert samples == FRAMES * SAMPLES_PER_FRAME
        wrong = baseten.TTS(api_key="wrong", model_endpoint=ws(keyed_server, "/v1/baseten"),
                            voice="leo", http_session=http)
        with pytest.raises(Exception) as refused:
            await streamed(wrong, "Hello there.")
        assert "401" in str(refused.value) or "401" in repr(refused.value.__cause__)
