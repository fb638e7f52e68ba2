"""Text into speakable segments (no I/O).

``split_text`` cuts a whole text at sentence boundaries into segments that fit the
per-segment token budget. ``IncrementalSegmenter`` does the same for text that arrives in
pieces: it releases a segment as soon as its end is certain, so the same text gives the same
segments however it was cut into pieces. Where sentences end is ``sentences.py``'s to say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .sentences import sentence_ends

# Orpheus writes about 82 audio tokens per second of speech and English is spoken at about
# 14 characters a second, so one character costs about 6 tokens.
TOKENS_PER_CHAR = 6.0

_CLAUSE_END = re.compile(r"[,;:—–]+(?=\s)")


def chars_for_tokens(max_tokens: int) -> int:
    """The longest segment, in characters, that ``max_tokens`` audio tokens can speak."""
    return max(8, int(max_tokens / TOKENS_PER_CHAR))


def _budget_cut(text: str, max_chars: int) -> int:
    """Where to cut text with no sentence end within ``max_chars``: after the last clause end
    within reach, else at the last space, else hard at ``max_chars``."""
    head = text[: max_chars + 1]
    cut = -1
    for match in _CLAUSE_END.finditer(head):
        cut = match.end()
    if cut <= 0:
        cut = head.rfind(" ")
    return cut if cut > 0 else max_chars


def _cut_long(text: str, max_chars: int) -> list[str]:
    """Cuts text longer than max_chars at clause ends, else at spaces, else hard; each cut
    looks only at the next ``max_chars`` characters, so the work is linear in the text."""
    pieces: list[str] = []
    rest = text.strip()
    start = 0
    while len(rest) - start > max_chars:
        window = rest[start: start + max_chars + 1]
        cut = _budget_cut(window, max_chars)
        pieces.append(window[:cut].strip())
        start += cut
        while start < len(rest) and rest[start].isspace():
            start += 1
    tail = rest[start:]
    if tail:
        pieces.append(tail)
    return [p for p in pieces if p]


def sentences(text: str) -> list[str]:
    """Whole text into its sentences (the rules: ``sentences.py``)."""
    out: list[str] = []
    start = 0
    for end in sentence_ends(text, final=True)[0]:
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
        start = end
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def split_text(text: str, max_chars: int) -> list[str]:
    """Whole text into segments of at most ``max_chars``, packing short sentences together."""
    segments: list[str] = []
    current = ""
    for sentence in sentences(text):
        for piece in _cut_long(sentence, max_chars):
            joined = f"{current} {piece}" if current else piece
            if len(joined) <= max_chars:
                current = joined
            else:
                segments.append(current)
                current = piece
    if current:
        segments.append(current)
    return segments


@dataclass(frozen=True, slots=True)
class SegmenterConfig:
    """``mode``: ``auto`` buffers into sentences; ``none`` speaks each piece as sent."""

    mode: str = "auto"
    max_chars: int = 85
    first_segment_min_chars: int = 40


class IncrementalSegmenter:
    """Gathers text pieces and releases segments whose end is certain.

    Linear in the text it is given: the buffer is read from a moving start (``_start``) and
    each cut looks at no more than the next ``max_chars + 2`` characters; what is released is
    dropped from the buffer only once it is more than half of it, so no push copies more than
    a constant times what it added.
    """

    def __init__(self, config: SegmenterConfig) -> None:
        self.config = config
        self._buffer = ""
        self._start = 0  # where the unreleased text begins in _buffer
        self._cuts = 0
        self.released = 0

    @property
    def buffered(self) -> str:
        return self._buffer[self._start:]

    @property
    def buffered_chars(self) -> int:
        """How much text is held, not yet released (without copying it)."""
        return len(self._buffer) - self._start

    def push(self, piece: str) -> list[str]:
        """Adds a piece; returns the segments now ready, in order."""
        if self.config.mode == "none":
            return self._release(_cut_long(piece, self.config.max_chars))
        if self._start > len(self._buffer) // 2:
            self._buffer, self._start = self._buffer[self._start:], 0
        self._buffer += piece
        return self._release(self._cut(final=False))

    def flush(self) -> list[str]:
        """Releases everything buffered, whatever its end: cut at the sentence ends that
        waited for the next word (the text is whole now, as ``sentences`` sees it)."""
        out = self._cut(final=True)
        segment, self._buffer, self._start = self._buffer[self._start:], "", 0
        if segment.strip():
            self._cuts += 1
        return self._release(out + _cut_long(segment, self.config.max_chars))

    def _cut(self, *, final: bool) -> list[str]:
        out: list[str] = []
        while True:
            cut = self._next_cut(final=final)
            if cut is None:
                return out
            segment = self._buffer[self._start: self._start + cut]
            self._start += cut
            self._cuts += 1
            out.extend(_cut_long(segment, self.config.max_chars))

    def _release(self, segments: list[str]) -> list[str]:
        segments = [s for s in segments if s.strip()]
        self.released += len(segments)
        return segments

    def _next_cut(self, *, final: bool) -> int | None:
        """The earliest certain cut; the rules see only text whose end is known, so the cuts
        are the same however the text was split into pieces. ``final``: no more text comes
        (a flush), so an end waiting for the next word is decided."""
        limit = self.config.max_chars
        text = self._buffer[self._start: self._start + limit + 2]
        whole = final and self._start + len(text) == len(self._buffer)
        ends, decided = sentence_ends(text, final=whole)
        candidates: list[int] = []
        if ends and ends[0] <= limit + 1:
            candidates.append(ends[0])
        if self._cuts == 0:
            # A clause end past an undecided sentence end waits for it (it may come first).
            for clause in _CLAUSE_END.finditer(text[: min(limit + 1, decided)]):
                if clause.end() >= self.config.first_segment_min_chars:
                    candidates.append(clause.end())
                    break
        if candidates:
            return min(candidates)
        if len(text) >= limit + 2 and not final:
            # No sentence end within reach: cut so the piece fits the token budget.
            return _budget_cut(text, limit)
        return None
