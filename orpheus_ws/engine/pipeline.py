"""One segment: an LLM generation -> frames -> decoded PCM chunks, as an async iterator.

Tokens are read by a producer task while the consumer decodes, so generation never waits for
decoding. Leaving the iterator early cancels the producer, which closes the LLM request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from typing import NamedTuple

from ..exceptions import BackendError, BackendProtocolError, InvalidAudioToken, OrpheusError
from ..formats import SAMPLE_RATE, SAMPLES_PER_FRAME
from ..metrics import FRAMES_DROPPED, RUNAWAYS
from ..params import SamplingParams
from .clock import PlayoutClock
from .codes import SnacCodes
from .decoder import DecoderService
from .events import AudioChunk
from .guard import (
    LENGTH,
    MAX_PENALTY,
    REPEAT,
    RETRY_PENALTY,
    RepeatWatch,
    frame_budget,
    with_final_punctuation,
)
from .level import first_speech_sample
from .llm import TokenSource
from .schedule import ChunkSchedule, affordable_frames
from .tokens import Frame, FrameParser

# Frames of left history a window may carry so the decoder can pad it to share a call.
HISTORY_FRAMES = 32
# How urgent a window after the first is when nobody models its listener (an HTTP request): as
# if it had this much audio in hand, so it yields to listeners about to run dry, not for long.
UNCLOCKED_IN_HAND_S = 0.5
FRAME_S = SAMPLES_PER_FRAME / SAMPLE_RATE
# A frame this many times later than the frame interval a plan counted on wakes the segment to
# plan again, however many frames it is waiting for.
SLOWER = 1.5
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamTuning:
    """Knobs of the chunk schedule and batching (measured in BENCHMARKS.md)."""

    max_new_frames: int = 16
    max_batch_wait_s: float = 0.05
    margin_s: float = 0.1
    initial_frame_interval_s: float = 7 / 82
    # guard.py: a generation bounded by its text, repeats cut (on in the server's settings)
    runaway_guard: bool = False


async def stream_segment(
    llm: TokenSource,
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
    generation = _Generation(llm, voice, text, params, segment, guard=tuning.runaway_guard)
    frames, arrivals, wake = generation.frames, generation.arrivals, generation.wake
    schedule = ChunkSchedule(max_new_frames=tuning.max_new_frames)
    pad = decoder.pad_windows
    per_frame_s = decoder.seconds_per_frame  # a call's own time per frame of window
    queue_s = 0.0  # time a window waits behind other streams' calls, whatever its length
    codes = SnacCodes.empty()
    invited = False  # the decoder asked this stream to join a call it is making
    heard = False  # a chunk with speech in it has been yielded
    try:
        if current is not None:  # generated ahead: decode once its turn comes
            await current.wait()
        with decoder.stream():
            while True:
                wake.clear()
                if generation.ended and not heard and generation.may_regenerate():
                    # a runaway whose audio so far is quiet: nobody heard a word of it
                    generation.regenerate(keep=schedule.emitted)
                    codes = codes.window(0, min(codes.frames, schedule.emitted))
                ended = generation.ended
                ready = schedule.ready(len(frames))
                plan = plan_window(clock, arrivals, per_frame_s, queue_s, tuning, ready,
                             first=schedule.emitted == 0)
                if invited and ready and not plan.exact:  # ride a call being made anyway
                    plan = plan._replace(target=ready, exact=True)
                invited = False
                window = schedule.next_window(len(frames), ended, plan.target, exact=plan.exact)
                if window is None:
                    if ended:
                        break
                    # no need to wake before the window's frames are in, unless they come
                    # slower than the plan counts on (then it is planned again)
                    generation.wake_at = schedule.frames_for(plan.target, exact=plan.exact)
                    generation.slow_after_s = SLOWER * plan.interval_s
                    if not ready or plan.exact:  # nothing to bring, or filling the buffer
                        await wake.wait()
                        continue
                    ticket = decoder.stand_by(wake)
                    try:
                        await wake.wait()
                    finally:
                        decoder.withdraw(ticket)
                    invited = ticket.invited
                    continue
                generation.wake_at = 0  # each frame wakes it (none is waited for now)
                generation.committed = True  # from here its audio may reach the listener
                generation.used = max(generation.used, window.end)
                codes = codes.extended(frames[codes.frames :])
                first = max(0, window.end - HISTORY_FRAMES) if pad else window.start
                submitted = time.monotonic()
                decoded = await decoder.decode(
                    codes.window(first, window.end), first=first, need=window.frames,
                    emit_start=window.emit_start, emit_end=window.emit_end,
                    max_wait_s=plan.wait_s, in_hand_s=audio_in_hand(clock, window.emit_start),
                )
                now = time.monotonic()
                # What a window costs this stream: the call, by its length, and the queue
                # behind other streams' calls, which does not grow with the length (not the
                # wait for batch company it chose: the schedule plans with that).
                per_frame_s += 0.3 * (decoded.call_s / window.frames - per_frame_s)
                queue_s += 0.3 * (max(0.0, now - submitted - plan.wait_s - decoded.call_s)
                                  - queue_s)
                final = generation.ended and window.emit_end == len(frames)
                if clock is not None and delivers:
                    clock.sent(decoded.pcm.shape[0], now)
                # looked for until the segment's first speech: what trimming, time to first
                # speech and the quiet runaway's retry need (events.AudioChunk.speech_from)
                speech_from = None if heard else first_speech_sample(decoded.pcm)
                heard = heard or speech_from is not None
                yield AudioChunk(
                    pcm=decoded.pcm, segment=segment, frame_start=window.emit_start,
                    frames=window.new_frames, final=final, ready_at=now,
                    window_ready_at=arrivals[window.end - 1], decode_s=decoded.call_s,
                    cut=generation.cut if final else None,
                    speech_from=speech_from,
                )
        if generation.error is not None:
            raise generation.error
        if not frames:
            raise BackendProtocolError("the LLM backend produced no audio for the segment")
    finally:
        await generation.stop()


class _Generation:
    """One segment's LLM generation, read into frames by a task of its own (so generation
    never waits for decoding); ``wake`` is set at each new frame and at the end.

    Failover: a generation whose backend fails (down, refusing, breaking off, hung) before
    ``committed`` (its first window went to the decoder, so no audio of it can have reached
    the listener) starts over once, on another backend if the source has one healthy; the
    frames it had are dropped in place. After that, the failure is the segment's.

    A runaway (guard.py) nobody has heard is generated once more with a higher repetition
    penalty: by the generation itself before ``committed``, or by the segment
    (:meth:`regenerate`) when all it has yielded is quiet."""

    def __init__(self, llm: TokenSource, voice: str, text: str, params: SamplingParams,
                 segment: int, *, guard: bool = True) -> None:
        self.frames: list[Frame] = []
        self.arrivals: list[float] = []
        self.ended = False
        self.committed = False
        self.retried = False
        self.error: OrpheusError | None = None
        self.segment = segment
        self.dropped = 0  # frames lost to stray tokens, this attempt
        self.used = 0  # frames handed to the decoder (as new frames or context)
        self.cut: str | None = None  # why the runaway guard ended it (guard.py), if it did
        self.regenerated = False
        self.guard = guard
        self.base = 0  # the attempt's first frame: earlier ones were yielded before a retry
        self.wake = asyncio.Event()
        # a new frame wakes the segment once there are ``wake_at`` frames, or when it came
        # ``slow_after_s`` or more after the one before (0: every frame wakes it)
        self.wake_at = 0
        self.slow_after_s = 0.0
        self._llm, self._voice, self._params = llm, voice, params
        # what the model reads; the client's text stays as it was
        self._prompt = with_final_punctuation(text) if guard else text
        self._task = self._start()

    def _start(self) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._read(),
                                                      name=f"llm-segment-{self.segment}")

    def may_regenerate(self) -> bool:
        """The generation ended as a runaway and has not been generated again yet."""
        return self.cut is not None and self.error is None and not self.regenerated

    def regenerate(self, *, keep: int) -> None:
        """Generates the segment once more after its first ``keep`` frames (those already
        yielded); the frames after them are dropped. Only once the generation has ended."""
        assert self.ended
        log.info("segment %d %s with nothing heard yet: generated again", self.segment,
                 self.cut)
        self._again(keep)
        self.used = keep  # the frames after it, context of the last window, are gone
        self.ended = False
        self._task = self._start()

    def _again(self, keep: int) -> None:
        """Ready for one more attempt, less inclined to repeat itself."""
        self.regenerated = True
        self._params = replace(self._params, repetition_penalty=min(
            MAX_PENALTY, self._params.repetition_penalty * RETRY_PENALTY))
        self._reset(keep)

    def _reset(self, keep: int) -> None:
        self.error, self.dropped, self.cut, self.base = None, 0, None, keep
        del self.frames[keep:]
        del self.arrivals[keep:]

    async def _read(self) -> None:
        try:
            while True:
                if not await self._attempt():
                    log.info("segment generation retried on another backend: %s", self.error)
                    self.retried = True
                    self._reset(self.base)
                elif self.cut is not None and not self.committed and not self.regenerated:
                    # a runaway no one has heard: once more, less inclined to repeat itself
                    log.info("segment %d %s: generated again", self.segment, self.cut)
                    self._again(self.base)
                else:
                    break
        finally:
            self.ended = True
            self.wake.set()

    async def _attempt(self) -> bool:
        """One generation; False if it failed and may start over."""
        sink = _FrameSink(self, frame_budget(self._prompt), RepeatWatch(self.base))
        try:
            await self._llm.generate(self._voice, self._prompt, self._params, sink)
        except InvalidAudioToken as exc:
            error = BackendProtocolError("the LLM backend streamed invalid audio tokens")
            error.__cause__ = exc
            self.error = error
        except BackendProtocolError as exc:  # it answered, with something else: no retry
            self.error = exc
        except BackendError as exc:
            self.error = exc
            return self.committed or self.retried or not self._llm.can_fail_over()
        except OrpheusError as exc:
            self.error = exc
        return True

    def dropped_to(self, count: int) -> None:
        if not self.dropped:  # once per segment
            log.warning("segment %d: audio tokens out of position; their frames are dropped",
                        self.segment)
        FRAMES_DROPPED.inc(count - self.dropped)
        self.dropped = count

    def runaway(self, budget: int, repeats: RepeatWatch) -> bool:
        """True if the generation is a runaway (guard.py): its frames are cut back to what
        its text may take, or to before the repeat, never below what the decoder has."""
        cut_at, reason = None, None
        start = repeats.feed(self.frames)
        if start is not None:
            cut_at, reason = start, REPEAT
        elif len(self.frames) - self.base >= budget:
            cut_at, reason = self.base + budget, LENGTH
        if reason is None or cut_at is None:
            return False
        keep = max(cut_at, self.used)
        del self.frames[keep:]
        del self.arrivals[keep:]
        self.cut = reason
        RUNAWAYS.labels(reason).inc()
        log.warning("segment %d: %s, cut at %.1f s of audio", self.segment, reason,
                    keep * FRAME_S)
        return True

    async def stop(self) -> None:
        """Closes the LLM request if it is still running."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class _FrameSink:
    """A generation attempt's tokens into frames, taken in the LLM connection's own callback
    (``llm_http.TokenSink``): each whole frame wakes the segment; a runaway closes the request.
    """

    __slots__ = ("_budget", "_generation", "_parser", "_repeats")

    def __init__(self, generation: _Generation, budget: int, repeats: RepeatWatch) -> None:
        self._generation, self._budget, self._repeats = generation, budget, repeats
        self._parser = FrameParser()

    def awaiting(self) -> int:
        return self._parser.awaiting

    def take(self, ids: list[int]) -> bool:
        generation, parser = self._generation, self._parser
        got = parser.feed(ids)
        if parser.dropped_frames > generation.dropped:  # a stray cost its frame
            generation.dropped_to(parser.dropped_frames)
        if not got:
            return False
        frames, arrivals, now = generation.frames, generation.arrivals, time.monotonic()
        slow = not arrivals or now - arrivals[-1] >= generation.slow_after_s
        frames.extend(got)
        arrivals.extend([now] * len(got))
        if slow or len(frames) >= generation.wake_at:
            generation.wake.set()
        return generation.guard and generation.runaway(self._budget, self._repeats)


