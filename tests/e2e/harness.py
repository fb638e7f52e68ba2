"""The server as a user runs it, and clients that see exactly what it sends.

:class:`ServerProcess` runs ``python -m orpheus_ws.cli serve ...`` (or any command) as a child
process, waits for ``GET /health`` and stops it by its Popen handle. Waiting never blocks the
event loop, so a stand-in LLM server living on the test's loop keeps answering meanwhile.
:class:`RawSocket` is a WebSocket client that records every message in arrival order, for the
checks the Python client would hide (frames after a cancel, close codes).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection

from orpheus_ws.app import create_app
from orpheus_ws.config import Settings
from orpheus_ws.devtools.llama_server import LlamaServerProcess, free_port
from orpheus_ws.devtools.standin_llm import StandinLLMServer, prompt_text
from orpheus_ws.engine import Admission, Codec, DecoderService, Engine, LLMClient
from orpheus_ws.engine.capacity import realtime_capacity
from orpheus_ws.ws.protocol import FrameHeader, decode_audio_frame

from ..utils import scaled

HOST = "127.0.0.1"
SAMPLES_PER_FRAME = 2048
# The server with short limits (conftest.py, ``strict_server``).
STRICT_LIMITS = {
    "ws_idle_timeout": 1.5,
    "ws_max_message_bytes": 2000,
    "ws_max_contexts": 2,
    "ws_max_buffered_bytes": 320 * 1024,  # above one 16-frame chunk of pcm_f32le at 48 kHz
    "ws_send_timeout": 2,
}
STRICT_VOICES = "tara,leo,nova"

# What the e2e tests ask for, shared by the HTTP and WebSocket modules.
MAX_TOKENS = 70  # the tiny model speaks until max_tokens: 70 tokens = 10 frames per segment
TINY_FRAMES = MAX_TOKENS // 7
SEED_REQUEST = {"text": "Hello world", "voice": "tara", "temperature": 0.3,
                "max_tokens": MAX_TOKENS, "stream": False}
TTS_PATHS = ("/api/tts", "/api/tts/wav", "/api/tts/stream")
LONG_TEXT = " ".join(
    f"Sentence number {i} is here to make the text long, and it says a little more." for i in
    range(40))[:3000].rsplit(" ", 1)[0] + "."


def serve_command(port: int, llm_url: str, snac_dir: Path, *flags: str) -> list[str]:
    """The command line a user types, on the CPU, with extra ``flags``. Real-time admission
    (and the runaway guard) is off unless ``flags`` turn it on: these tests open streams by
    the handful on a CPU that the rest of the suite loads, where it would refuse some of them
    (it has tests of its own: test_overload.py, and ``bench realtime``)."""
    admission = [] if "--realtime-admission" in flags else ["--no-realtime-admission"]
    # The runaway guard likewise: the tiny model never ends its speech, and these tests count
    # on max_tokens to bound each generation (the guard's own tests turn it on).
    guard = [] if "--runaway-guard" in flags else ["--no-runaway-guard"]
    # And trimming: the pass-through codec's audio is silence, which these tests count.
    guard += [] if "--trim-quiet" in flags else ["--no-trim-quiet"]
    # And normalization: many tests compare the prompts the stand-in gets with their text.
    guard += [] if "--normalize" in flags else ["--no-normalize"]
    return [sys.executable, "-m", "orpheus_ws.cli", "serve", "--host", HOST, "--port", str(port),
            "--llm-url", llm_url, "--snac-model", str(snac_dir), "--device", "cpu", *admission,
            *guard, *flags]


@contextlib.asynccontextmanager
async def serving(command: Any, log: Path) -> AsyncIterator[ServerProcess]:
    """A server process for ``command(port)``, started, and stopped after the block."""
    server = ServerProcess(command, log)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without ORPHEUS_WS_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORPHEUS_WS_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class ServerProcess:
    """One server child process; ``command(port)`` builds its command line for a port."""

    def __init__(self, command: Any, log_path: Path, *, env: dict[str, str] | None = None,
                 startup_timeout: float = 60.0, cwd: Path | None = None) -> None:
        self.command = command
        self.cwd = cwd or Path(__file__).parents[2]
        self.log_path = log_path
        self.env = env if env is not None else clean_env()
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/api/tts/ws"

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def start(self) -> None:
        for attempt in range(3):  # a free port can be taken before the server binds it
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    self.command(self.port), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, env=self.env, cwd=str(self.cwd))
            try:
                await self._wait_healthy(self.process)
                return
            except RuntimeError:
                await self.stop()
                if attempt == 2 or "address already in use" not in self.log_tail():
                    raise

    async def _wait_healthy(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + scaled(self.startup_timeout)
        async with aiohttp.ClientSession() as session:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited with {process.returncode}; log "
                                       f"{self.log_path}:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with session.get(self.url + "/health",
                                           timeout=aiohttp.ClientTimeout(total=5)) as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not healthy in time; log {self.log_path}:\n"
                                       f"{self.log_tail()}")
                await asyncio.sleep(0.1)

    async def stop(self, timeout: float = 10.0) -> int | None:
        """Terminate, wait, kill if it must; the exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, scaled(timeout))
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        return process.returncode


