"""Everything the server sends on one socket, in order, with flow control (protocol.md,
"Limits, timeouts and flow control"). No I/O: the connection's send loop drains it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .segment_stream import AudioChunk
from .ws_session import Context


@dataclass(eq=False)
class Outgoing:
    """A text event (or a function making it when sent) or a binary audio frame."""

    data: str | bytes | Callable[[], str]
    context: Context | None = None
    samples: int = 0
    first_audio: AudioChunk | None = None  # set on a context's first frame, for the latency

    @property
    def size(self) -> int:
        return len(self.data) if isinstance(self.data, str | bytes) else 64


class Outbox:
    """A FIFO of outgoing messages; audio producers wait while ``max_bytes`` are queued."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.items: deque[Outgoing] = deque()
        self.bytes = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self.items)

    def put(self, data: str | bytes | Callable[[], str], context: Context | None = None,
            samples: int = 0, first_audio: AudioChunk | None = None) -> None:
        item = Outgoing(data, context, samples, first_audio)
        self.items.append(item)
        self.bytes += item.size
        if self.bytes >= self.max_bytes:
            self._room.clear()
        self._wake.set()

    async def get(self) -> Outgoing:
        while not self.items:
            self._wake.clear()
            await self._wake.wait()
        item = self.items.popleft()
        self.bytes -= item.size
        self._update_room()
        return item

    def purge(self, context: Context) -> None:
        """Drops every queued message of ``context``."""
        self.items = deque(o for o in self.items if o.context is not context)
        self.bytes = sum(o.size for o in self.items)
        self._update_room()

    async def wait_for_room(self) -> None:
        """Holds an audio producer while the client has not read what is queued."""
        while not self._room.is_set():
            await self._room.wait()

    def _update_room(self) -> None:
        if self.bytes < self.max_bytes:
            self._room.set()
