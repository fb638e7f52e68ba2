"""Text that arrives piece by piece, as an LLM writes it, turned into the segments to speak.

The one home of incremental segmentation: a transport pushes pieces, flushes and ends; the
engine iterates the segments as they are released, and tells the feed when it has delivered
them. Text left unreleased for ``idle_flush_s`` while everything released has been delivered
is spoken anyway (protocol.md, "Text buffering", rule 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .segmenter import IncrementalSegmenter, SegmenterConfig, chars_for_tokens


@dataclass(frozen=True, slots=True)
class FlushMark:
    """A point in the text; the synthesis yields ``Flushed(mark)`` once all before it is
    delivered."""

    mark: str | None


class TextFeed:
    """Segments of text pushed piece by piece, for ``Engine.synthesize``."""

    def __init__(self, *, max_tokens: int, buffering: str = "auto",
                 idle_flush_s: float = 0.3, first_segment_min_chars: int = 40) -> None:
        self._segmenter = IncrementalSegmenter(SegmenterConfig(
            mode=buffering, max_chars=chars_for_tokens(max_tokens),
            first_segment_min_chars=first_segment_min_chars,
        ))
        self.idle_flush_s = idle_flush_s
        self._ready: deque[str | FlushMark] = deque()
        self._ended = False
        self._delivered = 0
        # Lengths of the segments released and not yet delivered, and their sum.
        self._undelivered: deque[int] = deque()
        self._undelivered_chars = 0
        self._changed = asyncio.Event()
        self._last_text_at = time.monotonic()

    @property
    def busy(self) -> bool:
        """Text or audio still to deliver: released segments not yet delivered, or ready."""
        return bool(self._ready) or self._delivered < self._segmenter.released

    @property
    def held_chars(self) -> int:
        """Text pushed and not yet spoken: buffered, ready, or being generated."""
        return self._segmenter.buffered_chars + self._undelivered_chars

    @property
    def ended(self) -> bool:
        return self._ended

    def push(self, piece: str) -> None:
        """Adds a piece of text; segments whose end is certain become ready."""
        self._release(self._segmenter.push(piece))
        self._last_text_at = time.monotonic()

    def flush(self, mark: str | None = None) -> None:
        """Releases all buffered text; ``Flushed(mark)`` follows its audio."""
        self._release(self._segmenter.flush())
        self._ready.append(FlushMark(mark))
        self._changed.set()

    def end(self) -> None:
        """Releases all buffered text; no more text follows."""
        self._release(self._segmenter.flush())
        self._ended = True
        self._changed.set()

    def delivered(self, segments: int) -> None:
        """The engine has delivered the first ``segments`` segments in full."""
        for _ in range(segments - self._delivered):
            if self._undelivered:
                self._undelivered_chars -= self._undelivered.popleft()
        self._delivered = segments
        self._changed.set()

    def _release(self, segments: list[str]) -> None:
        self._ready.extend(segments)
        self._undelivered.extend(map(len, segments))
        self._undelivered_chars += sum(map(len, segments))
        self._changed.set()

    async def __aiter__(self) -> AsyncIterator[str | FlushMark]:
        while True:
            self._changed.clear()
            if self._ready:
                yield self._ready.popleft()
                continue
            if self._ended:
                return
            timeout = None
            if self._segmenter.buffered.strip() and not self.busy:
                timeout = max(0.0, self._last_text_at + self.idle_flush_s - time.monotonic())
                if timeout == 0.0:
                    self._release(self._segmenter.flush())
                    continue
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for loses a cancel that
            # arrives as the wait ends (a context's cancel must never be lost).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._changed.wait()
