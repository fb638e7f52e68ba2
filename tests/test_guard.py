"""The runaway guard (orpheus_ws/engine/guard.py): a segment bounded by what its text can take
to say, repeated audio cut, and regenerated once where nobody has heard it yet; against the
stand-in LLM that never ends its speech or loops a run of frames."""

from __future__ import annotations

import random

import pytest

from orpheus_ws.engine.guard import (
    REPEAT_FRAMES,
    RepeatWatch,
    frame_budget,
    with_final_punctuation,
)
from orpheus_ws.engine.pipeline import StreamTuning
from orpheus_ws.engine.tokens import Frame
from orpheus_ws.params import SamplingParams

GUARDED = StreamTuning(runaway_guard=True)
LONG = SamplingParams(max_tokens=2048)


def test_the_budget_grows_with_the_text() -> None:
    assert frame_budget("Hi.") == 22  # 1.84 s: "at most about 2 s"
    assert frame_budget("Hi.") * 2048 / 24000 < 2.0
    assert frame_budget("x" * 85) * 2048 / 24000 == pytest.approx(19.4, abs=0.1)
    assert frame_budget("a" * 40) > frame_budget("a" * 20)


@pytest.mark.parametrize("text,prompt", [
    ("The Adventure of the Lost Treasure", "The Adventure of the Lost Treasure."),
    ("Hello there.", "Hello there."),
    ("Really?", "Really?"),
    ('He said "go"', 'He said "go".'),
    ('He said "go."', 'He said "go."'),
    ("Well <laugh>", "Well <laugh>."),
    ("That's it. <sigh>", "That's it. <sigh>"),
    ("東京に行きます。", "東京に行きます。"),
    ("first, second,", "first, second,."),
    ("  ", "  "),
])
def test_text_without_a_final_mark_gets_a_full_stop(text: str, prompt: str) -> None:
    assert with_final_punctuation(text) == prompt


def frames_of(codes: list[int]) -> list[Frame]:
    return [Frame((c, c, c, c, c, c, c)) for c in codes]


def test_a_run_that_comes_back_is_a_repeat() -> None:
    rng = random.Random(5)
    first = [rng.randrange(4096) for _ in range(12)]
    frames = frames_of(first + first)
    watch = RepeatWatch()
    found = [watch.feed(frames[:n]) for n in range(1, len(frames) + 1)]
    assert found.index(12) == 12 + REPEAT_FRAMES - 1  # seen once its run has come back
    assert RepeatWatch().feed(frames_of([rng.randrange(4096) for _ in range(400)])) is None
    same = RepeatWatch().feed(frames_of([7] * 30))  # one frame again and again
    assert same is not None and same <= REPEAT_FRAMES
