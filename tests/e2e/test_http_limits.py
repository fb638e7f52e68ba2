"""What a hostile or broken HTTP client can make the server hold, against the real server
process: a body is capped (413, at once for a declared length, as soon as a chunked one
passes the cap) and timed (408); a huge request head is refused without being held; a keys
file with an empty key stops the start, and on SIGHUP keeps the old keys; a key is compared
without Unicode stripping; a path can't forge a log line, nor a query name spelled
``api%5Fkey`` put its key in the log. Every exchange here is raw bytes on a socket: HTTP
client libraries would fix up what these tests send on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from ..utils import scaled
from .conftest import _server
from .harness import HOST, ServerProcess, clean_env, serve_command

KEY = "k-limits-7731"
CAP = 1024 * 1024  # the default --http-max-body-bytes
AUTH = f"Authorization: Bearer {KEY}\r\n"


@pytest_asyncio.fixture(scope="module")
async def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    file = tmp_path_factory.mktemp("keys") / "keys.txt"
    file.write_text(f"ops:{KEY}\n")
    return file


@pytest_asyncio.fixture(scope="module")
async def limited(shared_standin: StandinLLMServer, snac_dir: Path, keys_file: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """Default limits but a 1 s body timeout; keys from a file; the text log."""
    log = tmp_path_factory.mktemp("logs") / "limited_server.log"
    async for server in _server(lambda port: serve_command(
            port, shared_standin.url, snac_dir, "--codec", "passthrough",
            "--api-keys-file", str(keys_file), "--http-body-timeout", "1"), log):
        yield server


class Answer:
    """What came back on a raw connection: the status (None: closed without one), the
    headers, the body; and whether the server took all the client had to send."""

    def __init__(self, data: bytes, sent_all: bool = True) -> None:
        self.sent_all = sent_all
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
        self.status = int(match[1]) if match else None
        self.headers = {name.strip().lower(): value.strip() for name, _, value in
                        (line.partition(":") for line in lines[1:])}

    def json(self) -> Any:
        return orjson.loads(self.body)


async def exchange(server: ServerProcess, head: str, body: bytes = b"", *,
                   then: AsyncIterator[bytes] | None = None, timeout: float = 10) -> Answer:
    """Sends ``head`` (latin-1) and ``body``, then ``then``'s chunks until the server answers
    or stops reading; reads the answer (to the close, or its Content-Length). A client still
    writing when the server closes may see a reset and no answer (asyncio drops what it had
    not read): tests that want the answer stop writing just past the bound."""
    reader, writer = await asyncio.open_connection(HOST, server.port)
    data = b""
    sent_all = False

    async def write() -> None:
        nonlocal sent_all
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
        if then is not None:
            async for chunk in then:
                writer.write(chunk)
                await writer.drain()
        sent_all = True

    async def read() -> bytes:
        nonlocal data
        while True:
            part = await reader.read(65536)
            if not part:
                return data
            data += part
            answer = Answer(data)
            length = answer.headers.get("content-length")
            if length is not None and len(answer.body) >= int(length):
                return data

    writing = asyncio.ensure_future(write())
    try:
        with contextlib.suppress(ConnectionError, TimeoutError):  # no answer: status None
            await asyncio.wait_for(read(), scaled(timeout))
    finally:
        writing.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await writing
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return Answer(data, sent_all)


def rss_kib(server: ServerProcess) -> int:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match is not None
    return int(match[1])


async def health_within(server: ServerProcess, seconds: float) -> None:
    answer = await exchange(server, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                            timeout=seconds)
    assert answer.status == 200


async def chunked(size: int, total: int) -> AsyncIterator[bytes]:
    """A chunked body of ``total`` bytes in chunks of ``size``, its end never sent."""
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + b"x" * size + b"\r\n"


async def test_a_declared_body_over_the_cap_is_413_before_any_of_it_is_sent(
        limited: ServerProcess) -> None:
    answer = await exchange(limited, f"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\n{AUTH}"
                            f"Content-Type: application/json\r\n"
                            f"Content-Length: {200 * 1024 * 1024}\r\n\r\n")
    assert answer.status == 413, answer.body
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "body_too_large")
    assert answer.headers["connection"] == "close"


async def test_a_body_under_the_cap_still_reaches_its_route(limited: ServerProcess) -> None:
    text = orjson.dumps({"text": "a" * (CAP // 2), "voice": "tara"})
    answer = await exchange(limited, f"POST /api/tts HTTP/1.1\r\nHost: x\r\n{AUTH}"
                            f"Content-Length: {len(text)}\r\n\r\n", text)
    assert answer.status is not None and answer.status not in (408, 413), answer.body


CHUNKED_HEAD = (f"POST /api/tts HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")


async def test_a_chunked_body_is_413_once_it_passes_the_cap(limited: ServerProcess) -> None:
    answer = await exchange(limited, CHUNKED_HEAD, then=chunked(64 * 1024, CAP + 128 * 1024))
    assert answer.status == 413 and answer.headers["connection"] == "close"
    assert answer.json()["error"]["code"] == "body_too_large"


async def test_chunked_bodies_are_never_read_far_past_the_cap(limited: ServerProcess) -> None:
    before = rss_kib(limited)
    answers = await asyncio.gather(*(exchange(limited, CHUNKED_HEAD,
                                              then=chunked(64 * 1024, 32 * CAP))
                                     for _ in range(4)), health_within(limited, scaled(1)))
    for answer in answers[:4]:
        assert answer is not None and not answer.sent_all  # the server stopped reading
        assert answer.status in (413, None)  # None: reset while the client still wrote
    assert rss_kib(limited) - before < 48 * 1024  # 4 bodies of 1 MiB at most, and slack


async def test_a_body_that_trickles_is_408(limited: ServerProcess) -> None:
    answer = await exchange(limited, f"POST /tts/bytes HTTP/1.1\r\nHost: x\r\n{AUTH}"
                            "Content-Length: 100\r\n\r\n", b'{"transcript": ')
    assert answer.status == 408
    assert answer.json()["code"] == "body_timeout"


async def test_a_huge_request_head_is_refused_without_being_held(
        limited: ServerProcess) -> None:
    before = rss_kib(limited)

    async def big_header() -> AsyncIterator[bytes]:
        for _ in range(16):
            yield b"a" * 65536
        yield b"\r\n\r\n"

    answers = await asyncio.gather(*(exchange(
        limited, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ", then=big_header())
        for _ in range(4)), health_within(limited, scaled(1)))
    for answer in answers[:4]:
        assert answer is not None and (answer.status is None or 400 <= answer.status < 500)
    assert rss_kib(limited) - before < 8 * 1024


@pytest.mark.parametrize("value", ["\u00a0", " \t", "\u00a0" + KEY])
async def test_a_key_of_unicode_whitespace_gets_nothing(limited: ServerProcess,
                                                        value: str) -> None:
    for header in ("X-API-Key", "xi-api-key", "Authorization: Bearer"):
        name, _, scheme = header.partition(": ")
        answer = await exchange(limited, f"GET /api/voices HTTP/1.1\r\nHost: x\r\n"
                                f"{name}: {scheme + ' ' if scheme else ''}{value}\r\n\r\n")
        assert answer.status == 401, (header, value)
    socket = await exchange(limited, "GET /api/tts/ws HTTP/1.1\r\nHost: x\r\n"
                            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            f"Sec-WebSocket-Version: 13\r\nX-API-Key: {value}\r\n\r\n")
    assert socket.status != 101


async def test_a_reload_with_an_empty_key_keeps_the_old_keys(
        limited: ServerProcess, keys_file: Path) -> None:
    assert limited.process is not None
    keys_file.write_text(f"ops:{KEY}\nplaceholder:\n")
    try:
        os.kill(limited.process.pid, signal.SIGHUP)
        for _ in range(100):
            if f"{keys_file}, line 2" in limited.log_path.read_text():
                break
            await asyncio.sleep(scaled(0.05))
        assert f"{keys_file}, line 2" in limited.log_path.read_text()
        ok = await exchange(limited, f"GET /api/voices HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n")
        nbsp = await exchange(limited, "GET /api/voices HTTP/1.1\r\nHost: x\r\n"
                              "X-API-Key: \u00a0\r\n\r\n")
        assert (ok.status, nbsp.status) == (200, 401)
    finally:
        keys_file.write_text(f"ops:{KEY}\n")
        os.kill(limited.process.pid, signal.SIGHUP)


@pytest.mark.parametrize("flags,says", [
    (["--api-keys-file", "{keys}"], "{keys}, line 2"),
    (["--api-key", ""], "--api-key"),
    (["--api-key", "ok-key", "--api-key", " "], "--api-key"),
])
async def test_an_empty_key_stops_the_start_with_a_message_naming_it(
        shared_standin: StandinLLMServer, snac_dir: Path, tmp_path: Path,
        flags: list[str], says: str) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("ops:fine-key\nplaceholder:\n")
    command = serve_command(0, shared_standin.url, snac_dir, "--codec", "passthrough",
                            *(flag.format(keys=keys) for flag in flags))
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True,
                                   env=clean_env(), timeout=scaled(30))
    assert done.returncode != 0
    assert says.format(keys=keys) in done.stderr and "empty" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


async def test_a_path_cannot_forge_a_log_line(limited: ServerProcess) -> None:
    answer = await exchange(limited, "GET /nope%0aFAKE%20LINE%1b[31m HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.status == 401
    await health_within(limited, scaled(5))  # its lines are written by now
    text = limited.log_path.read_text()
    assert "\x1b" not in text
    assert not any(line.startswith("FAKE LINE") for line in text.splitlines())
    assert "/nope\\nFAKE LINE\\x1b[31m" in text


@pytest.mark.parametrize("query", ["api%5Fkey", "api_key", "%61ccess_token"])
async def test_a_key_in_the_query_authenticates_and_stays_out_of_the_log(
        limited: ServerProcess, query: str) -> None:
    secret = KEY
    answer = await exchange(limited, f"GET /api/voices?{query}={secret}&x=1 HTTP/1.1\r\n"
                            "Host: x\r\n\r\n")
    assert answer.status == 200
    await health_within(limited, scaled(5))
    text = limited.log_path.read_text()
    assert f"{query}=***" in text and secret not in text
