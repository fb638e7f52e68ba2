"""Compressed audio streams, encoded chunk by chunk with PyAV (FFmpeg's encoders, shipped in
its wheels): MP3, Opus in Ogg, AAC in ADTS, FLAC. Each chunk of 24 kHz int16 PCM in gives the
bytes of one continuous stream out as soon as the encoder has them, so a listener can start
before the text is spoken; ``finish()`` drains the encoder and writes the trailer.

PyAV re-chunks the input to the codec's frame size and resamples to the output rate itself.
Raw PCM, WAV, mu-law and A-law need no encoder: ``audio.FormatConverter`` makes them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from .formats import SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class Codec:
    """An encoder in a container, with the rates it accepts."""

    container: str  # FFmpeg's muxer
    codec: str  # FFmpeg's encoder
    media_type: str
    rates: tuple[int, ...]
    default_bit_rate: int | None


CODECS: dict[str, Codec] = {
    "mp3": Codec("mp3", "libmp3lame", "audio/mpeg", (8000, 11025, 12000, 16000, 22050, 24000,
                                                      32000, 44100, 48000), 64_000),
    "opus": Codec("ogg", "libopus", "audio/ogg", (8000, 12000, 16000, 24000, 48000), 32_000),
    "aac": Codec("adts", "aac", "audio/aac", (8000, 11025, 12000, 16000, 22050, 24000, 32000,
                                              44100, 48000), 64_000),
    "flac": Codec("flac", "flac", "audio/flac", (8000, 16000, 22050, 24000, 32000, 44100,
                                                 48000), None),
}


def _frame(pcm: np.ndarray, pts: int) -> av.AudioFrame:
    """24 kHz int16 samples as a PyAV frame starting at sample ``pts``."""
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1),
                                       format="s16", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    frame.time_base = Fraction(1, SAMPLE_RATE)
    return frame


class _Sink(io.RawIOBase):
    """Where the muxer writes: bytes gathered until taken."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.data += b
        return len(b)

    def take(self) -> bytes:
        out, self.data = bytes(self.data), bytearray()
        return out


class StreamEncoder:
    """One continuous compressed stream of ``name`` (``CODECS``) at ``sample_rate``."""

    def __init__(self, name: str, sample_rate: int = SAMPLE_RATE,
                 bit_rate: int | None = None) -> None:
        spec = CODECS[name]
        if sample_rate not in spec.rates:
            raise ValueError(f"{name} is encoded at {', '.join(map(str, spec.rates))} Hz")
        self.name = name
        self.media_type = spec.media_type
        self.sample_rate = sample_rate
        self._sink = _Sink()
        self._container = av.open(self._sink, mode="w", format=spec.container)
        stream = self._container.add_stream(spec.codec, rate=sample_rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        self._stream = stream
        rate = bit_rate or spec.default_bit_rate
        if rate is not None:
            self._stream.bit_rate = rate
        self._pts = 0
        self._finished = False

    def encode(self, pcm: np.ndarray) -> bytes:
        """Adds 24 kHz int16 samples; the stream's bytes that are ready now."""
        if pcm.size:
            frame = _frame(pcm, self._pts)
            self._pts += pcm.shape[0]
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._sink.take()

    def finish(self) -> bytes:
        """Drains the encoder and closes the stream: the last bytes."""
        if self._finished:
            return b""
        self._finished = True
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._sink.take()


class TempoStretch:
    """Speeds speech up or slows it down without changing its pitch (FFmpeg's ``atempo``, one
    stage per factor of 2 beyond 0.5-2.0), chunk by chunk, 24 kHz int16 in and out."""

    def __init__(self, speed: float) -> None:
        self._graph = av.filter.Graph()
        self._source = self._graph.add_abuffer(format="s16", sample_rate=SAMPLE_RATE,
                                               layout="mono", time_base=Fraction(1, SAMPLE_RATE))
        stages: list[float] = []
        while speed < 0.5 or speed > 2.0:
            stages.append(0.5 if speed < 0.5 else 2.0)
            speed /= stages[-1]
        stages.append(speed)
        node = self._source
        for factor in stages:
            stage = self._graph.add("atempo", f"{factor:.6f}")
            node.link_to(stage)
            node = stage
        self._sink = self._graph.add("abuffersink")
        node.link_to(self._sink)
        self._graph.configure()
        self._pts = 0

    def process(self, pcm: np.ndarray | None) -> np.ndarray:
        """Stretched samples ready now; ``None`` ends the stream and drains the filter."""
        if pcm is None:
            self._source.push(None)
        elif pcm.size:
            self._source.push(_frame(pcm, self._pts))
            self._pts += pcm.shape[0]
        parts: list[np.ndarray] = []
        while True:
            try:
                out = self._sink.pull()
            except (av.BlockingIOError, av.EOFError):
                break
            assert isinstance(out, av.AudioFrame)
            parts.append(out.to_ndarray().reshape(-1).astype(np.int16))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
