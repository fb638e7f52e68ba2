"""Deepgram's, ElevenLabs' and Cartesia's HTTP speech routes, as their clients call them, on
the real server process (real SNAC, stand-in LLM); the audio is decoded with PyAV."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import av
import pytest

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from .harness import SAMPLES_PER_FRAME, ServerProcess, completions

FRAMES = 6
SECONDS = FRAMES * SAMPLES_PER_FRAME / 24000
FRAME_S = SAMPLES_PER_FRAME / 24000


def probe(data: bytes, raw: tuple[int, int] | None = None) -> tuple[int, float]:
    """(rate, seconds): raw audio given (rate, bytes per sample), else decoded with PyAV."""
    if raw is not None:
        return raw[0], len(data) / raw[1] / raw[0]
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(int(frame.samples) for frame in container.decode(stream))
        rate = int(stream.codec_context.sample_rate)
    return rate, samples / rate


async def post(server: ServerProcess, path: str, body: dict[str, Any]
               ) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as http, http.post(server.url + path,
                                                          json=body) as response:
        return response.status, response.content_type, await response.read()


@pytest.mark.parametrize("query,raw,rate", [
    ("model=aura-2-thalia-en&encoding=linear16&sample_rate=16000&container=none", (16000, 2),
     16000),
    ("model=aura-2-tara-en&encoding=mulaw&sample_rate=8000&container=none", (8000, 1), 8000),
    ("model=leo&encoding=linear16&sample_rate=24000", None, 24000),  # Deepgram's wav default
    ("model=aura-asteria-en&encoding=mp3", None, 24000),
])
async def test_deepgram_speak(query: str, raw: tuple[int, int] | None, rate: int,
                              standin_server: ServerProcess,
                              fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    status, _, data = await post(standin_server, "/v1/speak?" + query, {"text": "Hello."})
    assert status == 200
    got_rate, seconds = probe(data, raw)
    assert got_rate == rate and abs(seconds - SECONDS) <= FRAME_S
    voice = completions(fake_llm)[-1].split(":")[0]
    assert voice == {"aura-2-tara-en": "tara", "leo": "leo"}.get(
        query.split("&")[0].removeprefix("model="), "tara")  # unknown ids: the default


@pytest.mark.parametrize("path,fmt,raw,rate", [
    ("/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream", "mp3_22050_32", None, 22050),
    ("/v1/text-to-speech/zac", "pcm_16000", (16000, 2), 16000),
    ("/v1/text-to-speech/zac/stream", "ulaw_8000", (8000, 1), 8000),
    ("/v1/text-to-speech/zac/stream", None, None, 44100),  # mp3_44100_128, ElevenLabs' default
])
async def test_elevenlabs_text_to_speech(path: str, fmt: str | None,
                                         raw: tuple[int, int] | None, rate: int,
                                         standin_server: ServerProcess,
                                         fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    query = f"?output_format={fmt}" if fmt else ""
    status, _, data = await post(standin_server, path + query,
                                 {"text": "Hello.", "model_id": "eleven_flash_v2_5"})
    assert status == 200
    got_rate, seconds = probe(data, raw)
    assert got_rate == rate and abs(seconds - SECONDS) <= FRAME_S
    assert completions(fake_llm)[-1].startswith("zac:" if "zac" in path else "tara:")


@pytest.mark.parametrize("output_format,raw,rate", [
    ({"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000}, (24000, 2), 24000),
    ({"container": "wav", "encoding": "pcm_s16le", "sample_rate": 44100}, None, 44100),
    ({"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}, (8000, 1), 8000),
    ({"container": "mp3", "sample_rate": 44100, "bit_rate": 128000}, None, 44100),
])
async def test_cartesia_bytes(output_format: dict[str, Any], raw: tuple[int, int] | None,
                              rate: int, standin_server: ServerProcess,
                              fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    status, _, data = await post(standin_server, "/tts/bytes", {
        "model_id": "sonic-2", "transcript": "Hello.", "language": "en",
        "voice": {"mode": "id", "id": "a0e99841-438c-4a64-b679-ae501e7d6091"},
        "output_format": output_format})
    assert status == 200
    got_rate, seconds = probe(data, raw)
    assert got_rate == rate and abs(seconds - SECONDS) <= FRAME_S


@pytest.mark.parametrize("path,body", [
    ("/v1/speak?encoding=wav", {"text": "Hi."}),
    ("/v1/speak?encoding=mulaw&sample_rate=16000", {"text": "Hi."}),
    ("/v1/speak", {"text": ""}),
    ("/v1/text-to-speech/zac?output_format=mp3_1_2", {"text": "Hi."}),
    ("/tts/bytes", {"transcript": "Hi.", "output_format": {"encoding": "pcm_s24le"}}),
    ("/tts/bytes", {"transcript": None}),
    # The robustness probe's (#19): each was a plain-text 500, or a ValueError's text.
    ("/v1/speak?encoding=mp3&bit_rate=-5", {"text": "Hi."}),
    ("/v1/speak?sample_rate=abc", {"text": "Hi."}),
    ("/v1/text-to-speech/zac?output_format=mp3_44100_99999", {"text": "Hi."}),
    ("/tts/bytes", {"transcript": "Hi.", "output_format": {"encoding": ["pcm_s16le"]}}),
    ("/tts/bytes", {"transcript": "Hi.", "output_format": {"sample_rate": "fast"}}),
])
async def test_bad_vendor_requests_are_400(path: str, body: dict[str, Any],
                                           standin_server: ServerProcess) -> None:
    status, content_type, data = await post(standin_server, path, body)
    assert status == 400 and content_type == "application/json", data[:300]
    assert b"invalid literal" not in data and b"Traceback" not in data


async def test_a_dead_backend_is_503_on_every_vendor_route(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.fault = "refuse"
    for path, body in (("/v1/speak", {"text": "Hi."}),
                       ("/v1/text-to-speech/zac", {"text": "Hi."}),
                       ("/tts/bytes", {"transcript": "Hi."})):
        status, _, _ = await post(standin_server, path, body)
        assert status == 503, path
