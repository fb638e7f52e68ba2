"""Three real llama-servers (tiny GGUF) behind one ``orpheus-ws serve``: 12 concurrent
contexts spread over all three, and three more waiting for a slot; one llama-server killed with
SIGKILL mid-run: the contexts whose audio it was making fail with ``backend_error`` within 2 s,
a waiting one that had sent no audio completes on another (whole: the client sees nothing of
it), the others play on, new work goes to the live two, and the killed one, restarted, takes
work again within its health-check interval. ``/health`` and ``/ready`` tell the truth at each
step."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from orpheus_ws.client import ContextHandle, OrpheusClient, ServerError
from orpheus_ws.devtools.llama_server import LlamaServerProcess

from ..utils import eventually, scaled
from .harness import ServerProcess, llama_busy_slots, serve_command

LONG = {"max_tokens": 2048, "temperature": 0.0}  # the tiny model speaks to max_tokens
CHECK_S = 1.0
WAITING = 40  # frames of each context that waits for a slot


async def state(http: aiohttp.ClientSession, url: str) -> tuple[list[str], int]:
    async with http.get(url + "/health") as response:
        health: dict[str, Any] = await response.json()
    async with http.get(url + "/ready") as ready:
        return [b["state"] for b in health["backend"]["backends"]], ready.status


async def speaking(client: OrpheusClient, prefix: str, count: int, text: str,
                   **options: Any) -> list[ContextHandle]:
    """``count`` contexts (``prefix`` 0, 1, ...), each given the whole ``text``."""
    handles = [await client.open_context(f"{prefix}{n}", **options) for n in range(count)]
    for handle in handles:
        await handle.send_text(text, end=True)
    return handles


async def playing(handles: list[ContextHandle]) -> None:
    """Waits until every context has audio."""
    await eventually(lambda: all(not h.queue.empty() for h in handles), timeout=20,
                     what="every context playing")


async def dispatched(http: aiohttp.ClientSession, url: str, count: int) -> list[int]:
    """Waits until the server has sent ``count`` generations to its backends; how many each
    got."""
    for _ in range(int(scaled(100))):
        async with http.get(url + "/health") as response:
            health: dict[str, Any] = await response.json()
        each = [int(b["generations"]) for b in health["backend"]["backends"]]
        if sum(each) >= count:
            return each
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} generations dispatched")


async def test_three_backends_share_fail_over_and_come_back(
        tiny_gguf: Path, snac_dir: Path, tmp_path: Path) -> None:
    llamas = [LlamaServerProcess(tiny_gguf, parallel=4, threads=1, startup_timeout=scaled(60))
              for _ in range(3)]
    for llama in llamas:
        await asyncio.to_thread(llama.start)
    server = ServerProcess(lambda port: serve_command(
        port, ",".join(llama.url for llama in llamas), snac_dir, "--codec", "passthrough",
        "--llm-check-interval", str(CHECK_S), "--ws-max-contexts", "16"),
        tmp_path / "server.log")
    await server.start()
    try:
        async with aiohttp.ClientSession() as http, \
                OrpheusClient.connect(server.ws_url) as client:
            assert await state(http, server.url) == (["healthy"] * 3, 200)
            handles = await speaking(client, "c", 12, "A long reply that goes on.", **LONG)
            await playing(handles)
            assert [await llama_busy_slots(http, llama) for llama in llamas] == [4, 4, 4]
            # Three more, one per backend, each queued in its llama-server behind four busy
            # slots: nothing of them has been heard when the first backend dies.
            waiting = await speaking(client, "w", 3, "Waiting for a slot.",
                                     max_tokens=WAITING * 7)
            assert await dispatched(http, server.url, 15) == [5, 5, 5]  # one waits on each
            assert all(h.queue.empty() for h in waiting)

            killed_at = time.monotonic()
            assert llamas[0].process is not None
            llamas[0].process.kill()  # SIGKILL, mid-generation
            failed_at: dict[str, float] = {}

            async def outcome(handle: Any) -> str:
                try:
                    await handle.collect()
                    return "done"
                except ServerError as error:
                    failed_at[handle.context_id] = time.monotonic() - killed_at
                    return error.code

            waits = {h.context_id: asyncio.ensure_future(outcome(h)) for h in handles}
            await asyncio.sleep(scaled(2.5))
            failed = [c for c, w in waits.items() if w.done()]
            assert len(failed) == 4 and all(waits[c].result() == "backend_error" for c in failed)
            assert max(failed_at.values()) < 2.0
            assert await state(http, server.url) == (["out", "healthy", "healthy"], 200)

            fresh = await speaking(client, "n", 4, "Short.", max_tokens=70)  # on the live two
            for handle in fresh:
                _, done = await handle.collect()
                assert done["samples"] == 10 * 2048
            for context, wait in waits.items():  # the other eight play on (or are done)
                assert context in failed or not wait.done() or wait.result() == "done"
            for handle in handles:  # make room for the waiting ones
                if not waits[handle.context_id].done():
                    await handle.cancel()
            for wait in waits.values():
                wait.cancel()
            for handle in waiting:  # the one on the dead backend too: whole, from another
                _, done = await asyncio.wait_for(handle.collect(), scaled(30))
                assert done["samples"] == WAITING * 2048

            llamas[0].process = None
            await asyncio.to_thread(llamas[0].start)  # the same port again
            await asyncio.sleep(CHECK_S + 0.5)
            assert await state(http, server.url) == (["healthy"] * 3, 200)
            again = await speaking(client, "a", 6, "It is back.", **LONG)
            await playing(again)
            assert await llama_busy_slots(http, llamas[0]) >= 1  # it takes work again
            await client.cancel_all()

            for llama in llamas:  # none left: the server says so
                llama.stop()
            await asyncio.sleep(CHECK_S + 0.5)
            assert await state(http, server.url) == (["out"] * 3, 503)
    finally:
        await server.stop()
        for llama in llamas:
            llama.stop()
