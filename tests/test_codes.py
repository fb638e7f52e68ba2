"""SnacCodes: the one place that lays Orpheus frames out as SNAC's three codebooks."""

from __future__ import annotations

import random

import numpy as np

from orpheus_ws.engine.codes import SnacCodes
from orpheus_ws.engine.tokens import Frame

from .test_tokens import random_frames


def frames_of(seed: int, n: int) -> list[Frame]:
    return [Frame(codes) for codes in random_frames(random.Random(seed), n)]


def test_frames_to_codes_layout() -> None:
    # codebook 0: f[0]; codebook 1: f[1], f[4]; codebook 2: f[2], f[3], f[5], f[6]
    frames = [Frame((10, 11, 12, 13, 14, 15, 16)), Frame((20, 21, 22, 23, 24, 25, 26))]
    c0, c1, c2 = SnacCodes.from_frames(frames)
    assert c0.tolist() == [10, 20]
    assert c1.tolist() == [11, 14, 21, 24]
    assert c2.tolist() == [12, 13, 15, 16, 22, 23, 25, 26]
    assert c0.dtype == c1.dtype == c2.dtype == np.int64


def test_frames_to_codes_shapes() -> None:
    frames = frames_of(4, 9)
    codes = SnacCodes.from_frames(frames)
    c0, c1, c2 = codes
    assert (c0.shape, c1.shape, c2.shape) == ((9,), (18,), (36,))
    assert codes.frames == 9
    for k, frame in enumerate(frames):
        f = frame.codes
        assert (c0[k], *c1[2 * k : 2 * k + 2], *c2[4 * k : 4 * k + 4]) == (
            f[0], f[1], f[4], f[2], f[3], f[5], f[6])


def equal(a: SnacCodes, b: SnacCodes) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_extended_piece_by_piece_equals_built_at_once() -> None:
    frames = frames_of(0, 9)
    codes = SnacCodes.empty().extended(frames[:4]).extended([]).extended(frames[4:])
    assert equal(codes, SnacCodes.from_frames(frames))
    assert SnacCodes.empty().frames == 0


def test_window_takes_whole_frames_of_every_codebook() -> None:
    frames = frames_of(1, 8)
    codes = SnacCodes.from_frames(frames)
    assert equal(codes.window(3, 6), SnacCodes.from_frames(frames[3:6]))
    assert codes.window(3, 6).frames == 3


def test_fitted_cuts_on_the_left_or_repeats_the_last_frame() -> None:
    frames = frames_of(2, 5)
    codes = SnacCodes.from_frames(frames)
    assert equal(codes.fitted(3), SnacCodes.from_frames(frames[2:]))
    assert equal(codes.fitted(5), codes)
    stretched = codes.fitted(7)
    assert equal(stretched, SnacCodes.from_frames([*frames, frames[-1], frames[-1]]))


def test_batch_stacks_equally_long_windows() -> None:
    rows = [SnacCodes.from_frames(frames_of(seed, 4)) for seed in range(3)]
    batch = SnacCodes.batch(rows)
    assert [c.shape for c in batch] == [(3, 4), (3, 8), (3, 16)]
    assert batch.frames == 4
    for k, row in enumerate(rows):
        assert equal(SnacCodes(*(c[k] for c in batch)), row)
