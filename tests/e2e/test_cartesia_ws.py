"""Cartesia's speech socket, WS /tts/websocket: pipecat's CartesiaTTSService (its transcript
rebuilt from our estimated word timings) and LiveKit's cartesia.TTS streams, unchanged but for
a URL; a raw socket for cancel, bad input and the fields every message must carry."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import websockets
from livekit.plugins import cartesia
from pipecat.services.cartesia.tts import CartesiaTTSService

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from ..utils import eventually
from .harness import SAMPLES_PER_FRAME, ServerProcess, completions
from .livekit_audio import streamed
from .pipecat_speech import speak_each

FRAMES = 6
TEXTS = ("Hello there, my friend.", "And again we speak.")


async def test_pipecat_cartesia_transcript_is_the_text_word_for_word(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    tts = CartesiaTTSService(api_key="unused",
                             url=standin_server.url.replace("http", "ws") + "/tts/websocket",
                             settings=CartesiaTTSService.Settings(voice="leo"))
    spoken = await speak_each(tts, TEXTS)
    assert spoken.rates == {24000}
    assert spoken.audio_bytes == 2 * FRAMES * SAMPLES_PER_FRAME * 2
    assert spoken.stopped == 2
    assert spoken.words == " ".join(TEXTS).split()
    assert completions(fake_llm)[-2:] == [f"leo: {TEXTS[0]}", f"leo: {TEXTS[1]}"]


async def test_livekit_cartesia_streams_two_turns(standin_server: ServerProcess,
                                                  fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    async with aiohttp.ClientSession() as http:
        tts = cartesia.TTS(base_url=standin_server.url, api_key="unused", http_session=http)
        for text in TEXTS:
            samples, rates = await streamed(tts, text)
            assert rates == {24000}
            assert samples == FRAMES * SAMPLES_PER_FRAME
        await tts.aclose()


async def collect(socket: Any, until: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not events or events[-1]["type"] != until:
        message = await asyncio.wait_for(socket.recv(), max(0.01, deadline - time.monotonic()))
        events.append(orjson.loads(message))
        assert {"type", "context_id", "done"} <= set(events[-1]), events[-1]
    return events


async def test_cancel_bad_input_and_the_fields_of_every_message(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 300
    fake_llm.config.tokens_per_second = 100
    fmt = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000}
    async with websockets.connect(standin_server.url.replace("http", "ws") +
                                  "/tts/websocket?cartesia_version=2025-04-16") as socket:
        await socket.send(orjson.dumps({"context_id": "a", "transcript": "A long reply. ",
                                        "continue": True, "output_format": fmt}).decode())
        await socket.send('{"context_id": "a", "transcript": "", "continue": false}')
        assert (await collect(socket, "chunk"))[-1]["context_id"] == "a"
        await socket.send('{"context_id": "a", "cancel": true}')
        started = time.monotonic()
        while fake_llm.active:
            assert time.monotonic() - started < 1, "the generation was not aborted"
            await asyncio.sleep(0.01)
        await socket.send(orjson.dumps({"context_id": "b", "transcript": "Hi.",
                                        "output_format": {"encoding": "pcm_s24le"}}).decode())
        events = await collect(socket, "error")
        assert events[-1]["context_id"] == "b" and events[-1]["done"] is True
        await socket.send("not json")
        assert (await collect(socket, "error"))[-1]["status_code"] == 400
        fake_llm.config.frames = FRAMES
        fake_llm.config.tokens_per_second = 0
        await socket.send(orjson.dumps({"context_id": "c", "transcript": "Short.",
                                        "continue": False, "add_timestamps": True,
                                        "output_format": fmt}).decode())
        events = [e for e in await collect(socket, "done") if e["context_id"] == "c"]
        assert [e["type"] for e in events if e["type"] != "chunk"] == ["timestamps", "done"]
        assert events[-1]["done"] is True
    assert completions(fake_llm)[-1] == "tara: Short."


async def test_too_many_contexts_and_unknown_messages_are_errors_others_unaffected(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 300
    fake_llm.config.tokens_per_second = 20
    url = standin_server.url.replace("http", "ws") + "/tts/websocket?cartesia_version=2025-04-16"
    async with websockets.connect(url) as socket, websockets.connect(url) as other:
        await other.send('{"context_id": "o", "transcript": "Other. ", "continue": false}')
        for n in range(9):  # the server's --ws-max-contexts is 8
            await socket.send(orjson.dumps({"context_id": f"c{n}", "transcript": "Hi. ",
                                            "continue": True}).decode())
        refused = (await collect(socket, "error"))[-1]
        assert (refused["context_id"], refused["status_code"]) == ("c8", 429)
        await socket.send('{"hello": "world"}')
        unknown = (await collect(socket, "error"))[-1]
        assert unknown["status_code"] == 400 and unknown["done"] is True
        assert (await collect(other, "chunk"))[-1]["context_id"] == "o"
        await socket.send('{"context_id": "c0", "cancel": true}')  # the socket still listens
    await eventually(lambda: fake_llm.active == 0, timeout=5, what="stand-in slots free")
    fake_llm.config.tokens_per_second = 0
