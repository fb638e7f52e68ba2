"""Text into segments: whole texts, and text arriving in pieces (same segments either way)."""

from __future__ import annotations

import random
import re

import pytest

from orpheus_ws.engine.segmenter import (
    IncrementalSegmenter,
    SegmenterConfig,
    chars_for_tokens,
    sentences,
    split_text,
)

WORDS = ("the", "a", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "speech",
         "server", "streams", "audio", "tokens", "while", "you", "listen", "carefully",
         "Orpheus", "decoder", "frames", "one", "two", "3.5", "e.g.", "U.S.", "don't", "naïve",
         "über", "東京", "x")
ENDS = (".", ".", ".", "!", "?", "…", "...", '."', ".)", "?!", "。")
CLAUSES = (",", ",", ";", ":", " —", " –")


def random_text(rng: random.Random, n_words: int, *, long_words: bool = True) -> str:
    parts: list[str] = []
    for i in range(n_words):
        word = rng.choice(WORDS)
        if long_words and rng.random() < 0.01:
            word = "".join(rng.choice("abcdefgh") for _ in range(rng.randrange(60, 200)))
        parts.append(word)
        r = rng.random()
        if r < 0.1:
            parts.append(rng.choice(ENDS))
        elif r < 0.18:
            parts.append(rng.choice(CLAUSES))
        if i < n_words - 1:
            s = rng.random()
            parts.append("\n\n" if s < 0.01 else "\n" if s < 0.02 else "  " if s < 0.05 else " ")
    return "".join(parts)


def words(text: str) -> list[str]:
    return text.split()


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def feed(segmenter: IncrementalSegmenter, pieces: list[str]) -> list[str]:
    out: list[str] = []
    for piece in pieces:
        out.extend(segmenter.push(piece))
    out.extend(segmenter.flush())
    return out


def word_pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text)


def random_pieces(rng: random.Random, text: str, longest: int = 29) -> list[str]:
    """``text`` cut into pieces of 1 to ``longest`` characters."""
    pieces, i = [], 0
    while i < len(text):
        n = rng.randrange(1, longest + 1)
        pieces.append(text[i : i + n])
        i += n
    return pieces


def test_chars_for_tokens() -> None:
    assert chars_for_tokens(512) == 85
    assert chars_for_tokens(2048) == 341
    assert chars_for_tokens(10) == 8


def test_sentences() -> None:
    assert sentences("Hi there. How are you? Fine!") == ["Hi there.", "How are you?", "Fine!"]
    assert sentences('He said "stop." Then left.\nNew line') == [
        'He said "stop."', "Then left.", "New line"]
    assert sentences("3.5 is a number. So is 2.0") == ["3.5 is a number.", "So is 2.0"]
    assert sentences("Wait... what?! Yes.\n\nNo") == ["Wait...", "what?!", "Yes.", "No"]
    assert sentences("   ") == []


@pytest.mark.parametrize("max_chars", [20, 85, 341])
def test_split_text_long_text(max_chars: int) -> None:
    rng = random.Random(max_chars)
    text = random_text(rng, 1200, long_words=False)[:5000]
    assert len(text) == 5000
    segments = split_text(text, max_chars)
    assert all(0 < len(s) <= max_chars for s in segments)
    assert words(" ".join(segments)) == words(text)  # no word lost, added or reordered
    assert all(s == s.strip() for s in segments)


def test_split_text_hard_cuts_long_words() -> None:
    rng = random.Random(5)
    for _ in range(50):
        text = random_text(rng, 300)
        segments = split_text(text, 40)
        assert all(0 < len(s) <= 40 for s in segments)
        assert squeeze("".join(segments)) == squeeze(text)


def test_split_text_packs_short_sentences() -> None:
    text = "One. Two. Three. Four is longer than the others, by far. Five."
    assert split_text(text, 20) == [
        "One. Two. Three.", "Four is longer than", "the others, by far.", "Five."]
    assert split_text(text, 1000) == [text]
    assert split_text("", 85) == []


def test_split_text_prefers_clause_ends() -> None:
    text = "This sentence is long, and it has a clause end before the limit of chars."
    assert split_text(text, 50) == ["This sentence is long,",
                                    "and it has a clause end before the limit of chars."]


