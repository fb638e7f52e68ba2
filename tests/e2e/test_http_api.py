"""The seed-compatible HTTP API, end to end: the server process against llama-server or the
stand-in (for exact lengths and faults), reached over real HTTP as the seed's clients do."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import sys
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orpheus_ws.config import DEFAULT_VOICES
from orpheus_ws.devtools.standin_llm import StandinLLMServer, prompt_text

from ..utils import eventually, scaled
from .harness import (
    SAMPLES_PER_FRAME,
    STRICT_VOICES,
    ServerProcess,
    clean_env,
    pcm_samples,
    sse_events,
)

MAX_TOKENS = 70  # the tiny model speaks until max_tokens: 70 tokens = 10 frames per segment
TINY_FRAMES = MAX_TOKENS // 7
SEED_REQUEST = {"text": "Hello world", "voice": "tara", "temperature": 0.3,
                "max_tokens": MAX_TOKENS, "stream": False}
TTS_PATHS = ("/api/tts", "/api/tts/wav", "/api/tts/stream")
LONG_TEXT = " ".join(
    f"Sentence number {i} is here to make the text long, and it says a little more." for i in
    range(40))[:3000].rsplit(" ", 1)[0] + "."


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=scaled(60))) as session:
        yield session


def read_wav(data: bytes) -> tuple[int, int, int, int]:
    """(channels, sample width, rate, samples) of a WAV file."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()


async def samples_from(http: aiohttp.ClientSession, server: ServerProcess, path: str,
                       body: dict[str, Any]) -> int:
    """Samples of audio one TTS endpoint returns for ``body`` (asserting success)."""
    async with http.post(server.url + path, json=body) as response:
        assert response.status == 200, await response.text()
        if path == "/api/tts":
            return read_wav(base64.b64decode((await response.json())["audio_base64"]))[3]
        if path == "/api/tts/wav":
            return read_wav(await response.read())[3]
        total = 0
        async for event in sse_events(response):
            assert event.get("event") != "error", event
            if event.get("event") == "complete":
                assert event["total_samples"] == total
                return total
            total += pcm_samples(event["audio_base64"])
    raise AssertionError("the stream ended without a complete event")


def completions(standin: StandinLLMServer, since: int = 0) -> list[str]:
    """Texts of the generations the stand-in was asked for (the prompt, voice prefix kept)."""
    return [prompt_text(r.body.get("prompt")) for r in standin.requests[since:]
            if r.path == "/completion"]


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
    assert voices["voices"] == list(DEFAULT_VOICES)
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
    assert " ".join(text.removeprefix("tara: ") for text in asked) == LONG_TEXT
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


# -- bad requests -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", TTS_PATHS)
async def test_malformed_json_is_400(path: str, standin_server: ServerProcess,
                                     fake_llm: StandinLLMServer,
                                     http: aiohttp.ClientSession) -> None:
    before = len(fake_llm.requests)
    for body in (b"{not json", b"[1, 2]"):
        async with http.post(standin_server.url + path, data=body,
                             headers={"Content-Type": "application/json"}) as response:
            assert response.status == 400
            answer = await response.json()
        assert answer["error"]["field"] == "body"
        assert answer["detail"][0]["loc"] == ["body", "body"]
    assert completions(fake_llm, before) == []


BAD_FIELDS = [
    ({"text": 5}, "text"),
    ({"voice": "tara"}, "text"),
    ({"text": ""}, "text"),
    ({"text": "   "}, "text"),
    ({"text": "a" * 5001}, "text"),
    ({"text": "Hi.", "temperature": "hot"}, "temperature"),
    ({"text": "Hi.", "temperature": 2.5}, "temperature"),
    ({"text": "Hi.", "temperature": -0.1}, "temperature"),
    ({"text": "Hi.", "max_tokens": 10}, "max_tokens"),
    ({"text": "Hi.", "max_tokens": 4096}, "max_tokens"),
    ({"text": "Hi.", "max_tokens": "many"}, "max_tokens"),
    ({"text": "Hi.", "max_tokens": 100.5}, "max_tokens"),
    ({"text": "Hi.", "top_p": 0}, "top_p"),
    ({"text": "Hi.", "repetition_penalty": 3}, "repetition_penalty"),
    ({"text": "Hi.", "voice": 7}, "voice"),
    ({"text": "Hi.", "stream": "yes"}, "stream"),
]


@pytest.mark.parametrize(("body", "field"), BAD_FIELDS)
async def test_invalid_field_is_422_naming_it(body: dict[str, Any], field: str,
                                              standin_server: ServerProcess,
                                              fake_llm: StandinLLMServer,
                                              http: aiohttp.ClientSession) -> None:
    before = len(fake_llm.requests)
    for path in TTS_PATHS:
        async with http.post(standin_server.url + path, json=body) as response:
            assert response.status == 422, (path, await response.text())
            answer = await response.json()
        assert answer["detail"][0]["loc"] == ["body", field]
        assert answer["error"]["field"] == field
        assert answer["error"]["code"] == "invalid_parameter"
    assert completions(fake_llm, before) == []


