"""What a synthesis yields, in order: per segment ``SegmentStarted``, its ``AudioChunk``s and
``SegmentFinished``; ``Flushed`` where the text source asked to know that everything before a
point has been delivered (``TextFeed.flush``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..formats import SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class SegmentStarted:
    segment: int
    text: str


@dataclass(slots=True)
class AudioChunk:
    """Int16 PCM at 24 kHz of frames ``frame_start..frame_start+frames`` of a segment."""

    pcm: np.ndarray
    segment: int
    frame_start: int
    frames: int
    final: bool
    ready_at: float
    window_ready_at: float  # when the token completing the window arrived
    decode_s: float  # the decode call's own time
    cut: str | None = None  # on a segment's final chunk: why the runaway guard ended it
    # the first sample of its first frame of speech (level.py), looked for in a segment's
    # chunks until the first with speech: None in those before it and in every one after it
    speech_from: int | None = None

    @property
    def samples(self) -> int:
        return int(self.pcm.shape[0])


# Joins between segments fade over 2 ms (48 samples) so they don't click; lengths don't change.
FADE_SAMPLES = 48
_FADE_IN = np.sin(np.linspace(0.0, np.pi / 2, FADE_SAMPLES, dtype=np.float32)) ** 2


def faded(chunk: AudioChunk, fade_in: bool, fade_out: bool) -> AudioChunk:
    """``chunk`` faded in at its start and/or out at its end (in place)."""
    if not (fade_in or fade_out) or chunk.samples < 2 * FADE_SAMPLES:
        return chunk
    pcm = chunk.pcm.astype(np.float32)
    if fade_in:
        pcm[:FADE_SAMPLES] *= _FADE_IN
    if fade_out:
        pcm[-FADE_SAMPLES:] *= _FADE_IN[::-1]
    chunk.pcm = pcm.astype(np.int16)
    return chunk


def silence(segment: int, seconds: float) -> AudioChunk:
    """A pause's segment (``feed.Pause``): one chunk of zeros, no frames generated."""
    now = time.monotonic()
    return AudioChunk(pcm=np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16),
                      segment=segment, frame_start=0, frames=0, final=True, ready_at=now,
                      window_ready_at=now, decode_s=0.0)


@dataclass(frozen=True, slots=True)
class SegmentFinished:
    segment: int
    text: str
    frames: int
    samples: int
    started_at: float
    first_audio_at: float
    finished_at: float
    cut: str | None = None  # the runaway guard ended it (engine/guard.py): runaway_length/_repeat
    first_speech_at: float = 0.0  # when its first chunk with speech in it was ready (0: none)
    trimmed: int = 0  # leading quiet left out (trim.py): samples + trimmed == frames x 2048


@dataclass(frozen=True, slots=True)
class Flushed:
    """Every segment released before the flush named ``mark`` has been delivered."""

    mark: str | None


SynthesisEvent = SegmentStarted | AudioChunk | SegmentFinished | Flushed
