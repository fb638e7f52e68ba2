"""Leading quiet left out (orpheus_ws/engine/trim.py): chunk by chunk with made-up levels, and
through the engine with the stand-in whose first frames are quiet (the codec's level follows a
frame's first code). Accounting stays exact: samples + trimmed == frames x 2048."""

from __future__ import annotations

import numpy as np
import pytest

from orpheus_ws.devtools.standin_llm import StandinLLMServer
from orpheus_ws.engine.events import AudioChunk, SegmentFinished
from orpheus_ws.engine.level import first_speech_sample
from orpheus_ws.engine.trim import LEAD_IN, PAUSE_CAP, QuietTrim
from orpheus_ws.params import SamplingParams

from .conftest import MakeEngine
from .fakes import ConstantCodec

FRAME = 2048
QUIET, LOUD = 10, 8000  # int16 levels: far under and far over speech level (level.py)


def chunk(segment: int, start: int, levels: list[int], final: bool = False) -> AudioChunk:
    pcm = np.concatenate([np.full(FRAME, level, dtype=np.int16) for level in levels])
    return AudioChunk(pcm, segment, start, len(levels), final, 0.0, 0.0, 0.0,
                      speech_from=first_speech_sample(pcm))


def run(trim: QuietTrim, chunks: list[AudioChunk]) -> tuple[np.ndarray, int]:
    out = [trim.chunk(c).pcm for c in chunks]
    return np.concatenate(out), trim.trimmed


def test_an_utterance_starts_at_its_first_speech_with_a_lead_in() -> None:
    trim = QuietTrim()
    pcm, trimmed = run(trim, [chunk(0, 0, [QUIET]), chunk(0, 1, [QUIET, QUIET]),
                              chunk(0, 3, [LOUD, QUIET]), chunk(0, 5, [QUIET], final=True)])
    assert trimmed == 3 * FRAME - LEAD_IN
    assert len(pcm) + trimmed == 6 * FRAME
    assert (pcm[:LEAD_IN] == QUIET).all() and (pcm[LEAD_IN:LEAD_IN + FRAME] == LOUD).all()
    assert (pcm[LEAD_IN + FRAME:] == QUIET).all()  # quiet after speech is never left out
    again = QuietTrim()
    again.chunk(chunk(0, 0, [QUIET] * 3))
    spoken = again.chunk(chunk(0, 3, [QUIET, LOUD]))
    assert spoken.speech_from == LEAD_IN  # where the speech is in what is sent
    assert (spoken.pcm[spoken.speech_from:] == LOUD).all()


def test_speech_from_the_first_frame_is_never_trimmed() -> None:
    trim = QuietTrim()
    pcm, trimmed = run(trim, [chunk(0, 0, [LOUD, QUIET, QUIET]), chunk(0, 3, [LOUD], True)])
    assert trimmed == 0 and len(pcm) == 4 * FRAME


def test_a_later_segment_keeps_a_natural_pause() -> None:
    trim = QuietTrim()
    run(trim, [chunk(0, 0, [LOUD], final=True)])
    pcm, trimmed = run(trim, [chunk(1, 0, [QUIET] * 6), chunk(1, 6, [LOUD], final=True)])
    assert len(pcm) == PAUSE_CAP + FRAME and trimmed == 6 * FRAME - PAUSE_CAP
    assert (pcm[PAUSE_CAP:] == LOUD).all()


def test_a_segment_quiet_throughout_sends_nothing_and_counts_all() -> None:
    trim = QuietTrim()
    pcm, trimmed = run(trim, [chunk(0, 0, [QUIET] * 3), chunk(0, 3, [QUIET], final=True)])
    assert len(pcm) == 0 and trimmed == 4 * FRAME
    pcm, trimmed = run(trim, [chunk(1, 0, [QUIET, LOUD], final=True)])  # the next one speaks
    assert len(pcm) == min(LEAD_IN, FRAME) + FRAME and trimmed == 2 * FRAME - len(pcm)


@pytest.mark.parametrize("quiet_frames", [0, 3, 7])
async def test_through_the_engine_accounting_stays_exact(
        quiet_frames: int, standin: StandinLLMServer, make_engine: MakeEngine) -> None:
    standin.config.frames = 12
    standin.config.quiet_frames = quiet_frames
    engine = make_engine(ConstantCodec(), trim_quiet=True)
    events = [e async for e in engine.synthesize(["One here.", "And two."], voice="tara",
                                                 params=SamplingParams())]
    finished = [e for e in events if isinstance(e, SegmentFinished)]
    for segment in finished:
        sent = sum(e.samples for e in events
                   if isinstance(e, AudioChunk) and e.segment == segment.segment)
        assert segment.samples == sent
        assert segment.samples + segment.trimmed == segment.frames * FRAME == 12 * FRAME
    lead = max(0, quiet_frames * FRAME - LEAD_IN)
    assert finished[0].trimmed == lead  # the first: from its speech, less the lead-in
    assert finished[1].trimmed == max(0, quiet_frames * FRAME - PAUSE_CAP)  # a pause kept
    untrimmed = [e async for e in engine.synthesize(["One here."], voice="tara",
                                                    params=SamplingParams(), trim_quiet=False)]
    assert [e.trimmed for e in untrimmed if isinstance(e, SegmentFinished)] == [0]
