"""A generation's HTTP request to the LLM backend, read on the event loop's own callbacks.

An LLM server streams one event per token, and on a GPU a process reads 80 tokens a second for
every stream it carries (BENCHMARKS.md, "The server's own CPU per stream"). Through a client
library each network read wakes the reading task and resumes its chain of iterators; here the
connection is an ``asyncio.Protocol`` whose ``data_received`` parses the HTTP response
(httptools, llhttp in C) and its events (``llm_events.py``) and hands the read's token ids to
the generation's sink in place: the task that made the request sleeps until the generation
ends. Connections are kept alive and reused, as llama-server and vLLM allow.

What ends a request: the backend's stop (the connection is kept for the next request once its
response is complete), end-of-speech or the sink asking to stop (the backend may go on
generating, so the connection is reset, SO_LINGER 0, and the backend's next write fails at once
and frees its slot), an error, the read timeout (no byte for ``read_timeout_s``), or the
caller's cancellation (reset too).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools

from ..exceptions import BackendError, BackendProtocolError, BackendUnavailable
from .llm_events import TokenEvents
from .llm_pacing import RELEASE_AFTER_S, FramePacing


class TokenSink(Protocol):
    """Where a generation's tokens go as they are read."""

    def take(self, ids: list[int]) -> bool:
        """The token ids of one network read (never empty); True stops the generation."""
        ...

    def awaiting(self) -> int:
        """Tokens still to come before those taken are of use (a frame's rest; 0: none)."""
        ...


class Collect:
    """A sink that keeps every token (for callers outside the engine: benchmarks, tests)."""

    def __init__(self, on_ids: Callable[[list[int]], object] | None = None) -> None:
        self.ids: list[int] = []
        self._on_ids = on_ids

    def take(self, ids: list[int]) -> bool:
        self.ids.extend(ids)
        if self._on_ids is not None:
            self._on_ids(ids)
        return False

    def awaiting(self) -> int:
        return 0


