"""Several LLM backends behind one pool, each a stand-in llama-server: work spreads to the
least loaded; a segment's generation whose backend fails (refuses, breaks off, hangs) before any
of its audio was decoded for the listener starts over once on another, invisibly; one that
fails after is the segment's failure; health checks take a backend out and put it back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from orpheus_ws.devtools.llama_server import free_port
from orpheus_ws.devtools.standin_llm import StandinConfig, StandinLLMServer
from orpheus_ws.engine import Collect, LLMClient
from orpheus_ws.engine.backends import BackendPool
from orpheus_ws.engine.decoder import DecoderService
from orpheus_ws.engine.pipeline import stream_segment
from orpheus_ws.exceptions import BackendError, BackendUnavailable
from orpheus_ws.params import DEFAULTS
from orpheus_ws.vocabulary import TOKENS_PER_FRAME

from .fakes import ConstantCodec, decoders
from .utils import eventually

FRAMES = 4


@pytest_asyncio.fixture
async def three() -> AsyncIterator[list[StandinLLMServer]]:
    servers = [StandinLLMServer(StandinConfig(tokens_per_second=200, slots=8, frames=FRAMES))
               for _ in range(3)]
    for server in servers:
        await server.__aenter__()
    try:
        yield servers
    finally:
        for server in servers:
            await server.__aexit__(None, None, None)


@pytest_asyncio.fixture
async def decoder() -> AsyncIterator[DecoderService]:
    async with decoders() as make:
        yield make(ConstantCodec())


def pool_of(urls: list[str], read_timeout_s: float = 30.0) -> BackendPool:
    return BackendPool([LLMClient(url, read_timeout_s=read_timeout_s) for url in urls])


async def tokens(pool: BackendPool) -> int:
    tokens = Collect()
    await pool.generate("tara", "Hello.", DEFAULTS, tokens)
    return len(tokens.ids)


async def frames(pool: BackendPool, decoder: DecoderService,
                 current: asyncio.Event | None = None) -> int:
    """A segment's frames, decoded as the engine does (``current``: generated ahead)."""
    return sum([chunk.frames async for chunk in stream_segment(
        pool, decoder, voice="tara", text="Hello.", params=DEFAULTS, current=current)])


def generations(server: StandinLLMServer) -> int:
    return sum(1 for r in server.requests if r.path == "/completion")


async def test_work_spreads_to_the_least_loaded(three: list[StandinLLMServer]) -> None:
    pool = pool_of([s.url for s in three])
    try:
        counts = await asyncio.gather(*(tokens(pool) for _ in range(12)))
        assert counts == [FRAMES * TOKENS_PER_FRAME] * 12
        assert [generations(s) for s in three] == [4, 4, 4]
        assert all(b.in_flight == 0 for b in pool.backends)
    finally:
        await pool.close()


async def test_a_backend_failing_before_its_first_token_is_left_for_another(
        three: list[StandinLLMServer], decoder: DecoderService) -> None:
    three[0].config.fault = "refuse"
    pool = pool_of([s.url for s in three])
    try:
        assert await frames(pool, decoder) == FRAMES  # invisibly, on another
        first = pool.backends[0]
        assert not first.healthy and first.failures == 1
        assert sum(generations(s) for s in three[1:]) == 1
        for _ in range(4):  # the one that is out gets no work
            await frames(pool, decoder)
        assert generations(three[0]) == 1
        health = await pool.health()
        assert health["status"] == "ok"
        assert [b["state"] for b in health["backends"]] == ["out", "healthy", "healthy"]
        three[0].config.fault = "none"
        await pool.check()  # it answers again: back in
        assert first.healthy
        await asyncio.gather(*(frames(pool, decoder) for _ in range(3)))
        assert generations(three[0]) == 2
    finally:
        await pool.close()


async def test_a_segment_generated_ahead_whose_backend_breaks_off_starts_over_on_another(
        three: list[StandinLLMServer], decoder: DecoderService) -> None:
    for server in three:
        server.config.frames = 40
    three[0].config.fault = "fail_midway"  # two frames, then the connection breaks
    pool = pool_of([s.url for s in three])
    try:
        turn = asyncio.Event()  # not its turn yet: its frames are gathered, not decoded
        heard = asyncio.ensure_future(frames(pool, decoder, turn))
        await eventually(lambda: not pool.backends[0].healthy, what="the break")
        turn.set()
        assert await heard == 40  # whole, from the other backend, none of the first's
        assert [generations(s) for s in three] == [1, 1, 0]
    finally:
        await pool.close()


async def test_a_failure_after_audio_was_decoded_is_the_segments(
        three: list[StandinLLMServer], decoder: DecoderService) -> None:
    for server in three:
        server.config.fault = "fail_midway"
        server.config.frames = 40
    pool = pool_of([s.url for s in three])
    try:
        with pytest.raises(BackendError):
            await frames(pool, decoder)  # its first frame went out before the break
        assert sum(generations(s) for s in three) == 1  # not retried: audio had gone
    finally:
        await pool.close()


async def test_a_hung_backend_counts_as_failed(three: list[StandinLLMServer],
                                               decoder: DecoderService) -> None:
    three[0].config.fault = "hang"
    pool = pool_of([three[0].url, three[1].url], read_timeout_s=0.5)
    try:
        assert await frames(pool, decoder) == FRAMES
        assert not pool.backends[0].healthy and pool.backends[1].healthy
    finally:
        await pool.close()


async def test_one_retry_and_no_backend_left_is_backend_unavailable(
        three: list[StandinLLMServer], decoder: DecoderService) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    pool = pool_of([dead, three[0].url, three[1].url])
    three[0].config.fault = three[1].config.fault = "refuse"
    try:
        with pytest.raises(BackendUnavailable):
            await frames(pool, decoder)
        assert [b.healthy for b in pool.backends] == [False, False, True]  # retried once
        with pytest.raises(BackendUnavailable):
            await frames(pool, decoder)
        assert [b.healthy for b in pool.backends] == [False, False, False]
        assert (await pool.health())["status"] == "unavailable"
        with pytest.raises(BackendUnavailable, match="every one is out"):
            await tokens(pool)
    finally:
        await pool.close()


def test_a_single_backend_has_nothing_to_fail_over_to() -> None:
    assert not LLMClient("http://127.0.0.1:1").can_fail_over()
    assert not pool_of(["http://127.0.0.1:1"]).can_fail_over()
    assert pool_of(["http://127.0.0.1:1", "http://127.0.0.1:2"]).can_fail_over()
