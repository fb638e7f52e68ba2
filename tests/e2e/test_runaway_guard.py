"""The runaway guard on the real server process (``--runaway-guard``, on by default): a stand-in
LLM that never says end-of-speech, and one that loops a run of frames, through the native
socket, the seed SSE route, OpenAI's route and Deepgram's socket. "Hi." with max_tokens 2048
(24 s allowed) gives at most about 2 s, a warning, and a clean end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import pytest_asyncio
import websockets
from openai import AsyncOpenAI

from orpheus_ws.devtools.standin_llm import StandinLLMServer
from orpheus_ws.engine.guard import REPEAT_FRAMES, frame_budget
from orpheus_ws.vocabulary import LENGTH, REPEAT

from ..utils import scaled
from .harness import (
    SAMPLES_PER_FRAME,
    RawSocket,
    ServerProcess,
    check_frames,
    serve_command,
    serving,
)

HI_FRAMES = frame_budget("Hi.")  # 22 frames, 1.88 s


@pytest_asyncio.fixture(scope="module")
async def guarded(shared_standin: StandinLLMServer, snac_dir: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with serving(lambda port: serve_command(
            port, shared_standin.url, snac_dir, "--codec", "noise", "--runaway-guard"),
                       tmp_path_factory.mktemp("logs") / "guarded.log") as server:
        yield server


async def test_native_socket_a_generation_that_never_ends(
        guarded: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = None  # runs to max_tokens: 2048 tokens, 24 s
    async with RawSocket.connect(guarded.ws_url) as raw:
        await raw.send({"type": "text", "context_id": "hi", "text": "Hi.", "max_tokens": 2048,
                        "end": True})
        done = await raw.until("done", "hi", timeout=scaled(30))
        warning = raw.events("warning", "hi")
        assert [w["code"] for w in warning] == [LENGTH] and warning[0]["segment"] == 0
        assert done["frames"] == HI_FRAMES
        assert done["samples"] * 1.0 / 24000 < 2.0
        assert check_frames(raw.frames("hi"), "hi") == HI_FRAMES * SAMPLES_PER_FRAME
        assert not raw.errors()


async def test_native_socket_a_loop_is_cut(guarded: ServerProcess,
                                           fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 400
    fake_llm.config.fault = "loop"  # ten frames, then the same ten again and again
    text = "This sentence is long enough that its budget is far past the ten frames."
    async with RawSocket.connect(guarded.ws_url) as raw:
        await raw.send({"type": "text", "context_id": "l", "text": text, "max_tokens": 2048,
                        "end": True})
        done = await raw.until("done", "l", timeout=scaled(30))
        assert [w["code"] for w in raw.events("warning", "l")] == [REPEAT]
        assert 10 <= done["frames"] <= 10 + REPEAT_FRAMES


async def test_seed_sse_route(guarded: ServerProcess, fake_llm: StandinLLMServer,
                              http: aiohttp.ClientSession) -> None:
    fake_llm.config.frames = None
    async with http.post(guarded.url + "/api/tts/stream",
                         json={"text": "Hi.", "max_tokens": 2048}) as response:
        assert response.status == 200
        body = await response.text()
    events = [orjson.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    warnings = [e for e in events if e.get("event") == "warning"]
    assert [w["code"] for w in warnings] == [LENGTH]
    assert events[-1]["event"] == "complete"
    assert events[-1]["total_samples"] == HI_FRAMES * SAMPLES_PER_FRAME


async def test_openai_route(guarded: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = None  # runs to the server's max_tokens, 512: 6.2 s
    client = AsyncOpenAI(base_url=guarded.url + "/v1", api_key="unused")
    speech = await client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.",
                                              response_format="pcm")
    assert len(speech.content) == HI_FRAMES * SAMPLES_PER_FRAME * 2


async def test_deepgram_socket(guarded: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = None
    url = guarded.url.replace("http", "ws") + "/v1/speak?encoding=linear16&sample_rate=24000"
    audio = b""
    warnings = []
    async with websockets.connect(url) as socket:
        await socket.send('{"type": "Speak", "text": "Hi."}')
        await socket.send('{"type": "Flush"}')
        async for message in socket:
            if isinstance(message, bytes):
                audio += message
                continue
            event = orjson.loads(message)
            if event["type"] == "Warning":
                warnings.append(event["warn_code"])
            if event["type"] == "Flushed":
                break
    assert warnings == [LENGTH.upper()]
    assert len(audio) == HI_FRAMES * SAMPLES_PER_FRAME * 2


LOOPING = "This sentence is long enough that its budget is far past the ten frames."


async def test_a_loop_is_cut_on_the_seed_sse_route(guarded: ServerProcess,
                                                   fake_llm: StandinLLMServer,
                                                   http: aiohttp.ClientSession) -> None:
    fake_llm.config.frames = 400
    fake_llm.config.fault = "loop"
    async with http.post(guarded.url + "/api/tts/stream",
                         json={"text": LOOPING, "max_tokens": 2048}) as response:
        body = await response.text()
    events = [orjson.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    assert [e["code"] for e in events if e.get("event") == "warning"] == [REPEAT]
    assert events[-1]["event"] == "complete"
    frames = events[-1]["total_samples"] // SAMPLES_PER_FRAME
    assert 10 <= frames <= 10 + REPEAT_FRAMES


async def test_a_loop_is_cut_on_openai_and_deepgram(guarded: ServerProcess,
                                                    fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 400
    fake_llm.config.fault = "loop"
    client = AsyncOpenAI(base_url=guarded.url + "/v1", api_key="unused")
    speech = await client.audio.speech.create(model="tts-1", voice="alloy", input=LOOPING,
                                              response_format="pcm")
    assert 10 <= len(speech.content) // (SAMPLES_PER_FRAME * 2) <= 10 + REPEAT_FRAMES
    url = guarded.url.replace("http", "ws") + "/v1/speak?encoding=linear16&sample_rate=24000"
    warnings = []
    async with websockets.connect(url) as socket:
        await socket.send(orjson.dumps({"type": "Speak", "text": LOOPING}).decode())
        await socket.send('{"type": "Flush"}')
        async for message in socket:
            if isinstance(message, str):
                event = orjson.loads(message)
                warnings += [event["warn_code"]] if event["type"] == "Warning" else []
                if event["type"] == "Flushed":
                    break
    assert warnings == [REPEAT.upper()]


@pytest_asyncio.fixture(scope="module")
async def guarded_trimming(shared_standin: StandinLLMServer, snac_dir: Path,
                           tmp_path_factory: pytest.TempPathFactory
                           ) -> AsyncIterator[ServerProcess]:
    """The defaults a user gets (guard and trimming on), with the ``level`` codec stand-in: a
    frame as loud as its first code, so the stand-in's ``quiet_frames`` are heard as quiet."""
    async with serving(lambda port: serve_command(
            port, shared_standin.url, snac_dir, "--codec", "level", "--runaway-guard",
            "--trim-quiet"), tmp_path_factory.mktemp("logs") / "trimming.log") as server:
        yield server


