"""A context's audio as its binary frames carry it (protocol.md, "Binary audio frames"):
the engine's 24 kHz PCM in, each frame's payload and its count of samples out.

Raw encodings: samples converted (and resampled) chunk by chunk; the resampler is drained at
each segment's end, so every segment's samples are in its own frames. Compressed encodings
(MP3, Opus in Ogg, AAC in ADTS, FLAC): one continuous stream per context, encoded with PyAV;
``drain()`` (at a flush and at the end) ends the stream so that all of its audio is sent, and
the next audio starts a new one. A compressed chunk counts the samples it adds at the
format's rate, whether or not the encoder has given out their bytes yet.
"""

from __future__ import annotations

import numpy as np

from ..audio import FormatConverter
from ..encoders import StreamEncoder
from ..formats import SAMPLE_RATE, AudioFormat


class FrameAudio:
    def __init__(self, fmt: AudioFormat, *, bit_rate: int | None = None) -> None:
        self.format = fmt
        self.bit_rate = bit_rate  # compressed: the encoder's, or its default
        self._converter = FormatConverter(fmt) if not fmt.compressed else None
        self._encoder: StreamEncoder | None = None
        self._source = 0  # compressed: 24 kHz samples fed, for the count at the format's rate
        self._counted = 0

    def chunk(self, pcm: np.ndarray, *, segment_end: bool) -> tuple[bytes, int]:
        """The payload for one engine chunk and the samples it carries (or adds)."""
        if self._converter is not None:
            payload = self._converter.convert(pcm, last=segment_end)
            if segment_end and self.format.sample_rate != SAMPLE_RATE:
                self._converter = FormatConverter(self.format)  # the next segment's own
            return payload, len(payload) // self.format.bytes_per_sample
        if self._encoder is None:
            self._encoder = StreamEncoder(self.format.encoding, self.format.sample_rate,
                                          self.bit_rate)
        self._source += pcm.shape[0]
        counted = round(self._source * self.format.sample_rate / SAMPLE_RATE)
        added, self._counted = counted - self._counted, counted
        return self._encoder.encode(pcm), added

    def drain(self) -> bytes:
        """What is still held back: a resampler's tail, or the rest of a compressed stream
        (which then ends; the next audio starts a new one)."""
        if self._converter is not None:
            if self.format.sample_rate == SAMPLE_RATE:
                return b""
            tail = self._converter.convert(np.zeros(0, dtype=np.int16), last=True)
            self._converter = FormatConverter(self.format)
            return tail
        encoder, self._encoder = self._encoder, None
        return encoder.finish() if encoder is not None else b""
