"""Leading quiet left out on the server process (``--trim-quiet``, the default), with the
``level`` codec stand-in (a frame as loud as its first code) and a stand-in LLM whose first
frames are quiet and the rest loud: time to first speech comes sooner, nothing with speech in
it is trimmed, and every segment's accounting stays exact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from orpheus_ws.devtools.standin_llm import StandinLLMServer
from orpheus_ws.engine.trim import LEAD_IN, PAUSE_CAP

from .harness import (
    SAMPLES_PER_FRAME,
    RawSocket,
    ServerProcess,
    check_frames,
    serve_command,
    serving,
)

FRAMES = 12


@pytest_asyncio.fixture(scope="module")
async def trimming(shared_standin: StandinLLMServer, snac_dir: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with serving(lambda port: serve_command(
            port, shared_standin.url, snac_dir, "--codec", "level", "--trim-quiet"),
                       tmp_path_factory.mktemp("logs") / "trimming.log") as server:
        yield server


async def speak(raw: RawSocket, context_id: str, texts: list[str],
                **options: object) -> dict[str, Any]:
    for n, text in enumerate(texts):
        await raw.send({"type": "text", "context_id": context_id, "text": text,
                        "flush": True, **(options if n == 0 else {})})
    await raw.send({"type": "end", "context_id": context_id})
    return await raw.until("done", context_id)


@pytest.mark.parametrize("quiet", [0, 5])
async def test_the_audio_starts_at_the_first_speech(
        quiet: int, trimming: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    fake_llm.config.quiet_frames = quiet
    async with RawSocket.connect(trimming.ws_url) as raw:
        done = await speak(raw, "t", ["One sentence here.", "And another one."])
        finished = raw.events("segment_finished", "t")
        first = finished[0]
        assert first["trimmed_samples"] == max(0, quiet * SAMPLES_PER_FRAME - LEAD_IN)
        assert finished[1]["trimmed_samples"] == max(0, quiet * SAMPLES_PER_FRAME - PAUSE_CAP)
        for segment in finished:  # exact, segment by segment
            assert segment["source_samples"] + segment["trimmed_samples"] == \
                segment["frames"] * SAMPLES_PER_FRAME == FRAMES * SAMPLES_PER_FRAME
        assert done["trimmed_samples"] == sum(s["trimmed_samples"] for s in finished)
        assert done["samples"] + done["trimmed_samples"] == 2 * FRAMES * SAMPLES_PER_FRAME
        assert check_frames(raw.frames("t"), "t") == done["samples"]  # offsets without a gap
        assert done["ttfs_ms"] is not None and done["ttfs_ms"] >= done["ttfa_ms"]
        if quiet == 0:  # speech from frame 0: nothing trimmed
            assert done["trimmed_samples"] == 0


async def test_trimming_is_a_context_option(trimming: ServerProcess,
                                            fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    fake_llm.config.quiet_frames = 5
    async with RawSocket.connect(trimming.ws_url) as raw:
        assert raw.ready["defaults"]["trim_quiet"] is True
        done = await speak(raw, "k", ["Kept whole."], trim_quiet=False)
        assert (done["samples"], done["trimmed_samples"]) == (FRAMES * SAMPLES_PER_FRAME, 0)


async def test_a_context_quiet_throughout_ends_properly(
        trimming: ServerProcess, fake_llm: StandinLLMServer,
        http: aiohttp.ClientSession) -> None:
    fake_llm.config.frames = 4
    fake_llm.config.quiet_frames = 10  # never loud
    async with RawSocket.connect(trimming.ws_url) as raw:
        done = await speak(raw, "q", ["Hush."])
        assert (done["samples"], done["trimmed_samples"]) == (0, 4 * SAMPLES_PER_FRAME)
        assert done["ttfs_ms"] is None and not raw.frames("q")
    async with http.post(trimming.url + "/api/tts", json={"text": "Hush."}) as response:
        assert response.status == 200  # a WAV with no samples, not an error
    async with http.post(trimming.url + "/api/tts/wav",
                         json={"text": "Hush.", "trim_quiet": False}) as response:
        assert response.status == 200
        assert len(await response.read()) == 44 + 4 * SAMPLES_PER_FRAME * 2
