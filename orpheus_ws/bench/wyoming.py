"""``orpheus-ws bench wyoming``: time to first audio over Wyoming streaming against the native
socket, side by side in one run, on one server (#22).

One server process (pass-through codec, stand-in LLM at ``tps`` tokens a second per stream)
with its Wyoming port open. The same three-sentence reply is spoken ``runs`` times over each,
alternating: on the native socket as one context (its text, then ``end``), over Wyoming as a
stream (``synthesize-start``, the text as one ``synthesize-chunk``, the compatibility
``synthesize``, ``synthesize-stop``). Time to first audio is from the first text sent to the
first audio received, on the client; the difference of the medians is what the Wyoming adapter
adds.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from ..client import OrpheusClient
from ..devtools.llama_server import free_port
from .harness import orpheus_server, standin

REPLY = "Sure, the kitchen lights are off now. Anything else? I can dim the hallway too."
TARGET_MS = 5.0


async def _native(ws_url: str, index: int) -> float:
    async with OrpheusClient.connect(ws_url) as client:
        ctx = await client.open_context(f"n{index}")
        started = time.perf_counter()
        await ctx.send_text(REPLY, end=True)
        first = None
        async for _ in ctx:
            first = first or time.perf_counter()
        assert first is not None
        return (first - started) * 1e3


async def _wyoming(port: int) -> float:
    from wyoming.audio import AudioChunk
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    try:
        started = time.perf_counter()
        for request in (SynthesizeStart(), SynthesizeChunk(text=REPLY), Synthesize(text=REPLY),
                        SynthesizeStop()):
            await client.write_event(request.event())
        first = None
        while (answer := await client.read_event()) is not None:
            if first is None and AudioChunk.is_type(answer.type):
                first = time.perf_counter()
            if answer.type == "synthesize-stopped":
                break
        assert first is not None
        return (first - started) * 1e3
    finally:
        await client.disconnect()


async def _compare(url: str, port: int, runs: int) -> dict[str, list[float]]:
    ws_url = url.replace("http://", "ws://") + "/api/tts/ws"
    times: dict[str, list[float]] = {"native": [], "wyoming": []}
    await _native(ws_url, -1)  # warm both paths once
    await _wyoming(port)
    for index in range(runs):
        times["native"].append(await _native(ws_url, index))
        times["wyoming"].append(await _wyoming(port))
    return times


def run_wyoming(runs: int = 15, tps: float = 100.0) -> dict[str, Any]:
    port = free_port()
    with standin(tps, slots=4, frames=24) as llm, \
            orpheus_server(llm, "unused", codec="passthrough", wyoming_port=port) as (url, _):
        times = asyncio.run(_compare(url, port, runs))
    result: dict[str, Any] = {"runs": runs, "tokens_per_second": tps}
    for name, values in times.items():
        ordered = sorted(values)
        result[f"{name}_ttfa_ms_p50"] = round(statistics.median(values), 1)
        result[f"{name}_ttfa_ms_p90"] = round(ordered[int(0.9 * (len(ordered) - 1))], 1)
    added = result["wyoming_ttfa_ms_p50"] - result["native_ttfa_ms_p50"]
    result["wyoming_adds_ms_p50"] = round(added, 1)
    result["target_ms"] = TARGET_MS
    result["met"] = added <= TARGET_MS
    return result
