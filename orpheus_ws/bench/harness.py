"""Processes a benchmark runs: the stand-in LLM server (or a running llama-server) and the
orpheus_ws server, each a subprocess on 127.0.0.1 stopped by its own handle; the server's CPU
time read with psutil."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psutil

from ..devtools.llama_server import free_port


class BenchSetupError(RuntimeError):
    """The benchmark can't run as asked (e.g. the LLM server given does not answer)."""


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchSetupError(f"{process.args!r} exited with {process.returncode}: "
                                  f"{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.1)
    raise BenchSetupError(f"{url} did not answer in {timeout} s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def process(args: list[str], health_url: str, *, env: dict[str, str] | None = None,
            timeout: float = 60.0, cwd: str | None = None,
            nice: int = 0) -> Iterator[subprocess.Popen[bytes]]:
    log = Path(tempfile.mkstemp(prefix="orpheus-bench-", suffix=".log")[1])
    with log.open("wb") as sink:
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, cwd=cwd,
                                preexec_fn=lowered(nice))
        try:
            _wait_http(health_url, proc, log, timeout)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# The stand-in LLM and the load run this much nicer than the server: on a machine of few cores
# they would otherwise hold a core the server's event loop waits for, and the latency it adds
# would be theirs (on a GPU machine the LLM is not on the server's cores, the load not on its
# machine). Their CPU is reported beside the server's either way.
OTHERS_NICE = 10


def lowered(nice: int) -> Callable[[], None] | None:
    """A child's ``preexec_fn`` that lowers its priority by ``nice`` (None for 0)."""
    if not nice:
        return None

    def lower() -> None:
        os.nice(nice)

    return lower


# The stand-in processes running, by URL: their CPU is reported beside the server's.
STANDINS: dict[str, psutil.Process] = {}


def llm_process(url: str) -> psutil.Process | None:
    """The stand-in LLM process serving ``url`` (None: an LLM server of the user's)."""
    return STANDINS.get(url)


@contextlib.contextmanager
def standin(tokens_per_second: float, slots: int, frames: int | None) -> Iterator[str]:
    """A stand-in llama-server process; yields its URL."""
    port = free_port()
    args = [sys.executable, "-m", "orpheus_ws.devtools.standin_llm", "--port", str(port),
            "--tokens-per-second", str(tokens_per_second), "--slots", str(slots)]
    if frames:
        args += ["--frames", str(frames)]
    url = f"http://127.0.0.1:{port}"
    with process(args, url + "/health", nice=OTHERS_NICE) as proc:
        STANDINS[url] = psutil.Process(proc.pid)
        try:
            yield url
        finally:
            del STANDINS[url]


@contextlib.contextmanager
def llm_backend(llm_url: str | None, tokens_per_second: float, slots: int,
                frames: int | None) -> Iterator[str]:
    """The LLM server of a scenario: ``llm_url`` if given (a running llama-server, checked
    healthy), else a stand-in process started for the scenario; yields its URL."""
    if llm_url is None:
        with standin(tokens_per_second, slots, frames) as url:
            yield url
        return
    url = llm_url.rstrip("/")
    try:
        with urllib.request.urlopen(url + "/health", timeout=10) as response:
            healthy = response.status == 200
    except (OSError, ValueError) as exc:
        raise BenchSetupError(f"the LLM server at {url} is not reachable: {exc}") from None
    if not healthy:
        raise BenchSetupError(f"the LLM server at {url} is not healthy")
    yield url


@contextlib.contextmanager
def orpheus_server(llm_url: str, snac_model: str, *, tree: str | None = None,
                   **settings: Any) -> Iterator[tuple[str, psutil.Process]]:
    """An orpheus_ws server process; yields (base URL, its psutil handle). ``tree``: a source
    tree whose ``orpheus_ws`` the server runs instead of this one (``PYTHONPATH``), for a
    comparison in one run. A port taken between choosing it and binding it (by any process's
    outgoing connection) is chosen again."""
    for attempt in range(3):
        port = free_port()
        # Trimming and the runaway guard off unless asked for: the pass-through codec's
        # silence would all be trimmed, and these scenarios measure the machinery on fixed
        # lengths (bench quiet measures trimming, bench messages the guard's cost).
        env = {"ORPHEUS_WS_HOST": "127.0.0.1", "ORPHEUS_WS_PORT": str(port),
               "ORPHEUS_WS_LLM_URL": llm_url, "ORPHEUS_WS_SNAC_MODEL": snac_model,
               "ORPHEUS_WS_LOG_LEVEL": "warning", "ORPHEUS_WS_TRIM_QUIET": "0",
               "ORPHEUS_WS_RUNAWAY_GUARD": "0"}
        if tree is not None:
            env["PYTHONPATH"] = tree
        for name, value in settings.items():
            env["ORPHEUS_WS_" + name.upper()] = ("1" if value else "0") \
                if isinstance(value, bool) else str(value)
        url = f"http://127.0.0.1:{port}"
        try:
            # run from the tree: ``-m`` puts the working folder ahead of PYTHONPATH
            with process([sys.executable, "-m", "orpheus_ws.cli", "serve"], url + "/api/stats",
                         env=env, timeout=120, cwd=tree) as proc:
                yield url, psutil.Process(proc.pid)
                return
        except BenchSetupError as exc:
            if attempt == 2 or "address already in use" not in str(exc):
                raise


def process_cpu(process: psutil.Process | None) -> float:
    """A process's CPU seconds so far, user and system (0 for None: no process of ours)."""
    if process is None:
        return 0.0
    times = process.cpu_times()
    return float(times.user + times.system)


def cpu_snapshot(proc: psutil.Process) -> tuple[float, float, float]:
    """(process total, main thread, every other thread) CPU seconds of a server process, read
    together so the three describe one moment. The main thread runs the event loop (protocol,
    parsing, scheduling, sending); the others are the decoder's worker and torch's threads:
    decoding, and little else. Threads that ended before the call are not in the split, so the
    split may add up to less than the total; the kernel counts each in clock ticks (10 ms), so
    it may also exceed the total by a tick or two."""
    main = other = 0.0
    for thread in proc.threads():
        spent = float(thread.user_time + thread.system_time)
        if thread.id == proc.pid:
            main += spent
        else:
            other += spent
    return process_cpu(proc), main, other


def server_stats(url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(url + "/api/stats", timeout=10) as response:
        result: dict[str, Any] = orjson.loads(response.read())
        return result