async def test_unknown_voice_lists_the_voices(standin_server: ServerProcess,
                                              http: aiohttp.ClientSession) -> None:
    async with http.post(standin_server.url + "/api/tts",
                         json={"text": "Hi.", "voice": "nobody"}) as response:
        assert response.status == 422
        answer = await response.json()
    assert answer["error"]["code"] == "unknown_voice"
    assert answer["error"]["field"] == "voice"
    assert answer["error"]["voices"] == list(DEFAULT_VOICES)
    assert answer["detail"][0]["loc"] == ["body", "voice"]


async def test_custom_voice_list(strict_server: ServerProcess, fake_llm: StandinLLMServer,
                                 http: aiohttp.ClientSession) -> None:
    voices = STRICT_VOICES.split(",")
    async with http.get(strict_server.url + "/api/voices") as response:
        listed = await response.json()
    assert (listed["voices"], listed["default"]) == (voices, "leo")
    fake_llm.config.frames = 1
    before = len(fake_llm.requests)
    assert await samples_from(http, strict_server, "/api/tts",
                              {"text": "Hi.", "voice": "nova"}) == SAMPLES_PER_FRAME
    assert await samples_from(http, strict_server, "/api/tts", {"text": "Hi."}) == \
        SAMPLES_PER_FRAME
    assert completions(fake_llm, before) == ["nova: Hi.", "leo: Hi."]
    async with http.post(strict_server.url + "/api/tts",
                         json={"text": "Hi.", "voice": "tara2"}) as response:
        assert response.status == 422
        assert (await response.json())["error"]["voices"] == voices


# -- backend faults -----------------------------------------------------------------------------


async def error_of(http: aiohttp.ClientSession, server: ServerProcess, path: str,
                   body: dict[str, Any]) -> tuple[int, str]:
    """(HTTP status, error code) of a failing request; for a stream that failed after its
    first chunk, (200, the code of its final error event)."""
    async with http.post(server.url + path, json=body) as response:
        if response.status != 200:
            answer = await response.json()
            assert isinstance(answer["detail"], str)
            return response.status, answer["error"]["code"]
        assert path == "/api/tts/stream", "a failing request succeeded"
        events = [event async for event in sse_events(response)]
    assert events[-1].get("event") == "error", events[-1]
    assert "complete" not in [e.get("event") for e in events]
    return 200, events[-1]["error"]["code"]


async def test_backend_refusing_is_503_and_recovers(standin_server: ServerProcess,
                                                   fake_llm: StandinLLMServer,
                                                   http: aiohttp.ClientSession) -> None:
    fake_llm.config.fault = "refuse"
    for path in TTS_PATHS:
        assert await error_of(http, standin_server, path, {"text": "Hi."}) == \
            (503, "backend_unavailable")
    async with http.get(standin_server.url + "/health") as response:
        health = await response.json()
    assert health["status"] == "degraded"
    assert health["backend"]["status"] == "unavailable"
    fake_llm.config.fault = "none"
    fake_llm.config.frames = 2
    for path in TTS_PATHS:
        assert await samples_from(http, standin_server, path, {"text": "Hi."}) == \
            2 * SAMPLES_PER_FRAME


async def test_backend_gone_is_503_and_recovers(standin_server: ServerProcess,
                                               fake_llm: StandinLLMServer,
                                               http: aiohttp.ClientSession) -> None:
    await fake_llm.stop()  # nothing listens at the backend's URL now
    try:
        for path in TTS_PATHS:
            assert await error_of(http, standin_server, path, {"text": "Hi."}) == \
                (503, "backend_unavailable")
        async with http.get(standin_server.url + "/health") as response:
            assert (await response.json())["backend"]["status"] == "unavailable"
    finally:
        await fake_llm.start()  # the same port again
    fake_llm.config.frames = 2
    assert await samples_from(http, standin_server, "/api/tts", {"text": "Hi."}) == \
        2 * SAMPLES_PER_FRAME


@pytest.mark.parametrize(("fault", "code", "stream_status"), [
    ("garbage", "backend_protocol_error", 502),  # bad token in the first batch: no audio yet
    ("text", "backend_protocol_error", 502),
    ("fail_midway", "backend_error", 200),  # two frames, then the connection drops
    ("stall", "backend_error", 200),  # two frames, then silence past --llm-timeout
])
async def test_backend_stream_faults(fault: str, code: str, stream_status: int,
                                     standin_server: ServerProcess, fake_llm: StandinLLMServer,
                                     http: aiohttp.ClientSession) -> None:
    """502 for JSON and WAV; the stream answers 502 too when no audio came, else it ends
    with an error event instead of ``complete``. Never a hang."""
    fake_llm.config.fault = fault  # type: ignore[assignment]
    results = await asyncio.gather(*(error_of(http, standin_server, path, {"text": "Hi."})
                                     for path in TTS_PATHS))
    assert results == [(502, code), (502, code), (stream_status, code)]
    await eventually(lambda: fake_llm.active == 0, what="stand-in slots free")


