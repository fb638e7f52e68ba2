"""Where speech begins in decoded audio, by its level (no I/O).

Orpheus often starts a generation with 400-700 ms of low-level noise or silence before the voice
(canopyai/Orpheus-TTS #299: frames 0-6 of "Hello" at RMS 0.001-0.006 of full scale, speech from
frame 7 at 0.062). A frame (2048 samples) is speech when its RMS reaches ``SPEECH_RMS``, between
the two: what a listener waits for is the first such frame, not the first sample (time to
first speech, beside time to first audio).
"""

from __future__ import annotations

import numpy as np

from ..formats import SAMPLES_PER_FRAME

SPEECH_RMS = 0.02  # of full scale: -34 dBFS, 3x the loudest "silent" frame of #299
_THRESHOLD_SQUARED = (SPEECH_RMS * 32768) ** 2


def first_speech_sample(pcm: np.ndarray) -> int | None:
    """The first sample of the first frame of ``pcm`` (int16, whole frames) loud enough to be
    speech, or None."""
    frames = pcm.shape[0] // SAMPLES_PER_FRAME
    if not frames:
        return None
    power = np.square(pcm[: frames * SAMPLES_PER_FRAME].reshape(frames, SAMPLES_PER_FRAME),
                      dtype=np.float32).mean(axis=1)
    loud = np.flatnonzero(power >= _THRESHOLD_SQUARED)
    return int(loud[0]) * SAMPLES_PER_FRAME if loud.size else None
