"""The estimated timings of a segment's speech: words and characters spread over the part of
its audio that is speech, spanning all of it."""

from __future__ import annotations

import numpy as np

from orpheus_ws.formats import SAMPLE_RATE
from orpheus_ws.timings import SpeechSpan, SpeechTimer, char_timings, word_timings


def test_word_timings_spread_the_span_by_characters() -> None:
    words, starts, ends = word_timings("Hi there friend.", 1.0, 2.7)
    assert words == ["Hi", "there", "friend."]
    assert starts[0] == 1.0 and ends[-1] == 2.7
    assert all(s < e for s, e in zip(starts, ends, strict=True))
    assert starts[1:] == ends[:-1]
    assert ends[0] - starts[0] < ends[2] - starts[2]  # longer words take longer


def test_char_timings_span_the_whole_audio_from_the_first_sound() -> None:
    timings = char_timings("Hi you ", 0.25, 1.0, 1.5)
    assert timings.chars == list("Hi you ")
    assert timings.starts_ms[0] == 250
    assert timings.starts_ms[-1] + timings.durations_ms[-1] == 1500  # trailing silence too
    assert all(d >= 0 for d in timings.durations_ms)
    assert timings.starts_ms == sorted(timings.starts_ms)
    assert char_timings("", 0, 1, 1).chars == []


def silence_tone_silence(lead_s: float, tone_s: float, tail_s: float) -> np.ndarray:
    tone = (8000 * np.sin(np.arange(int(tone_s * SAMPLE_RATE)) * 0.1)).astype(np.int16)
    return np.concatenate([np.zeros(int(lead_s * SAMPLE_RATE), np.int16), tone,
                           np.zeros(int(tail_s * SAMPLE_RATE), np.int16)])


def test_the_speech_span_leaves_out_silence_before_and_after() -> None:
    span = SpeechSpan()
    pcm = silence_tone_silence(0.3, 1.0, 0.2)
    for at in range(0, pcm.shape[0], 2048):  # in the engine's chunks, across windows
        span.add(pcm[at:at + 2048])
    start, end = span.bounds()
    assert abs(start - 0.3) <= 0.011 and abs(end - 1.3) <= 0.011
    silent = SpeechSpan()
    silent.add(np.zeros(4800, np.int16))
    assert silent.bounds() == (0.0, 0.2)  # nothing stands out: the whole segment


def test_the_timer_places_each_segment_after_the_last() -> None:
    timer = SpeechTimer()
    timer.add(silence_tone_silence(0.1, 0.5, 0.0))
    first = timer.finish("One two.", int(0.6 * SAMPLE_RATE))
    timer.add(silence_tone_silence(0.0, 0.4, 0.0))
    second = timer.finish("Three.", int(0.4 * SAMPLE_RATE))
    assert first.offset_s == 0.0 and second.offset_s == 0.6
    words, starts, ends = second.words()
    assert words == ["Three."] and starts == [0.6] and ends == [1.0]
    assert first.words()[1][0] >= 0.09  # the first word starts with the first sound
    chars = first.chars("One two. ")
    assert chars.starts_ms[-1] + chars.durations_ms[-1] == 600
