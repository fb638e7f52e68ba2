"""The generation's connection (engine/llm_http.py, llm_pacing.py) against a raw HTTP/1.1
server whose every write the test sets: reads a frame at a time, a stream that stops
mid-frame, kept-alive connections and one the server dropped while idle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import orjson

from orpheus_ws.engine.llm import LLMClient
from orpheus_ws.engine.tokens import FrameParser
from orpheus_ws.params import SamplingParams

from .utils import scaled

PARAMS = SamplingParams(max_tokens=512)
Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]


def token_ids(count: int) -> list[int]:
    """``count`` audio tokens in frame order (position k of a frame: 128266 + k x 4096 + code)."""
    return [128266 + (i % 7) * 4096 + (i * 37) % 4096 for i in range(count)]


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(body: dict[str, object]) -> bytes:
    return chunk(b"data: " + orjson.dumps(body) + b"\n\n")


HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")


@dataclass
class RawBackend:
    """Answers each POST with ``respond``; counts connections."""

    respond: Writer
    connections: int = 0
    close_after_response: bool = False
    url: str = ""
    _server: asyncio.Server | None = field(default=None, repr=False)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError,
                                 asyncio.CancelledError):  # the test's end
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                await reader.readexactly(length)
                await self.respond(writer)
                if self.close_after_response:
                    break
        writer.close()


@contextlib.asynccontextmanager
async def raw_backend(respond: Writer, *, close_after_response: bool = False
                      ) -> AsyncIterator[RawBackend]:
    backend = RawBackend(respond, close_after_response=close_after_response)
    server = await asyncio.start_server(backend._serve, "127.0.0.1", 0)
    backend.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield backend
    finally:
        server.close()


class Reads:
    """A sink that counts the reads it is given, frames parsed as the engine does."""

    def __init__(self) -> None:
        self.parser = FrameParser()
        self.ids: list[int] = []
        self.reads = 0

    def take(self, ids: list[int]) -> bool:
        self.reads += 1
        self.ids.extend(ids)
        self.parser.feed(ids)
        return False

    def awaiting(self) -> int:
        return self.parser.awaiting


def paced(ids: list[int], *, pause_s: float, final: bytes) -> Writer:
    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD)
        for n, token in enumerate(ids):
            writer.write(event({"content": "", "tokens": [token], "stop": False,
                                "tokens_predicted": n + 1}))
            await writer.drain()
            await asyncio.sleep(pause_s)
        writer.write(final + chunk(b""))
        await writer.drain()
    return respond


STOP = event({"content": "", "stop": True})


async def test_tokens_are_read_a_frame_at_a_time() -> None:
    """70 tokens written one by one, a few ms apart: the kernel holds a frame's tokens until
    it can be whole, so the generation gets far fewer reads than tokens, and every token."""
    ids = token_ids(70)
    async with raw_backend(paced(ids, pause_s=0.003, final=STOP)) as backend:
        client = LLMClient(backend.url)
        sink = Reads()
        try:
            await client.generate("tara", "Hi.", PARAMS, sink)
        finally:
            await client.close()
    assert sink.ids == ids
    assert sink.reads <= 2 * 10 + 2  # about two a frame (its first token, then the rest)


async def test_a_stream_that_stops_mid_frame_is_read_without_waiting_for_the_timeout() -> None:
    """A token limit ends a generation 3 tokens into a frame, with a final event smaller than
    what the frame was waiting for: the held bytes are read once the stream is silent."""
    ids = token_ids(10)
    async with raw_backend(paced(ids, pause_s=0.003, final=STOP)) as backend:
        client = LLMClient(backend.url, read_timeout_s=scaled(30))
        sink = Reads()
        try:
            await asyncio.wait_for(client.generate("tara", "Hi.", PARAMS, sink), scaled(5))
        finally:
            await client.close()
    assert sink.ids == ids


async def generations(url: str, count: int, *, pause_s: float = 0.0) -> list[list[int]]:
    """The tokens of ``count`` generations one after another on one client."""
    client = LLMClient(url)
    got = []
    try:
        for _ in range(count):
            sink = Reads()
            await client.generate("tara", "Hi.", PARAMS, sink)
            got.append(sink.ids)
            await asyncio.sleep(pause_s)
    finally:
        await client.close()
    return got


async def test_connections_are_kept_and_reused() -> None:
    async with raw_backend(paced(token_ids(14), pause_s=0, final=STOP)) as backend:
        assert await generations(backend.url, 3) == [token_ids(14)] * 3
    assert backend.connections == 1


async def test_a_kept_connection_the_backend_dropped_is_replaced() -> None:
    """The backend closes each connection after its response (as one whose keep-alive timed
    out): the next generation finds its kept connection gone and takes a fresh one."""
    async with raw_backend(paced(token_ids(14), pause_s=0, final=STOP),
                           close_after_response=True) as backend:
        # the pause: the close reaches the client before the next generation
        assert await generations(backend.url, 2, pause_s=0.05) == [token_ids(14)] * 2
    assert backend.connections == 2


def llama_events(ids: list[int]) -> bytes:
    return b"".join(event({"content": "", "tokens": [t], "stop": False}) for t in ids)


async def test_the_connection_is_kept_after_end_of_speech_and_end_of_turn() -> None:
    """llama-server on an Orpheus GGUF writes end of speech, then end of turn and its final
    event: the generation ends at end of speech, and the connection is kept for the next."""
    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + llama_events([*token_ids(7), 128258]))
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(llama_events([128262, 128009]) + STOP + chunk(b""))
        await writer.drain()

    async with raw_backend(respond) as backend:
        # the pause: the response's end comes after the generation's
        assert await generations(backend.url, 3, pause_s=0.1) == [token_ids(7)] * 3
    assert backend.connections == 1


async def test_a_backend_generating_past_end_of_speech_is_reset() -> None:
    """A backend that goes on generating after end of speech: the generation ends there, and
    the request is reset soon after, so the backend's next write fails and frees its slot."""
    reset = asyncio.Event()

    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + llama_events([*token_ids(7), 128258]))
        try:
            for _ in range(500):  # 10 s of more tokens
                await asyncio.sleep(0.02)
                writer.write(llama_events(token_ids(1)))
                await writer.drain()
        except ConnectionError:
            reset.set()
            raise

    async with raw_backend(respond) as backend:
        client = LLMClient(backend.url)
        try:
            sink = Reads()
            await asyncio.wait_for(client.generate("tara", "Hi.", PARAMS, sink), scaled(5))
            assert sink.ids == token_ids(7)
            await asyncio.wait_for(reset.wait(), scaled(5))
        finally:
            await client.close()


async def test_the_pacing_adds_no_descriptor_to_a_connection() -> None:
    """The pacing sets its socket option on the connection's own descriptor: five kept
    connections are five descriptors here and five at the backend (in this process), no more;
    and none is left once the client closes."""
    import os

    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    async with raw_backend(paced(token_ids(21), pause_s=0.002, final=STOP)) as backend:
        client = LLMClient(backend.url)
        before = descriptors()
        sinks = [Reads() for _ in range(5)]
        await asyncio.gather(*(client.generate("tara", "Hi.", PARAMS, s) for s in sinks))
        assert all(s.ids == token_ids(21) for s in sinks)
        assert descriptors() - before == 10
        await client.close()
        await asyncio.sleep(0.05)
        assert descriptors() - before <= 5  # the backend's ends close as it sees them go
