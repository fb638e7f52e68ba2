"""One segment: an LLM generation -> frames -> decoded PCM chunks, as an async iterator.

Tokens are read by a producer task while the consumer decodes, so generation never waits for
decoding. Leaving the iterator early cancels the producer, which closes the LLM request.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .decoder import DecoderService
from .exceptions import BackendProtocolError, OrpheusError
from .llm import LLMClient, SamplingParams
from .schedule import ChunkSchedule, affordable_frames
from .tokens import SAMPLE_RATE, SAMPLES_PER_FRAME, Frame, FrameParser, InvalidAudioToken

# Frames of left history a window may carry so the decoder can pad it to share a call.
HISTORY_FRAMES = 32
# How urgent a window after the first is when nobody models its listener (an HTTP request): as
# if it had this much audio in hand, so it yields to listeners about to run dry, not for long.
UNCLOCKED_IN_HAND_S = 0.5
FRAME_S = SAMPLES_PER_FRAME / SAMPLE_RATE


class PlayoutClock:
    """Estimates how much audio a real-time listener still has in hand.

    Shared by every segment of one utterance. The listener starts playing once it holds
    ``start_after_s`` of audio (its jitter buffer, 0: at the first chunk); each chunk extends
    the time its buffer lasts, and a listener that ran dry resumes when the next chunk arrives.
    """

    def __init__(self, start_after_s: float = 0.0) -> None:
        self.start_after_s = start_after_s
        self._until = 0.0
        self._held = 0.0
        self.started: float | None = None

    def sent(self, samples: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        seconds = samples / SAMPLE_RATE
        if self.started is None:
            self._held += seconds
            if self._held >= self.start_after_s:
                self.started = now
                self._until = now + self._held
            return
        self._until = max(self._until, now) + seconds

    def buffered_s(self, now: float | None = None) -> float:
        if self.started is None:
            return self._held
        now = time.monotonic() if now is None else now
        return max(0.0, self._until - now)


@dataclass(frozen=True, slots=True)
class StreamTuning:
    """Knobs of the chunk schedule and batching (measured in BENCHMARKS.md)."""

    max_new_frames: int = 16
    max_batch_wait_s: float = 0.05
    margin_s: float = 0.1
    initial_frame_interval_s: float = 7 / 82


@dataclass(slots=True)
class AudioChunk:
    """Int16 PCM at 24 kHz of frames ``frame_start..frame_start+frames`` of a segment."""

    pcm: np.ndarray
    segment: int
    frame_start: int
    frames: int
    final: bool
    ready_at: float
    window_ready_at: float  # when the token completing the window arrived
    decode_s: float  # the decode call's own time

    @property
    def samples(self) -> int:
        return int(self.pcm.shape[0])


async def stream_segment(
    llm: LLMClient,
    decoder: DecoderService,
    *,
    voice: str,
    text: str,
    params: SamplingParams,
    segment: int = 0,
    clock: PlayoutClock | None = None,
    tuning: StreamTuning = StreamTuning(),
    delivers: bool = True,
    current: asyncio.Event | None = None,
) -> AsyncGenerator[AudioChunk, None]:
    """The segment's audio, every frame exactly once: F frames give F x 2048 samples.

    ``delivers``: each chunk goes to the listener as it is yielded, so it counts on ``clock``;
    a caller that holds chunks back (a segment generated ahead) counts them itself on delivery.
    ``current``: while it is not set, the segment is generated ahead of the one being heard:
    its frames are gathered but not decoded, since its audio isn't due yet and decoding it later
    takes fewer, larger windows.
    ``clock=None`` means no one is listening in real time (a whole-file request): windows are
    as large and batched as the tuning allows.
    """
    frames: list[Frame] = []
    arrivals: list[float] = []
    state: dict[str, object] = {"ended": False, "error": None}
    wake = asyncio.Event()
    schedule = ChunkSchedule(max_new_frames=tuning.max_new_frames)
    pad = decoder.pad_windows

    async def produce() -> None:
        parser = FrameParser()
        try:
            async for ids in llm.stream_tokens(voice, text, params):
                got = parser.feed(ids)
                if got:
                    frames.extend(got)
                    now = time.monotonic()
                    arrivals.extend([now] * len(got))
                    wake.set()
        except InvalidAudioToken as exc:
            error = BackendProtocolError("the LLM backend streamed invalid audio tokens")
            error.__cause__ = exc
            state["error"] = error
        except OrpheusError as exc:
            state["error"] = exc
        finally:
            state["ended"] = True
            wake.set()

    producer = asyncio.get_running_loop().create_task(produce(), name=f"llm-segment-{segment}")
    per_frame_s = decoder.seconds_per_frame  # a call's own time per frame of window
    queue_s = 0.0  # time a window waits behind other streams' calls, whatever its length
    codes: tuple[list[int], list[int], list[int]] = ([], [], [])
    decoding = False
    invited = False  # the decoder asked this stream to join a call it is making
    try:
        while True:
            if current is not None and not current.is_set():
                await current.wait()
            if not decoding:
                decoding = True
                decoder.streams += 1
            wake.clear()
            ended = bool(state["ended"])
            ready = schedule.ready(len(frames))
            plan = _plan(clock, arrivals, per_frame_s, queue_s, tuning, ready,
                         first=schedule.emitted == 0)
            if invited and ready and not plan.exact:  # ride a call that is being made anyway
                plan = plan._replace(target=ready, exact=True)
            invited = False
            wait_s = plan.wait_s
            window = schedule.next_window(len(frames), ended, plan.target, exact=plan.exact)
            if window is None:
                if ended:
                    break
                if not ready or plan.exact:  # nothing to bring, or filling the jitter buffer
                    await wake.wait()
                    continue
                ticket = decoder.stand_by(wake)
                try:
                    await wake.wait()
                finally:
                    decoder.withdraw(ticket)
                invited = ticket.invited
                continue
            _extend_codes(codes, frames)
            first = max(0, window.end - HISTORY_FRAMES) if pad else window.start
            c0 = np.asarray(codes[0][first : window.end], dtype=np.int64)
            c1 = np.asarray(codes[1][2 * first : 2 * window.end], dtype=np.int64)
            c2 = np.asarray(codes[2][4 * first : 4 * window.end], dtype=np.int64)
            window_ready = arrivals[window.end - 1]
            timing: dict[str, float] = {}
            submitted = time.monotonic()
            pcm = await decoder.decode(
                (c0, c1, c2), first=first, need=window.frames,
                emit_start=window.emit_start, emit_end=window.emit_end,
                max_wait_s=wait_s, timing=timing,
                in_hand_s=_in_hand(clock, window.emit_start),
            )
            now = time.monotonic()
            # What a window costs this stream: the call, by its length, and the queue behind
            # other streams' calls, which does not grow with the length (not the wait for batch
            # company it chose: the schedule plans with that).
            call_s = timing.get("call_s", 0.0)
            per_frame_s += 0.3 * (call_s / window.frames - per_frame_s)
            queue_s += 0.3 * (max(0.0, now - submitted - wait_s - call_s) - queue_s)
            final = bool(state["ended"]) and window.emit_end == len(frames)
            if clock is not None and delivers:
                clock.sent(pcm.shape[0], now)
            yield AudioChunk(
                pcm=pcm, segment=segment, frame_start=window.emit_start,
                frames=window.new_frames, final=final, ready_at=now,
                window_ready_at=window_ready, decode_s=timing.get("call_s", 0.0),
            )
        error = state["error"]
        if isinstance(error, OrpheusError):
            raise error
        if not frames:
            raise BackendProtocolError("the LLM backend produced no audio for the segment")
    finally:
        if decoding:
            decoder.streams -= 1
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer


def _in_hand(clock: PlayoutClock | None, emit_start: int) -> float:
    """Audio the window's listener still has to play: how urgent the window is. Without a
    listener model (HTTP), first audio is as urgent as anyone's and the rest can wait a while."""
    if clock is not None:
        return clock.buffered_s()
    return 0.0 if emit_start == 0 else UNCLOCKED_IN_HAND_S


