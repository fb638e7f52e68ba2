"""Leading quiet trimmed from an utterance's audio, by level (no I/O).

Orpheus often begins a generation with 400-700 ms of near-silence (level.py). Played as it
comes, it sits between the listener and the first word: its frames are generated before the
voice's, and heard before them. :class:`QuietTrim` leaves them out:

- until an utterance's first speech, its quiet frames are not sent; the audio starts at the
  first frame of speech, after a lead-in of the ``LEAD_IN_S`` of quiet just before it, so no
  onset is clipped;
- after that, each later segment may begin with at most ``PAUSE_CAP_S`` of quiet, a natural
  pause between sentences (its own leading quiet, on top of the end of the one before, would
  make a gap of up to a second);
- nothing with speech in it is ever trimmed, nor any quiet after a segment's first speech.

Every segment's accounting stays exact: ``samples + trimmed == frames x 2048``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..formats import SAMPLE_RATE
from .events import AudioChunk

LEAD_IN_S = 0.1
PAUSE_CAP_S = 0.3
LEAD_IN = int(LEAD_IN_S * SAMPLE_RATE)
PAUSE_CAP = int(PAUSE_CAP_S * SAMPLE_RATE)
_EMPTY = np.zeros(0, dtype=np.int16)


class QuietTrim:
    """One utterance's trimming: chunks in, in order, the same chunks with their leading quiet
    left out. ``trimmed`` counts what was left out of the current segment."""

    def __init__(self) -> None:
        self.spoken = False  # the utterance's first speech has been sent
        self.trimmed = 0  # samples left out of the current segment
        self._leading = False  # the current segment has sent no speech yet
        self._held = _EMPTY  # first speech not yet reached: the quiet kept for the lead-in
        self._kept = 0  # later segments: quiet sent so far at their start

    def chunk(self, chunk: AudioChunk) -> AudioChunk:
        """``chunk`` as it is to be sent (its pcm shortened, maybe to nothing)."""
        if chunk.frame_start == 0:  # a new segment
            self.trimmed, self._leading, self._held, self._kept = 0, True, _EMPTY, 0
        if not self._leading:
            return chunk
        pcm = chunk.pcm
        quiet = pcm if chunk.speech_from is None else pcm[: chunk.speech_from]
        if self.spoken:  # a later segment: up to PAUSE_CAP of quiet at its start
            keep = min(len(quiet), PAUSE_CAP - self._kept)
            self._kept += keep
            out = pcm[:keep] if chunk.speech_from is None else \
                np.concatenate([quiet[:keep], pcm[chunk.speech_from:]])
        else:  # before the utterance's first speech: only a lead-in just before it
            held = np.concatenate([self._held, quiet])
            if chunk.speech_from is None:
                self._held = held[-LEAD_IN:]
                out = _EMPTY
            else:
                out = np.concatenate([held[-LEAD_IN:], pcm[chunk.speech_from:]])
        if chunk.speech_from is not None:
            self._leading = False
            self.spoken = True
        if chunk.final and self._leading:  # quiet throughout: the held lead-in goes too
            self._held = _EMPTY
        self.trimmed += len(pcm) - len(out)
        if len(out) == len(pcm):
            return chunk
        # the speech is the chunk's tail from speech_from on, in both
        speech = None if chunk.speech_from is None else \
            len(out) - (len(pcm) - chunk.speech_from)
        return replace(chunk, pcm=out, speech_from=speech)
