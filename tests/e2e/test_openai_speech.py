"""OpenAI's speech API, driven by the `openai` SDK itself (sync and async), against the real
server process with real SNAC and the stand-in LLM; the audio is decoded with PyAV."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from typing import Any

import aiohttp
import av
import openai
import orjson
import pytest

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from .harness import SAMPLES_PER_FRAME, ServerProcess, completions

FRAMES = 6
FRAME_S = SAMPLES_PER_FRAME / 24000
MEDIA = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
         "wav": "audio/wav", "pcm": "audio/pcm"}


def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def decoded(data: bytes, response_format: str) -> tuple[int, float]:
    """(sample rate, seconds) of the audio, decoded with PyAV (pcm: 24 kHz s16le)."""
    if response_format == "pcm":
        return 24000, len(data) / 2 / 24000
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(int(frame.samples) for frame in container.decode(stream))
        rate = int(stream.codec_context.sample_rate)
    return rate, samples / rate


@pytest.mark.parametrize("response_format", list(MEDIA))
async def test_each_response_format_is_playable_audio(response_format: str,
                                                      standin_server: ServerProcess,
                                                      fake_llm: StandinLLMServer) -> None:
    """The sync client, on a thread: the stand-in LLM serves from this test's event loop."""
    fake_llm.config.frames = FRAMES

    def fetch() -> bytes:
        with client(standin_server).audio.speech.with_streaming_response.create(
                model="tts-1", voice="alloy", input="Hello there.",
                response_format=response_format) as response:  # type: ignore[arg-type]
            assert response.headers["content-type"] == MEDIA[response_format]
            assert response.headers["x-request-id"].startswith("req_")
            return response.read()

    data = await asyncio.to_thread(fetch)
    rate, seconds = decoded(data, response_format)
    assert rate == (48000 if response_format == "opus" else 24000)  # Opus decodes at 48 kHz
    assert abs(seconds - FRAMES * FRAME_S) <= FRAME_S, seconds
    assert completions(fake_llm)[-1] == "tara: Hello there."  # alloy answers as tara


