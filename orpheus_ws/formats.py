"""Output audio formats of protocol.md: encodings and sample rates (no I/O, no resampler).

Shared by the server, which converts to them (``orpheus_ws.audio``), and by clients, which read
them back from frame headers.
"""

from __future__ import annotations

from dataclasses import dataclass

# The codec's rate and hop (SNAC 24 kHz): what the engine produces, 2048 samples a frame.
SAMPLE_RATE = 24000
SAMPLES_PER_FRAME = 2048
# Raw samples, then compressed streams (protocol.md, "Compressed encodings"); the order is the
# binary frame header's encoding id.
ENCODINGS = ("pcm_s16le", "pcm_f32le", "mulaw", "alaw", "mp3", "opus", "aac", "flac")
COMPRESSED = ("mp3", "opus", "aac", "flac")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
BYTES_PER_SAMPLE = {"pcm_s16le": 2, "pcm_f32le": 4, "mulaw": 1, "alaw": 1}
# Encodings that take only some of the rates.
ENCODING_RATES = {"mulaw": (8000,), "alaw": (8000,), "opus": (8000, 16000, 24000, 48000)}


@dataclass(frozen=True, slots=True)
class AudioFormat:
    encoding: str = "pcm_s16le"
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
        if type(self.sample_rate) is not int or self.sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample_rate must be one of {', '.join(map(str, SAMPLE_RATES))}")
        rates = ENCODING_RATES.get(self.encoding, SAMPLE_RATES)
        if self.sample_rate not in rates:
            raise ValueError(f"{self.encoding} is sent at {', '.join(map(str, rates))} Hz only")

    @property
    def compressed(self) -> bool:
        """A compressed stream (its frames carry bytes of it, not whole samples)."""
        return self.encoding in COMPRESSED

    @property
    def bytes_per_sample(self) -> int:
        """Bytes of one sample of a raw encoding (0 for a compressed one)."""
        return BYTES_PER_SAMPLE.get(self.encoding, 0)
