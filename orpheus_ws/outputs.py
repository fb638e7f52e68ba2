"""An HTTP response's audio: the engine's 24 kHz PCM in, one continuous stream of the format
the client asked for out, chunk by chunk (the compatibility routes share it).

Formats: ``mp3``, ``opus`` (in Ogg), ``aac`` (ADTS), ``flac`` (PyAV's encoders,
``encoders.py``), ``wav`` (16-bit, its sizes left open as a stream's are), ``pcm`` (s16le),
``mulaw``, ``alaw`` (``audio.FormatConverter``), at a sample rate and, for the compressed
ones, a bit rate. ``parse_vendor_format`` reads ElevenLabs-style names (``mp3_44100_128``,
``pcm_16000``, ``ulaw_8000``, ``opus_48000_64``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .audio import FormatConverter
from .encoders import CODECS, StreamEncoder, TempoStretch
from .formats import SAMPLE_RATE, SAMPLE_RATES, AudioFormat

RAW = {"pcm": "pcm_s16le", "mulaw": "mulaw", "alaw": "alaw", "wav": "pcm_s16le"}
MEDIA_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm", "mulaw": "audio/basic",
               "alaw": "audio/x-alaw-basic"}
KINDS = (*CODECS, *RAW)

BIT_RATES = (8_000, 512_000)  # what the encoders (and the vendors' formats) take, bit/s


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """``bit_rate`` in bit/s, for the compressed kinds (the encoder's default if None)."""

    kind: str
    sample_rate: int = SAMPLE_RATE
    bit_rate: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"format must be one of {', '.join(KINDS)}")
        if self.kind in CODECS:
            rates = CODECS[self.kind].rates
        elif self.kind in ("mulaw", "alaw"):
            rates = (8000,)
        else:
            rates = SAMPLE_RATES
        if self.sample_rate not in rates:
            raise ValueError(f"{self.kind} is sent at {', '.join(map(str, rates))} Hz")
        if self.bit_rate is not None and not BIT_RATES[0] <= self.bit_rate <= BIT_RATES[1]:
            raise ValueError(f"the bit rate must be from {BIT_RATES[0] // 1000} to "
                             f"{BIT_RATES[1] // 1000} kbit/s")

    @property
    def media_type(self) -> str:
        return CODECS[self.kind].media_type if self.kind in CODECS else MEDIA_TYPES[self.kind]


def parse_vendor_format(name: str) -> OutputFormat:
    """``mp3_22050_32`` (kind, rate, kbit/s), ``pcm_16000``, ``ulaw_8000``: ValueError if not."""
    parts = name.split("_")
    kind = {"ulaw": "mulaw"}.get(parts[0], parts[0])
    try:
        rate = int(parts[1]) if len(parts) > 1 else SAMPLE_RATE
        bit_rate = int(parts[2]) * 1000 if len(parts) > 2 else None
    except ValueError:
        raise ValueError(f"unknown output format {name!r}") from None
    if len(parts) > 3 or kind == "wav":
        raise ValueError(f"unknown output format {name!r}")
    return OutputFormat(kind, rate, bit_rate)


def wav_stream_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header whose sizes are left at their maximum, as a stream's are."""
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", 0xFFFFFFFF))


class AudioOutput:
    """Feeds 24 kHz int16 chunks, returns the response's bytes as they are ready; ``speed``
    other than 1 time-stretches the speech first (pitch kept)."""

    def __init__(self, fmt: OutputFormat, *, speed: float = 1.0) -> None:
        self.format = fmt
        self._stretch = TempoStretch(speed) if speed != 1.0 else None
        self._encoder: StreamEncoder | None = None
        self._converter: FormatConverter | None = None
        self._header = b""
        if fmt.kind in CODECS:
            self._encoder = StreamEncoder(fmt.kind, fmt.sample_rate, fmt.bit_rate)
        else:
            self._converter = FormatConverter(AudioFormat(RAW[fmt.kind], fmt.sample_rate))
            if fmt.kind == "wav":
                self._header = wav_stream_header(fmt.sample_rate)

    def feed(self, pcm: np.ndarray) -> bytes:
        if self._stretch is not None:
            pcm = self._stretch.process(pcm)
        return self._emit(pcm)

    def finish(self) -> bytes:
        tail = self._emit(self._stretch.process(None)) if self._stretch is not None else b""
        return tail + self._close()

    def _emit(self, pcm: np.ndarray) -> bytes:
        head, self._header = self._header, b""
        if self._encoder is not None:
            return head + self._encoder.encode(pcm)
        assert self._converter is not None
        return head + self._converter.convert(pcm)

    def _close(self) -> bytes:
        head, self._header = self._header, b""
        if self._encoder is not None:
            return head + self._encoder.finish()
        assert self._converter is not None
        return head + self._converter.convert(np.zeros(0, dtype=np.int16), last=True)
