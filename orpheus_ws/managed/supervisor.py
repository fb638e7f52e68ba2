"""The managed llama-server: started, watched, restarted, and never left behind.

States: ``starting`` -> ``ready``; when the process dies, ``restarting`` (with a backoff) ->
``ready`` again; ``failed`` when the model can't be loaded at the first start, or after
``MAX_FAILED_RESTARTS`` restarts in a row that never became healthy, so a broken model is
reported once instead of restarted in a loop. The process dies with us: it is stopped on
shutdown, and on Linux the kernel kills it when our process dies, even by SIGKILL
(``PR_SET_PDEATHSIG``). Its output goes to our log under ``orpheus_ws.llama_server``: lines
that report errors at WARNING, the rest at DEBUG; the last lines are kept for error reports.

While it is down, requests to it are refused at once (the port is closed), so contexts and
requests fail with ``backend_error`` / 503 ``backend_unavailable`` instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp

from .plan import LlamaPlan

log = logging.getLogger("orpheus_ws.llama_server")
STARTUP_TIMEOUT_S = 600.0  # a 3B model loads in seconds from a warm disk, minutes from a cold one
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
MAX_FAILED_RESTARTS = 5
STOP_TIMEOUT_S = 5.0
_ERROR_WORDS = ("error", "failed", "unable", "cannot", "abort")


class LlamaServerFailed(RuntimeError):
    """llama-server could not be started (its last log lines say why)."""


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends SIGKILL when the parent dies (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class ManagedLlamaServer:
    """Runs one llama-server for this process (or for every worker of ``serve --workers``)."""

    def __init__(self, plan: LlamaPlan, *, model_name: str,
                 startup_timeout_s: float = STARTUP_TIMEOUT_S,
                 backoff_s: tuple[float, ...] = BACKOFF_S) -> None:
        self.plan = plan
        self.model_name = model_name
        self.startup_timeout_s = startup_timeout_s
        self.backoff_s = backoff_s
        self.state = "stopped"
        self.restarts = 0
        self.error: str | None = None
        self.last_exit: dict[str, Any] | None = None
        self.started_at: float | None = None
        self.lines: deque[str] = deque(maxlen=40)
        self.on_state: Callable[[str], None] | None = None  # called at each change
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        return self.plan.url

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def health(self) -> dict[str, Any]:
        """For ``/health``: state, pid, model, slots, restarts, the last exit and error."""
        return {"state": self.state, "pid": self.pid, "model": self.model_name,
                "model_path": self.plan.model, "url": self.url, "slots": self.plan.streams,
                "ctx_size": self.plan.ctx_size, "threads": self.plan.threads,
                "gpu_layers": 999 if self.plan.gpu else 0, "restarts": self.restarts,
                "last_exit": self.last_exit, "error": self.error}

    async def start(self) -> None:
        """Starts llama-server and waits until it is healthy; LlamaServerFailed if it exits
        first (a model that can't be loaded, say) or is not healthy in time."""
        self._set("starting")
        try:
            await self._launch()
        except LlamaServerFailed as exc:
            self.error = str(exc)
            self._set("failed")
            raise
        self._set("ready")
        self._watcher = asyncio.get_running_loop().create_task(self._watch(),
                                                                 name="llama-server-watch")

    async def stop(self) -> None:
        """Stops llama-server (SIGTERM, then SIGKILL) and the watcher."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self._terminate()
        self._set("stopped")

    # -- the process ----------------------------------------------------------------------

    async def _launch(self) -> None:
        command = self.plan.command()
        log.info("starting llama-server: %s", " ".join(command))
        try:
            self._process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, preexec_fn=_die_with_parent,
                start_new_session=True, env={**os.environ, **self.plan.env})
        except OSError as exc:
            raise LlamaServerFailed(f"cannot run {command[0]}: {exc.strerror}") from None
        self._reader = asyncio.get_running_loop().create_task(self._read(self._process),
                                                                name="llama-server-log")
        try:
            await self._wait_healthy(self._process)
        except BaseException:
            await self._terminate()
            raise
        self.started_at = time.monotonic()
        self.error = None
        log.info("llama-server ready at %s (pid %d, %d slots)", self.url, self._process.pid,
                 self.plan.streams)

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            self.lines.append(line)
            level = logging.WARNING if any(w in line.lower() for w in _ERROR_WORDS) \
                else logging.DEBUG
            log.log(level, "[llama-server] %s", line)

    async def _wait_healthy(self, process: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                if process.returncode is not None:
                    await self._drain_reader()
                    raise LlamaServerFailed(
                        f"llama-server exited with code {process.returncode} before it was "
                        f"ready, loading {self.model_name}: {self._last_error()}")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with http.get(self.url + "/health") as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise LlamaServerFailed(f"llama-server was not ready within "
                                            f"{self.startup_timeout_s:g} s")
                await asyncio.sleep(0.1)

    async def _drain_reader(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), 2)

    def _last_error(self) -> str:
        for line in reversed(self.lines):
            if any(w in line.lower() for w in _ERROR_WORDS):
                return line.strip()
        return self.lines[-1].strip() if self.lines else "no output"

    async def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    # -- watching and restarting ----------------------------------------------------------

    async def _watch(self) -> None:
        failures = 0
        while not self._stopping:
            process = self._process
            assert process is not None
            code = await process.wait()
            if self._stopping:
                return
            self.last_exit = {"code": code, "at": time.time(),
                              "signal": signal.Signals(-code).name if code < 0 else None}
            log.warning("llama-server (pid %d) exited with code %s; restarting", process.pid,
                        code)
            await self._terminate()
            while not self._stopping:
                self._set("restarting")
                await asyncio.sleep(self.backoff_s[min(failures, len(self.backoff_s) - 1)])
                self.restarts += 1
                try:
                    await self._launch()
                except LlamaServerFailed as exc:
                    failures += 1
                    self.error = str(exc)
                    log.error("llama-server restart %d failed: %s", self.restarts, exc)
                    if failures >= MAX_FAILED_RESTARTS:
                        self._set("failed")
                        return
                    continue
                failures = 0
                self._set("ready")
                break

    def _set(self, state: str) -> None:
        self.state = state
        if self.on_state is not None:
            self.on_state(state)