@dataclass(frozen=True)
class Frame:
    header: FrameHeader
    payload: bytes
    at: float

    @property
    def samples(self) -> int:
        width = {"pcm_s16le": 2, "pcm_f32le": 4}.get(self.header.encoding, 1)
        return len(self.payload) // width


class RawSocket:
    """A WebSocket client that keeps every message, in order: dicts for events, Frames."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.ready: dict[str, Any] = {}
        self.received: list[dict[str, Any] | Frame] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, **kwargs: Any) -> AsyncIterator[RawSocket]:
        kwargs.setdefault("max_size", None)
        async with websockets.connect(url, **kwargs) as connection:
            raw = cls(connection)
            raw.ready = orjson.loads(await asyncio.wait_for(connection.recv(), scaled(10)))
            assert raw.ready["type"] == "ready"
            yield raw

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        if isinstance(message, dict):
            message = orjson.dumps(message).decode()
        await self.connection.send(message)

    async def next(self, timeout: float = 10.0) -> dict[str, Any] | Frame:
        """The next message (in arrival order); recorded in ``received``."""
        return await self._next(scaled(timeout))

    async def _next(self, timeout_s: float) -> dict[str, Any] | Frame:
        data = await asyncio.wait_for(self.connection.recv(), timeout_s)
        loop = asyncio.get_running_loop()
        item: dict[str, Any] | Frame
        if isinstance(data, bytes):
            header, payload = decode_audio_frame(data)
            item = Frame(header, payload, loop.time())
        else:
            item = orjson.loads(data)
        self.received.append(item)
        return item

    async def until(self, kind: str, context_id: str | None = None,
                    timeout: float = 20.0) -> dict[str, Any]:
        """Reads until an event of ``kind`` (for ``context_id`` if given); returns it."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            item = await self._next(max(0.01, deadline - time.monotonic()))
            if isinstance(item, dict) and item.get("type") == kind and (
                    context_id is None or item.get("context_id") == context_id):
                return item

    async def closed(self, timeout: float = 10.0) -> tuple[int | None, str]:
        """Reads to the end of the connection; the server's close code and reason."""
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await self.next(timeout)
        close = self.connection.protocol.close_rcvd
        return (close.code, close.reason) if close is not None else (None, "")

    def frames(self, context_id: str) -> list[Frame]:
        return [m for m in self.received if isinstance(m, Frame)
                and m.header.context_id == context_id]

    def events(self, kind: str | None = None, context_id: str | None = None
               ) -> list[dict[str, Any]]:
        return [m for m in self.received if isinstance(m, dict)
                and (kind is None or m.get("type") == kind)
                and (context_id is None or m.get("context_id") == context_id)]

    def errors(self) -> list[dict[str, Any]]:
        return self.events("error")


async def speak(raw: RawSocket, context_id: str, text: str, **options: Any) -> dict[str, Any]:
    """One whole context on ``raw``; its done event (fails on an error of the context)."""
    await raw.send({"type": "text", "context_id": context_id, "text": text, "end": True,
                    **options})
    while True:
        item = await raw.next(20.0)
        if isinstance(item, dict) and item.get("context_id") == context_id:
            assert item["type"] != "error", item
            if item["type"] == "done":
                return item


def check_frames(frames: Sequence[Frame], context_id: str, sample_rate: int = 24000) -> int:
    """Asserts a context's frames are in order and contiguous; their sample count."""
    offset = 0
    for sequence, frame in enumerate(frames):
        h = frame.header
        assert h.context_id == context_id
        assert h.sequence == sequence, (h.sequence, sequence)
        assert h.sample_offset == offset, (h.sample_offset, offset)
        assert h.sample_rate == sample_rate
        assert h.header_length % 4 == 0
        offset += frame.samples
    return offset


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The JSON payloads of a server-sent-event stream."""
    async for raw in response.content:
        line = raw.decode().strip()
        if line.startswith("data: "):
            yield orjson.loads(line[6:])


def pcm_samples(audio_base64: str) -> int:
    return len(base64.b64decode(audio_base64)) // 2


def read_wav(data: bytes) -> tuple[int, int, int, int]:
    """(channels, sample width, rate, samples) of a WAV file."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()


