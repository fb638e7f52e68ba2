"""Fakes and helpers shared by the decoder service's tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from orpheus_ws.codec import Codec, SnacCodec
from orpheus_ws.decoder import DecoderService, to_int16

Codes = tuple[np.ndarray, np.ndarray, np.ndarray]
LONG_WAIT = 30.0  # a deadline that never comes: the batch cap starts the call


class FakeCodec:
    """Each frame decodes to 2048 samples of c0 / 4096, so a result names its frame's code.

    Records the c0 of every call; raises on any window holding the code ``fail_on``.
    """

    name = "fake"

    def __init__(self, *, fail_on: int | None = None, device: str = "cpu") -> None:
        self.device = device
        self.fail_on = fail_on
        self.calls: list[np.ndarray] = []

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        self.calls.append(c0.copy())
        assert c1.shape == (c0.shape[0], 2 * c0.shape[1])
        assert c2.shape == (c0.shape[0], 4 * c0.shape[1])
        if self.fail_on is not None and (c0 == self.fail_on).any():
            raise RuntimeError("secret internal failure text")
        return np.repeat(c0.astype(np.float32) / 4096, 2048, axis=1)


class Recording:
    """Wraps a codec and records the shape of each call."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.name = inner.name
        self.device = inner.device
        self.shapes: list[tuple[int, ...]] = []

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        self.shapes.append(c0.shape)
        return self.inner.decode(c0, c1, c2)


def stream_codes(seed: int, frames: int) -> Codes:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 4000, frames), rng.integers(0, 4096, 2 * frames),
            rng.integers(0, 4096, 4 * frames))


def window(codes: Codes, start: int, end: int) -> Codes:
    return codes[0][start:end], codes[1][2 * start : 2 * end], codes[2][4 * start : 4 * end]


def fake_pcm(c0: np.ndarray) -> np.ndarray:
    return to_int16(np.repeat(c0.astype(np.float32) / 4096, 2048))


def alone(codec: SnacCodec, codes: Codes, start: int, end: int) -> np.ndarray:
    """Int16 PCM of frames start..end decoded by themselves."""
    c0, c1, c2 = window(codes, start, end)
    return to_int16(codec.decode(c0[None], c1[None], c2[None])[0])


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    want64 = want.astype(np.float64)
    return float(np.linalg.norm(got.astype(np.float64) - want64) / np.linalg.norm(want64))


@contextlib.asynccontextmanager
async def decoders() -> AsyncIterator[Callable[..., DecoderService]]:
    """Makes decoder services as if several streams were decoding (windows wait for
    company), and closes them all at the end."""
    made: list[DecoderService] = []

    def make(codec: Codec, **options: Any) -> DecoderService:
        made.append(DecoderService(codec, **options))
        made[-1].streams = 4  # several streams decoding: windows wait for company
        return made[-1]

    try:
        yield make
    finally:
        for decoder in made:
            await decoder.close()
