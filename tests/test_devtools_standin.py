"""The stand-in llama-server: wire format, determinism, pacing, slots, disconnects, faults."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orpheus_ws.devtools.standin_cli import parse_args
from orpheus_ws.devtools.standin_llm import StandinConfig, StandinLLMServer, prompt_text
from orpheus_ws.engine.tokens import FrameParser
from orpheus_ws.exceptions import InvalidAudioToken
from orpheus_ws.vocabulary import (
    AUDIO_TOKEN_BASE,
    END_OF_SPEECH,
    TOKENS_PER_FRAME,
    native_prompt,
    parse_custom_token,
    text_prompt,
)

from .utils import eventually, scaled

REPO = Path(__file__).resolve().parents[1]
FAST = math.inf


async def events(resp: aiohttp.ClientResponse) -> AsyncIterator[Any]:
    """The JSON of each ``data:`` line (``[DONE]`` as the string "[DONE]")."""
    async for raw in resp.content:
        line = raw.decode().strip()
        if line.startswith("data: "):
            payload = line[6:]
            yield payload if payload == "[DONE]" else json.loads(payload)


async def native(
    url: str, text: str = "Hello there.", voice: str = "tara", **extra: Any
) -> tuple[list[int], dict[str, Any], list[dict[str, Any]]]:
    """Stream /completion: (token ids, final stop line, every token event)."""
    body = {"prompt": native_prompt(voice, text), "stream": True, "return_tokens": True,
            "temperature": 0.6, "top_p": 0.9, "repeat_penalty": 1.1, **extra}
    tokens: list[int] = []
    token_events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.post(
        url + "/completion", json=body
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        async for event in events(resp):
            if event["stop"]:
                return tokens, event, token_events
            assert len(event["tokens"]) == 1
            tokens.extend(event["tokens"])
            token_events.append(event)
    raise AssertionError("stream ended without a stop line")


def audio(tokens: list[int]) -> list[int]:
    return [t for t in tokens if t >= AUDIO_TOKEN_BASE]


async def test_frames_parse_and_end_with_end_of_speech() -> None:
    async with StandinLLMServer(StandinConfig(tokens_per_second=FAST, frames=5)) as server:
        tokens, final, token_events = await native(server.url)
        assert len(tokens) == 5 * TOKENS_PER_FRAME + 1
        assert audio(tokens) == tokens[:-1]
        assert tokens[-1] == END_OF_SPEECH
        parser = FrameParser()
        frames = parser.feed(tokens)
        assert len(frames) == 5
        assert all(0 <= c < 4096 for f in frames for c in f.codes)
        for event in token_events:
            assert parse_custom_token(event["content"]) == event["tokens"]
            assert event["stop"] is False
        assert final["content"] == ""
        assert final["stop_type"] == "eos"
        assert final["timings"]["predicted_n"] == len(tokens)
        assert server.completed == 1
        assert server.active == 0
        received = server.requests[-1]
        assert received.path == "/completion"
        assert received.body["prompt"] == native_prompt("tara", "Hello there.")


async def test_same_prompt_same_codes() -> None:
    async with StandinLLMServer(StandinConfig(tokens_per_second=FAST, frames=4)) as server:
        first, _, _ = await native(server.url, "Same words.")
        second, _, _ = await native(server.url, "Same words.")
        other, _, _ = await native(server.url, "Other words.")
        assert first == second
        assert other != first
        server.config.seed = 1
        reseeded, _, _ = await native(server.url, "Same words.")
        assert reseeded != first
    assert prompt_text(native_prompt("tara", "x")) == prompt_text(text_prompt("tara", "x"))


async def test_runs_to_n_predict_without_frames() -> None:
    async with StandinLLMServer(StandinConfig(tokens_per_second=FAST)) as server:
        tokens, final, _ = await native(server.url, n_predict=20)
        assert len(tokens) == 20
        assert END_OF_SPEECH not in tokens
        assert final["stop_type"] == "limit"
        assert final["tokens_predicted"] == 20


async def test_end_of_speech_as_ordinary_token() -> None:
    config = StandinConfig(tokens_per_second=FAST, frames=2, emit_eos_as_stop=False)
    async with StandinLLMServer(config) as server:
        tokens, final, _ = await native(server.url, n_predict=30)
    assert len(tokens) == 30
    assert tokens[14] == END_OF_SPEECH
    assert len(audio(tokens)) == 29
    assert len(FrameParser().feed(tokens)) == 4  # audio keeps its alignment past 128258
    assert final["stop_type"] == "limit"


async def test_stop_word() -> None:
    async with StandinLLMServer(StandinConfig(tokens_per_second=FAST, frames=3)) as server:
        tokens, final, _ = await native(server.url, stop=["<custom_token_2>"])
    assert len(tokens) == 21
    assert END_OF_SPEECH not in tokens
    assert final["stop_type"] == "word"
    assert final["stopping_word"] == "<custom_token_2>"


async def test_pacing_is_roughly_right() -> None:
    async with StandinLLMServer(StandinConfig(tokens_per_second=100.0)) as server:
        start = time.monotonic()
        tokens, _, _ = await native(server.url, n_predict=30)
        elapsed = time.monotonic() - start
    assert len(tokens) == 30
    assert 0.2 < elapsed < scaled(5.0)  # 0.3 s nominal
    async with StandinLLMServer(StandinConfig(tokens_per_second=FAST)) as server:
        start = time.monotonic()
        tokens, _, _ = await native(server.url, n_predict=3000)
        assert len(tokens) == 3000
        assert time.monotonic() - start < scaled(5.0)


async def test_slots_limit_concurrency() -> None:
    config = StandinConfig(tokens_per_second=100.0, slots=2)
    async with StandinLLMServer(config) as server:
        peak = 0
        seen_queued = False

        async def watch() -> None:
            nonlocal peak, seen_queued
            while True:
                peak = max(peak, server.active)
                seen_queued = seen_queued or server.queued > 0
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        jobs = [asyncio.create_task(native(server.url, n_predict=20)) for _ in range(5)]
        await eventually(lambda: server.active == 2)
        async with aiohttp.ClientSession() as session, session.get(server.url + "/slots") as r:
            slots = await r.json()
        assert [s["id"] for s in slots] == [0, 1]
        assert all(s["is_processing"] for s in slots)
        results = await asyncio.gather(*jobs)
        watcher.cancel()
        assert all(len(tokens) == 20 for tokens, _, _ in results)
        assert peak == 2
        assert seen_queued
        assert server.completed == 5
        assert server.active == 0


async def test_disconnect_aborts_and_frees_the_slot() -> None:
    config = StandinConfig(tokens_per_second=50.0, slots=1)
    async with StandinLLMServer(config) as server, aiohttp.ClientSession() as session:
        body = {"prompt": native_prompt("tara", "Long."), "stream": True, "n_predict": 5000}
        async with session.post(server.url + "/completion", json=body) as resp:
            received = 0
            async for _ in events(resp):
                received += 1
                if received == 3:
                    break
            assert server.active == 1
            resp.close()
        await eventually(lambda: server.aborted == 1 and server.active == 0)
        server.config.frames = 1
        server.config.tokens_per_second = FAST
        tokens, final, _ = await native(server.url)
        assert len(tokens) == 8
        assert final["stop_type"] == "eos"
        assert server.aborted == 1


async def test_disconnect_while_queued() -> None:
    config = StandinConfig(tokens_per_second=50.0, slots=1)
    async with StandinLLMServer(config) as server:
        first = asyncio.create_task(native(server.url, n_predict=5000))
        await eventually(lambda: server.active == 1)
        second = asyncio.create_task(native(server.url, n_predict=5))
        await eventually(lambda: server.queued == 1)
        second.cancel()
        await eventually(lambda: server.queued == 0 and server.aborted == 1)
        first.cancel()
        await eventually(lambda: server.active == 0 and server.aborted == 2)
        with pytest.raises(asyncio.CancelledError):
            await first


async def test_fault_refuse() -> None:
    async with StandinLLMServer(StandinConfig(tokens_per_second=FAST, frames=1)) as server:
        server.config.fault = "refuse"
        async with aiohttp.ClientSession() as session:
            for method, path in (("POST", "/completion"), ("POST", "/v1/completions"),
                                 ("GET", "/health")):
                body = {"prompt": "tara: hi", "stream": True} if method == "POST" else None
                async with session.request(method, server.url + path, json=body) as resp:
                    assert resp.status == 503
                    error = (await resp.json())["error"]
                    assert error["code"] == 503
                    assert error["message"]
            server.config.fault = "none"
            async with session.get(server.url + "/health") as resp:
                assert resp.status == 200
                assert await resp.json() == {"status": "ok"}
        tokens, _, _ = await native(server.url)
        assert len(tokens) == 8
        assert server.active == 0


async def test_fault_garbage_is_one_stray_and_strays_are_every_token() -> None:
    config = StandinConfig(tokens_per_second=FAST, frames=4, fault="garbage")
    async with StandinLLMServer(config) as server:
        tokens, _, _ = await native(server.url)
        server.config = StandinConfig(tokens_per_second=FAST, frames=8, fault="strays")
        strays, _, _ = await native(server.url)
    parser = FrameParser()
    assert len(parser.feed(tokens[:14])) == 2
    assert len(parser.feed(tokens[14:])) == 1 and parser.dropped_frames == 1
    parser = FrameParser()
    assert len(parser.feed(strays[:14])) == 2
    with pytest.raises(InvalidAudioToken):
        parser.feed(strays[14:])


async def test_fault_fail_midway() -> None:
    config = StandinConfig(tokens_per_second=FAST, fault="fail_midway")
    async with StandinLLMServer(config) as server, aiohttp.ClientSession() as session:
        body = {"prompt": native_prompt("tara", "hi"), "stream": True, "n_predict": 500}
        tokens: list[int] = []
        with pytest.raises(aiohttp.ClientPayloadError):
            async with session.post(server.url + "/completion", json=body) as resp:
                async for event in events(resp):
                    assert not event["stop"]
                    tokens.extend(event["tokens"])
        assert len(tokens) == 14
        assert len(FrameParser().feed(tokens)) == 2
        await eventually(lambda: server.faulted == 1 and server.active == 0)
        assert server.aborted == 0
        assert server.completed == 0


async def test_fault_text() -> None:
    config = StandinConfig(tokens_per_second=FAST, frames=3, fault="text")
    async with StandinLLMServer(config) as server:
        tokens, final, token_events = await native(server.url)
    assert tokens
    assert all(t < 128000 or t == 128009 for t in tokens)
    assert not audio(tokens)
    assert "".join(e["content"] for e in token_events).startswith("Hello, I am")
    assert "<custom_token_" not in "".join(e["content"] for e in token_events)
    assert final["stop_type"] == "eos"


async def test_fault_hang() -> None:
    config = StandinConfig(tokens_per_second=FAST, fault="hang")
    async with StandinLLMServer(config) as server:
        timeout = aiohttp.ClientTimeout(sock_read=0.3)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            body = {"prompt": native_prompt("tara", "hi"), "stream": True}
            with pytest.raises(TimeoutError):
                async with session.post(server.url + "/completion", json=body):
                    pass
            assert server.active == 1
        await eventually(lambda: server.aborted == 1 and server.active == 0)


async def test_fault_stall() -> None:
    config = StandinConfig(tokens_per_second=FAST, fault="stall")
    async with StandinLLMServer(config) as server:
        timeout = aiohttp.ClientTimeout(sock_read=0.3)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            body = {"prompt": native_prompt("tara", "hi"), "stream": True, "n_predict": 500}
            tokens: list[int] = []
            async with session.post(server.url + "/completion", json=body) as resp:
                assert resp.status == 200
                with pytest.raises(TimeoutError):
                    async for event in events(resp):
                        tokens.extend(event["tokens"])
                assert len(tokens) == 14
                assert server.active == 1  # the connection is still open
        await eventually(lambda: server.aborted == 1 and server.active == 0)


async def test_openai_completions_stream() -> None:
    async with StandinLLMServer(StandinConfig(tokens_per_second=FAST, frames=2)) as server:
        body = {"prompt": text_prompt("tara", "Hello there."), "max_tokens": 100, "stream": True}
        async with aiohttp.ClientSession() as session, session.post(
            server.url + "/v1/completions", json=body
        ) as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            chunks = [event async for event in events(resp)]
        assert chunks[-1] == "[DONE]"
        final = chunks[-2]
        assert final["choices"][0]["finish_reason"] == "stop"
        assert final["choices"][0]["text"] == ""
        token_chunks = chunks[:-2]
        assert all(c["choices"][0]["finish_reason"] is None for c in token_chunks)
        assert all(c["choices"][0]["index"] == 0 for c in token_chunks)
        tokens = parse_custom_token("".join(c["choices"][0]["text"] for c in token_chunks))
        assert len(tokens) == 15
        assert tokens[-1] == END_OF_SPEECH
        assert server.requests[-1].path == "/v1/completions"
        native_tokens, _, _ = await native(server.url, "Hello there.")
        assert native_tokens == tokens  # both prompt forms give the same codes


async def test_openai_completions_length_and_non_stream() -> None:
    async with StandinLLMServer(StandinConfig(tokens_per_second=FAST)) as server:
        body = {"prompt": text_prompt("tara", "Hi."), "max_tokens": 10}
        async with aiohttp.ClientSession() as session:
            async with session.post(server.url + "/v1/completions", json=body) as resp:
                answer = await resp.json()
            choice = answer["choices"][0]
            assert choice["finish_reason"] == "length"
            assert len(parse_custom_token(choice["text"])) == 10
            assert answer["usage"]["completion_tokens"] == 10
            body["stream"] = True
            async with session.post(server.url + "/v1/completions", json=body) as resp:
                chunks = [event async for event in events(resp)]
            assert chunks[-2]["choices"][0]["finish_reason"] == "length"
            assert chunks[-1] == "[DONE]"


async def test_native_non_stream() -> None:
    async with StandinLLMServer(StandinConfig(tokens_per_second=FAST, frames=2)) as server:
        body = {"prompt": native_prompt("tara", "Hi."), "stream": False, "return_tokens": True}
        async with aiohttp.ClientSession() as session:
            async with session.post(server.url + "/completion", json=body) as resp:
                answer = await resp.json()
            assert answer["stop"] is True
            assert answer["stop_type"] == "eos"
            assert len(answer["tokens"]) == 15
            assert parse_custom_token(answer["content"]) == answer["tokens"]
            async with session.get(server.url + "/v1/models") as resp:
                assert (await resp.json())["data"]
            async with session.post(server.url + "/completion", data=b"not json") as resp:
                assert resp.status == 400


def test_cli_arguments() -> None:
    config, port = parse_args(["--port", "0", "--tokens-per-second", "inf", "--slots", "8",
                               "--frames", "3", "--fault", "stall", "--no-eos-stop"])
    assert port == 0
    assert config == StandinConfig(tokens_per_second=math.inf, slots=8, frames=3,
                                   fault="stall", emit_eos_as_stop=False)


async def test_cli_process() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orpheus_ws.devtools.standin_llm", "--port", "0",
         "--tokens-per-second", "0", "--frames", "2"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), scaled(30))
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        tokens, final, _ = await native(url)
        assert len(tokens) == 15
        assert final["stop_type"] == "eos"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0
