"""Two ``orpheus-ws serve`` replicas behind Debian's nginx with the repository's config
(deploy/nginx.conf, docs/deploy.md): the seed's SSE example and the native WebSocket protocol
work through it and stream (the first audio arrives long before the generation ends: nothing
buffers), and with one replica stopped, new sessions succeed on the other."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest_asyncio

from orpheus_ws.client import OrpheusClient
from orpheus_ws.devtools.llama_server import free_port
from orpheus_ws.devtools.standin_llm import StandinLLMServer

from ..utils import scaled
from .conftest import _server
from .harness import ServerProcess, serve_command

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
FRAMES = 30  # 2.1 s of generation at 100 tokens/s: audio must flow before it ends


@contextlib.contextmanager
def nginx(replicas: list[int], tmp_path: Path) -> Iterator[int]:
    """nginx with deploy/nginx.conf, its ports replaced: yields the port it listens on."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(binary).exists(), "nginx not found: apt-get install nginx"
    port = free_port()
    text = CONFIG.read_text().replace("127.0.0.1:9100", f"127.0.0.1:{port}")
    text = text.replace("127.0.0.1:9101", f"127.0.0.1:{replicas[0]}")
    text = text.replace("127.0.0.1:9102", f"127.0.0.1:{replicas[1]}")
    text = text.replace("worker_processes auto;", "worker_processes 1;\nuser root;")
    (tmp_path / "nginx.conf").write_text(text)
    log = (tmp_path / "nginx.log").open("wb")
    process = subprocess.Popen([binary, "-c", str(tmp_path / "nginx.conf"), "-p",
                                str(tmp_path), "-g", "daemon off;"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + scaled(10)
        while True:
            assert process.poll() is None, (tmp_path / "nginx.log").read_text()
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            assert time.monotonic() < deadline, "nginx did not listen"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest_asyncio.fixture
async def replicas(shared_standin: StandinLLMServer, snac_dir: Path,
                   tmp_path: Path) -> AsyncIterator[list[ServerProcess]]:
    servers = []
    async with contextlib.AsyncExitStack() as stack:
        for n in range(2):
            servers.append(await stack.enter_async_context(contextlib.asynccontextmanager(
                _server)(lambda port: serve_command(port, shared_standin.url, snac_dir,
                                                    "--codec", "passthrough"),
                         tmp_path / f"replica{n}.log")))
        yield servers


async def sse_first_and_last(http: aiohttp.ClientSession, url: str) -> tuple[float, float]:
    started = time.monotonic()
    first = 0.0
    async with http.post(url + "/api/tts/stream", json={"text": "Streaming through nginx.",
                                                        "voice": "tara"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async for line in response.content:
            if line.startswith(b"data:") and not first:
                first = time.monotonic() - started
    return first, time.monotonic() - started


async def test_sse_and_sockets_stream_through_nginx_and_survive_a_replica(
        replicas: list[ServerProcess], fake_llm: StandinLLMServer, tmp_path: Path) -> None:
    fake_llm.config.frames = FRAMES
    fake_llm.config.tokens_per_second = 100
    with nginx([r.port for r in replicas], tmp_path) as port:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            first, last = await sse_first_and_last(http, url)
            assert first < last - 1.0, (first, last)  # streamed, not buffered
            async with OrpheusClient.connect(url.replace("http", "ws") + "/api/tts/ws") as c:
                handle = await c.open_context("n")
                started = time.monotonic()
                await handle.send_text("Through the proxy.", end=True)
                while handle.queue.empty():
                    await asyncio.sleep(0.005)
                first_audio = time.monotonic() - started
                _, done = await handle.collect()
                assert done["samples"] == FRAMES * 2048
                assert first_audio < time.monotonic() - started - 1.0  # streamed
            await replicas[0].stop()  # one replica gone: new sessions go to the other
            fake_llm.config.tokens_per_second = 0
            for _ in range(4):
                async with OrpheusClient.connect(url.replace("http", "ws") + "/api/tts/ws"
                                                 ) as client:
                    handle = await client.open_context("again")
                    await handle.send_text("Still here.", end=True)
                    _, done = await handle.collect()
                    assert done["samples"] == FRAMES * 2048
                first, _ = await sse_first_and_last(http, url)
                assert first > 0
    fake_llm.config.tokens_per_second = 0
