"""ElevenLabs' input-streaming sockets: pipecat's ElevenLabsTTSService (its transcript rebuilt
from our estimated alignment) and LiveKit's elevenlabs.TTS (its default mp3_22050_32) over a
pooled socket, unchanged but for a URL; raw sockets for close_context, the one-context
/stream-input, limits and bad input."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import aiohttp
import orjson
import websockets
from livekit.plugins import elevenlabs
from pipecat.services.elevenlabs.tts import ElevenLabsTTSService

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from ..utils import eventually
from .harness import SAMPLES_PER_FRAME, ServerProcess, completions
from .livekit_audio import streamed
from .pipecat_speech import speak_each

FRAMES = 6
TEXTS = ("Hello there, my friend.", "And again we speak.")


def ws_url(server: ServerProcess, path: str) -> str:
    return server.url.replace("http", "ws") + "/v1/text-to-speech/leo/" + path


async def test_pipecat_elevenlabs_transcript_is_the_text_word_for_word(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    tts = ElevenLabsTTSService(api_key="unused", url=standin_server.url.replace("http", "ws"),
                               settings=ElevenLabsTTSService.Settings(voice="leo"))
    spoken = await speak_each(tts, TEXTS)
    assert spoken.rates == {24000}
    assert spoken.audio_bytes == 2 * FRAMES * SAMPLES_PER_FRAME * 2
    assert spoken.stopped == 2
    assert spoken.words == " ".join(TEXTS).split()
    assert completions(fake_llm)[-2:] == [f"leo: {TEXTS[0]}", f"leo: {TEXTS[1]}"]


async def test_livekit_elevenlabs_streams_two_turns_in_its_default_mp3(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    async with aiohttp.ClientSession() as http:
        tts = elevenlabs.TTS(base_url=standin_server.url + "/v1", api_key="unused",
                             voice_id="leo", http_session=http)
        for text in TEXTS:
            samples, rates = await streamed(tts, text)
            assert rates == {22050}
            want = FRAMES * SAMPLES_PER_FRAME * 22050 / 24000
            assert abs(samples - want) <= 1152 * 2, samples  # mp3 frames of padding
        await tts.aclose()
    assert completions(fake_llm)[-2:] == [f"leo: {TEXTS[0]}", f"leo: {TEXTS[1]}"]


async def messages(socket: Any, until: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Reads JSON messages until one has ``until`` set (``isFinal`` or ``error``)."""
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not received or not received[-1].get(until):
        message = await asyncio.wait_for(socket.recv(), max(0.01, deadline - time.monotonic()))
        received.append(orjson.loads(message))
    return received


def pcm_bytes(received: list[dict[str, Any]], context: str | None = None) -> int:
    return sum(len(base64.b64decode(m["audio"])) for m in received
               if m.get("audio") and (context is None or m.get("contextId") == context))


async def test_close_context_finishes_and_a_second_one_stops_now(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    url = ws_url(standin_server, "multi-stream-input?output_format=pcm_16000")
    async with websockets.connect(url) as socket:
        for message in ({"text": " ", "context_id": "a", "voice_settings": {"speed": 1}},
                        {"text": "Short one. ", "context_id": "a"},
                        {"text": "", "context_id": "a", "flush": True},
                        {"context_id": "a", "close_context": True}):
            await socket.send(orjson.dumps(message).decode())
        received = await messages(socket, "isFinal")
        assert {m["contextId"] for m in received} == {"a"}
        assert pcm_bytes(received) == FRAMES * SAMPLES_PER_FRAME * 16000 // 24000 * 2
        aligned = [m["alignment"] for m in received if m.get("alignment")]
        assert len(aligned) == 1 and "".join(aligned[0]["chars"]) == "Short one. "
        span = aligned[0]["charStartTimesMs"][-1] + aligned[0]["charDurationsMs"][-1]
        assert span == round(1000 * FRAMES * SAMPLES_PER_FRAME / 24000)

        fake_llm.config.frames = 300
        fake_llm.config.tokens_per_second = 100
        await socket.send('{"text": "A long reply now. ", "context_id": "b", "flush": true}')
        await socket.send('{"context_id": "b", "close_context": true}')
        while (await messages(socket, "audio"))[-1].get("contextId") != "b":
            pass
        await socket.send('{"context_id": "b", "close_context": true}')
        started = time.monotonic()
        await eventually(lambda: fake_llm.active == 0, timeout=2, what="generation aborted")
        assert time.monotonic() - started < 1
        assert (await messages(socket, "isFinal"))[-1]["contextId"] == "b"
        fake_llm.config.tokens_per_second = 0
        fake_llm.config.frames = FRAMES
        await socket.send('{"text": "Next. ", "context_id": "c"}')
        await socket.send('{"context_id": "c", "close_context": true}')
        received = await messages(socket, "isFinal")
        assert pcm_bytes(received, "b") == 0  # nothing stale after the stop
        assert pcm_bytes(received, "c") == FRAMES * SAMPLES_PER_FRAME * 16000 // 24000 * 2
        await socket.send('{"close_socket": true}')
        await asyncio.wait_for(socket.wait_closed(), 5)
    assert socket.close_code == 1000


async def test_stream_input_speaks_one_context_and_closes(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    async with websockets.connect(ws_url(standin_server, "stream-input?output_format=ulaw_8000")
                                  ) as socket:
        await socket.send('{"text": " ", "voice_settings": {"stability": 0.5}}')
        await socket.send('{"text": "Hello there. ", "try_trigger_generation": true}')
        await socket.send('{"text": ""}')
        received = await messages(socket, "isFinal")
        await asyncio.wait_for(socket.wait_closed(), 5)
    assert socket.close_code == 1000
    assert all("contextId" not in m for m in received)
    assert pcm_bytes(received) == FRAMES * SAMPLES_PER_FRAME * 8000 // 24000  # 1 byte each


async def test_limits_and_bad_input_are_an_error_then_1008(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 300
    fake_llm.config.tokens_per_second = 50
    url = ws_url(standin_server, "multi-stream-input?output_format=pcm_24000")
    async with websockets.connect(url) as socket, websockets.connect(url) as other:
        await other.send('{"text": "Still here. ", "context_id": "x", "flush": true}')
        for n in range(6):
            await socket.send(orjson.dumps({"text": "Hi. ", "context_id": str(n)}).decode())
        refused = await messages(socket, "error")
        assert refused[-1]["error"] == "max_active_conversations"
        await asyncio.wait_for(socket.wait_closed(), 5)
        assert socket.close_code == 1008
        assert (await messages(other, "audio"))[-1]["contextId"] == "x"  # unaffected
    await eventually(lambda: fake_llm.active == 0, timeout=5, what="stand-in slots free")
    for path, send in (("multi-stream-input?output_format=pcm_16000", "not json"),
                       ("multi-stream-input?output_format=wav_44100", None),
                       ("multi-stream-input?inactivity_timeout=1", None)):
        async with websockets.connect(ws_url(standin_server, path)) as socket:
            if send is not None:
                await socket.send(send)
            error = (await messages(socket, "error"))[-1]
            await asyncio.wait_for(socket.wait_closed(), 5)
        assert socket.close_code == 1008, path
        assert error["code"] == 1008 and error["message"], path
    fake_llm.config.tokens_per_second = 0