def audio_in_hand(clock: PlayoutClock | None, emit_start: int) -> float:
    """Audio the window's listener still has to play: how urgent the window is. Without a
    listener model (HTTP), first audio is as urgent as anyone's and the rest can wait a while."""
    if clock is not None:
        return clock.buffered_s()
    return 0.0 if emit_start == 0 else UNCLOCKED_IN_HAND_S


class Plan(NamedTuple):
    target: int  # new frames to wait for
    wait_s: float  # how long the window may wait for batch company
    exact: bool = False  # exactly ``target`` frames (else a power of two)
    interval_s: float = 0.0  # the frame interval it counts on (0: none)


def plan_window(
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
        return Plan(1 if first else tuning.max_new_frames, tuning.max_batch_wait_s,
                    interval_s=math.inf)  # no listener: no pace to fall behind
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
        return Plan(max(1, missing), max(0.0, min(tuning.max_batch_wait_s, wait)), exact=True,
                    interval_s=interval)
    buffered = held - queue_s
    target = affordable_frames(buffered, interval, per_frame, ready=ready,
                               margin_s=tuning.margin_s, cap=tuning.max_new_frames)
    slack = buffered - tuning.margin_s - (target + 2) * per_frame
    return Plan(target, max(0.0, min(tuning.max_batch_wait_s, slack)), interval_s=interval)

