"""Deepgram's speak socket, WS /v1/speak: pipecat's DeepgramTTSService (through run_test) and
LiveKit's deepgram.TTS streams, unchanged but for a base URL, and a raw socket for Clear,
faults and bad input; the real server process with real SNAC and the stand-in LLM."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import pytest
import websockets
from livekit.plugins import deepgram
from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame, TTSStoppedFrame
from pipecat.services.deepgram.tts import DeepgramTTSService
from pipecat.tests.utils import SleepFrame, run_test

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from .harness import SAMPLES_PER_FRAME, ServerProcess, completions
from .livekit_audio import streamed

FRAMES = 6


def ws_url(server: ServerProcess, query: str = "") -> str:
    return server.url.replace("http", "ws") + "/v1/speak" + query


@pytest.mark.parametrize("encoding,rate,width", [("linear16", 24000, 2),
                                                 ("linear16", 16000, 2), ("mulaw", 8000, 1)])
async def test_pipecat_deepgram_tts_service(encoding: str, rate: int, width: int,
                                            standin_server: ServerProcess,
                                            fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    tts = DeepgramTTSService(api_key="unused", base_url=standin_server.url.replace("http", "ws"),
                             sample_rate=rate, encoding=encoding,
                             settings=DeepgramTTSService.Settings(voice="aura-2-leo-en"))
    down, _ = await run_test(tts, frames_to_send=[
        TTSSpeakFrame("Hello there."), SleepFrame(1.5), TTSSpeakFrame("And again."),
        SleepFrame(1.5)])
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert {f.sample_rate for f in audio} == {rate}
    assert sum(len(f.audio) for f in audio) == 2 * FRAMES * SAMPLES_PER_FRAME * rate // 24000 \
        * width  # two whole utterances, exactly
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    assert completions(fake_llm)[-2:] == ["leo: Hello there.", "leo: And again."]


async def test_livekit_deepgram_streams_two_turns_on_a_pooled_socket(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    """LiveKit sends one Speak per word and a Flush per segment: the words are spoken as
    sentences (our segmentation), not one generation per word."""
    fake_llm.config.frames = FRAMES
    before = len(completions(fake_llm))
    async with aiohttp.ClientSession() as http:
        tts = deepgram.TTS(base_url=standin_server.url + "/v1/speak", api_key="unused",
                           http_session=http, sample_rate=16000)
        for turn in ("Hello there, how are you today?", "Fine, thank you."):
            samples, rates = await streamed(tts, turn)
            assert rates == {16000}
            assert samples >= FRAMES * SAMPLES_PER_FRAME * 16000 // 24000
        await tts.aclose()
    spoken = completions(fake_llm)[before:]
    assert " ".join(text.split(": ", 1)[1] for text in spoken).split() == \
        ["Hello", "there,", "how", "are", "you", "today?", "Fine,", "thank", "you."]
    assert len(spoken) <= 4  # sentences, not words


async def receive_until(socket: Any, kind: str, timeout: float = 10.0
                        ) -> tuple[dict[str, Any], int]:
    """Reads to the first JSON message of ``kind``: it and the audio bytes before it."""
    audio = 0
    deadline = time.monotonic() + timeout
    while True:
        message = await asyncio.wait_for(socket.recv(), max(0.01, deadline - time.monotonic()))
        if isinstance(message, bytes):
            audio += len(message)
            continue
        data: dict[str, Any] = orjson.loads(message)
        if data["type"] == kind:
            return data, audio


async def test_clear_stops_at_once_and_the_next_utterance_is_whole(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 200
    fake_llm.config.tokens_per_second = 100
    async with websockets.connect(ws_url(standin_server, "?model=tara")) as socket:
        assert (await receive_until(socket, "Metadata"))[0]["model_uuid"] == "tara"
        await socket.send(orjson.dumps({"type": "Speak", "text": "A long reply. " * 5}).decode())
        await socket.send('{"type": "Flush"}')
        while not isinstance(await socket.recv(), bytes):  # audio is flowing
            pass
        assert fake_llm.active > 0
        await socket.send('{"type": "Clear"}')
        cleared, _ = await receive_until(socket, "Cleared")  # for the flush it cut short too
        assert cleared["sequence_id"] == 1
        started = time.monotonic()
        while fake_llm.active:
            assert time.monotonic() - started < 1, "the generation was not aborted"
            await asyncio.sleep(0.01)
        fake_llm.config.frames = FRAMES
        fake_llm.config.tokens_per_second = 0
        await socket.send(orjson.dumps({"type": "Speak", "text": "Short."}).decode())
        await socket.send('{"type": "Flush"}')
        flushed, audio = await receive_until(socket, "Flushed")
        assert flushed["sequence_id"] == 1
        assert audio == FRAMES * SAMPLES_PER_FRAME * 2  # this utterance's only, whole
        await socket.send('{"type": "Close"}')
        with pytest.raises(websockets.ConnectionClosedOK):
            await socket.recv()


async def test_faults_are_warnings_and_the_socket_carries_on(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    async with websockets.connect(ws_url(standin_server)) as socket:
        for bad in ('{"type": "Shout", "text": "Hi."}', "not json", b"\x00\x01"):
            await socket.send(bad)
            warning, _ = await receive_until(socket, "Warning")
            assert warning["warn_msg"]
        fake_llm.config.fault = "refuse"
        await socket.send('{"type": "Speak", "text": "Hi."}')
        await socket.send('{"type": "Flush"}')
        warning, _ = await receive_until(socket, "Warning")
        assert warning["warn_code"] == "BACKEND_UNAVAILABLE"
        assert (await receive_until(socket, "Flushed"))[0]["sequence_id"] == 0  # no hang
        fake_llm.config.fault = "none"
        await socket.send('{"type": "Speak", "text": "Hi again."}')
        await socket.send('{"type": "Flush"}')
        _, audio = await receive_until(socket, "Flushed")
        assert audio == FRAMES * SAMPLES_PER_FRAME * 2


async def test_a_bad_encoding_is_an_error_then_a_close(standin_server: ServerProcess) -> None:
    async with websockets.connect(ws_url(standin_server, "?encoding=flac")) as socket:
        error = orjson.loads(await socket.recv())
        assert error["type"] == "Error" and "encoding" in error["err_msg"]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
