"""A simulated real-time player: when would a listener have heard silence? (no I/O)

The player starts once it holds ``jitter_s`` of audio (or the stream has ended), then plays in
real time. Whenever it runs dry before the stream's end it counts an underrun and resumes the
moment the next chunk arrives. Underruns in the first ``grace_s`` of playback are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlayerResult:
    underruns: int
    underrun_s: float
    early_underruns: int
    started_at: float | None
    gaps: tuple[tuple[float, float], ...] = ()  # (audio position s, silence s) of each underrun


def simulate_player(arrivals: list[tuple[float, float]], *, jitter_s: float = 0.2,
                    grace_s: float = 1.0) -> PlayerResult:
    """``arrivals``: (arrival time, seconds of audio) per chunk, in order."""
    if not arrivals:
        return PlayerResult(0, 0.0, 0, None)
    buffered = 0.0
    start: float | None = None
    index = 0
    for index, (at, seconds) in enumerate(arrivals):  # noqa: B007
        buffered += seconds
        if buffered >= jitter_s:
            start = at
            break
    if start is None:
        start = arrivals[-1][0]
        index = len(arrivals) - 1
    clock = start          # wall time at which the buffered audio runs out = clock + buffered
    played = 0.0           # seconds of audio played before ``clock``
    underruns = early = 0
    gap_total = 0.0
    gaps: list[tuple[float, float]] = []
    for at, seconds in arrivals[index + 1 :]:
        runs_out = clock + buffered
        if at > runs_out:
            position = played + buffered
            gaps.append((round(position, 3), round(at - runs_out, 4)))
            if position >= grace_s:
                underruns += 1
                gap_total += at - runs_out
            else:
                early += 1
            played, buffered, clock = position, 0.0, at
        else:
            played += at - clock
            buffered -= at - clock
            clock = at
        buffered += seconds
    return PlayerResult(underruns, round(gap_total, 4), early, start, tuple(gaps))
