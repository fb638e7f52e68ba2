"""The adaptive chunk schedule: which frames of one stream to decode next (no I/O).

SNAC's output for a frame depends on its neighbours, so a frame is decoded inside a window with
one frame of context on each side (0.3 % error against a one-shot decode; orpheus-facts.md).
Frame 0 has no left neighbour: with a target of 1 (the listener has nothing yet) it leaves as
soon as frames 0 and 1 are in. After that the schedule grows the number of new frames per
window while the listener has audio in hand: a window of k new frames costs about (k + 2) / k
frames of decoding per frame, so bigger windows are cheaper per frame but make the newest frame
wait longer. At the end of the stream the last frames are decoded with left context only, so
every frame is emitted exactly once and an utterance of F frames yields exactly F x 2048
samples.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Window:
    """Decode frames ``start..end`` (exclusive) and keep frames ``emit_start..emit_end``."""

    start: int
    end: int
    emit_start: int
    emit_end: int

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def new_frames(self) -> int:
        return self.emit_end - self.emit_start


def _pow2_floor(n: int) -> int:
    return 1 << (n.bit_length() - 1) if n > 0 else 0


def affordable_frames(
    buffered_s: float,
    frame_interval_s: float,
    decode_s_per_frame: float,
    *,
    ready: int = 0,
    margin_s: float = 0.05,
    cap: int = 16,
) -> int:
    """How many new frames a window may hold without the listener running dry.

    ``ready`` frames are already in; gathering k frames takes k - ready more frame intervals of
    generation, and the window then costs (k + 2) frames of decoding; both must fit in the
    audio the listener still has, less a margin.
    """
    interval = max(frame_interval_s, 0.0)
    decode = max(decode_s_per_frame, 0.0)
    spendable = buffered_s - margin_s - 2 * decode + ready * interval
    per_frame = interval + decode
    if spendable <= 0:
        return 1
    if per_frame <= 0:
        return cap
    return max(1, min(cap, int(spendable / per_frame)))


class ChunkSchedule:
    """Chooses the decode windows of one stream of frames.

    ``next_window(received, ended, target)`` is asked whenever a frame arrives or the stream
    ends; it returns the window to decode now, or None to wait for more frames. ``target`` is
    the number of new frames the caller can afford to wait for (see :func:`affordable_frames`).
    Windows of new frames come in powers of two (up to ``max_new_frames``), so that concurrent
    streams share a few window shapes and batch well; ``exact=True`` asks for exactly
    ``target`` frames instead (the frames that fill a listener's jitter buffer).
    """

    def __init__(self, *, max_new_frames: int = 16, context: int = 1) -> None:
        if max_new_frames < 1 or context < 0:
            raise ValueError("max_new_frames must be >= 1 and context >= 0")
        self.max_new_frames = max_new_frames
        self.context = context
        self.emitted = 0

    def ready(self, received: int) -> int:
        """New frames that have their right-hand context in."""
        return max(0, received - self.emitted - self.context)

    def frames_for(self, target: int, *, exact: bool = False) -> int:
        """Frames received at which :meth:`next_window` gives a window for ``target`` (the
        stream not ended): the frame a waiting stream need not wake before."""
        want = max(1, min(target, self.max_new_frames))
        return self.emitted + self.context + (want if exact else _pow2_floor(want))

    def next_window(self, received: int, ended: bool, target: int = 1, *,
                    exact: bool = False) -> Window | None:
        start = self.emitted
        cap = self.max_new_frames
        if ended:
            count = min(received - start, cap)
            if count <= 0:
                return None
        else:
            ready = received - start - self.context
            want = max(1, min(target, cap))
            if not exact:
                want = _pow2_floor(want)
            if ready < want:
                return None
            count = min(ready, cap) if exact else _pow2_floor(min(ready, cap))
        window = Window(
            start=max(0, start - self.context),
            end=min(received, start + count + self.context),
            emit_start=start,
            emit_end=start + count,
        )
        self.emitted = window.emit_end
        return window
