"""The README's run command, checked the way a newcomer meets it.

``python -m tests.support.newcomer VENV`` (``.ci/run`` does this before the suite, from the dev
environment): VENV is a fresh virtual environment with only what the README's run section
installs (``pip install torch==2.13.0``, then ``pip install -e '.[llama]'``). A loopback stand-in
for the Hugging Face Hub serves the tiny Orpheus GGUF and SNAC with random weights under the
*default* repo names, so ``orpheus-ws serve`` with no model flags at all downloads them as it
would from the Hub. Then:

1. ``orpheus-ws serve`` reaches ``/ready`` 200;
2. ``POST /api/tts/wav`` speaks a WAV; ``/client/`` and ``/metrics`` answer;
3. SIGTERM stops it with status 0 and leaves none of its processes (llama-server) behind;
4. ``orpheus-ws say "Hello there." -o hello.wav`` writes a WAV.

Every step prints one line; the first that fails ends the check with its reason and the tail of
the server's output (exit status 1). The same steps run inside the suite against an installed
wheel (tests/e2e/test_wheel.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import aiohttp
import psutil

from orpheus_ws.devtools.random_snac import save_random_snac
from orpheus_ws.models import DEFAULT_MODEL, DEFAULT_SNAC

from .fake_hub import FakeHub
from .tiny_gguf import write_tiny_orpheus_gguf

__all__ = ["NewcomerFailed", "check", "hub_root"]

# The file name the default repo publishes its one Q4_K_M quant under.
DEFAULT_MODEL_FILE = "orpheus-3b-0.1-ft-q4_k_m.gguf"
READY_TIMEOUT_S = 600.0  # a cold start: downloads, llama-server, SNAC, a calibration decode
STOP_TIMEOUT_S = 60.0
SAY_TIMEOUT_S = 600.0
TEXT = "Hello there."


class NewcomerFailed(Exception):
    """A step of the newcomer's path failed; ``str()`` says which and why."""


def hub_root(root: Path, *, extra_repos: dict[str, str] | None = None) -> Path:
    """Lays out ``root/{owner}/{name}/...`` for :class:`FakeHub`: the tiny GGUF as the default
    model's file, random SNAC as the default SNAC repo; ``extra_repos`` maps more repo names
    to the name their one GGUF file has (the same tiny GGUF)."""
    model = root / DEFAULT_MODEL
    model.mkdir(parents=True, exist_ok=True)
    write_tiny_orpheus_gguf(model / DEFAULT_MODEL_FILE)
    (model / "README.md").write_text("# Orpheus 3B 0.1 fine-tune, Q4_K_M (a tiny stand-in)\n")
    for repo, name in (extra_repos or {}).items():
        (root / repo).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model / DEFAULT_MODEL_FILE, root / repo / name)
    save_random_snac(root / DEFAULT_SNAC)
    return root


def newcomer_env(venv: Path, hub_url: str, home: Path) -> dict[str, str]:
    """A shell in which VENV is activated and nothing of this environment's leaks in: no other
    virtual environment on PATH, no ORPHEUS_WS_* or HF_* setting but the Hub's address and a
    fresh cache."""
    here = Path(sys.prefix) / "bin"
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != here]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ORPHEUS_WS_", "HF_", "HUGGINGFACE_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=os.pathsep.join([str(venv / "bin"), *path]), VIRTUAL_ENV=str(venv),
               HF_ENDPOINT=hub_url, HF_HOME=str(home), PYTHONUNBUFFERED="1")
    return env


def _say(step: str) -> None:
    print(f"newcomer: {step}", flush=True)


