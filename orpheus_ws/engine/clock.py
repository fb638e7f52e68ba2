"""The listener's clock: how much audio a real-time listener still has in hand."""

from __future__ import annotations

import time

from ..formats import SAMPLE_RATE


class PlayoutClock:
    """Estimates how much audio a real-time listener still has in hand.

    Shared by every segment of one utterance. The listener starts playing once it holds
    ``start_after_s`` of audio (its jitter buffer, 0: at the first chunk); each chunk extends
    the time its buffer lasts, and a listener that ran dry resumes when the next chunk arrives.
    """

    def __init__(self, start_after_s: float = 0.0) -> None:
        self.start_after_s = start_after_s
        self._until = 0.0
        self._held = 0.0
        self.started: float | None = None

    def sent(self, samples: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        seconds = samples / SAMPLE_RATE
        if self.started is None:
            self._held += seconds
            if self._held >= self.start_after_s:
                self.started = now
                self._until = now + self._held
            return
        self._until = max(self._until, now) + seconds

    def buffered_s(self, now: float | None = None) -> float:
        if self.started is None:
            return self._held
        now = time.monotonic() if now is None else now
        return max(0.0, self._until - now)