async def test_the_async_client_streams_and_voices_map(standin_server: ServerProcess,
                                                       fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    async_client = openai.AsyncOpenAI(base_url=standin_server.url + "/v1", api_key="unused",
                                      max_retries=0)
    for voice, orpheus in (("nova", "leah"), ("leo", "leo"), ("ONYX", "dan")):
        async with async_client.audio.speech.with_streaming_response.create(
                model="gpt-4o-mini-tts", voice=voice, input="Hi.", response_format="pcm",
                instructions="Speak cheerfully.") as response:
            pieces = [piece async for piece in response.iter_bytes()]
        assert sum(map(len, pieces)) == FRAMES * SAMPLES_PER_FRAME * 2
        assert completions(fake_llm)[-1] == f"{orpheus}: Hi."
    await async_client.close()


async def test_the_first_bytes_of_a_long_input_come_before_its_last_segment(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 4
    fake_llm.config.tokens_per_second = 200
    text = " ".join(f"Sentence number {i} says a little more than the one before." for i in
                    range(8))
    before = len(completions(fake_llm))
    async with aiohttp.ClientSession() as http, http.post(
            standin_server.url + "/v1/audio/speech",
            json={"model": "tts-1", "voice": "alloy", "input": text,
                  "response_format": "mp3"}) as response:
        assert response.status == 200
        first = await response.content.readany()
        requested_at_first = len(completions(fake_llm)) - before
        rest = await response.read()
    segments = len(completions(fake_llm)) - before
    assert first and segments >= 8
    assert requested_at_first < segments  # the last segment had not even been asked for
    rate, seconds = decoded(first + rest, "mp3")
    assert rate == 24000 and abs(seconds - segments * 4 * FRAME_S) <= FRAME_S  # one stream


async def test_sse_gives_deltas_then_done_with_usage(standin_server: ServerProcess,
                                                     fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES

    def fetch() -> str:
        with client(standin_server).audio.speech.with_streaming_response.create(
                model="tts-1", voice="ash", input="Hello there.", response_format="mp3",
                stream_format="sse") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            return response.read().decode()

    text = await asyncio.to_thread(fetch)
    events = [orjson.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert events[-1]["type"] == "speech.audio.done"
    usage = events[-1]["usage"]
    assert usage["output_tokens"] == FRAMES * 7
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    rate, seconds = decoded(audio, "mp3")
    assert rate == 24000 and abs(seconds - FRAMES * FRAME_S) <= FRAME_S


@pytest.mark.parametrize("speed", [0.5, 2.0])
async def test_speed_stretches_time_not_pitch(speed: float, standin_server: ServerProcess,
                                              fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 12
    data = (await asyncio.to_thread(
        client(standin_server).audio.speech.create, model="tts-1", voice="alloy",
        input="Hello there.", response_format="wav", speed=speed)).read()
    rate, seconds = decoded(data, "wav")
    assert rate == 24000
    assert abs(seconds - 12 * FRAME_S / speed) <= 2 * FRAME_S, seconds


@pytest.mark.parametrize("body,param", [
    ({"voice": "nobody"}, "voice"),
    ({"response_format": "ogg"}, "response_format"),
    ({"input": ""}, "input"),
    ({"input": "x" * 5001}, "input"),
    ({"speed": 4.5}, "speed"),
    ({"speed": 0.1}, "speed"),
    ({"stream_format": "chunks"}, "stream_format"),
])
async def test_bad_requests_get_openais_error_shape(body: dict[str, Any], param: str,
                                                    standin_server: ServerProcess) -> None:
    request: dict[str, Any] = {"model": "tts-1", "voice": "alloy", "input": "Hi.", **body}
    with pytest.raises(openai.BadRequestError) as info:
        await asyncio.to_thread(client(standin_server).audio.speech.create, **request)
    assert info.value.status_code == 400
    error = info.value.body
    assert isinstance(error, dict) and error["param"] == param
    assert error["type"] == "invalid_request_error" and error["message"]


async def test_a_dead_backend_is_503(standin_server: ServerProcess,
                                     fake_llm: StandinLLMServer) -> None:
    fake_llm.config.fault = "refuse"
    with pytest.raises(openai.InternalServerError) as info:
        await asyncio.to_thread(client(standin_server).audio.speech.create, model="tts-1",
                                voice="alloy", input="Hi.")
    assert info.value.status_code == 503
    assert info.value.response.headers["Retry-After"] == "2"
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "backend_unavailable"


async def test_models_and_voices_are_listed(standin_server: ServerProcess) -> None:
    models = await asyncio.to_thread(client(standin_server).models.list)
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"} <= {m.id for m in models.data}
    async with aiohttp.ClientSession() as http, http.get(
            standin_server.url + "/v1/audio/voices") as response:
        voices = {v["id"]: v["orpheus"] for v in (await response.json())["voices"]}
    assert voices["alloy"] == "tara" and voices["tara"] == "tara"
    assert {"alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova",
            "onyx", "sage", "shimmer", "verse"} <= set(voices)


async def test_open_webui_lists_models_and_voices(standin_server: ServerProcess) -> None:
    """As Open WebUI's audio router reads them for a base URL other than OpenAI's:
    ``GET {base}/audio/models`` -> ``data.get("models", [])`` of ``{"id"}``, and
    ``GET {base}/audio/voices`` -> ``{v["id"]: v["name"] for v in data.get("voices", [])}``."""
    base = standin_server.url + "/v1"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/audio/models") as response:
            assert response.status == 200
            models = (await response.json()).get("models", [])
        async with http.get(base + "/audio/voices") as response:
            voices = {v["id"]: v["name"] for v in (await response.json()).get("voices", [])}
    assert {"tts-1", "tts-1-hd"} <= {m["id"] for m in models}
    assert voices["tara"] == "tara" and voices["alloy"] == "alloy"


async def test_a_client_that_leaves_aborts_the_generation(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.tokens_per_second = 50
    async with aiohttp.ClientSession() as http:
        async with http.post(standin_server.url + "/v1/audio/speech",
                             json={"model": "tts-1", "voice": "alloy",
                                   "input": "A long reply. " * 10}) as response:
            await response.content.readany()
        assert fake_llm.active > 0
        started = time.monotonic()
        while fake_llm.active > 0:  # the LLM request is closed once the client has gone
            assert time.monotonic() - started < 5
            await asyncio.sleep(0.05)
