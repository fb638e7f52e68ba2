"""Everything the server sends on one socket, in order, with flow control (protocol.md,
"Limits, timeouts and flow control"). No I/O: the connection's send loop drains it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CloseFrame:
    """The socket's end, queued behind what was queued before it: once it is reached the
    send loop closes the socket with ``code``."""

    code: int
    reason: str = ""


@dataclass(eq=False)
class Outgoing:
    """A text event (or a function making it when sent) or a binary audio frame.

    ``owner`` is whatever the message belongs to (a context's delivery), so that its queued
    messages can be purged; ``on_sent`` is called with the time once the message is written.
    """

    data: str | bytes | Callable[[], str] | CloseFrame
    owner: object | None = None
    on_sent: Callable[[float], None] | None = None

    @property
    def size(self) -> int:
        if isinstance(self.data, CloseFrame):
            return 0
        return len(self.data) if isinstance(self.data, str | bytes) else 64


class Outbox:
    """A FIFO of outgoing messages; audio producers wait while ``max_bytes`` are queued."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: deque[Outgoing] = deque()
        self._bytes = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._empty = asyncio.Event()  # set while nothing is queued
        self._empty.set()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def queued_bytes(self) -> int:
        """What is queued, in bytes (a text made when sent counts 64)."""
        return self._bytes

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Closes the socket with ``code`` once everything queued so far has been sent."""
        self.put(CloseFrame(code, reason))

    def put(self, data: str | bytes | Callable[[], str] | CloseFrame,
            owner: object | None = None,
            on_sent: Callable[[float], None] | None = None) -> None:
        item = Outgoing(data, owner, on_sent)
        self._items.append(item)
        self._empty.clear()
        self._bytes += item.size
        if self._bytes >= self.max_bytes:
            self._room.clear()
        self._wake.set()

    async def get(self) -> Outgoing:
        while not self._items:
            self._wake.clear()
            await self._wake.wait()
        item = self._items.popleft()
        self._bytes -= item.size
        self._update_room()
        return item

    def purge(self, owner: object) -> None:
        """Drops every queued message of ``owner``."""
        self._items = deque(o for o in self._items if o.owner is not owner)
        self._bytes = sum(o.size for o in self._items)
        self._update_room()

    @property
    def has_room(self) -> bool:
        return self._room.is_set()

    async def wait_for_room(self) -> None:
        """Holds an audio producer while the client has not read what is queued."""
        while not self._room.is_set():
            await self._room.wait()

    async def sent(self) -> None:
        """Returns once nothing is queued (the send loop has taken everything)."""
        await self._empty.wait()

    def _update_room(self) -> None:
        if not self._items:
            self._empty.set()
        if self._bytes < self.max_bytes:
            self._room.set()