async def test_backend_hanging_fails_within_the_timeout(standin_server: ServerProcess,
                                                       fake_llm: StandinLLMServer,
                                                       http: aiohttp.ClientSession) -> None:
    fake_llm.config.fault = "hang"  # takes the request, never answers
    started = time.monotonic()
    results = await asyncio.gather(*(error_of(http, standin_server, path, {"text": "Hi."})
                                     for path in TTS_PATHS))
    assert results == [(502, "backend_error")] * 3  # reached, but silent: not "unavailable"
    assert time.monotonic() - started < scaled(2.0 + 3.0)  # --llm-timeout 2
    await eventually(lambda: fake_llm.active == 0, what="stand-in slots free")


async def test_client_leaving_the_stream_aborts_the_generation(
        standin_server: ServerProcess, fake_llm: StandinLLMServer,
        http: aiohttp.ClientSession) -> None:
    fake_llm.config.tokens_per_second = 100  # 2048 tokens: 20 s of generation
    aborted = fake_llm.aborted
    async with http.post(standin_server.url + "/api/tts/stream",
                         json={"text": "Hi.", "max_tokens": 2048}) as response:
        async for event in sse_events(response):
            assert event["chunk"] == 1
            break
        assert fake_llm.active == 1
        response.close()
    await eventually(lambda: fake_llm.aborted > aborted, what="generation aborted")
    await eventually(lambda: fake_llm.active == 0, what="stand-in slot freed")


async def test_client_leaving_before_audio_aborts_the_generation(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.fault = "hang"
    aborted = fake_llm.aborted
    async with aiohttp.ClientSession() as session:
        request = asyncio.ensure_future(session.post(standin_server.url + "/api/tts",
                                                     json={"text": "Hi."}))
        await eventually(lambda: fake_llm.active == 1, what="generation started")
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    await eventually(lambda: fake_llm.aborted > aborted, what="generation aborted")
    await eventually(lambda: fake_llm.active == 0, what="stand-in slot freed")


# -- deployment ---------------------------------------------------------------------------------


async def test_uvicorn_workers_read_the_environment(fake_llm: StandinLLMServer, snac_dir: Path,
                                                   tmp_path: Path) -> None:
    env = clean_env(ORPHEUS_WS_LLM_URL=fake_llm.url, ORPHEUS_WS_SNAC_MODEL=str(snac_dir),
                    ORPHEUS_WS_DEVICE="cpu", ORPHEUS_WS_VOICES="tara,zac",
                    ORPHEUS_WS_DEFAULT_VOICE="zac", ORPHEUS_WS_TORCH_THREADS="1")
    server = ServerProcess(
        lambda port: [sys.executable, "-m", "uvicorn", "orpheus_ws.app:app", "--host",
                      "127.0.0.1", "--port", str(port), "--workers", "2"],
        tmp_path / "uvicorn.log", env=env)
    await server.start()
    try:
        fake_llm.config.frames = 3
        before = len(fake_llm.requests)
        async with aiohttp.ClientSession() as http:
            assert await samples_from(http, server, "/api/tts/wav", {"text": "Hi."}) == \
                3 * SAMPLES_PER_FRAME
            async with http.get(server.url + "/api/voices") as response:
                assert (await response.json())["voices"] == ["tara", "zac"]
        assert completions(fake_llm, before) == ["zac: Hi."]
    finally:
        assert await server.stop() == 0, server.log_tail()


async def test_gunicorn_with_uvicorn_workers(fake_llm: StandinLLMServer, snac_dir: Path,
                                             tmp_path: Path) -> None:
    """The seed README's production command, with this app."""
    env = clean_env(ORPHEUS_WS_LLM_URL=fake_llm.url, ORPHEUS_WS_SNAC_MODEL=str(snac_dir),
                    ORPHEUS_WS_DEVICE="cpu", ORPHEUS_WS_VOICES="tara,zac",
                    ORPHEUS_WS_DEFAULT_VOICE="zac", ORPHEUS_WS_TORCH_THREADS="1")
    server = ServerProcess(
        lambda port: [sys.executable, "-m", "gunicorn", "orpheus_ws.app:app", "-w", "2", "-k",
                      "uvicorn.workers.UvicornWorker", "--bind", f"127.0.0.1:{port}"],
        tmp_path / "gunicorn.log", env=env)
    await server.start()
    try:
        fake_llm.config.frames = 3
        before = len(fake_llm.requests)
        async with aiohttp.ClientSession() as http:
            assert await samples_from(http, server, "/api/tts/wav", {"text": "Hi."}) == \
                3 * SAMPLES_PER_FRAME
            async with http.get(server.url + "/api/voices") as response:
                assert (await response.json())["voices"] == ["tara", "zac"]
        assert completions(fake_llm, before) == ["zac: Hi."]
    finally:
        assert await server.stop() == 0, server.log_tail()
