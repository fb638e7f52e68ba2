"""A Python client for the realtime protocol (protocol.md), on the ``websockets`` library.

::

    async with OrpheusClient.connect("ws://127.0.0.1:9100/api/tts/ws") as client:
        ctx = await client.open_context("reply-1", voice="tara")
        for word in "Hello there, how are you today?".split(" "):
            await ctx.send_text(word + " ")
        await ctx.end()
        async for chunk in ctx:          # binary frames of this context, in order
            play(chunk.payload)
        print(ctx.done)                  # the done event: samples, duration_ms, ttfa_ms ...

``ctx.cancel()`` stops a context at once and returns the ``cancelled`` event; audio of that
context still in flight is dropped here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import websockets

from .formats import COMPRESSED
from .ws.protocol import FrameHeader, decode_audio_frame

_END = object()


class ServerError(Exception):
    """An ``error`` event from the server."""

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__(f"{event.get('code')}: {event.get('message')}")
        self.event = event
        self.code = str(event.get("code"))


class ContextCancelled(Exception):
    """The context was cancelled before it finished."""


@dataclass(frozen=True, slots=True)
class Chunk:
    header: FrameHeader
    payload: bytes
    received_at: float

    def samples(self) -> np.ndarray:
        """The payload as numbers: int16 for pcm_s16le, float32, or uint8 G.711 bytes. A
        compressed encoding's payload is bytes of a stream: join them and decode the stream."""
        if self.header.encoding in COMPRESSED:
            raise ValueError(f"{self.header.encoding} frames carry a stream, not samples")
        dtype = {"pcm_s16le": "<i2", "pcm_f32le": "<f4"}.get(self.header.encoding, "u1")
        return np.frombuffer(self.payload, dtype=dtype)


@dataclass(eq=False)
class ContextHandle:
    """One context on the socket: send text to it, iterate over its audio."""

    client: OrpheusClient
    context_id: str
    options: dict[str, Any]
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    events: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, Any] | None = None
    cancelled: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    started: bool = False
    dropped_frames: int = 0
    _cancel_sent: bool = False
    _cancel_ack: asyncio.Future[dict[str, Any]] | None = None

    async def send_text(self, text: str, *, flush: bool = False, end: bool = False) -> None:
        message: dict[str, Any] = {"type": "text", "context_id": self.context_id, "text": text}
        if not self.started:
            message.update(self.options)
            self.started = True
        if flush:
            message["flush"] = True
        if end:
            message["end"] = True
        await self.client.send(message)

    async def flush(self, flush_id: str | None = None) -> None:
        await self.client.send({"type": "flush", "context_id": self.context_id,
                                "flush_id": flush_id})

    async def end(self) -> None:
        await self.client.send({"type": "end", "context_id": self.context_id})

    async def cancel(self, timeout: float = 10.0) -> dict[str, Any]:
        """Cancels now; returns the server's ``cancelled`` event."""
        self._cancel_sent = True
        self._cancel_ack = asyncio.get_running_loop().create_future()
        await self.client.send({"type": "cancel", "context_id": self.context_id})
        return await asyncio.wait_for(self._cancel_ack, timeout)

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[Chunk]:
        while True:
            item = await self.queue.get()
            if item is _END:
                if self.error is not None:
                    raise ServerError(self.error)
                if self.cancelled is not None:
                    raise ContextCancelled(self.context_id)
                return
            yield item

    async def collect(self) -> tuple[list[Chunk], dict[str, Any]]:
        """Every chunk until ``done``; raises ServerError or ContextCancelled otherwise."""
        chunks = [chunk async for chunk in self]
        assert self.done is not None
        return chunks, self.done

    # called by the client's reader
    def _on_frame(self, chunk: Chunk) -> None:
        if self._cancel_sent or self.cancelled is not None:
            self.dropped_frames += 1  # stale audio after our cancel: drop it
            return
        self.queue.put_nowait(chunk)

    def _on_event(self, message: dict[str, Any]) -> None:
        self.events.append(message)
        kind = message.get("type")
        if kind in ("done", "cancelled", "error"):
            setattr(self, {"done": "done", "cancelled": "cancelled", "error": "error"}[kind],
                    message)
            if kind == "cancelled" and self._cancel_ack is not None \
                    and not self._cancel_ack.done():
                self._cancel_ack.set_result(message)
            self.queue.put_nowait(_END)


class OrpheusClient:
    """One socket. Use ``OrpheusClient.connect(url)`` as an async context manager."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.ready: dict[str, Any] = {}
        self.contexts: dict[str, ContextHandle] = {}
        self.session_events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.errors: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, **kwargs: Any) -> AsyncIterator[OrpheusClient]:
        kwargs.setdefault("max_size", None)
        async with websockets.connect(url, **kwargs) as connection:
            client = cls(connection)
            client.ready = orjson.loads(await connection.recv())
            client._reader = asyncio.ensure_future(client._read())
            try:
                yield client
            finally:
                client._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await client._reader

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(orjson.dumps(message).decode())

    async def configure(self, **options: Any) -> dict[str, Any]:
        await self.send({"type": "config", **options})
        return await self.next_session_event("configured")

    async def ping(self, ping_id: Any = None) -> dict[str, Any]:
        await self.send({"type": "ping", "id": ping_id})
        return await self.next_session_event("pong")

    async def next_session_event(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self.session_events.get(), timeout)
            if message.get("type") == "error":
                raise ServerError(message)
            if message.get("type") == kind:
                return message

    async def open_context(self, context_id: str, **options: Any) -> ContextHandle:
        """A handle; options (voice, format, ...) go with the context's first text."""
        handle = ContextHandle(self, context_id, options)
        self.contexts[context_id] = handle
        return handle

    async def speak(self, context_id: str, text: str, **options: Any
                    ) -> tuple[list[Chunk], dict[str, Any]]:
        """The whole text in one message; every chunk and the done event."""
        handle = await self.open_context(context_id, **options)
        await handle.send_text(text, end=True)
        return await handle.collect()

    async def cancel_all(self) -> None:
        for handle in self.contexts.values():
            handle._cancel_sent = True
        await self.send({"type": "cancel", "all": True})

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for message in self.connection:
                if isinstance(message, bytes):
                    header, payload = decode_audio_frame(message)
                    handle = self.contexts.get(header.context_id)
                    if handle is not None:
                        handle._on_frame(Chunk(header, payload, loop.time()))
                    continue
                data = orjson.loads(message)
                context_id = data.get("context_id")
                handle = self.contexts.get(context_id) if context_id else None
                if data.get("type") == "error":
                    self.errors.append(data)
                if handle is not None:
                    handle._on_event(data)
                else:
                    self.session_events.put_nowait(data)
        except websockets.ConnectionClosed:
            pass
        finally:
            close = self.connection.protocol.close_rcvd  # the close frame the server sent
            if close is not None:
                self.close_code, self.close_reason = close.code, close.reason
            for handle in self.contexts.values():
                if handle.done is None and handle.cancelled is None and handle.error is None:
                    handle.error = {"type": "error", "code": "connection_closed",
                                    "message": f"socket closed ({self.close_code})"}
                    handle.queue.put_nowait(_END)
            self.session_events.put_nowait({"type": "closed", "code": self.close_code,
                                            "reason": self.close_reason})

    async def wait_closed(self, timeout: float = 10.0) -> tuple[int | None, str]:
        """Waits for the server to close the socket; (code, reason)."""
        assert self._reader is not None
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code, self.close_reason
