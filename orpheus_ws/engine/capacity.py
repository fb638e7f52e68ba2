"""Whether the server can carry one more real-time stream, from what it measures as it runs
(no constants), so that the admission refuses a stream that would make every listener run dry
(``admission.py``); those admitted keep playing.

- The decoder: its wall time per frame delivered (``DecoderService.cost_per_frame``, an
  average over recent calls) times the frames per second every admitted stream needs, within
  ``headroom`` of real time.
- The LLM backends: the tokens per second each running generation gets (``BackendPool.
  stream_rates``). When on every healthy backend they come slower than a listener plays them
  (7 tokens a frame) while the same backend has given a generation real time before (less
  loaded), the load is what slows them: the streams admitted already run dry, and one more
  would slow them further. A backend that has never reached real time is slow, not loaded:
  refusing work would not speed it up, so it is not a reason.
"""

from __future__ import annotations

from collections.abc import Callable

from ..formats import SAMPLE_RATE, SAMPLES_PER_FRAME
from ..vocabulary import TOKENS_PER_FRAME
from .backends import BackendPool
from .decoder import DecoderService

FRAMES_PER_SECOND = SAMPLE_RATE / SAMPLES_PER_FRAME  # what one real-time stream needs
TOKENS_PER_SECOND = FRAMES_PER_SECOND * TOKENS_PER_FRAME  # 82 from its LLM generation


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


class BackendCapacity:
    def __init__(self, pool: BackendPool) -> None:
        self.pool = pool

    def over(self, running: int) -> str | None:
        """Why the LLM backends can't take one more stream, or None: every healthy one is
        loaded below real time (measured now below it, having been above it)."""
        rates = self.pool.stream_rates()
        if not rates or not all(_loaded(now, best) for now, best in rates):
            return None
        fastest = max(now for now, _ in rates if now is not None)
        return (f"the LLM backend generates {fastest:.0f} tokens/s per stream under this load, "
                f"below the {TOKENS_PER_SECOND:.0f} a real-time stream needs")


def _loaded(now: float | None, best: float | None) -> bool:
    return now is not None and best is not None and now < TOKENS_PER_SECOND <= best


def realtime_capacity(decoder: DecoderService, pool: BackendPool) -> Callable[[int], str | None]:
    """The admission's ``over_capacity``: the decoder's reason, else the backends'."""
    checks = (DecoderCapacity(decoder).over, BackendCapacity(pool).over)

    def over(running: int) -> str | None:
        return next((r for check in checks if (r := check(running)) is not None), None)
    return over
