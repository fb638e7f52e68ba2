"""Reading a token stream a frame at a time: the kernel holds a generation's tokens until the
frame being built is whole (no I/O of its own; it sets a socket option).

An LLM server writes one event per token, and a reader that takes each as it comes pays a
wakeup and a read for every token (BENCHMARKS.md: they are most of the server's cost per
stream). A frame's tokens are of no use until its seventh is in, so once a frame has begun the
connection asks the kernel not to report it readable before the rest of the frame can be there
(``SO_RCVLOWAT``: the bytes of the tokens still missing, at the fewest bytes a token has taken
on this stream). The read then comes when the frame is whole, or a little before, never after;
between frames the connection reads every byte at once (end of speech, the backend's stop and
the first token of the next frame are never held). A stream that stops mid-frame (a token limit)
is read as soon as it has been silent for ``RELEASE_AFTER_S``.
"""

from __future__ import annotations

import contextlib
import socket

RELEASE_AFTER_S = 0.2  # a held stream silent this long is read whatever it has
MARGIN = 0.9  # of the bytes the missing tokens take at the fewest per token seen


class FramePacing:
    """One connection's ``SO_RCVLOWAT``, set after each read from what the frame parser still
    awaits. ``sock``: the transport's socket (None: TLS, or none to set, so every read comes as
    it comes). The pacing sets the option through a socket object of its own on the same
    descriptor (uvloop's stand-in for the socket makes one at every call), which never closes
    it: ``close`` (at the connection's end, before the descriptor can be another's) lets go of
    it, and no descriptor is added per connection."""

    __slots__ = ("_lowat", "_per_token", "_sock")

    def __init__(self, sock: object | None) -> None:
        self._sock: socket.socket | None = None
        fileno = getattr(sock, "fileno", None)
        if callable(fileno):
            with contextlib.suppress(OSError, ValueError):
                self._sock = socket.socket(fileno=fileno())
        self._lowat = 1
        self._per_token = 0.0  # the fewest bytes a token has taken (0: not known yet)

    @property
    def holding(self) -> bool:
        return self._lowat > 1

    def after_read(self, size: int, tokens: int, whole: bool, awaiting: int) -> None:
        """``size`` bytes gave ``tokens`` tokens (``whole``: only whole events, nothing else,
        so the bytes per token can be learned); the parser awaits ``awaiting`` more."""
        if self._sock is None:
            return
        if whole and tokens:
            per_token = size / tokens
            if not self._per_token or per_token < self._per_token:
                self._per_token = per_token
        lowat = int(awaiting * self._per_token * MARGIN) if awaiting > 1 else 1
        self._set(max(1, lowat))

    def close(self) -> None:
        """Lets go of the descriptor, leaving it open: it is the transport's to close."""
        if self._sock is not None:
            self._sock.detach()
            self._sock = None

    def release(self) -> None:
        """Every byte readable at once again (a silence, a new request)."""
        self._set(1)

    def _set(self, lowat: int) -> None:
        if lowat != self._lowat and self._sock is not None:
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
                self._lowat = lowat
            except OSError:
                with contextlib.suppress(OSError):
                    self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
                self.close()  # not to be had here: reads as they come
                self._lowat = 1
