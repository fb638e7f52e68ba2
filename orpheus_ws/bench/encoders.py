"""What the compressed formats cost the server: CPU per second of audio for raw PCM, MP3 and
Opus through ``POST /v1/audio/speech``, side by side in one server process.

The server runs the ``noise`` codec (the pass-through codec's cost, with a fixed noise pattern
instead of silence, so that the encoders work as hard as on speech) and the stand-in LLM;
phases of ``streams`` concurrent requests in each format alternate, twice over, and the
server's CPU is read around each phase. Audio seconds come from the server's own count of the
frames it emitted.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from ..formats import SAMPLE_RATE, SAMPLES_PER_FRAME
from .harness import cpu_snapshot, llm_backend, orpheus_server, server_stats

FORMATS = ("pcm", "mp3", "opus")


async def _phase(url: str, fmt: str, streams: int, text: str) -> int:
    """``streams`` requests at once; the bytes they received."""

    async def one(http: aiohttp.ClientSession) -> int:
        async with http.post(url + "/v1/audio/speech", json={
                "model": "tts-1", "voice": "alloy", "input": text,
                "response_format": fmt}) as response:
            response.raise_for_status()
            return len(await response.read())

    async with aiohttp.ClientSession() as http:
        return sum(await asyncio.gather(*(one(http) for _ in range(streams))))


def measure_encoders(snac_model: str, *, streams: int, tps: float, frames: int, text: str,
                     rounds: int = 2, server: dict[str, Any] | None = None,
                     llm_url: str | None = None) -> dict[str, Any]:
    totals = {fmt: {"cpu_s": 0.0, "audio_s": 0.0, "bytes": 0, "wall_s": 0.0}
              for fmt in FORMATS}
    with llm_backend(llm_url, tps, 2 * streams, frames) as llm, \
            orpheus_server(llm, snac_model, codec="noise", **(server or {})) as (url, proc):
        for _ in range(rounds):
            for fmt in FORMATS:
                before = server_stats(url)["decoder"]["frames_emitted"]
                cpu0, wall0 = cpu_snapshot(proc)[0], time.monotonic()
                received = asyncio.run(_phase(url, fmt, streams, text))
                wall = time.monotonic() - wall0
                cpu = cpu_snapshot(proc)[0] - cpu0
                emitted = server_stats(url)["decoder"]["frames_emitted"] - before
                total = totals[fmt]
                total["cpu_s"] += cpu
                total["audio_s"] += emitted * SAMPLES_PER_FRAME / SAMPLE_RATE
                total["bytes"] += received
                total["wall_s"] += wall
    rows = {fmt: {"cpu_s_per_audio_s": round(t["cpu_s"] / t["audio_s"], 5),
                  "kbit_per_s": round(8 * t["bytes"] / t["audio_s"] / 1000, 1),
                  "audio_s": round(t["audio_s"], 1), "wall_s": round(t["wall_s"], 1)}
            for fmt, t in totals.items()}
    pcm = rows["pcm"]["cpu_s_per_audio_s"]
    return {"name": "encoders", "streams": streams, "rounds": rounds, "formats": rows,
            "ratio_to_pcm": {fmt: round(row["cpu_s_per_audio_s"] / pcm, 2)
                             for fmt, row in rows.items()}}
