"""The seed-compatible HTTP API, end to end: the server process against llama-server or the
stand-in (for exact lengths and faults), reached over real HTTP as the seed's clients do."""

from __future__ import annotations

import asyncio
import base64
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orpheus_ws.devtools.standin_llm import StandinLLMServer
from orpheus_ws.lineup import ENGLISH

from ..utils import scaled
from .harness import (
    LONG_TEXT,
    MAX_TOKENS,
    SAMPLES_PER_FRAME,
    SEED_REQUEST,
    TINY_FRAMES,
    TTS_PATHS,
    ServerProcess,
    clean_env,
    completions,
    pcm_samples,
    read_wav,
    samples_from,
    sse_events,
)

# -- the seed's endpoints against the real llama-server ---------------------------------------


async def test_index_health_and_voices(real_server: ServerProcess, snac_dir: Path,
                                       http: aiohttp.ClientSession) -> None:
    async with http.get(real_server.url + "/") as response:
        assert response.status == 200
        index = await response.json()
    assert index["status"] == "ok"
    assert set(index["endpoints"]) >= {"health", "voices", "tts", "tts_wav", "tts_stream"}

    async with http.get(real_server.url + "/health") as response:
        assert response.status == 200
        health = await response.json()
    assert health["status"] == "healthy"
    assert health["backend"]["status"] == "ok"
    assert health["backend"]["slots"] == {"total": 4, "busy": 0}
    assert health["decoder"]["device"] == "cpu"
    assert health["decoder"]["weights"] == str(snac_dir)
    assert health["generations_in_flight"] == 0

    async with http.get(real_server.url + "/api/voices") as response:
        assert response.status == 200
        voices = await response.json()
    assert voices["voices"] == list(ENGLISH.voices)
    assert voices["default"] == "tara"


async def test_tts_json_returns_a_wav(real_server: ServerProcess,
                                      http: aiohttp.ClientSession) -> None:
    async with http.post(real_server.url + "/api/tts", json=SEED_REQUEST) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert set(body) == {"audio_base64", "duration_seconds", "sample_rate", "processing_time_ms",
                         "ttfa_ms"}
    channels, width, rate, samples = read_wav(base64.b64decode(body["audio_base64"]))
    assert (channels, width, rate) == (1, 2, 24000)
    assert body["sample_rate"] == 24000
    assert samples == TINY_FRAMES * SAMPLES_PER_FRAME
    assert samples % SAMPLES_PER_FRAME == 0
    assert body["duration_seconds"] == round(samples / 24000, 3)
    assert 0 < body["ttfa_ms"] <= body["processing_time_ms"]


async def test_tts_wav_with_timing_headers(real_server: ServerProcess,
                                          http: aiohttp.ClientSession) -> None:
    request = {"text": "Hello world", "voice": "tara", "max_tokens": MAX_TOKENS}
    async with http.post(real_server.url + "/api/tts/wav", json=request) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "audio/wav"
        data = await response.read()
        headers = response.headers
    channels, width, rate, samples = read_wav(data)
    assert (channels, width, rate, samples) == (1, 2, 24000, TINY_FRAMES * SAMPLES_PER_FRAME)
    assert float(headers["X-Audio-Duration-Seconds"]) == round(samples / 24000, 3)
    assert 0 < float(headers["X-TTFA-Ms"]) <= float(headers["X-Processing-Time-Ms"])


async def test_tts_stream_sse(real_server: ServerProcess, http: aiohttp.ClientSession) -> None:
    request = {"text": "Hello world", "voice": "tara", "max_tokens": MAX_TOKENS}
    chunks: list[dict[str, Any]] = []
    complete: dict[str, Any] = {}
    async with http.post(real_server.url + "/api/tts/stream", json=request) as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        async for event in sse_events(response):
            if event.get("event") == "complete":
                complete = event
                break
            chunks.append(event)
    assert [c["chunk"] for c in chunks] == list(range(1, len(chunks) + 1))
    assert chunks[0]["ttfa_ms"] > 0
    assert all("ttfa_ms" not in c for c in chunks[1:])
    for chunk in chunks:
        assert chunk["samples"] == pcm_samples(chunk["audio_base64"])
        assert chunk["duration_ms"] == pytest.approx(chunk["samples"] * 1000 / 24000, abs=0.01)
    total = sum(c["samples"] for c in chunks)
    assert total == TINY_FRAMES * SAMPLES_PER_FRAME
    assert complete["total_chunks"] == len(chunks)
    assert complete["total_samples"] == total
    assert complete["total_duration_s"] == round(total / 24000, 3)
    assert complete["processing_time_ms"] >= chunks[0]["ttfa_ms"]