def _read_wav(data: bytes, what: str) -> int:
    """The sample count of a 24 kHz mono 16-bit WAV, or NewcomerFailed."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            rate, channels, width, frames = (wav.getframerate(), wav.getnchannels(),
                                             wav.getsampwidth(), wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise NewcomerFailed(f"{what} is not a WAV file ({exc}): {data[:40]!r}") from None
    if (rate, channels, width) != (24000, 1, 2) or frames == 0:
        raise NewcomerFailed(f"{what}: {rate} Hz, {channels} channels, {width * 8}-bit, "
                             f"{frames} samples")
    return int(frames)


async def _wait_ready(http: aiohttp.ClientSession, url: str, server: subprocess.Popen[bytes],
                      log: Path) -> float:
    started = time.monotonic()
    while time.monotonic() - started < READY_TIMEOUT_S:
        if server.poll() is not None:
            raise NewcomerFailed(f"`orpheus-ws serve` exited with status {server.returncode} "
                                 f"before /ready answered 200:\n{_tail(log)}")
        try:
            async with http.get(url + "/ready") as response:
                if response.status == 200:
                    return time.monotonic() - started
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    raise NewcomerFailed(f"/ready did not answer 200 within {READY_TIMEOUT_S:.0f} s:\n"
                         f"{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


async def _use(http: aiohttp.ClientSession, url: str) -> None:
    async with http.post(url + "/api/tts/wav", json={"text": TEXT}) as response:
        body = await response.read()
        if response.status != 200 or response.content_type != "audio/wav":
            raise NewcomerFailed(f"POST /api/tts/wav answered {response.status} "
                                 f"{response.content_type}: {body[:300]!r}")
    samples = _read_wav(body, "POST /api/tts/wav's body")
    _say(f"POST /api/tts/wav spoke {samples} samples")
    async with http.get(url + "/client/") as response:
        page = await response.text()
        if response.status != 200 or "<script" not in page:
            raise NewcomerFailed(f"GET /client/ answered {response.status}: {page[:300]!r}")
    _say("GET /client/ served the player")
    async with http.get(url + "/metrics") as response:
        text = await response.text()
        if response.status != 200 or "orpheus_ws_" not in text:
            raise NewcomerFailed(f"GET /metrics answered {response.status}: {text[:300]!r}")
    _say("GET /metrics answered")


async def _stop(server: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, then: status 0, and none of the server's processes left."""
    tree = [psutil.Process(server.pid)]
    with contextlib.suppress(psutil.NoSuchProcess):
        tree += tree[0].children(recursive=True)
    server.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.wait_for(asyncio.to_thread(server.wait), STOP_TIMEOUT_S)
    except TimeoutError:
        server.kill()
        raise NewcomerFailed(f"`orpheus-ws serve` was still running {STOP_TIMEOUT_S:.0f} s "
                             f"after SIGTERM:\n{_tail(log)}") from None
    if code != 0:
        raise NewcomerFailed(f"`orpheus-ws serve` exited with status {code} on SIGTERM:\n"
                             f"{_tail(log)}")
    _, alive = await asyncio.to_thread(psutil.wait_procs, tree[1:], timeout=10)
    if alive:
        names = ", ".join(f"{p.pid} {_name(p)}" for p in alive)
        for process in alive:
            process.kill()
        raise NewcomerFailed(f"SIGTERM left processes behind: {names}")
    _say(f"SIGTERM: stopped with status 0, none of its {len(tree) - 1} child processes left")


def _name(process: psutil.Process) -> str:
    try:
        return str(process.name())
    except psutil.Error:
        return "?"


async def check(venv: Path, workdir: Path, *, port: int | None = None) -> None:
    """Runs the newcomer's path with VENV's ``orpheus-ws`` in ``workdir``; NewcomerFailed on the
    first step that fails. ``port`` None runs ``serve`` exactly as the README has it (9100)."""
    command = venv / "bin" / "orpheus-ws"
    if not command.exists():
        raise NewcomerFailed(f"{command} does not exist: is {venv} installed as the README says?")
    root = hub_root(workdir / "hub")
    async with FakeHub(root) as hub:
        env = newcomer_env(venv, hub.url, workdir / "hf-home")
        serve = [str(command), "serve"] + (["--port", str(port)] if port is not None else [])
        url = f"http://127.0.0.1:{port or 9100}"
        log = workdir / "serve.log"
        _say(f"{' '.join(serve)} (HF_ENDPOINT={hub.url}, no model flags)")
        with log.open("wb") as out:
            server = subprocess.Popen(serve, cwd=workdir, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
                took = await _wait_ready(http, url, server, log)
                _say(f"/ready answered 200 after {took:.1f} s")
                await _use(http, url)
            await _stop(server, log)
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()

        wav = workdir / "hello.wav"
        say = [str(command), "say", TEXT, "-o", str(wav)]
        _say(" ".join(say))
        done = await asyncio.to_thread(subprocess.run, say, cwd=workdir, env=env,
                                       capture_output=True, text=True, timeout=SAY_TIMEOUT_S)
        if done.returncode != 0 or not wav.exists():
            raise NewcomerFailed(f"`orpheus-ws say` exited with status {done.returncode}:\n"
                                 f"{(done.stdout + done.stderr)[-3000:]}")
        _say(f"`orpheus-ws say` wrote {_read_wav(wav.read_bytes(), str(wav))} samples")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.newcomer",
                                     description=__doc__.partition("\n\n")[0] if __doc__ else "")
    parser.add_argument("venv", type=Path, help="the fresh venv, installed as the README says")
    parser.add_argument("--port", type=int, default=None,
                        help="serve on this port instead of the README's 9100")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="newcomer-") as workdir:
        try:
            asyncio.run(check(args.venv.resolve(), Path(workdir), port=args.port))
        except NewcomerFailed as exc:
            print(f"newcomer: FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
    _say("the README's run command works")
    return 0


if __name__ == "__main__":
    sys.exit(main())
