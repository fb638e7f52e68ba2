"""Past the operator's caps the server answers at once and clearly, and the work it took is
untouched: N generations served, the rest 503 (server full) or 429 (a key over its share)
with Retry-After; a context on an open socket gets ``server_busy``; a bounded queue waits for
a slot. In-process server on the pass-through codec, stand-in LLM paced so work overlaps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from orpheus_ws.client import OrpheusClient, ServerError
from orpheus_ws.config import Settings
from orpheus_ws.devtools.standin_llm import StandinLLMServer
from orpheus_ws.engine import PassThroughCodec

from ..fakes import SlowCodec
from ..utils import scaled
from .harness import serve_in_process

CAP = 3


async def server(standin: StandinLLMServer, **settings: object) -> AsyncIterator[str]:
    async for address in serve_in_process(standin, PassThroughCodec(),
                                          Settings(**settings)):  # type: ignore[arg-type]
        standin.config.frames = 20
        standin.config.tokens_per_second = 100  # 1.4 s per request: they overlap
        yield address


@pytest_asyncio.fixture
async def capped(standin: StandinLLMServer) -> AsyncIterator[str]:
    async for address in server(standin, max_generations=CAP, max_queued=0,
                                api_key="k1,k2", key_max_generations=2):
        yield address


async def post(http: aiohttp.ClientSession, address: str, key: str,
               path: str = "/api/tts/wav") -> tuple[int, str | None, float]:
    started = time.monotonic()
    async with http.post(f"http://{address}{path}", json={"text": "Hello there."},
                         headers={"Authorization": f"Bearer {key}"}) as response:
        await response.read()
        return response.status, response.headers.get("Retry-After"), \
            time.monotonic() - started


async def test_n_plus_five_clients_get_n_served_and_five_clear_answers(capped: str) -> None:
    async with aiohttp.ClientSession() as http:
        answers = await asyncio.wait_for(asyncio.gather(
            *(post(http, capped, "k1" if n % 2 else "k2") for n in range(CAP + 5))),
            scaled(20))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses.count(200) == CAP
    refused = [(status, retry) for status, retry, _ in answers if status != 200]
    assert len(refused) == 5 and all(s in (429, 503) and r == "2" for s, r in refused)
    fast = [seconds for status, _, seconds in answers if status != 200]
    assert max(fast) < min(seconds for status, _, seconds in answers if status == 200)


async def test_a_key_over_its_share_gets_429_and_the_other_key_is_served(capped: str) -> None:
    async with aiohttp.ClientSession() as http:
        answers = await asyncio.gather(post(http, capped, "k1"), post(http, capped, "k1"),
                                       post(http, capped, "k1"), post(http, capped, "k2"))
    assert sorted(a[0] for a in answers[:3]) == [200, 200, 429]
    assert answers[3][0] == 200
    async with aiohttp.ClientSession() as http:  # each route family in its own shape
        status, retry, _ = (await asyncio.gather(
            post(http, capped, "k1", "/v1/speak"), post(http, capped, "k1", "/v1/speak"),
            post(http, capped, "k1", "/v1/speak")))[-1]
    assert (status, retry) in ((429, "2"), (200, None))


async def test_a_context_past_the_cap_gets_server_busy_and_the_others_play(
        standin: StandinLLMServer) -> None:
    async for address in server(standin, max_generations=1, max_queued=0):
        async with OrpheusClient.connect(f"ws://{address}/api/tts/ws") as client:
            first = await client.open_context("first")
            await first.send_text("A reply that plays.", end=True)
            await asyncio.sleep(0.3)
            second = await client.open_context("second")
            await second.send_text("One too many.", end=True)
            try:
                await second.collect()
                raise AssertionError("the second context was served past the cap")
            except ServerError as refused:
                assert refused.code == "server_busy"
            _, done = await first.collect()
            assert done["samples"] == 20 * 2048


async def test_a_bounded_queue_waits_for_a_slot(standin: StandinLLMServer) -> None:
    async for address in server(standin, max_generations=1, max_queued=1, queue_timeout=10):
        async with aiohttp.ClientSession() as http:
            answers = await asyncio.gather(post(http, address, ""), post(http, address, ""),
                                           post(http, address, ""))
        assert sorted(a[0] for a in answers) == [200, 200, 503]  # one ran, one waited, one not


async def test_past_the_decoders_real_time_capacity_new_contexts_get_server_busy(
        standin: StandinLLMServer) -> None:
    """A decoder measured (before the first stream) at 30 ms a delivered frame carries 2 real-time
    streams within 85 %: the third context is refused at once and the two play whole."""
    async for address in serve_in_process(standin, SlowCodec(0.02),
                                          Settings(realtime_admission=True)):
        standin.config.frames = 12
        async with OrpheusClient.connect(f"ws://{address}/api/tts/ws") as client:
            handles = [await client.open_context(f"c{n}") for n in range(3)]
            for handle in handles:
                await handle.send_text("A stream in real time.", end=True)
            outcomes: list[str] = []
            for handle in handles:
                try:
                    _, done = await handle.collect()
                    outcomes.append("done" if done["samples"] == 12 * 2048 else "short")
                except ServerError as refused:
                    outcomes.append(refused.code)
        assert outcomes == ["done", "done", "server_busy"]


async def test_a_backend_slowed_below_real_time_by_load_refuses_new_contexts(
        standin: StandinLLMServer) -> None:
    """An LLM backend that gave a stream 200 tokens/s, then, loaded, gives one 40 (a listener
    plays 82): once that is measured, a new context is refused at once, naming the backend,
    and the one playing finishes whole. A backend as slow with no load is slow, not loaded:
    its streams are admitted."""
    async for address in serve_in_process(standin, PassThroughCodec(),
                                          Settings(realtime_admission=True)):
        standin.config.frames = 20
        async with OrpheusClient.connect(f"ws://{address}/api/tts/ws") as client:
            standin.config.tokens_per_second = 40  # slow from the start: not load
            handles = [await client.open_context(f"slow{n}") for n in range(2)]
            await handles[0].send_text("A backend that is slow alone.", end=True)
            await asyncio.sleep(1.5)  # its rate measured: below real time, never above
            await handles[1].send_text("Admitted all the same.", end=True)
            for handle in handles:
                _, done = await handle.collect()
                assert done["samples"] == 20 * 2048

            standin.config.tokens_per_second = 200  # the same backend, lightly loaded
            _, done = await client.speak("fast", "Fast while alone.")
            assert done["samples"] == 20 * 2048  # measured at its end: above real time

            standin.config.tokens_per_second = 40  # now loaded: it slows down
            first = await client.open_context("loaded")
            await first.send_text("A stream the loaded backend can't keep up with.", end=True)
            await asyncio.sleep(1.5)
            second = await client.open_context("refused")
            await second.send_text("One more.", end=True)
            try:
                await second.collect()
                raise AssertionError("the second context was admitted")
            except ServerError as refused:
                assert refused.code == "server_busy" and "LLM backend" in str(refused)
            _, done = await first.collect()
            assert done["samples"] == 20 * 2048
