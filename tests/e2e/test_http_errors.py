"""The seed API's errors: bad requests (400/422 naming the field) and LLM backend faults
(503/502 or an SSE error event, never a hang), against the real server process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from orpheus_ws.devtools.standin_llm import StandinLLMServer
from orpheus_ws.lineup import ENGLISH

from ..utils import eventually, scaled
from .harness import (
    SAMPLES_PER_FRAME,
    STRICT_VOICES,
    TTS_PATHS,
    ServerProcess,
    completions,
    samples_from,
    sse_events,
)

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
    assert answer["error"]["voices"] == list(ENGLISH.voices)
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
            if response.status == 503:  # worth a retry soon: say when
                assert int(response.headers["Retry-After"]) > 0
            else:
                assert "Retry-After" not in response.headers
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


async def test_a_stray_token_costs_one_frame_not_the_request(
        standin_server: ServerProcess, fake_llm: StandinLLMServer,
        http: aiohttp.ClientSession) -> None:
    """One audio token out of position (a quantized model at a higher temperature writes
    one now and then) costs the frame it falls in; every route still answers 200."""
    fake_llm.config.frames = 4
    fake_llm.config.fault = "garbage"  # in the third frame
    for path in TTS_PATHS:
        assert await samples_from(http, standin_server, path, {"text": "Hi."}) == \
            3 * SAMPLES_PER_FRAME, path


@pytest.mark.parametrize(("fault", "code", "stream_status"), [
    ("strays", "backend_protocol_error", 502),  # strays in the first batch: no audio yet
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


