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
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .segmenter import IncrementalSegmenter, SegmenterConfig, chars_for_tokens


@dataclass(frozen=True, slots=True)
class FlushMark:
    """A point in the text; the synthesis yields ``Flushed(mark)`` once all before it is
    delivered."""

    mark: str | None


@dataclass(frozen=True, slots=True)
class Pause:
    """A segment of silence, ``seconds`` long (SSML's ``<break>``): no generation, its audio
    exactly ``round(seconds x 24000)`` zero samples."""

    seconds: float


class TextFeed:
    """Segments of text pushed piece by piece, for ``Engine.synthesize``."""

    def __init__(self, *, max_tokens: int, buffering: str = "auto",
                 idle_flush_s: float = 0.3, first_segment_min_chars: int = 40) -> None:
        self._segmenter = IncrementalSegmenter(SegmenterConfig(
            mode=buffering, max_chars=chars_for_tokens(max_tokens),
            first_segment_min_chars=first_segment_min_chars,
        ))
        self.idle_flush_s = idle_flush_s
        self._ready: deque[str | FlushMark | Pause] = deque()
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

    def cut(self) -> None:
        """Ends the sentence here: buffered text is released as a segment of its own."""
        self._release(self._segmenter.flush())

    def pause(self, seconds: float) -> None:
        """A pause after the text so far, which is released first."""
        self._release([*self._segmenter.flush(), Pause(seconds)])

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

    def _release(self, segments: Sequence[str | Pause]) -> None:
        self._ready.extend(segments)
        lengths = [len(s) if isinstance(s, str) else 0 for s in segments]
        self._undelivered.extend(lengths)
        self._undelivered_chars += sum(lengths)
        self._changed.set()

    async def __aiter__(self) -> AsyncIterator[str | FlushMark | Pause]:
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


async def take(queue: asyncio.Queue[Any]) -> Any:
    """The next item, or raise the exception its producer put there instead."""
    item = await queue.get()
    if isinstance(item, BaseException):
        raise item
    return item


async def each_segment(segments: AsyncIterable[str | Pause] | Iterable[str | Pause] | TextFeed
                       ) -> AsyncGenerator[str | FlushMark | Pause, None]:
    """The segments (and flush marks) of any source ``Engine.synthesize`` takes."""
    if isinstance(segments, AsyncIterable):
        async for segment in segments:
            yield segment
    else:
        for segment in segments:
            yield segment
