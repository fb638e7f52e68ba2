"""The LLM client against the stand-in (every fault), a raw server (malformed streams) and the
real llama-server on the tiny GGUF."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from orpheus_ws.devtools.llama_server import LlamaServerProcess, free_port
from orpheus_ws.devtools.standin_llm import StandinConfig, StandinLLMServer, generate_tokens
from orpheus_ws.devtools.standin_tokens import BYTE_ID_BASE
from orpheus_ws.engine.llm import LLMClient, stream_tokens
from orpheus_ws.engine.tokens import FrameParser
from orpheus_ws.exceptions import (
    BackendError,
    BackendProtocolError,
    BackendUnavailable,
    InvalidAudioToken,
)
from orpheus_ws.params import SamplingParams
from orpheus_ws.vocabulary import END_OF_SPEECH, EOT, id_prompt, native_prompt, text_prompt

from .utils import eventually, scaled

PARAMS = SamplingParams(temperature=0.6, top_p=0.9, repetition_penalty=1.1, max_tokens=512)
MakeClient = Callable[..., LLMClient]


@pytest_asyncio.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    made: list[LLMClient] = []

    def make(url: str, api: Any = "llama", **options: Any) -> LLMClient:
        made.append(LLMClient(url, api, **options))
        return made[-1]

    yield make
    for client in made:
        await client.close()


async def collect(client: LLMClient, text: str = "Hello there.", *, voice: str = "tara",
                  params: SamplingParams = PARAMS) -> list[int]:
    ids: list[int] = []
    async for batch in stream_tokens(client, voice, text, params):
        assert batch, "no empty batches"
        ids.extend(batch)
    return ids


def expected(config: StandinConfig, voice: str, text: str, n: int) -> list[int]:
    source = generate_tokens(config, f"{voice}: {text}")
    return [next(source) for _ in range(n)]


# -- the stand-in ------------------------------------------------------------------------------

async def test_native_tokens_stream_and_parse(standin: StandinLLMServer,
                                              make_client: MakeClient) -> None:
    standin.config.frames = 5
    ids = await collect(make_client(standin.url))
    assert ids == expected(standin.config, "tara", "Hello there.", 35)  # 128258 not passed on
    assert len(FrameParser().feed(ids)) == 5
    request = standin.requests[-1]
    assert request.path == "/completion"
    assert request.body["prompt"] == native_prompt("tara", "Hello there.")
    assert request.body["stream"] is True and request.body["return_tokens"] is True
    assert request.body["n_predict"] == 512
    assert request.body["temperature"] == 0.6
    assert request.body["repeat_penalty"] == 1.1
    assert standin.completed == 1


async def test_stops_at_end_of_speech_when_the_backend_keeps_going(
    standin: StandinLLMServer, make_client: MakeClient
) -> None:
    standin.config.frames = 2
    standin.config.emit_eos_as_stop = False  # 128258 is just another token to this backend
    params = SamplingParams(max_tokens=4000)
    ids = await collect(make_client(standin.url), params=params)
    assert ids == expected(standin.config, "tara", "Hello there.", 14)
    assert END_OF_SPEECH not in ids
    await eventually(lambda: standin.active == 0, what="stand-in slot freed")


async def test_openai_api(standin: StandinLLMServer, make_client: MakeClient) -> None:
    standin.config.frames = 3
    ids = await collect(make_client(standin.url, "openai", model="orpheus-x"), "Hi.", voice="leo")
    # the stand-in derives the same codes from either prompt form
    assert ids == expected(standin.config, "leo", "Hi.", 21)
    assert len(FrameParser().feed(ids)) == 3
    tokenize, request = standin.requests[-2:]
    assert tokenize.path == "/tokenize" and tokenize.body["prompt"] == "leo: Hi."
    assert request.path == "/v1/completions"
    # the exact reference prompt, as ids: the text's ids from the server's own tokenizer
    text_ids = [BYTE_ID_BASE + b for b in b"leo: Hi."]
    assert request.body["prompt"] == id_prompt(text_ids)
    assert request.body["prompt"][:2] == [128259, 128000]
    assert request.body["prompt"][-4:] == [128009, 128260, 128261, 128257]
    assert request.body["stop_token_ids"] == [END_OF_SPEECH]
    assert request.body["model"] == "orpheus-x"
    assert request.body["max_tokens"] == 512


async def test_openai_without_tokenize_sends_the_text_prompt(make_client: MakeClient) -> None:
    """A server with no /tokenize (404) gets the text form, and is not asked again."""
    bodies: list[dict[str, Any]] = []

    async def completions(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.json())
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for n in range(7):
            await response.write(b"data: " + orjson.dumps({"choices": [{
                "text": f"<custom_token_{10 + n % 7 * 4096 + 5}>", "finish_reason": None}]})
                + b"\n\n")
        await response.write(b'data: {"choices": [{"text": "", "finish_reason": "stop"}]}\n\n')
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        client = make_client(f"http://127.0.0.1:{port}", "openai")
        for _ in range(2):
            assert len(await collect(client)) == 7
        assert [b["prompt"] for b in bodies] == [text_prompt("tara", "Hello there.")] * 2
        assert client.tokenizes is False
    finally:
        await runner.cleanup()


async def test_openai_stops_at_end_of_speech_too(standin: StandinLLMServer,
                                                 make_client: MakeClient) -> None:
    standin.config.frames = 1
    standin.config.emit_eos_as_stop = False
    ids = await collect(make_client(standin.url, "openai"), params=SamplingParams(max_tokens=300))
    assert ids == expected(standin.config, "tara", "Hello there.", 7)


def test_unknown_api() -> None:
    with pytest.raises(ValueError):
        LLMClient("http://127.0.0.1:1", "grpc")  # type: ignore[arg-type]


async def test_refusal_is_unavailable(standin: StandinLLMServer, make_client: MakeClient) -> None:
    standin.config.fault = "refuse"
    for api in ("llama", "openai"):
        with pytest.raises(BackendUnavailable):
            await collect(make_client(standin.url, api))


async def test_dead_url_is_unavailable(make_client: MakeClient) -> None:
    client = make_client(f"http://127.0.0.1:{free_port()}", connect_timeout_s=scaled(2))
    with pytest.raises(BackendUnavailable):
        await collect(client)
    health = await client.health()
    assert health["status"] == "unavailable"


async def test_a_url_that_is_no_http_url_is_unavailable(make_client: MakeClient) -> None:
    """A backend URL without its scheme is a backend that can't be reached, as the server
    reports it (not an internal error)."""
    with pytest.raises(BackendUnavailable):
        await collect(make_client(f"127.0.0.1:{free_port()}"))


async def test_text_is_rejected(standin: StandinLLMServer, make_client: MakeClient) -> None:
    standin.config.frames = 3
    standin.config.fault = "text"
    # native: the ids themselves are text; the frame parser refuses them
    parser = FrameParser()
    with pytest.raises(InvalidAudioToken):
        async for batch in stream_tokens(make_client(standin.url), "tara", "Hi.", PARAMS):
            parser.feed(batch)
    # openai: text without <custom_token_N> is refused by the client
    with pytest.raises(BackendProtocolError):
        await collect(make_client(standin.url, "openai"))


async def test_a_stray_token_costs_one_frame_and_strays_are_rejected(
        standin: StandinLLMServer, make_client: MakeClient) -> None:
    standin.config.frames = 4
    standin.config.fault = "garbage"  # one audio token out of position, in the third frame
    parser = FrameParser()
    frames = 0
    async for batch in stream_tokens(make_client(standin.url), "tara", "Hi.", PARAMS):
        frames += len(parser.feed(batch))
    assert (frames, parser.dropped_frames) == (3, 1)
    standin.config.fault = "strays"  # every token out of position from the third frame on
    standin.config.frames = 8
    parser = FrameParser()
    with pytest.raises(InvalidAudioToken):
        async for batch in stream_tokens(make_client(standin.url), "tara", "Hi.", PARAMS):
            parser.feed(batch)
    assert parser.audio_tokens < 14 + 7 * 3  # the two good frames, then refused within three


async def test_failure_midway_is_a_backend_error(standin: StandinLLMServer,
                                                 make_client: MakeClient) -> None:
    standin.config.fault = "fail_midway"
    ids: list[int] = []
    with pytest.raises(BackendError) as info:
        async for batch in stream_tokens(make_client(standin.url), "tara", "Hi.", PARAMS):
            ids.extend(batch)
    assert not isinstance(info.value, BackendUnavailable | BackendProtocolError)
    assert len(ids) == 14
    assert len(FrameParser().feed(ids)) == 2


@pytest.mark.parametrize("fault", ["hang", "stall"])
async def test_silence_times_out(fault: str, standin: StandinLLMServer,
                                 make_client: MakeClient) -> None:
    standin.config.fault = fault  # type: ignore[assignment]
    client = make_client(standin.url, read_timeout_s=0.3)
    with pytest.raises(BackendError):
        await asyncio.wait_for(collect(client), scaled(10))
    await eventually(lambda: standin.active == 0 and standin.aborted == 1,
                     what="stand-in slot freed")


@pytest.mark.parametrize("api", ["llama", "openai"])
async def test_leaving_early_frees_the_slot(api: str, standin: StandinLLMServer,
                                            make_client: MakeClient) -> None:
    standin.config.tokens_per_second = 200
    tokens = stream_tokens(make_client(standin.url, api), "tara", "Hi.", SamplingParams(
        max_tokens=4000))
    first = await anext(tokens)
    assert first
    assert standin.active == 1
    await tokens.aclose()
    await eventually(lambda: standin.aborted == 1 and standin.active == 0,
                     what="generation aborted")
    assert standin.completed == 0


async def test_many_streams_share_one_client(standin: StandinLLMServer,
                                             make_client: MakeClient) -> None:
    standin.config.frames = 4
    client = make_client(standin.url)
    texts = [f"Sentence number {i}." for i in range(12)]  # more than the 4 slots
    results = await asyncio.gather(*(collect(client, text) for text in texts))
    for text, ids in zip(texts, results, strict=True):
        assert ids == expected(standin.config, "tara", text, 28)
    assert standin.completed == 12


async def test_health(standin: StandinLLMServer, make_client: MakeClient) -> None:
    health = await make_client(standin.url).health()
    assert health["status"] == "ok"
    assert health["slots"] == {"total": 4, "busy": 0}
    assert health["api"] == "llama"
    standin.config.fault = "refuse"
    health = await make_client(standin.url, "openai").health()
    assert health["status"] == "unavailable"
    assert health["http_status"] == 503


# -- a raw server for malformed streams ----------------------------------------------------------

@contextlib.asynccontextmanager
async def raw_backend(chunks: list[bytes], *, status: int = 200,
                      pause_s: float = 0.0) -> AsyncIterator[str]:
    """A server that answers any POST with ``chunks`` (written one by one) and then EOF."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status,
                                      headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client may leave at end of speech
            for chunk in chunks:
                await response.write(chunk)
                if pause_s:
                    await asyncio.sleep(pause_s)
            await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/completion", handler)
    app.router.add_post("/v1/completions", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def event(payload: str) -> bytes:
    return f"data: {payload}\n\n".encode()


@pytest.mark.parametrize("chunks,status,error", [
    ([event("{not json")], 200, BackendProtocolError),
    ([event("[1, 2]")], 200, BackendProtocolError),
    ([event('{"content": "Hello", "stop": false}')], 200, BackendProtocolError),
    ([event('{"error": {"code": 500, "message": "boom"}}')], 200, BackendUnavailable),
    ([b"oops"], 500, BackendUnavailable),
    ([event('{"tokens": [128266], "content": "", "stop": false}')], 200, BackendError),
])
async def test_malformed_streams(chunks: list[bytes], status: int, error: type[Exception],
                                 make_client: MakeClient) -> None:
    async with raw_backend(chunks, status=status) as url:
        with pytest.raises(error) as info:
            await collect(make_client(url))
    assert "boom" not in str(info.value)


async def test_events_split_across_network_reads(make_client: MakeClient) -> None:
    body = b"".join([
        b": a comment line\n\n",
        event('{"tokens": [128266], "content": "<custom_token_10>", "stop": false}'),
        event('{"content": "<custom_token_4107><custom_token_8204>", "stop": false}'),
        event('{"tokens": [128258], "content": "", "stop": false}'),
        event('{"tokens": [128266], "content": "", "stop": false}'),  # after end of speech
        event('{"content": "", "stop": true}'),
    ])
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    async with raw_backend(pieces, pause_s=0.001) as url:
        ids = await collect(make_client(url))
    assert ids == [128266, 128256 + 4107, 128256 + 8204]


async def test_eot_ends_the_stream(make_client: MakeClient) -> None:
    body = [event(f'{{"tokens": [128266, {EOT}, 128266], "content": "", "stop": false}}')]
    async with raw_backend(body) as url:
        assert await collect(make_client(url)) == [128266]


# -- the real llama-server -----------------------------------------------------------------------

async def slots_busy(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/slots") as response:
        slots = await response.json()
    return sum(1 for slot in slots if slot["is_processing"])


async def wait_all_idle(url: str, within_s: float) -> float:
    started = time.monotonic()
    while await slots_busy(url):
        assert time.monotonic() - started < scaled(within_s), "llama-server slot still busy"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@pytest.mark.parametrize("api", ["llama", "openai"])
async def test_real_llama_server_streams_frames(api: str, llama_server: LlamaServerProcess,
                                                make_client: MakeClient) -> None:
    params = SamplingParams(temperature=0.6, max_tokens=70)
    client = make_client(llama_server.url, api)
    ids = await collect(client, params=params)
    # openai: llama-server's /tokenize gave the text's ids, and its /v1/completions took the
    # reference prompt as a list of ids
    assert client.tokenizes is (True if api == "openai" else None)
    assert len(ids) == 70
    frames = FrameParser().feed(ids)
    assert len(frames) == 10
    assert len({f.codes for f in frames}) > 1


async def test_real_llama_server_frees_the_slot_when_left_early(
    llama_server: LlamaServerProcess, make_client: MakeClient
) -> None:
    await wait_all_idle(llama_server.url, 5.0)  # the server is shared by the session
    client = make_client(llama_server.url)
    tokens = stream_tokens(client, "tara", "A long one.", SamplingParams(max_tokens=2000))
    received = 0
    while received < 30:
        received += len(await anext(tokens))
    assert await slots_busy(llama_server.url) == 1
    await tokens.aclose()
    freed = await wait_all_idle(llama_server.url, 1.0)
    print(f"llama-server slot idle {1000 * freed:.0f} ms after the client left")
    health = await client.health()
    assert health["status"] == "ok"
    assert health["slots"] == {"total": 4, "busy": 0}
