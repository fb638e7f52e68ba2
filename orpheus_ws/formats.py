"""Output audio formats of protocol.md: encodings and sample rates (no I/O, no resampler).

Shared by the server, which converts to them (``orpheus_ws.audio``), and by clients, which read
them back from frame headers.
"""

from __future__ import annotations

from dataclasses import dataclass

# The codec's rate and hop (SNAC 24 kHz): what the engine produces, 2048 samples a frame.
SAMPLE_RATE = 24000
SAMPLES_PER_FRAME = 2048
ENCODINGS = ("pcm_s16le", "pcm_f32le", "mulaw", "alaw")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
BYTES_PER_SAMPLE = {"pcm_s16le": 2, "pcm_f32le": 4, "mulaw": 1, "alaw": 1}


@dataclass(frozen=True, slots=True)
class AudioFormat:
    encoding: str = "pcm_s16le"
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
        if type(self.sample_rate) is not int or self.sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample_rate must be one of {', '.join(map(str, SAMPLE_RATES))}")
        if self.encoding in ("mulaw", "alaw") and self.sample_rate != 8000:
            raise ValueError(f"{self.encoding} is sent at 8000 Hz only")

    @property
    def bytes_per_sample(self) -> int:
        return BYTES_PER_SAMPLE[self.encoding]
