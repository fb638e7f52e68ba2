"""``/metrics`` after a mixed workload, on one process and under ``--workers 2`` (where every
request may land on either worker and the numbers must add up across both): each metric has
the value the workload implies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import websockets
from prometheus_client.parser import text_string_to_metric_families

from orpheus_ws.client import OrpheusClient, ServerError
from orpheus_ws.devtools.standin_llm import StandinLLMServer

from .harness import ServerProcess, clean_env, serve_command

FRAMES = 3
SECONDS = FRAMES * 2048 / 24000
KEY = "metrics-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest_asyncio.fixture(params=[1, 2], ids=["one-process", "two-workers"])
async def metered(request: pytest.FixtureRequest, shared_standin: StandinLLMServer,
                  snac_dir: Path, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    workers = request.param
    server = ServerProcess(lambda port: serve_command(
        port, shared_standin.url, snac_dir, "--codec", "passthrough", "--api-key", KEY,
        "--workers", str(workers)), tmp_path / "server.log", env=clean_env())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_after_a_mixed_workload(metered: ServerProcess,
                                              fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    url = metered.url
    async with aiohttp.ClientSession() as http:
        async with OrpheusClient.connect(metered.ws_url, additional_headers=AUTH) as client:
            handle = await client.open_context("a")
            await handle.send_text("Native speech.", end=True)
            await handle.collect()
            await client.send({"type": "nonsense"})  # a protocol error
            with pytest.raises(ServerError):
                await client.next_session_event("never")
        async with http.post(url + "/api/tts/stream", json={"text": "Server sent."},
                             headers=AUTH) as response:
            assert response.status == 200
            await response.read()
        for _ in range(2):
            async with http.post(url + "/v1/audio/speech", headers=AUTH, json={
                    "model": "tts-1", "voice": "alloy", "input": "Open AI.",
                    "response_format": "pcm"}) as response:
                assert response.status == 200
                await response.read()
        async with websockets.connect(metered.ws_url.replace("/api/tts/ws", "/v1/speak"),
                                      additional_headers={"Authorization": f"Token {KEY}"}
                                      ) as socket:
            await socket.send('{"type": "Speak", "text": "Deep gram."}')
            await socket.send('{"type": "Flush"}')
            while "Flushed" not in str(await socket.recv()):
                pass
        async with http.post(url + "/v1/audio/speech", json={"input": "x"}) as response:
            assert response.status == 401  # no key
        fake_llm.config.fault = "refuse"
        async with http.post(url + "/api/tts/wav", json={"text": "Fails."},
                             headers=AUTH) as response:
            assert response.status == 503
        fake_llm.config.fault = "none"
        await asyncio.sleep(0.2)
        async with http.get(url + "/metrics", headers=AUTH) as response:
            assert response.status == 200
            found = samples(await response.text())

    ttfa = "orpheus_ws_time_to_first_audio_seconds_count"
    assert value(found, ttfa, route="native") == 1
    assert value(found, ttfa, route="sse") == 1
    assert value(found, ttfa, route="openai") == 2
    assert value(found, ttfa, route="deepgram") == 1
    assert value(found, "orpheus_ws_generation_seconds_count", route="openai") == 2
    audio = "orpheus_ws_audio_seconds_total"
    assert value(found, audio, route="native") == pytest.approx(SECONDS)
    assert value(found, audio, route="openai") == pytest.approx(2 * SECONDS)
    assert value(found, audio, route="deepgram") == pytest.approx(SECONDS)
    assert value(found, "orpheus_ws_protocol_errors_total", code="unknown_type") == 1
    assert value(found, "orpheus_ws_backend_errors_total", code="backend_unavailable") == 1
    assert value(found, "orpheus_ws_auth_refusals_total", route="openai") == 1
    responses = "orpheus_ws_http_responses_total"
    assert value(found, responses, route="openai", status="200") == 2
    assert value(found, responses, route="openai", status="401") == 1
    assert value(found, responses, route="sse", status="200") == 1
    assert value(found, responses, route="native", status="503") == 1
    assert value(found, "orpheus_ws_decode_call_seconds_count") >= 5
    assert value(found, "orpheus_ws_decode_batch_size_sum") >= \
        value(found, "orpheus_ws_decode_batch_size_count") >= 5
    for gauge in ("orpheus_ws_contexts_open", "orpheus_ws_generations_in_flight",
                  "orpheus_ws_generations_queued"):
        assert value(found, gauge) == 0, gauge  # everything finished
    assert value(found, "orpheus_ws_sockets_open", route="native") == 0


async def test_a_dead_workers_live_gauges_go_with_it(shared_standin: StandinLLMServer,
                                                     snac_dir: Path, tmp_path: Path) -> None:
    """``--workers 2``: a worker killed with SIGKILL is replaced, and the sockets it held no
    longer count as open; the metrics folder ``serve`` made is gone when it stops."""
    import psutil

    server = ServerProcess(lambda port: serve_command(
        port, shared_standin.url, snac_dir, "--codec", "passthrough", "--workers", "2"),
        tmp_path / "server.log", env=clean_env())
    await server.start()
    try:
        assert server.process is not None
        parent = psutil.Process(server.process.pid)

        def worker_processes() -> list[psutil.Process]:  # not multiprocessing's tracker
            found = []
            for child in parent.children():
                with contextlib.suppress(psutil.Error):  # a dead one, not yet reaped
                    if "spawn_main" in " ".join(child.cmdline()):
                        found.append(child)
            return found

        workers = worker_processes()
        assert len(workers) == 2
        metrics_dir = Path(workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
        assert metrics_dir.is_dir()

        async def open_sockets(http: aiohttp.ClientSession) -> float:
            async with http.get(server.url + "/metrics") as response:
                return value(samples(await response.text()), "orpheus_ws_sockets_open",
                             route="native")

        async with contextlib.AsyncExitStack() as stack, aiohttp.ClientSession() as http:
            sockets = [await stack.enter_async_context(websockets.connect(server.ws_url))
                       for _ in range(8)]
            assert await open_sockets(http) == 8

            ours = {socket.local_address[1] for socket in sockets}

            def held(worker: psutil.Process) -> int:  # of our sockets
                return sum(1 for c in worker.net_connections("tcp")
                           if c.status == psutil.CONN_ESTABLISHED and c.raddr
                           and c.raddr.port in ours)

            dead = max(workers, key=held)  # the one with sockets (the kernel may give it all)
            lost = held(dead)
            assert lost > 0
            dead.kill()
            for _ in range(100):  # replaced
                alive = worker_processes()
                if len(alive) == 2 and dead.pid not in {p.pid for p in alive}:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the dead worker was not replaced")
            live = 0
            for socket in sockets:  # those on the dead worker are gone
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(await socket.ping(), 2)
                    live += 1
            assert live == 8 - lost
            for _ in range(4):  # whichever worker answers
                assert await open_sockets(http) == live
    finally:
        await server.stop()
    assert not metrics_dir.exists()
