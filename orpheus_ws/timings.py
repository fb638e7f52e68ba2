"""Estimated word and character timings of a segment's speech (no I/O).

Orpheus gives no alignment, so the timings are an estimate, and the docs say so: a segment's
characters are spread over the part of its audio that is speech (the silence before the first
sound and after the last is left out), each character taking an equal share. Cartesia's
``word_timestamps``, ElevenLabs' ``alignment`` and the native protocol's ``timestamps`` event
are all made from it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .formats import SAMPLE_RATE

WINDOW = SAMPLE_RATE // 100  # 10 ms of 24 kHz audio
# A window is silent below this share of the segment's loudest window (and below an absolute
# floor, so that a segment of near-silence is not all "speech").
QUIET_SHARE = 0.06
QUIET_FLOOR = 60.0


@dataclass(slots=True)
class SpeechSpan:
    """Where speech starts and ends in one segment's audio, fed chunk by chunk."""

    _levels: list[float] = field(default_factory=list)
    _rest: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    samples: int = 0

    def add(self, pcm: np.ndarray) -> None:
        self.samples += int(pcm.shape[0])
        data = np.concatenate((self._rest, pcm)) if self._rest.size else pcm
        whole = data.shape[0] // WINDOW * WINDOW
        if whole:
            windows = data[:whole].astype(np.float32).reshape(-1, WINDOW)
            self._levels.extend(np.sqrt(np.mean(windows * windows, axis=1)).tolist())
        self._rest = data[whole:].copy()

    def bounds(self) -> tuple[float, float]:
        """(start, end) of the speech in seconds from the segment's start; the whole segment
        where no window stands out."""
        duration = self.samples / SAMPLE_RATE
        if not self._levels:
            return 0.0, duration
        levels = np.asarray(self._levels)
        loud = np.flatnonzero(levels > max(QUIET_FLOOR, float(levels.max()) * QUIET_SHARE))
        if loud.size == 0:
            return 0.0, duration
        start = float(loud[0]) * WINDOW / SAMPLE_RATE
        end = min(duration, float(loud[-1] + 1) * WINDOW / SAMPLE_RATE)
        return start, max(end, start)


@dataclass(frozen=True, slots=True)
class SegmentTiming:
    """One segment's text and where its speech lies: ``offset_s`` is the segment's start in
    its utterance's audio, the rest are from the segment's start, in seconds."""

    text: str
    offset_s: float
    speech_start_s: float
    speech_end_s: float
    duration_s: float

    def words(self) -> tuple[list[str], list[float], list[float]]:
        """The words, their starts and ends, from the utterance's start."""
        return word_timings(self.text, self.offset_s + self.speech_start_s,
                            self.offset_s + self.speech_end_s)

    def chars(self, text: str) -> CharTimings:
        """The characters of ``text`` (the segment's, maybe with the space after it), from
        the segment's start, spanning all of its audio."""
        return char_timings(text, self.speech_start_s, self.speech_end_s, self.duration_s)


class SpeechTimer:
    """An utterance's segments timed as their audio passes: ``add`` each chunk of 24 kHz
    PCM, ``finish`` at each segment's end."""

    def __init__(self) -> None:
        self.offset_s = 0.0
        self._span = SpeechSpan()

    def add(self, pcm: np.ndarray) -> None:
        self._span.add(pcm)

    def finish(self, text: str, samples: int) -> SegmentTiming:
        span, self._span = self._span, SpeechSpan()
        duration = samples / SAMPLE_RATE
        start, end = span.bounds()
        timing = SegmentTiming(text, self.offset_s, min(start, duration),
                               min(end, duration), duration)
        self.offset_s += duration
        return timing


@dataclass(frozen=True, slots=True)
class CharTimings:
    """Each character of a text, its start and duration in milliseconds (ElevenLabs'
    ``alignment``)."""

    chars: list[str]
    starts_ms: list[int]
    durations_ms: list[int]

    def as_alignment(self) -> dict[str, list[str] | list[int]]:
        return {"chars": self.chars, "charStartTimesMs": self.starts_ms,
                "charDurationsMs": self.durations_ms}


def char_timings(text: str, start_s: float, end_s: float, total_s: float) -> CharTimings:
    """The characters of ``text`` spread evenly over ``start_s..end_s``; whatever follows
    ``end_s`` up to ``total_s`` (trailing silence) goes to the last character, so that the
    timings span the whole audio."""
    count = len(text)
    if not count:
        return CharTimings([], [], [])
    edges = [round(1000 * (start_s + (end_s - start_s) * i / count)) for i in range(count + 1)]
    edges[-1] = max(edges[-1], round(1000 * total_s))
    edges[0] = min(edges[0], edges[-1])
    return CharTimings(list(text), edges[:-1],
                       [b - a for a, b in itertools.pairwise(edges)])


def word_timings(text: str, start_s: float, end_s: float
                 ) -> tuple[list[str], list[float], list[float]]:
    """Each word of ``text`` over ``start_s..end_s``, in proportion to its characters (the
    space after a word counts to it), in seconds."""
    words = text.split()
    weights = [len(word) + 1 for word in words]
    total = sum(weights) or 1
    starts: list[float] = []
    ends: list[float] = []
    at = start_s
    for weight in weights:
        starts.append(round(at, 3))
        at += (end_s - start_s) * weight / total
        ends.append(round(at, 3))
    return words, starts, ends
