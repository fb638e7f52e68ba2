"""The runaway guard: a segment's generation is bounded by what its text can take to say, and
audio that comes back (the same run of frames again) is cut. No I/O.

Orpheus sometimes keeps going after the text is spoken (garbage until ``max_tokens``: canopyai
#289; 2048 tokens are 24 s), or says a phrase two or three times (orpheus-tts-local #2; a title
without a final full stop is a known trigger). Users of the reference server hear both.

- **Budget**: ``RUNAWAY_FLOOR_S`` plus the text at a third of natural speed (English is spoken
  at about 14 characters a second). "Hi." gets 1.88 s, a full 85-character segment 19.5 s (so
  ``max_tokens`` 512, 6.2 s, bounds it first). Natural speech never comes near it: the budget
  catches only a generation that does not stop.
- **Repeat**: a run of ``REPEAT_FRAMES`` frames (0.68 s) that comes back code for code. Sampled
  speech never repeats itself exactly over that many frames (28 codes of 4096 values each in
  the same order); a loop does.
- **Final punctuation**: text without a final punctuation mark gets a full stop before it goes
  to the model (the trigger above), never in what the client sees.

Either guard ends the segment cleanly (``SegmentFinished.cut`` names which: a warning event,
a metric); where none of the segment has been heard yet, it is generated once more with a
repetition penalty ``RETRY_PENALTY`` times higher (as prakharsr/Orpheus-TTS-FastAPI does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..formats import SAMPLE_RATE, SAMPLES_PER_FRAME
from ..vocabulary import CUT_MESSAGES, LENGTH, REPEAT
from .tokens import Frame

__all__ = ["CUT_MESSAGES", "LENGTH", "REPEAT", "RepeatWatch", "frame_budget",
           "with_final_punctuation"]

RUNAWAY_FLOOR_S = 1.2  # the model's leading quiet (up to 0.7 s, canopyai #228) and a word
NATURAL_CHARS_PER_S = 14.0
SLOWEST = 3.0  # the budget allows speech three times slower than natural
REPEAT_FRAMES = 8
RETRY_PENALTY = 1.1
MAX_PENALTY = 2.0  # the top of repetition_penalty's range
FRAME_S = SAMPLES_PER_FRAME / SAMPLE_RATE
SENTENCE_ENDS = ".!?…。！？;:"
CLOSERS = "\"'”’)]»」』"


def frame_budget(text: str) -> int:
    """The most frames ``text`` may take to say."""
    seconds = RUNAWAY_FLOOR_S + len(text) * SLOWEST / NATURAL_CHARS_PER_S
    return math.ceil(seconds / FRAME_S)


def with_final_punctuation(text: str) -> str:
    """``text`` as the model gets it: with a full stop if it ends without a punctuation mark
    (closing quotes and brackets looked through; an emotion tag at the end kept)."""
    bare = text.rstrip()
    if not bare:
        return text
    core = bare.rstrip(CLOSERS)
    if core.endswith(">") and "<" in core:  # "... <laugh>": the tag stays last
        core = core[: core.rindex("<")].rstrip()
    if not core or core[-1] in SENTENCE_ENDS:
        return text
    return bare + "."


class RepeatWatch:
    """Watches a segment's frames as they come for a run of ``REPEAT_FRAMES`` frames that
    comes back code for code; ``feed`` returns where the repeat begins (frames from there on
    are the repeat, to be cut), or None. ``origin``: the first frame watched (a generation
    that follows frames of an earlier attempt watches only its own)."""

    def __init__(self, origin: int = 0) -> None:
        self._seen: dict[tuple[tuple[int, ...], ...], int] = {}
        self._checked = origin + REPEAT_FRAMES

    def feed(self, frames: Sequence[Frame]) -> int | None:
        for end in range(self._checked, len(frames) + 1):
            start = end - REPEAT_FRAMES
            run = tuple(frame.codes for frame in frames[start:end])
            earlier = self._seen.get(run)
            if earlier is not None and earlier + REPEAT_FRAMES <= start:
                self._checked = len(frames) + 1
                return start
            self._seen.setdefault(run, start)
        self._checked = len(frames) + 1
        return None
