"""Test fakes and helpers shared by the unit tests: codecs, decoders, codes, comparisons."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import numpy as np

from orpheus_ws.engine import (
    AudioChunk,
    Caller,
    EngineHealth,
    PlayoutClock,
    Segments,
    SpeechEngine,
    SynthesisEvent,
)
from orpheus_ws.engine.codec import Codec, SnacCodec
from orpheus_ws.engine.codes import SnacCodes
from orpheus_ws.engine.decoder import DecoderService, to_int16
from orpheus_ws.exceptions import UnknownVoice
from orpheus_ws.lineup import Lineup
from orpheus_ws.params import SamplingParams

LONG_WAIT = 30.0  # a deadline that never comes: the batch cap starts the call


class ConstantCodec:
    """Fast and exact: every frame decodes to 2048 samples of c0 / 4096."""

    name = "constant"
    device = "cpu"
    fast_lengths: tuple[int, ...] = ()
    model_source: str | None = None

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        return np.repeat(c0.astype(np.float32) / 4096, 2048, axis=1)


class SlowCodec(ConstantCodec):
    """ConstantCodec at a fixed wall-clock cost per frame of window: a decoder that carries
    only so many real-time streams."""

    name = "slow"

    def __init__(self, seconds_per_frame: float) -> None:
        self.seconds_per_frame = seconds_per_frame

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds_per_frame * c0.shape[0] * c0.shape[1])
        return super().decode(c0, c1, c2)


class FailingCodec(ConstantCodec):
    """A decoder that fails every call, as a GPU out of memory would."""

    name = "failing"

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        raise RuntimeError("CUDA error: out of memory")


class FakeCodec(ConstantCodec):
    """Decodes as ConstantCodec, so a result names its frame's code; records the c0 of every
    call and raises on any window holding the code ``fail_on``."""

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
        return super().decode(c0, c1, c2)


class Recording:
    """Wraps a codec and records the shape of each call."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.name = inner.name
        self.device = inner.device
        self.fast_lengths = inner.fast_lengths
        self.model_source = inner.model_source
        self.shapes: list[tuple[int, ...]] = []

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        self.shapes.append(c0.shape)
        return self.inner.decode(c0, c1, c2)


def stream_codes(seed: int, frames: int) -> SnacCodes:
    rng = np.random.default_rng(seed)
    return SnacCodes(rng.integers(0, 4000, frames), rng.integers(0, 4096, 2 * frames),
                     rng.integers(0, 4096, 4 * frames))


def window(codes: SnacCodes, start: int, end: int) -> SnacCodes:
    return codes.window(start, end)


def fake_pcm(c0: np.ndarray) -> np.ndarray:
    return to_int16(np.repeat(c0.astype(np.float32) / 4096, 2048))


def alone(codec: SnacCodec, codes: SnacCodes, start: int, end: int) -> np.ndarray:
    """Int16 PCM of frames start..end decoded by themselves."""
    return to_int16(codec.decode(*SnacCodes.batch([codes.window(start, end)]))[0])


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    want64 = want.astype(np.float64)
    return float(np.linalg.norm(got.astype(np.float64) - want64) / np.linalg.norm(want64))


@contextlib.asynccontextmanager
async def decoders(*, company: int = 0) -> AsyncIterator[Callable[..., DecoderService]]:
    """Makes decoder services, each with ``company`` streams registered as decoding (so that
    windows wait for company), and closes them all at the end."""
    made: list[DecoderService] = []
    with contextlib.ExitStack() as streams:

        def make(codec: Codec, **options: Any) -> DecoderService:
            decoder = DecoderService(codec, **options)
            for _ in range(company):
                streams.enter_context(decoder.stream())
            made.append(decoder)
            return decoder

        try:
            yield make
        finally:
            for decoder in made:
                await decoder.close()


class EngineBase:
    """What a fake engine needs beyond ``synthesize`` to be a :class:`SpeechEngine` (the
    transports' view of the engine), with no LLM or decoder behind it."""

    voices = ["tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe"]  # noqa: RUF012
    lineup = Lineup.of("")

    def __init__(self) -> None:
        self.first_audio: list[tuple[AudioChunk, float]] = []
        self.drained = False
        self.utterances = 0

    @property
    def ready(self) -> bool:
        return True

    @property
    def draining(self) -> bool:
        return self.drained

    def check_voice(self, voice: str) -> None:
        if voice not in self.voices:
            raise UnknownVoice(voice, self.voices)

    def synthesize(self, segments: Segments, *, voice: str, params: SamplingParams,
                   caller: Caller = Caller(), clock: PlayoutClock | None = None,
                   first_index: int = 0,
                   trim_quiet: bool | None = None, normalize: bool | None = None,
                   ssml: bool = False) -> AsyncGenerator[SynthesisEvent, None]:
        raise NotImplementedError

    def speak(self, text: str, *, voice: str, params: SamplingParams, caller: Caller = Caller(),
              clock: PlayoutClock | None = None,
              trim_quiet: bool | None = None, normalize: bool | None = None,
                   ssml: bool = False) -> AsyncGenerator[SynthesisEvent, None]:
        return self.synthesize([text], voice=voice, params=params, caller=caller, clock=clock)

    async def health(self) -> EngineHealth:
        return {"backend": {"status": "ok"}, "generations_in_flight": 0, "utterances": 0,
                "draining": self.drained,
                "decoder": {"codec": "fake", "device": "cpu", "weights": None, "batching": False,
                            "max_batch": 1, "stats": {}}}

    def stats(self) -> dict[str, Any]:
        return {}

    def record_first_audio(self, chunk: AudioChunk, sent_at: float) -> None:
        self.first_audio.append((chunk, sent_at))

    def drain(self) -> None:
        self.drained = True

    async def idle(self) -> None:
        return None


def speech_engine(engine: SpeechEngine) -> SpeechEngine:
    """``engine`` as the transports see it (mypy checks that it is one)."""
    return engine
