"""SNAC codes of consecutive frames: the one place that knows the frame layout.

Orpheus writes a frame as seven audio codes (../shared/orpheus-facts.md); SNAC 24 kHz reads
three codebooks at 1, 2 and 4 codes per frame. Codebook 0 gets f[0]; codebook 1 gets f[1],
f[4]; codebook 2 gets f[2], f[3], f[5], f[6]. The token parser builds codes from frames, the
segment pipeline extends and windows them, and the decoder stretches and batches them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..vocabulary import TOKENS_PER_FRAME
from .tokens import Frame

# Positions of a frame's seven codes in each codebook, in order.
_CODEBOOK_POSITIONS = ([0], [1, 4], [2, 3, 5, 6])
_EMPTY = np.zeros(0, dtype=np.int64)


class SnacCodes(NamedTuple):
    """Codebooks of F frames: shapes (F,), (2F,), (4F,); batched, (B, F), (B, 2F), (B, 4F)."""

    c0: np.ndarray
    c1: np.ndarray
    c2: np.ndarray

    @classmethod
    def empty(cls) -> SnacCodes:
        return cls(_EMPTY, _EMPTY, _EMPTY)

    @classmethod
    def from_frames(cls, frames: Sequence[Frame]) -> SnacCodes:
        arr = np.asarray([f.codes for f in frames], dtype=np.int64).reshape(-1, TOKENS_PER_FRAME)
        c0, c1, c2 = (arr[:, positions].reshape(-1) for positions in _CODEBOOK_POSITIONS)
        return cls(c0, c1, c2)

    @classmethod
    def batch(cls, rows: Sequence[SnacCodes]) -> SnacCodes:
        """Equally long windows stacked into one call's codes."""
        return cls(*(np.stack([row[k] for row in rows]) for k in range(3)))

    @property
    def frames(self) -> int:
        return int(self.c0.shape[-1])

    def extended(self, frames: Sequence[Frame]) -> SnacCodes:
        """These codes followed by those of ``frames``."""
        if not frames:
            return self
        more = SnacCodes.from_frames(frames)
        return SnacCodes(*(np.concatenate([mine, new]) for mine, new in zip(self, more,
                                                                            strict=True)))

    def window(self, start: int, end: int) -> SnacCodes:
        """Frames ``start..end`` (exclusive)."""
        return SnacCodes(self.c0[start:end], self.c1[2 * start : 2 * end],
                         self.c2[4 * start : 4 * end])

    def fitted(self, length: int) -> SnacCodes:
        """Exactly ``length`` frames: cut on the left, or the last frame repeated on the
        right."""
        if length <= self.frames:
            return self.window(self.frames - length, self.frames)
        extra = length - self.frames
        return SnacCodes(np.concatenate([self.c0, np.repeat(self.c0[-1:], extra)]),
                         np.concatenate([self.c1, np.tile(self.c1[-2:], extra)]),
                         np.concatenate([self.c2, np.tile(self.c2[-4:], extra)]))
