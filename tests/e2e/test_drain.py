"""SIGTERM during live utterances, as a deploy sends it: the server drains. The utterances in
progress finish, sample-exact; meanwhile /ready answers 503 and new sockets are refused with
503; then every socket hears ``going_away`` and close 1001, and the process exits within the
drain timeout. A second signal stops at once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import aiohttp
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from orpheus_ws.client import OrpheusClient, ServerError
from orpheus_ws.devtools.standin_llm import StandinLLMServer

from ..utils import eventually, scaled
from .harness import SAMPLES_PER_FRAME, ServerProcess, clean_env, serve_command

FRAMES = 30
STREAMS = 8
DRAIN_S = 15


def drained_server(standin: StandinLLMServer, snac_dir: Path, log: Path) -> ServerProcess:
    return ServerProcess(lambda port: serve_command(
        port, standin.url, snac_dir, "--codec", "passthrough",
        "--drain-timeout", str(DRAIN_S)), log)


async def test_sigterm_lets_live_utterances_finish_then_closes(
        standin: StandinLLMServer, snac_dir: Path, tmp_path: Path) -> None:
    standin.config.slots = STREAMS
    standin.config.frames = FRAMES
    standin.config.tokens_per_second = 70  # 3 s per utterance
    server = drained_server(standin, snac_dir, tmp_path / "server.log")
    await server.start()
    try:
        async with OrpheusClient.connect(server.ws_url) as client, \
                aiohttp.ClientSession() as http:
            handles = [await client.open_context(f"c{n}") for n in range(STREAMS)]
            for handle in handles:
                await handle.send_text("An utterance in progress.", end=True)
            await eventually(lambda: all(not h.queue.empty() for h in handles), timeout=10,
                             what="every utterance playing")
            assert server.process is not None
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            async with http.get(server.url + "/ready") as response:
                assert response.status == 503
                assert any("draining" in w for w in (await response.json())["waiting_for"])
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(server.ws_url):
                    pass
            assert refused.value.response.status_code == 503
            results = await asyncio.gather(*(h.collect() for h in handles))
            for chunks, done in results:
                assert done["samples"] == FRAMES * SAMPLES_PER_FRAME
                assert sum(len(c.payload) for c in chunks) // 2 == done["samples"]
            with pytest.raises(ServerError) as going:
                await client.next_session_event("closed", timeout=scaled(DRAIN_S))
            assert going.value.code == "going_away"
            closed = await client.next_session_event("closed", timeout=scaled(5))
            assert closed["code"] == 1001
        code = await asyncio.to_thread(server.process.wait, scaled(DRAIN_S))
        assert code == 0 and time.monotonic() - signalled < DRAIN_S
    finally:
        await server.stop()


async def test_a_second_signal_stops_at_once(standin: StandinLLMServer, snac_dir: Path,
                                             tmp_path: Path) -> None:
    standin.config.frames = 3000
    standin.config.tokens_per_second = 50  # far longer than the drain timeout
    server = drained_server(standin, snac_dir, tmp_path / "server.log")
    await server.start()
    try:
        async with OrpheusClient.connect(server.ws_url) as client:
            handle = await client.open_context("long")
            await handle.send_text("A very long utterance.", end=True)
            await eventually(lambda: not handle.queue.empty(), timeout=10, what="audio")
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert server.process.poll() is None  # draining
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(server.process.wait, scaled(5))
            assert time.monotonic() - signalled < 5
    finally:
        await server.stop()


async def test_every_worker_drains_under_workers(standin: StandinLLMServer, snac_dir: Path,
                                                 tmp_path: Path) -> None:
    """``--workers 2``: SIGTERM to the supervisor drains each worker the same way; the
    utterances on both finish whole and the whole process tree exits within the timeout."""
    import psutil

    standin.config.slots = STREAMS
    standin.config.frames = FRAMES
    standin.config.tokens_per_second = 70  # 3 s per utterance
    server = ServerProcess(lambda port: serve_command(
        port, standin.url, snac_dir, "--codec", "passthrough", "--workers", "2",
        "--drain-timeout", str(DRAIN_S)), tmp_path / "server.log", env=clean_env())
    await server.start()
    try:
        assert server.process is not None
        tree = psutil.Process(server.process.pid).children(recursive=True)
        workers = [p for p in tree if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2
        async with contextlib.AsyncExitStack() as stack, aiohttp.ClientSession() as http:
            clients = [await stack.enter_async_context(OrpheusClient.connect(server.ws_url))
                       for _ in range(STREAMS)]  # one socket each: spread over the workers
            handles = [await client.open_context("c") for client in clients]
            for handle in handles:
                await handle.send_text("An utterance in progress.", end=True)
            await eventually(lambda: all(not h.queue.empty() for h in handles), timeout=10,
                             what="every utterance playing")
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            for _ in range(4):  # whichever worker answers: draining
                async with http.get(server.url + "/ready") as response:
                    assert response.status == 503
            results = await asyncio.gather(*(h.collect() for h in handles))
            for chunks, done in results:
                assert done["samples"] == FRAMES * SAMPLES_PER_FRAME
                assert sum(len(c.payload) for c in chunks) // 2 == done["samples"]
        code = await asyncio.to_thread(server.process.wait, scaled(DRAIN_S))
        assert code == 0 and time.monotonic() - signalled < DRAIN_S
        def running(processes: list[psutil.Process]) -> list[int]:
            alive = []
            for process in processes:
                with contextlib.suppress(psutil.Error):  # gone between the two questions
                    if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                        alive.append(process.pid)
            return alive

        assert not running(workers)  # joined before the supervisor exits
        # multiprocessing's resource tracker ends by itself once the supervisor is gone
        await eventually(lambda: not running(tree), timeout=5, what="the whole tree gone")
    finally:
        await server.stop()
