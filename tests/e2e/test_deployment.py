"""Deployment the seed README documents: uvicorn workers and gunicorn with uvicorn workers,
both reading the ORPHEUS_WS_* environment."""

from __future__ import annotations

import sys
from pathlib import Path

import aiohttp
import pytest

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from .harness import (
    SAMPLES_PER_FRAME,
    ServerProcess,
    clean_env,
    completions,
    samples_from,
)

# -- deployment ---------------------------------------------------------------------------------


SERVE_COMMANDS = {
    "uvicorn --workers": lambda port: [
        sys.executable, "-m", "uvicorn", "orpheus_ws.app:app", "--host", "127.0.0.1", "--port",
        str(port), "--workers", "2"],
    "gunicorn -k uvicorn.workers.UvicornWorker": lambda port: [
        sys.executable, "-m", "gunicorn", "orpheus_ws.app:app", "-w", "2", "-k",
        "uvicorn.workers.UvicornWorker", "--bind", f"127.0.0.1:{port}"],
}


@pytest.mark.parametrize("command", list(SERVE_COMMANDS))
async def test_workers_read_the_environment(command: str, fake_llm: StandinLLMServer,
                                            snac_dir: Path, tmp_path: Path) -> None:
    """The seed README's production commands, with this app."""
    env = clean_env(ORPHEUS_WS_LLM_URL=fake_llm.url, ORPHEUS_WS_SNAC_MODEL=str(snac_dir),
                    ORPHEUS_WS_DEVICE="cpu", ORPHEUS_WS_VOICES="tara,zac",
                    ORPHEUS_WS_DEFAULT_VOICE="zac", ORPHEUS_WS_TORCH_THREADS="1")
    server = ServerProcess(SERVE_COMMANDS[command], tmp_path / "server.log", env=env)
    await server.start()
    try:
        fake_llm.config.frames = 3
        before = len(fake_llm.requests)
        async with aiohttp.ClientSession() as http:
            assert await samples_from(http, server, "/api/tts/wav", {"text": "Hi."}) == \
                3 * SAMPLES_PER_FRAME
            async with http.get(server.url + "/api/voices") as response:
                assert (await response.json())["voices"] == ["tara", "zac"]
        assert completions(fake_llm, before) == ["zac: Hi."]
    finally:
        assert await server.stop() == 0, server.log_tail()
