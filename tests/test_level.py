"""Where speech begins, by level (orpheus_ws/engine/level.py), on the levels #299 measured."""

from __future__ import annotations

import numpy as np
import pytest

from orpheus_ws.engine.level import SPEECH_RMS, first_speech_sample


def frames_at(*rms: float, seed: int = 0) -> np.ndarray:
    """Frames of noise at the given RMS (of full scale), as int16."""
    rng = np.random.default_rng(seed)
    out = [rng.normal(0.0, level * 32768, 2048) for level in rms]
    return np.clip(np.concatenate(out), -32768, 32767).astype(np.int16)


def test_the_first_loud_frame_is_where_speech_begins() -> None:
    # canopyai #299, "Hello": frames 0-6 at RMS 0.001-0.006, speech from frame 7 at 0.062
    quiet = [0.001, 0.002, 0.006, 0.004, 0.003, 0.005, 0.006]
    assert first_speech_sample(frames_at(*quiet, 0.062, 0.05)) == 7 * 2048
    assert first_speech_sample(frames_at(*quiet)) is None
    assert first_speech_sample(frames_at(0.062)) == 0
    assert first_speech_sample(np.zeros(0, dtype=np.int16)) is None


@pytest.mark.parametrize("level,speech", [(SPEECH_RMS * 0.8, False), (SPEECH_RMS * 1.25, True)])
def test_the_threshold(level: float, speech: bool) -> None:
    assert (first_speech_sample(frames_at(level)) is not None) is speech