SEED_CLIENT_EXAMPLE = '''
import aiohttp
import asyncio
import json
import base64
import numpy as np
from scipy.io import wavfile

async def stream_tts(text: str):
    async with aiohttp.ClientSession() as session:
        payload = {
            "text": text,
            "voice": "tara",
            "temperature": 0.3,
            "max_tokens": 512
        }

        async with session.post(
            "http://localhost:9100/api/tts/stream",
            json=payload
        ) as response:

            all_audio = []

            async for line in response.content:
                line_str = line.decode('utf-8').strip()

                if not line_str.startswith('data: '):
                    continue

                data = json.loads(line_str[6:])

                if data.get('event') == 'complete':
                    break

                if 'audio_base64' in data:
                    # Decode audio chunk
                    audio_bytes = base64.b64decode(data['audio_base64'])
                    audio_array = np.frombuffer(audio_bytes, dtype=np.int16)
                    all_audio.append(audio_array)
                    print(f"Received chunk {data['chunk']}")

            # Combine all chunks
            if all_audio:
                full_audio = np.concatenate(all_audio)
                wavfile.write("output.wav", 24000, full_audio)
                print(f"Saved {len(full_audio)/24000:.2f}s audio to output.wav")

asyncio.run(stream_tts("Hello, this is a test!"))
'''


async def test_seed_readme_python_client(standin_server: ServerProcess, fake_llm: StandinLLMServer,
                                         tmp_path: Path) -> None:
    """The seed README's client example works against us: verbatim but for the URL (and the
    trailing spaces of its blank lines)."""
    from scipy.io import wavfile

    fake_llm.config.frames = 6
    script = tmp_path / "client_example.py"
    script.write_text(SEED_CLIENT_EXAMPLE.replace("http://localhost:9100", standin_server.url))
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), cwd=tmp_path, env=clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), scaled(60))
    text = out.decode()
    assert process.returncode == 0, text
    assert "Received chunk 1" in text
    assert re.search(r"Saved \d+\.\d\ds audio to output.wav", text), text
    rate, audio = wavfile.read(tmp_path / "output.wav")
    assert rate == 24000
    assert audio.dtype.name == "int16"
    assert audio.shape == (6 * SAMPLES_PER_FRAME,)


# -- exact lengths (the stand-in stops after a set number of frames) --------------------------


@pytest.mark.parametrize("path", TTS_PATHS)
async def test_one_segment_gives_exactly_its_frames(
        path: str, standin_server: ServerProcess, fake_llm: StandinLLMServer,
        http: aiohttp.ClientSession) -> None:
    fake_llm.config.frames = 5
    before = len(fake_llm.requests)
    samples = await samples_from(http, standin_server, path, {"text": "Hello there, friend."})
    assert samples == 5 * SAMPLES_PER_FRAME
    assert completions(fake_llm, before) == ["tara: Hello there, friend."]


@pytest.mark.parametrize("path", ["/api/tts", "/api/tts/stream"])
async def test_long_text_speaks_every_segment(
        path: str, standin_server: ServerProcess, fake_llm: StandinLLMServer,
        http: aiohttp.ClientSession) -> None:
    assert 2900 <= len(LONG_TEXT) <= 3000
    fake_llm.config.frames = 1
    before = len(fake_llm.requests)
    samples = await samples_from(http, standin_server, path, {"text": LONG_TEXT})
    asked = completions(fake_llm, before)
    assert len(asked) > 20
    assert all(text.startswith("tara: ") for text in asked)
    # the next segment generates ahead, so two requests may reach the LLM in either order;
    # put back in the text's order, the pieces are the whole text, each once
    pieces = sorted((text.removeprefix("tara: ") for text in asked), key=LONG_TEXT.index)
    assert " ".join(pieces) == LONG_TEXT
    assert samples == len(asked) * SAMPLES_PER_FRAME


# -- CORS ---------------------------------------------------------------------------------------


async def test_cors(standin_server: ServerProcess, fake_llm: StandinLLMServer,
                    http: aiohttp.ClientSession) -> None:
    origin = {"Origin": "http://example.com"}
    async with http.get(standin_server.url + "/api/voices", headers=origin) as response:
        assert response.status == 200
        assert response.headers["access-control-allow-origin"] == "*"
    preflight = {**origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    async with http.options(standin_server.url + "/api/tts/wav", headers=preflight) as response:
        assert response.status == 200
        assert response.headers["access-control-allow-origin"] in ("*", "http://example.com")
        assert "POST" in response.headers["access-control-allow-methods"]
    fake_llm.config.frames = 1
    async with http.post(standin_server.url + "/api/tts/wav", json={"text": "Hi."},
                         headers=origin) as response:
        assert response.status == 200
        assert response.headers["access-control-allow-origin"] == "*"
        exposed = response.headers["access-control-expose-headers"].lower()
        assert "x-ttfa-ms" in exposed and "x-processing-time-ms" in exposed
