"""Baseten's Orpheus endpoint at /v1/baseten: LiveKit's baseten.TTS, unchanged but for its
model_endpoint, streams over the socket and synthesizes over HTTP; the real server process
with real SNAC and the stand-in LLM."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import websockets
from livekit.plugins import baseten

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from .harness import SAMPLES_PER_FRAME, ServerProcess, completions
from .livekit_audio import streamed, synthesized

FRAMES = 6


async def test_livekit_baseten_streams_two_turns_and_synthesizes(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    ws_endpoint = standin_server.url.replace("http", "ws") + "/v1/baseten"
    async with aiohttp.ClientSession() as http:
        tts = baseten.TTS(api_key="unused", model_endpoint=ws_endpoint, voice="leo",
                          http_session=http)
        for turn in ("Hello there.", "And again."):
            samples, rates = await streamed(tts, turn)
            assert rates == {24000}
            assert samples == FRAMES * SAMPLES_PER_FRAME  # 24 kHz PCM, exactly
            assert completions(fake_llm)[-1] == f"leo: {turn}"
        tts = baseten.TTS(api_key="unused", model_endpoint=standin_server.url + "/v1/baseten",
                          voice="zac", http_session=http)
        samples, rates = await synthesized(tts, "Hello there.")
        assert rates == {24000}
        assert abs(samples - FRAMES * SAMPLES_PER_FRAME) < SAMPLES_PER_FRAME
        assert completions(fake_llm)[-1] == "zac: Hello there."


async def test_closing_a_stream_mid_reply_frees_the_slot(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 300
    fake_llm.config.tokens_per_second = 100
    url = standin_server.url.replace("http", "ws") + "/v1/baseten"
    async with websockets.connect(url) as socket:
        await socket.send('{"voice": "tara", "max_tokens": 2000, "buffer_size": 10}')
        await socket.send("A long reply that goes on. ")
        await socket.send("__END__")
        assert isinstance(await socket.recv(), bytes)
        assert fake_llm.active > 0
    started = time.monotonic()
    while fake_llm.active:
        assert time.monotonic() - started < 2, "the generation was not aborted"
        await asyncio.sleep(0.01)


async def test_a_socket_without_options_is_closed(standin_server: ServerProcess) -> None:
    url = standin_server.url.replace("http", "ws") + "/v1/baseten"
    async with websockets.connect(url) as socket:
        await socket.send("not options")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


async def test_a_bad_http_request_is_400(standin_server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            standin_server.url + "/v1/baseten", json={"prompt": ""}) as response:
        assert response.status == 400
