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
import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, ConsoleMessage, Page, async_playwright

from orpheus_ws.devtools.llama_server import LlamaServerProcess, free_port

from ..utils import scaled

HOST = "127.0.0.1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


class WebServer:
    """``python -m orpheus_ws.cli serve`` as a child process, stopped by its Popen handle."""

    def __init__(self, llm_url: str, snac_dir: Path, log_path: Path) -> None:
        self.llm_url = llm_url
        self.snac_dir = snac_dir
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/api/tts/ws"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORPHEUS_WS_")}
        for attempt in range(3):  # a free port can be taken before the server binds it
            self.port = free_port()
            command = [sys.executable, "-m", "orpheus_ws.cli", "serve", "--host", HOST,
                       "--port", str(self.port), "--llm-url", self.llm_url,
                       "--snac-model", str(self.snac_dir), "--device", "cpu"]
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, env=env)
            if self.wait_ready(scaled(60.0)):
                return
            self.stop()
            if attempt == 2 or "address already in use" not in self.log_tail():
                break
        raise RuntimeError(f"the server did not start; log {self.log_path}:\n{self.log_tail()}")

    def wait_ready(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/", timeout=2) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=scaled(10.0))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextlib.contextmanager
def running_server(llm_url: str, snac_dir: Path, log_path: Path) -> Iterator[WebServer]:
    server = WebServer(llm_url, snac_dir, log_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def web_server(llama_server: LlamaServerProcess, snac_dir: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """The server on the real llama-server (tiny GGUF) and SNAC with random weights."""
    log = tmp_path_factory.mktemp("web_server") / "server.log"
    with running_server(llama_server.url, snac_dir, log) as server:
        yield server


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