def _extend_codes(codes: tuple[list[int], list[int], list[int]], frames: list[Frame]) -> None:
    """Appends the codebook entries of frames not yet in ``codes`` (frame layout, tokens.py)."""
    for frame in frames[len(codes[0]) :]:
        f = frame.codes
        codes[0].append(f[0])
        codes[1].extend((f[1], f[4]))
        codes[2].extend((f[2], f[3], f[5], f[6]))


class Plan(NamedTuple):
    target: int  # new frames to wait for
    wait_s: float  # how long the window may wait for batch company
    exact: bool = False  # exactly ``target`` frames (else a power of two)


def _plan(
    clock: PlayoutClock | None,
    arrivals: list[float],
    per_frame: float,
    queue_s: float,
    tuning: StreamTuning,
    ready: int,
    *,
    first: bool = False,
) -> Plan:
    """The next window's size and how long it may wait for batch company.

    A window waits only as long as the listener's audio in hand allows, so an utterance's first
    window (nothing in hand) holds one frame and never waits, while a later segment's first
    window, with the earlier segments' audio in hand, may hold more frames and wait. Between
    the first frame and the listener's start, the frames that fill its jitter buffer go in one
    window.
    """
    if clock is None:  # first audio as early as possible, then the largest windows
        return Plan(1 if first else tuning.max_new_frames, tuning.max_batch_wait_s)
    interval = tuning.initial_frame_interval_s
    if len(arrivals) >= 4:
        span = arrivals[-1] - arrivals[-4]
        interval = max(span / 3, 0.0)
    held = clock.buffered_s()
    if clock.started is None and held > 0:
        # Nothing plays until the listener's jitter buffer fills: the frames that fill it
        # leave in one window as soon as they are in (the earliest start), and until then a
        # window may wait for company at no cost to anyone.
        missing = math.ceil((clock.start_after_s - held) / FRAME_S - 1e-9)
        wait = (missing - ready) * interval
        return Plan(max(1, missing), max(0.0, min(tuning.max_batch_wait_s, wait)), exact=True)
    buffered = held - queue_s
    target = affordable_frames(buffered, interval, per_frame, ready=ready,
                               margin_s=tuning.margin_s, cap=tuning.max_new_frames)
    slack = buffered - tuning.margin_s - (target + 2) * per_frame
    return Plan(target, max(0.0, min(tuning.max_batch_wait_s, slack)))

