"""Token ids -> frames (alignment, code range, text rejection) and frames -> SNAC codebooks."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import cast

import pytest

from orpheus_ws.engine.tokens import Frame, FrameParser
from orpheus_ws.exceptions import InvalidAudioToken
from orpheus_ws.vocabulary import (
    AUDIO_TOKEN_BASE,
    BOS,
    CODEBOOK_SIZE,
    CUSTOM_TOKEN_BASE,
    END_OF_HUMAN,
    END_OF_SPEECH,
    EOT,
    PAD,
    START_OF_AI,
    START_OF_HUMAN,
    START_OF_SPEECH,
    audio_token_id,
    native_prompt,
    parse_custom_token,
    text_prompt,
)

CONTROL = [START_OF_SPEECH, END_OF_SPEECH, START_OF_HUMAN, END_OF_HUMAN, START_OF_AI, PAD, BOS,
           EOT, CUSTOM_TOKEN_BASE, AUDIO_TOKEN_BASE - 1]


def tokens_of(frames: Sequence[tuple[int, ...]]) -> list[int]:
    return [audio_token_id(p, c) for codes in frames for p, c in enumerate(codes)]


FrameCodes = tuple[int, int, int, int, int, int, int]


def random_frames(rng: random.Random, n: int) -> list[FrameCodes]:
    return [cast(FrameCodes, tuple(rng.randrange(CODEBOOK_SIZE) for _ in range(7)))
            for _ in range(n)]


def test_ids_follow_the_custom_token_layout() -> None:
    # <custom_token_N> is 128256 + N; audio starts at <custom_token_10>.
    assert audio_token_id(0, 0) == 128266 == CUSTOM_TOKEN_BASE + 10
    assert audio_token_id(1, 0) == 128266 + 4096
    assert audio_token_id(6, 4095) == 128266 + 7 * 4096 - 1
    assert START_OF_SPEECH == 128257 and END_OF_SPEECH == 128258


def test_prompts() -> None:
    assert native_prompt("tara", "Hi.") == [128259, 128000, "tara: Hi.", 128009, 128260,
                                            128261, 128257]
    assert text_prompt("leo", "Hi.") == "<|audio|>leo: Hi.<|eot_id|>"


def test_frames_from_audio_tokens() -> None:
    frames = random_frames(random.Random(1), 5)
    parser = FrameParser()
    got = parser.feed(tokens_of(frames))
    assert [f.codes for f in got] == frames
    assert parser.audio_tokens == 35


def test_control_tokens_interleaved_keep_alignment() -> None:
    rng = random.Random(2)
    frames = random_frames(rng, 6)
    stream: list[int] = []
    for token in tokens_of(frames):
        while rng.random() < 0.4:
            stream.append(rng.choice(CONTROL))
        stream.append(token)
    stream.append(END_OF_SPEECH)
    assert len(stream) > 50  # some control tokens did go in
    parser = FrameParser()
    assert [f.codes for f in parser.feed(stream)] == frames
    assert parser.audio_tokens == 42


def test_genuine_code_zero_is_kept() -> None:
    # One reference drops code 0, which shifts every later frame.
    frames = [(0, 0, 0, 0, 0, 0, 0), (5, 0, 7, 0, 9, 0, 11), (0, 4095, 0, 4095, 0, 4095, 0)]
    assert [f.codes for f in FrameParser().feed(tokens_of(frames))] == frames


@pytest.mark.parametrize("position", range(7))
def test_code_4096_is_a_stray_or_no_audio_code(position: int) -> None:
    """4096 at position p is the id of code 0 at position p + 1 (the references accept it):
    a stray, costing the frame it falls in; past position 6 it is no audio code at all."""
    parser = FrameParser()
    parser.feed(tokens_of([(1, 2, 3, 4, 5, 6, 7)])[:position])
    stray = AUDIO_TOKEN_BASE + position * CODEBOOK_SIZE + CODEBOOK_SIZE
    if position == 6:
        with pytest.raises(InvalidAudioToken):
            parser.feed([stray])
        return
    assert parser.feed([stray]) == []
    assert parser.dropped_frames == 1
    assert [f.codes for f in parser.feed(tokens_of([(9,) * 7]))] == [(9,) * 7]  # in step again


@pytest.mark.parametrize("position", range(7))
@pytest.mark.parametrize("other", range(7))
def test_one_stray_token_costs_the_frame_it_falls_in(position: int, other: int) -> None:
    """A token for another position replaces the one at ``position`` of the second frame:
    that frame is lost, the parser resynchronizes on the next position 0, nothing else is."""
    if other == position:
        return
    frames = [(1, 2, 3, 4, 5, 6, 7), (11, 12, 13, 14, 15, 16, 17), (21, 22, 23, 24, 25, 26, 27),
              (31, 32, 33, 34, 35, 36, 37)]
    tokens = tokens_of(frames)
    tokens[7 + position] = audio_token_id(other, 100)
    parser = FrameParser()
    got = [f.codes for f in parser.feed(tokens)]
    assert got == [frames[0], frames[2], frames[3]]
    # a stray for position 0 starts a frame of its own, which the tokens after it end
    assert parser.dropped_frames == (2 if other == 0 else 1)


def test_strays_in_a_row_fail_fast() -> None:
    parser = FrameParser()
    parser.feed(tokens_of([(1, 2, 3, 4, 5, 6, 7)]))
    with pytest.raises(InvalidAudioToken, match="out of position"):
        parser.feed([audio_token_id(3, 1)] * 30)  # no position 0 to resynchronize on


def test_a_stream_of_strays_fails_fast_however_they_fall() -> None:
    """Audio tokens at random positions: now and then one lands on position 0 and a frame
    begins, but no frame completes; a few frames in, the stream is refused."""
    rng = random.Random(7)
    parser = FrameParser()
    with pytest.raises(InvalidAudioToken):
        parser.feed([audio_token_id(rng.randrange(7), rng.randrange(4096)) for _ in range(700)])
    assert parser.audio_tokens < 7 * 4


def test_a_stray_now_and_then_costs_one_frame_each() -> None:
    rng = random.Random(11)
    frames = random_frames(rng, 60)
    tokens = tokens_of(frames)
    hit = sorted(rng.sample(range(2, 58), 6))  # frames apart from each other
    for index in hit:
        position = rng.randrange(1, 7)
        tokens[index * 7 + position] = audio_token_id((position + 3) % 7 or 1, 5)
    parser = FrameParser()
    got = [f.codes for f in parser.feed(tokens)]
    assert got == [codes for n, codes in enumerate(frames) if n not in hit]
    assert parser.dropped_frames == len(hit)


@pytest.mark.parametrize("token", [0, 1000, 13, 128001, 128255])
def test_text_tokens_are_rejected(token: int) -> None:
    parser = FrameParser()
    parser.feed([audio_token_id(0, 1)])
    with pytest.raises(InvalidAudioToken):
        parser.feed([token])


def test_frames_split_across_feed_calls() -> None:
    rng = random.Random(3)
    for _ in range(50):
        frames = random_frames(rng, rng.randrange(1, 8))
        tokens = tokens_of(frames)
        parser = FrameParser()
        got: list[Frame] = []
        i = 0
        while i < len(tokens):
            n = rng.randrange(0, 10)  # empty feeds too
            got.extend(parser.feed(tokens[i : i + n]))
            i += n
        assert [f.codes for f in got] == frames


def test_partial_frame_is_held_back() -> None:
    parser = FrameParser()
    tokens = tokens_of([(1, 2, 3, 4, 5, 6, 7)])
    assert parser.feed(tokens[:6]) == []
    assert parser.feed(tokens[6:]) == [Frame((1, 2, 3, 4, 5, 6, 7))]


def test_parse_custom_token() -> None:
    assert parse_custom_token("<custom_token_10><custom_token_4106>") == [128266, 132362]
    assert parse_custom_token("") == []
    assert parse_custom_token("Hello, I am a model.") == []
    assert parse_custom_token(" <custom_token_3> and <custom_token_28681>x") == [
        CUSTOM_TOKEN_BASE + 3, CUSTOM_TOKEN_BASE + 28681]
    # malformed pieces are passed over, an unterminated one ends the text
    assert parse_custom_token("<custom_token_x><custom_token_12><custom_token_-1>") == [
        CUSTOM_TOKEN_BASE + 12]
    assert parse_custom_token("<custom_token_12><custom_token_13") == [CUSTOM_TOKEN_BASE + 12]


def test_parse_custom_token_round_trips_audio_text() -> None:
    frames = random_frames(random.Random(5), 4)
    tokens = tokens_of(frames)
    text = "".join(f"<custom_token_{t - CUSTOM_TOKEN_BASE}>" for t in tokens)
    assert parse_custom_token(text) == tokens
    assert [f.codes for f in FrameParser().feed(parse_custom_token(text))] == frames