@dataclass(frozen=True, slots=True)
class Target:
    """Where a backend's requests go: host, port, TLS, the base URL's path and Host header."""

    host: str
    port: int
    tls: bool
    prefix: str
    authority: str

    @classmethod
    def of(cls, base_url: str) -> Target:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:  # as no connection
            raise BackendUnavailable(
                f"the LLM backend's URL must be http(s)://host[:port]: {base_url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        authority = parts.netloc.rpartition("@")[2]
        return cls(parts.hostname, port, tls, parts.path.rstrip("/"), authority)

    def head(self, path: str, length: int) -> bytes:
        return (f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self.authority}\r\n"
                "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                f"Content-Length: {length}\r\nConnection: keep-alive\r\n\r\n").encode("latin-1")


# How long a response may go on after its generation ended (end of speech; then llama-server's
# end of turn and final event) for its connection to be kept: a backend still generating then
# has its request reset, freeing its slot.
FINISH_WITHIN_S = 0.25


class _Callbacks:
    """httptools' callbacks for one response (it looks them up once, at the parser's making):
    the body goes straight to the event parser."""

    __slots__ = ("on_body", "on_headers_complete", "on_message_complete")

    def __init__(self, connection: _Connection, events: TokenEvents) -> None:
        self.on_headers_complete = connection.on_headers_complete
        self.on_body = events.feed
        self.on_message_complete = connection.on_message_complete


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one request at a time (``start``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, idle: list[_Connection],
                 tls: bool) -> None:
        self._loop = loop
        self._idle = idle  # the pool this connection goes back to when its response is whole
        self._tls = tls
        self.transport: asyncio.Transport | None = None
        self.pacing = FramePacing(None)
        self.lost = False
        self._reset()

    def _reset(self) -> None:
        self.done: asyncio.Future[None] | None = None
        self.received = False  # a byte of the response has come
        self._parser: httptools.HttpResponseParser | None = None
        self._events: TokenEvents | None = None
        self._sink: TokenSink | None = None
        self._complete = False  # the whole response has been read
        self._head = False  # the read being parsed has the response's head in it
        self._keep_alive = False
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timeout_s = 0.0

    def start(self, request: bytes, events: TokenEvents, sink: TokenSink,
              read_timeout_s: float) -> asyncio.Future[None]:
        assert self.transport is not None
        self.done = self._loop.create_future()
        self._parser = httptools.HttpResponseParser(_Callbacks(self, events))
        self._events, self._sink, self._timeout_s = events, sink, read_timeout_s
        self._last_read = self._loop.time()
        self.pacing.release()
        self._timer = self._loop.call_later(self._tick_s(), self._check_silence)
        self.transport.write(request)
        return self.done

    def _tick_s(self) -> float:
        return min(self._timeout_s, RELEASE_AFTER_S)

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.pacing = FramePacing(None if self._tls else transport.get_extra_info("socket"))

    def data_received(self, data: bytes) -> None:
        parser, events, sink = self._parser, self._events, self._sink
        if parser is None or events is None or sink is None:  # nothing asked: of no more use
            self.close()
            return
        self.received = True
        self._last_read = self._loop.time()
        try:
            parser.feed_data(data)
            ids = events.ids
            if ids:
                events.ids = []
                if sink.take(ids):
                    self._end(reuse=False)  # the generation has what it wants
                    return
                if not events.ended:
                    self.pacing.after_read(len(data), len(ids), events.whole and not self._head,
                                           sink.awaiting())
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._fail(cause if isinstance(cause, Exception) else exc)
            return
        except httptools.HttpParserError as exc:
            error = BackendProtocolError("the LLM backend sent malformed HTTP")
            error.__cause__ = exc
            self._fail(error)
            return
        except Exception as exc:  # the sink refused the tokens (not Orpheus audio)
            self._fail(exc)
            return
        self._head = False
        if events.ended:
            # the generation is over; the connection is reused if the response ends soon (its
            # own stop, or an end of turn right after end of speech), else dropped
            self._end(reuse=True)
        elif self._complete:
            self._fail(BackendError("the LLM backend stream ended without a stop"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.pacing.close()
        with contextlib.suppress(ValueError):
            self._idle.remove(self)
        if self.done is not None and not self.done.done():
            error = BackendError("the LLM backend stream broke off")
            error.__cause__ = exc
            self._fail(error, reset=False)
        self._reset()

    # -- httptools' callbacks --------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._head = True
        self._keep_alive = self._parser.should_keep_alive()  # llhttp forgets at the end
        status = self._parser.get_status_code()
        if status != 200:
            raise BackendUnavailable(f"the LLM backend answered HTTP {status}")

    def on_message_complete(self) -> None:
        self._complete = True
        if self.done is not None and self.done.done():  # a request already ended: reusable
            self._go_idle()

    # -- ends -----------------------------------------------------------------------------------

    def _check_silence(self) -> None:
        if self.done is None or self.done.done():
            return
        idle = self._loop.time() - self._last_read
        if self.pacing.holding and idle >= RELEASE_AFTER_S:
            self.pacing.release()  # stopped mid-frame, or slow: what is there, at once
        if idle < self._timeout_s:
            self._timer = self._loop.call_later(min(self._tick_s(), self._timeout_s - idle),
                                                self._check_silence)
            return
        if self.received:
            error = BackendError("the LLM backend stream broke off")
        else:
            error = BackendError("the LLM backend did not answer in time")
        error.__cause__ = TimeoutError(f"no byte for {self._timeout_s} s")
        self._fail(error)

    def _end(self, *, reuse: bool) -> None:
        first = self.done is not None and not self.done.done()
        self._settle(None)
        if not reuse:
            self.abort()
        elif self._complete:
            self._go_idle()
        elif first:  # the rest of the response makes it reusable (on_message_complete)
            self._timer = self._loop.call_later(FINISH_WITHIN_S, self._unfinished, self.done)

    def _unfinished(self, done: asyncio.Future[None] | None) -> None:
        """The backend went on past the generation's end (generating after end of speech):
        the connection is reset, and the backend's slot with it."""
        if self.done is done and not self._complete:
            self.abort()

    def _fail(self, error: Exception, *, reset: bool = True) -> None:
        self._settle(error)
        if reset:
            self.abort()

    def _settle(self, error: BaseException | None) -> None:
        done = self.done
        if done is not None and not done.done():
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if error is None:
                done.set_result(None)
            elif isinstance(error, asyncio.CancelledError):
                done.cancel()
            else:
                done.set_exception(error)

    def _go_idle(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        keep = self._keep_alive and not self.lost
        self._reset()
        if keep:
            self._idle.append(self)
        else:
            self.close()

    def abandon(self) -> None:
        """The caller has left: no more tokens are wanted."""
        self._settle(asyncio.CancelledError())
        self.abort()

    def abort(self) -> None:
        """Drops the connection with a TCP reset: the backend's next write fails at once."""
        self._parser = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def close(self) -> None:
        self._parser = None
        if self.transport is not None:
            self.transport.close()


class StreamingHttp:
    """POSTs generations to one backend over kept-alive connections (``stream``). Idle
    connections are as many as were ever in use at once; the backend closes those it no longer
    wants (a closed one leaves the pool)."""

    def __init__(self, base_url: str, *, connect_timeout_s: float,
                 read_timeout_s: float) -> None:
        self.target = Target.of(base_url)
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._idle: list[_Connection] = []
        self._ssl = ssl.create_default_context() if self.target.tls else None

    async def stream(self, path: str, body: bytes, events: TokenEvents,
                     sink: TokenSink) -> None:
        """Posts ``body`` and feeds the response's token ids to ``sink`` until the generation
        ends; raises ``BackendError`` (``BackendUnavailable``: no connection, a refusal)."""
        request = self.target.head(path, len(body)) + body
        while True:
            connection, reused = await self._connection()
            done = connection.start(request, events, sink, self._read_timeout_s)
            try:
                await done
                return
            except BackendError:
                if reused and not connection.received:
                    continue  # the backend had closed the kept connection: a fresh one
                raise
            except BaseException:  # cancelled: the generation is abandoned
                connection.abandon()
                raise

    async def _connection(self) -> tuple[_Connection, bool]:
        while self._idle:
            connection = self._idle.pop()
            if not connection.lost and connection.transport is not None and \
                    not connection.transport.is_closing():
                return connection, True
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, self._idle, self.target.tls), self.target.host,
                    self.target.port, ssl=self._ssl)
        except (TimeoutError, OSError) as exc:
            raise BackendUnavailable("the LLM backend can't be reached") from exc
        return connection, False

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