@pytest.mark.parametrize("max_chars", [30, 85, 200])
def test_incremental_same_segments_however_cut(max_chars: int) -> None:
    rng = random.Random(max_chars)
    config = SegmenterConfig(max_chars=max_chars, first_segment_min_chars=max_chars // 2)
    for _ in range(150):
        text = random_text(rng, rng.randrange(1, 200))
        whole = feed(IncrementalSegmenter(config), [text])
        assert squeeze("".join(whole)) == squeeze(text)
        assert all(0 < len(s) <= max_chars for s in whole), whole
        by_word = feed(IncrementalSegmenter(config), word_pieces(text))
        by_char = feed(IncrementalSegmenter(config), list(text))
        by_chunk = feed(IncrementalSegmenter(config), random_pieces(rng, text))
        assert by_word == whole, text
        assert by_char == whole, text
        assert by_chunk == whole, text


def test_newline_runs_cut_the_same_however_they_arrive() -> None:
    # a greedy "\n+" once cut "one two thre" whole but "one two" + "thre" when the newlines
    # came one at a time (the run's end was checked against max_chars)
    config = SegmenterConfig(max_chars=12, first_segment_min_chars=100)
    text = "one two thre\n\nfour"
    assert feed(IncrementalSegmenter(config), [text]) == ["one two thre", "four"]
    assert feed(IncrementalSegmenter(config), list(text)) == ["one two thre", "four"]


def test_incremental_releases_a_sentence_once_its_end_is_certain() -> None:
    seg = IncrementalSegmenter(SegmenterConfig(max_chars=85, first_segment_min_chars=40))
    assert seg.push("Hello there.") == []  # "." may still be "..." or "3.5"
    assert seg.push(" How") == ["Hello there."]
    assert seg.buffered == " How"
    assert seg.push(" are you?") == []
    assert seg.push("\n") == ["How are you?"]
    assert seg.released == 2


def test_first_segment_cut_at_a_clause() -> None:
    config = SegmenterConfig(max_chars=85, first_segment_min_chars=40)
    seg = IncrementalSegmenter(config)
    text = ("Well, this opening sentence runs on for a while, and then it goes on further; "
            "it ends here. Later, clauses don't cut, since only the first segment hurries.")
    out = seg.push(text)
    # "Well," is before 40 chars; the first clause end at or past 40 chars cuts
    assert out == ["Well, this opening sentence runs on for a while,",
                   "and then it goes on further; it ends here."]
    assert seg.flush() == ["Later, clauses don't cut, since only the first segment hurries."]


def test_first_segment_waits_for_a_clause_past_the_minimum() -> None:
    seg = IncrementalSegmenter(SegmenterConfig(max_chars=85, first_segment_min_chars=40))
    assert seg.push("Short, then some more words that are not") == []
    assert seg.push(" ending, yet") == ["Short, then some more words that are not ending,"]


def test_long_text_without_ends_is_cut_to_fit() -> None:
    seg = IncrementalSegmenter(SegmenterConfig(max_chars=30, first_segment_min_chars=20))
    out = []
    for word in ("word " * 40).split(" "):
        out.extend(seg.push(word + " "))
    assert out and all(len(s) <= 30 for s in out)
    out.extend(seg.flush())
    assert words(" ".join(out)) == ["word"] * 40


def test_flush_releases_the_rest() -> None:
    seg = IncrementalSegmenter(SegmenterConfig())
    assert seg.push("no end in sight") == []
    assert seg.flush() == ["no end in sight"]
    assert seg.buffered == ""
    assert seg.flush() == []
    assert seg.push("   ") == []
    assert seg.flush() == []
    assert seg.released == 1


def test_mode_none_speaks_pieces_as_sent() -> None:
    seg = IncrementalSegmenter(SegmenterConfig(mode="none", max_chars=30))
    assert seg.push("Hello") == ["Hello"]
    assert seg.push("world, no sentence end") == ["world, no sentence end"]
    assert seg.push("  ") == []
    long = "a piece that is much longer than thirty characters"
    out = seg.push(long)
    assert len(out) > 1 and all(len(s) <= 30 for s in out)
    assert " ".join(out) == long
    assert seg.buffered == ""
    assert seg.flush() == []
    assert seg.released == 2 + len(out)