async def samples_from(http: aiohttp.ClientSession, server: ServerProcess, path: str,
                       body: dict[str, Any]) -> int:
    """Samples of audio one TTS endpoint returns for ``body`` (asserting success)."""
    async with http.post(server.url + path, json=body) as response:
        assert response.status == 200, await response.text()
        if path == "/api/tts":
            return read_wav(base64.b64decode((await response.json())["audio_base64"]))[3]
        if path == "/api/tts/wav":
            return read_wav(await response.read())[3]
        total = 0
        async for event in sse_events(response):
            assert event.get("event") != "error", event
            if event.get("event") == "complete":
                assert event["total_samples"] == total
                return total
            total += pcm_samples(event["audio_base64"])
    raise AssertionError("the stream ended without a complete event")


def completions(standin: StandinLLMServer, since: int = 0) -> list[str]:
    """Texts of the generations the stand-in was asked for (the prompt, voice prefix kept)."""
    return [prompt_text(r.body.get("prompt")) for r in standin.requests[since:]
            if r.path == "/completion"]


async def serve_in_process(standin: StandinLLMServer, codec: Codec,
                           settings: Settings | None = None) -> AsyncIterator[str]:
    """``create_app`` on a real port in this process, with an engine of the test's parts (for
    faults that can't be caused from outside); yields ``host:port``."""
    standin.config.frames = 4
    # the pass-through codec's audio is silence, which these tests count: nothing trimmed
    settings = replace(settings or Settings(), trim_quiet=False)
    admission = Admission(max_generations=settings.max_generations,
                          per_key=settings.key_max_generations, max_queued=settings.max_queued,
                          queue_timeout_s=settings.queue_timeout)
    decoder = DecoderService(codec)
    engine = Engine(LLMClient(standin.url), decoder, voices=["tara"], admission=admission)
    if settings.realtime_admission:
        admission.over_capacity = realtime_capacity(decoder, engine.llm)
    port = free_port()
    config = uvicorn.Config(create_app(settings, engine), host=HOST, port=port,
                            log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        assert not task.done(), "the in-process server did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"{HOST}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, scaled(10))


# -- llama-server's slots ------------------------------------------------------------------


async def llama_slots(http: aiohttp.ClientSession,
                      llama: LlamaServerProcess) -> list[dict[str, Any]]:
    async with http.get(llama.url + "/slots") as response:
        slots: list[dict[str, Any]] = await response.json()
    return slots


async def llama_busy_slots(http: aiohttp.ClientSession, llama: LlamaServerProcess) -> int:
    return sum(1 for slot in await llama_slots(http, llama) if slot["is_processing"])


async def llama_seconds_per_token(http: aiohttp.ClientSession,
                                  llama: LlamaServerProcess) -> float:
    """How fast llama-server generates right now: seconds per token of its busiest slot."""

    async def decoded() -> int:
        counts = [0]
        for slot in await llama_slots(http, llama):
            progress = slot.get("next_token") or {}
            for entry in progress if isinstance(progress, list) else [progress]:
                counts.append(int(entry.get("n_decoded", 0)))
        return max(counts)

    started, before = time.monotonic(), await decoded()
    await asyncio.sleep(0.2)
    made = await decoded() - before
    return (time.monotonic() - started) / max(made, 1)


async def seconds_until_llama_idle(http: aiohttp.ClientSession,
                                   llama: LlamaServerProcess) -> float:
    """Polls llama-server's /slots until no slot is processing; the time that took. Every
    5 ms, not flat out: llama-server answers /slots from its generation loop, so a flood of
    polls would slow the very cancellation being measured."""
    started = time.monotonic()
    while await llama_busy_slots(http, llama):
        assert time.monotonic() - started < scaled(5), "llama-server slots stay busy"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def idle_deadline(seconds_per_token: float) -> float:
    """The issue's criterion: every slot idle within 100 ms of the abort. llama-server notices
    a dropped connection only when a write fails, one or two tokens later, and then needs a
    step of its loop; where it makes tokens slower than every 33 ms (a loaded CPU), that is
    what bounds it."""
    return max(scaled(0.1), 3 * seconds_per_token)
