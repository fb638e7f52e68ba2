"""Output audio: WAV files, and conversion into the formats of protocol.md (``formats``).

Resampling uses python-soxr's streaming resampler, so chunk joins are seamless and the whole
stream equals a one-shot resample. G.711 mu-law and A-law follow ITU-T G.711 (the segment
encoders below are the standard ones, on numpy arrays).
"""

from __future__ import annotations

import io
import wave

import numpy as np
import soxr

from .formats import SAMPLE_RATE, AudioFormat


def wav_bytes(pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A mono 16-bit WAV file of int16 samples."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    return out.getvalue()


def mulaw_encode(pcm: np.ndarray) -> np.ndarray:
    """G.711 mu-law of int16 samples, one byte each."""
    x = pcm.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    encoded: np.ndarray = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)
    return encoded


def alaw_encode(pcm: np.ndarray) -> np.ndarray:
    """G.711 A-law of int16 samples, one byte each."""
    x = pcm.astype(np.int32) >> 3  # A-law works on 13-bit samples
    sign = np.where(x >= 0, 0x80, 0)
    magnitude = np.minimum(np.where(x < 0, -x - 1, x), 0xFFF)
    exponent = np.where(magnitude < 32, 0, np.floor(np.log2(np.maximum(magnitude, 1))) - 4)
    exponent = exponent.astype(np.int32)
    mantissa = np.where(exponent == 0, magnitude >> 1, magnitude >> exponent) & 0x0F
    encoded: np.ndarray = ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8)
    return encoded


class FormatConverter:
    """Turns a stream of 24 kHz int16 chunks into one output format, chunk by chunk."""

    def __init__(self, fmt: AudioFormat) -> None:
        self.format = fmt
        self._resampler = (
            None
            if fmt.sample_rate == SAMPLE_RATE
            else soxr.ResampleStream(SAMPLE_RATE, fmt.sample_rate, 1, dtype="float32",
                                     quality="HQ")
        )

    def convert(self, pcm: np.ndarray, *, last: bool = False) -> bytes:
        """Bytes of the output format; ``last`` drains the resampler's delay."""
        if self._resampler is None and self.format.encoding == "pcm_s16le":
            return np.ascontiguousarray(pcm, dtype="<i2").tobytes()
        audio = pcm.astype(np.float32) / 32768.0
        if self._resampler is not None:
            audio = self._resampler.resample_chunk(audio, last=last)
        if self.format.encoding == "pcm_f32le":
            return np.ascontiguousarray(audio, dtype="<f4").tobytes()
        ints = np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)
        if self.format.encoding == "mulaw":
            return mulaw_encode(ints).tobytes()
        if self.format.encoding == "alaw":
            return alaw_encode(ints).tobytes()
        return ints.astype("<i2").tobytes()
