"""Fixtures of the browser tests: the real server in a child process, Chromium via Playwright.

- ``web_server`` (session): ``orpheus_ws.cli serve`` against the real llama-server
  (``llama_server``, tiny GGUF) and SNAC with random weights, on the CPU.
- ``browser`` (function): Debian's Chromium with a fresh profile in ``tmp_path``, driven by
  Playwright's async API; ``browser.open(url)`` gives a :class:`BrowserPage` that records
  console errors and page errors.

Tests are async: the stand-in llama-server (``standin``) lives on the test's event loop and
answers only while the test awaits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, ConsoleMessage, Page, async_playwright

from orpheus_ws.devtools.llama_server import LlamaServerProcess

from ..e2e.harness import ServerProcess, serve_command
from ..utils import scaled

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


@pytest_asyncio.fixture(scope="session")
async def web_server(llama_server: LlamaServerProcess, snac_dir: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """The server on the real llama-server (tiny GGUF) and SNAC with random weights."""
    log = tmp_path_factory.mktemp("web_server") / "server.log"
    server = ServerProcess(lambda port: serve_command(port, llama_server.url, snac_dir), log)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class BrowserPage:
    """A page and what went wrong in it: console errors and uncaught exceptions."""

    page: Page
    console_errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)


@dataclass
class Browser:
    context: BrowserContext

    async def open(self, url: str) -> BrowserPage:
        page = self.context.pages[0] if self.context.pages else await self.context.new_page()
        opened = BrowserPage(page)
        page.on("console", opened.on_console)
        page.on("pageerror", lambda error: opened.console_errors.append(f"pageerror: {error}"))
        page.set_default_timeout(scaled(30.0) * 1000)
        await page.goto(url)
        return opened


@pytest_asyncio.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium with exactly CHROMIUM_FLAGS and a fresh profile (``--user-data-dir``)."""
    async with async_playwright() as playwright:
        # headless=False: "--headless" is among our own flags, so Playwright adds none of its
        # headless extras (such as --mute-audio); --user-data-dir comes from the first argument.
        context = await playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=CHROMIUM, headless=False,
            args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 860},
            accept_downloads=True,
        )
        try:
            yield Browser(context)
        finally:
            await asyncio.wait_for(context.close(), scaled(20.0))
