"""Whether the decoder can carry one more real-time stream, from what it measures as the
server runs (no constants): its wall time per frame delivered (``DecoderService.
cost_per_frame``, an average over recent calls) times the frames per second every admitted
stream needs. Past ``headroom`` of real time, one more stream would make every listener run
dry, so the admission refuses it (``admission.py``); those admitted keep playing.
"""

from __future__ import annotations

from ..formats import SAMPLE_RATE, SAMPLES_PER_FRAME
from .decoder import DecoderService

FRAMES_PER_SECOND = SAMPLE_RATE / SAMPLES_PER_FRAME  # what one real-time stream needs


class DecoderCapacity:
    def __init__(self, decoder: DecoderService, headroom: float = 0.85) -> None:
        self.decoder = decoder
        self.headroom = headroom

    def load(self, streams: int) -> float | None:
        """The share of real time the decoder would spend on ``streams`` streams (None
        before it has measured a call)."""
        cost = self.decoder.cost_per_frame
        return None if cost is None else streams * FRAMES_PER_SECOND * cost

    def over(self, running: int) -> str | None:
        """Why one more stream beside ``running`` can't be carried, or None."""
        cost = self.decoder.cost_per_frame
        load = self.load(running + 1)
        if cost is None or load is None or load <= self.headroom:
            return None
        return (f"the audio decoder would need {load:.0%} of real time for {running + 1} "
                f"streams (it decodes a frame in {cost * 1000:.1f} ms)")
