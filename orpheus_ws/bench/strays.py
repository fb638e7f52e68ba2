"""``bench strays``: how the token parser's tolerance was chosen (engine/tokens.py, no I/O).

A stray audio token (one in the wrong position of its frame) costs the frame it falls in, and
the parser resynchronizes; more than ``max_lost`` frames lost with no whole frame between them
fails the generation as not Orpheus audio. Too small a tolerance fails speech that only has a
few strays; too large a one takes long to notice a stream that is not Orpheus audio at all.
Measured on simulated streams: Orpheus frames whose tokens are, at a given rate, written in a
wrong position (a quantized model at a higher temperature), and junk (audio ids in any order).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from ..engine import MAX_LOST_IN_A_ROW, FrameParser
from ..exceptions import InvalidAudioToken
from ..vocabulary import CODEBOOK_SIZE, TOKENS_PER_FRAME, audio_token_id

STRAY_RATES = (1e-4, 1e-3, 1e-2)
TOLERANCES = (1, 2, 3)


def _speech(rng: random.Random, frames: int, rate: float) -> Iterator[int]:
    """``frames`` frames, each token in a wrong position with probability ``rate``."""
    for k in range(frames * TOKENS_PER_FRAME):
        position = k % TOKENS_PER_FRAME
        if rng.random() < rate:
            position = (position + rng.randrange(1, TOKENS_PER_FRAME)) % TOKENS_PER_FRAME
        yield audio_token_id(position, rng.randrange(CODEBOOK_SIZE))


def _speech_row(max_lost: int, rate: float, generations: int, frames: int) -> dict[str, Any]:
    rng = random.Random(1)
    failed = lost = 0
    for _ in range(generations):
        parser = FrameParser(max_lost=max_lost)
        try:
            for token in _speech(rng, frames, rate):
                parser.feed((token,))
        except InvalidAudioToken:
            failed += 1
        lost += parser.dropped_frames
    return {"max_lost": max_lost, "stray_rate": rate,
            "generations_failed_pct": round(100 * failed / generations, 1),
            "frames_lost_pct": round(100 * lost / (generations * frames), 3)}


def _junk_tokens(max_lost: int, trials: int) -> list[int]:
    """Tokens read before junk is refused, per trial."""
    rng = random.Random(2)
    read = []
    for _ in range(trials):
        parser, count = FrameParser(max_lost=max_lost), 0
        try:
            while True:
                count += 1
                parser.feed((audio_token_id(rng.randrange(TOKENS_PER_FRAME),
                                            rng.randrange(CODEBOOK_SIZE)),))
        except InvalidAudioToken:
            read.append(count)
    return sorted(read)


def run_strays(generations: int = 300, frames: int = 1000, trials: int = 3000) -> dict[str, Any]:
    """Per tolerance: generations of ``frames`` frames (85 s) failed and frames lost at each
    stray rate, and the tokens junk takes to be refused (median, 99th percentile)."""
    rows = [_speech_row(max_lost, rate, generations, frames)
            for max_lost in TOLERANCES for rate in STRAY_RATES]
    junk = []
    for max_lost in TOLERANCES:
        read = _junk_tokens(max_lost, trials)
        junk.append({"max_lost": max_lost, "junk_refused_after_tokens_p50": read[len(read) // 2],
                     "junk_refused_after_tokens_p99": read[len(read) * 99 // 100]})
    return {"default_max_lost": MAX_LOST_IN_A_ROW, "frames_per_generation": frames,
            "speech": rows, "junk": junk}