async def speak_on(route: str, server: ServerProcess) -> tuple[list[str], int]:
    """LOOPING through ``route``: the warning codes it reported and the samples it sent."""
    if route == "openai":
        client = AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
        speech = await client.audio.speech.create(model="tts-1", voice="alloy", input=LOOPING,
                                                  response_format="pcm")
        return [], len(speech.content) // 2
    if route == "sse":
        async with aiohttp.ClientSession() as http, http.post(
                server.url + "/api/tts/stream",
                json={"text": LOOPING, "max_tokens": 2048}) as response:
            body = await response.text()
        events = [orjson.loads(line[6:]) for line in body.splitlines()
                  if line.startswith("data: ")]
        assert events[-1]["event"] == "complete"
        return [e["code"] for e in events if e.get("event") == "warning"], \
            events[-1]["total_samples"]
    if route == "native":
        async with RawSocket.connect(server.ws_url) as raw:
            await raw.send({"type": "text", "context_id": "q", "text": LOOPING,
                            "max_tokens": 2048, "end": True})
            done = await raw.until("done", "q", timeout=scaled(30))
            assert not raw.errors()
            assert done["samples"] + done["trimmed_samples"] == \
                done["frames"] * SAMPLES_PER_FRAME
            return [w["code"] for w in raw.events("warning", "q")], done["samples"]
    url = server.url.replace("http", "ws") + "/v1/speak?encoding=linear16&sample_rate=24000"
    warnings, samples = [], 0
    async with websockets.connect(url) as socket:
        await socket.send(orjson.dumps({"type": "Speak", "text": LOOPING}).decode())
        await socket.send('{"type": "Flush"}')
        async for message in socket:
            if isinstance(message, bytes):
                samples += len(message) // 2
                continue
            event = orjson.loads(message)
            warnings += [event["warn_code"].lower()] if event["type"] == "Warning" else []
            if event["type"] == "Flushed":
                break
    return warnings, samples


@pytest.mark.parametrize("route", ["native", "sse", "openai", "deepgram"])
async def test_a_loop_nobody_heard_is_generated_again(route: str,
                                                      guarded_trimming: ServerProcess,
                                                      fake_llm: StandinLLMServer) -> None:
    """The utterance's first segment, live: its first windows went out long before the loop
    was found, but all of them quiet (left out by the trimming), so no one has heard a word:
    the segment is generated once more with a higher repetition penalty. The stand-in loops
    again, and that loop is cut: one warning, a clean end."""
    fake_llm.config.frames, fake_llm.config.fault = 400, "loop"
    fake_llm.config.quiet_frames = 10_000
    before = len(fake_llm.requests)
    warnings, samples = await speak_on(route, guarded_trimming)
    penalties = [r.body["repeat_penalty"] for r in fake_llm.requests[before:]
                 if "repeat_penalty" in r.body]
    assert len(penalties) == 2 and penalties[1] > penalties[0]
    assert warnings == ([] if route == "openai" else [REPEAT])
    assert samples == 0  # quiet throughout: all of it trimmed, and still a clean end
