"""Fixtures of the end-to-end tests: the real server in a child process, as a user runs it.

Every server is session-scoped (each costs seconds to start) and started only when a test asks:

- ``real_server``: against the real llama-server (``llama_server``, tiny GGUF), defaults.
- ``standin_server``: against ``shared_standin``, with ``--llm-timeout 2`` so a hanging backend
  fails fast. Tests set the stand-in's faults through ``fake_llm``.
- ``strict_server``: against ``shared_standin`` with short limits (idle 1.5 s, 2000-byte
  messages, 2 contexts, 320 KiB buffered) and a custom ``--voices`` list. Its codec is
  ``passthrough`` (silence of the right length, at no cost): a client that never reads is only
  caught once the kernel's socket buffers (megabytes on loopback) are full, and SNAC on a CPU
  takes many seconds to produce that much audio.

``shared_standin`` is one stand-in llama-server for the whole session, because a server
process learns its backend's URL at start; ``fake_llm`` hands it to a test with the default
config (fast, 4 slots, no fault) and restores that config afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from orpheus_ws.devtools.llama_server import LlamaServerProcess
from orpheus_ws.devtools.standin_llm import StandinConfig, StandinLLMServer

from ..utils import scaled
from .harness import STRICT_LIMITS, STRICT_VOICES, ServerProcess, serve_command, serving


def default_standin_config() -> StandinConfig:
    return StandinConfig(tokens_per_second=0, slots=4)


def flags(settings: Mapping[str, object]) -> list[str]:
    return [part for name, value in settings.items()
            for part in ("--" + name.replace("_", "-"), str(value))]


@pytest_asyncio.fixture(scope="session")
async def shared_standin() -> AsyncIterator[StandinLLMServer]:
    async with StandinLLMServer(default_standin_config()) as server:
        yield server


@pytest.fixture
def fake_llm(shared_standin: StandinLLMServer) -> Iterator[StandinLLMServer]:
    """The shared stand-in with its default config, restored after the test."""
    shared_standin.config = default_standin_config()
    yield shared_standin
    shared_standin.config = default_standin_config()


async def _server(command: object, log: Path) -> AsyncIterator[ServerProcess]:
    async with serving(command, log) as server:
        yield server


@pytest_asyncio.fixture(scope="session")
async def real_server(llama_server: LlamaServerProcess, snac_dir: Path,
                      tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    log = tmp_path_factory.mktemp("logs") / "real_server.log"
    # One core for SNAC, the other for llama-server: the two share this 2-core machine, and
    # torch's spinning worker threads would otherwise starve llama-server's token loop.
    async for server in _server(lambda port: serve_command(
            port, llama_server.url, snac_dir, "--torch-threads", "1"), log):
        yield server


@pytest_asyncio.fixture(scope="session")
async def standin_server(shared_standin: StandinLLMServer, snac_dir: Path,
                         tmp_path_factory: pytest.TempPathFactory
                         ) -> AsyncIterator[ServerProcess]:
    log = tmp_path_factory.mktemp("logs") / "standin_server.log"
    async for server in _server(lambda port: serve_command(
            port, shared_standin.url, snac_dir, "--llm-timeout", "2"), log):
        yield server


@pytest_asyncio.fixture(scope="session")
async def strict_server(shared_standin: StandinLLMServer, snac_dir: Path,
                        tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    log = tmp_path_factory.mktemp("logs") / "strict_server.log"
    async for server in _server(lambda port: serve_command(
            port, shared_standin.url, snac_dir, "--llm-timeout", "2", "--voices", STRICT_VOICES,
            "--default-voice", "leo", "--codec", "passthrough", *flags(STRICT_LIMITS)), log):
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=scaled(60))) as session:
        yield session


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The OpenAPI test first: hypothesis parses schemathesis' sources as it describes their
    strategies, and late in a long session CPython 3.11.7's parser can fail with "AST
    constructor recursion depth mismatch" (fixed in 3.11.8; seen once in six full runs)."""
    first = [item for item in items if item.path.name == "test_openapi.py"]
    items[:] = first + [item for item in items if item not in first]
