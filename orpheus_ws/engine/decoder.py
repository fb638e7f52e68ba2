"""The decoder service: one per process, batching SNAC windows from every stream.

Streams submit windows with a deadline (how long the window may wait for company) and an urgency
(when their listener runs out of audio). The service collects windows until the earliest deadline
is due or the batch cap is reached, then decodes the most urgent due window, with all that can
share its call, on a worker thread, off the event loop. Most urgent first (earliest run-out) is
what keeps every listener playing when the decoder is the bottleneck, as on the CPU: a stream
with a second of audio in hand waits behind one whose listener is about to run dry.

Windows of different lengths share a call when the codec pads cheaply (a GPU, or the
pass-through codec): a window then takes extra frames of left context from its own stream's
history, which only makes it more exact; a stream's first window, which has no history, repeats
its last frame on the right instead, so that it too shares a call already due. A call's length
is rounded up to one the codec has a CUDA graph for, where its windows can be padded that far.
On the CPU a call costs what its parts cost, so there only windows of one length share a call.

On those devices a call costs about the same whatever it carries, so the calls, not the frames,
are what to save: a stream that is waiting for more frames while some are ready stands by, and
when a call is about to be made the service invites every stream standing by to join it with
the frames it has. The listener's buffer is topped up for free, and the stream's own next call
comes later or not at all.

A failing call is retried window by window, so a bad window fails only its own stream; a
window whose caller went away is dropped before it is decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..exceptions import DecoderError
from ..formats import SAMPLES_PER_FRAME
from ..metrics import DECODE_BATCH, DECODE_CALL
from .codec import Codec
from .codes import SnacCodes

log = logging.getLogger(__name__)
MAX_PADDED_FRAMES = 64  # a stream's first window may be stretched to share a call this long


@dataclass(slots=True)
class DecodeRequest:
    """Codes of frames ``first..last`` (exclusive) of one stream, of which the window needs
    the last ``need`` frames and keeps frames ``emit_start..emit_end`` (stream indices)."""

    codes: SnacCodes
    first: int
    need: int
    emit_start: int
    emit_end: int
    deadline: float
    future: asyncio.Future[Decoded] = field(repr=False)
    urgent_at: float = 0.0

    @property
    def last(self) -> int:
        return self.first + self.codes.frames

    @property
    def available(self) -> int:
        return self.codes.frames

    @property
    def longest(self) -> int:
        """The longest call this window can share: its history on the left, or, for a window
        at the very start of its stream (no history) with a frame of right context, any
        length, its last frame repeated on the right (frame 0 then differs from a one-shot
        decode by about 1 % instead of 0.6-0.8 %; BENCHMARKS.md)."""
        if self.first == 0 and self.emit_end < self.last:
            return MAX_PADDED_FRAMES
        return self.available

    def row_start(self, length: int) -> int:
        """Stream index of the first frame of this window's row in a call of ``length``."""
        return self.first + max(0, self.available - length)


class Decoded(NamedTuple):
    """A window's int16 PCM and what its decode call took (seconds, the call alone)."""

    pcm: np.ndarray
    call_s: float


@dataclass(slots=True, eq=False)
class Standby:
    """A stream waiting for frames that could join a call now; ``invited`` says it should."""

    wake: asyncio.Event
    invited: bool = False


@dataclass(slots=True)
class DecoderStats:
    calls: int = 0
    windows: int = 0
    frames_decoded: int = 0
    frames_emitted: int = 0
    invited: int = 0  # streams standing by that were asked to join a call
    busy_s: float = 0.0
    thread_cpu_s: float = 0.0
    max_batch_seen: int = 0

    def as_dict(self) -> dict[str, float]:
        mean = self.windows / self.calls if self.calls else 0.0
        return {
            "calls": self.calls,
            "windows": self.windows,
            "frames_decoded": self.frames_decoded,
            "frames_emitted": self.frames_emitted,
            "invited": self.invited,
            "mean_batch": round(mean, 2),
            "max_batch": self.max_batch_seen,
            "busy_s": round(self.busy_s, 4),
            "thread_cpu_s": round(self.thread_cpu_s, 4),
        }


def _rounded_up(need: int, fast: tuple[int, ...], longest: int) -> int:
    """``need`` rounded up to the codec's fast lengths (CUDA graphs captured) where the call's
    head can be padded that far (a window only gains left context), else ``need`` itself."""
    return next((n for n in fast if need <= n <= longest), need)


def to_int16(audio: np.ndarray) -> np.ndarray:
    pcm: np.ndarray = (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    return pcm


class DecoderService:
    """Owns the codec; ``decode`` is the only call streams make."""

    def __init__(
        self,
        codec: Codec,
        *,
        max_batch: int = 32,
        batching: bool = True,
        pad_windows: bool | None = None,
    ) -> None:
        self.codec = codec
        self.max_batch = max_batch if batching else 1
        self.batching = batching
        self.pad_windows = codec.device != "cpu" if pad_windows is None else pad_windows
        self.stats = DecoderStats()
        self._pending: list[DecodeRequest] = []
        self._standby: list[Standby] = []
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snac-decoder")
        self._task: asyncio.Task[None] | None = None
        # Wall time a call takes per frame of window length (EWMA): what a stream waits.
        self.seconds_per_frame = 0.02
        self._streams = 0  # streams decoding now: with one alone, waiting for company is moot
        # Wall time of a call per frame it delivers to its streams (EWMA; None before the
        # first call): what one more real-time stream would cost (capacity.py).
        self.cost_per_frame: float | None = None

    @property
    def running(self) -> bool:
        """Its service task is up (started, not closed, not died)."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="decoder")

    async def calibrate(self, frames: int = 8, context: int = 4) -> None:
        """Measures one decode of a typical window (``frames`` new after ``context``) before
        serving, so that ``cost_per_frame`` is known before the first stream (capacity.py)."""
        c0, c1, c2 = (np.zeros((1, (frames + context) * m), dtype=np.int64) for m in (1, 2, 4))
        started = time.perf_counter()
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, lambda: self.codec.decode(c0, c1, c2))
        except Exception:  # a failing decoder: its calls will say so, to their streams
            log.exception("the calibration decode failed")
            return
        self.cost_per_frame = (time.perf_counter() - started) / frames

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for request in self._pending:
            request.future.cancel()
        self._pending.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    @contextlib.contextmanager
    def stream(self) -> Iterator[None]:
        """Registers a stream as decoding for as long as the block runs."""
        self._streams += 1
        try:
            yield
        finally:
            self._streams -= 1

    @property
    def streams(self) -> int:
        """Streams decoding now."""
        return self._streams

    @property
    def invites(self) -> bool:
        """Whether streams standing by are invited to join calls (batching on a pad device)."""
        return self.batching and self.pad_windows

    def stand_by(self, wake: asyncio.Event) -> Standby:
        """Registers a stream that has frames ready but waits for more; the service sets
        ``wake`` and marks the ticket invited when a call it could join is about to be made.
        The stream withdraws with :meth:`withdraw` when it wakes for any reason."""
        ticket = Standby(wake)
        if self.invites:
            self._standby.append(ticket)
        return ticket

    def withdraw(self, ticket: Standby) -> None:
        with contextlib.suppress(ValueError):
            self._standby.remove(ticket)

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def decode(
        self,
        codes: SnacCodes,
        *,
        first: int,
        need: int,
        emit_start: int,
        emit_end: int,
        max_wait_s: float = 0.0,
        in_hand_s: float = 0.0,
    ) -> Decoded:
        """Int16 PCM of frames ``emit_start..emit_end`` from a window of the last ``need``
        frames of ``codes`` (frames ``first..``), with the time its call took. Waits at most
        ``max_wait_s`` for company; ``in_hand_s`` is the audio the stream's listener still
        has (0: none, most urgent)."""
        if self._task is None:
            await self.start()
        loop = asyncio.get_running_loop()
        company = self.batching and self._streams > 1
        request = DecodeRequest(
            codes=codes, first=first, need=need, emit_start=emit_start, emit_end=emit_end,
            deadline=loop.time() + (max_wait_s if company else 0.0),
            future=loop.create_future(), urgent_at=loop.time() + in_hand_s,
        )
        self._pending.append(request)
        self._wakeup.set()
        return await request.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._pending = [r for r in self._pending if not r.future.done()]
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            due = min(r.deadline for r in self._pending)
            now = loop.time()
            if due > now and len(self._pending) < self.max_batch:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due - now):
                        await self._wakeup.wait()
                continue
            if self._standby:
                await self._invite()
            length, batch = self._form_batch()
            await self._decode_batch(length, batch)

    async def _invite(self) -> None:
        """Wakes the streams standing by, as many as the call has room for, and lets them
        submit their windows before the call is formed."""
        room = self.max_batch - len(self._pending)
        invited, self._standby = self._standby[:room], self._standby[room:]
        self.stats.invited += len(invited)
        for ticket in invited:
            ticket.invited = True
            ticket.wake.set()
        if invited:
            await asyncio.sleep(0)  # each woken stream runs up to its decode() and submits

    def _form_batch(self) -> tuple[int, list[DecodeRequest]]:
        """The most urgent due window and the most others that can share its call."""
        now = asyncio.get_running_loop().time()
        pending = sorted(self._pending, key=lambda r: r.deadline)
        due = [r for r in pending if r.deadline <= now] or pending[:1]
        head = min(due, key=lambda r: r.urgent_at)
        pending = [head, *(r for r in pending if r is not head)]
        lengths = [head.need]
        if self.pad_windows:
            fast = self.codec.fast_lengths
            lengths = sorted({_rounded_up(r.need, fast, head.longest) for r in pending
                              if head.need <= r.need <= head.longest})
        best: list[DecodeRequest] = []
        best_length = head.need
        for length in lengths:
            members = [
                r for r in pending
                if (r.need == length or (self.pad_windows and r.need <= length <= r.longest))
            ][: self.max_batch]
            if len(members) > len(best):
                best, best_length = members, length
        taken = {id(r) for r in best}
        self._pending = [r for r in self._pending if id(r) not in taken]
        return best_length, best

    async def _decode_batch(self, length: int, batch: list[DecodeRequest]) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            pcm, cpu_s = await loop.run_in_executor(self._executor, self._call, length, batch)
        except Exception:
            if len(batch) == 1:
                log.exception("decode of one window failed")
                if not batch[0].future.done():
                    batch[0].future.set_exception(DecoderError("the audio decoder failed"))
                return
            log.warning("batched decode failed; retrying its %d windows one by one", len(batch))
            for request in batch:
                await self._decode_batch(request.need, [request])
            return
        elapsed = time.perf_counter() - started
        stats = self.stats
        stats.calls += 1
        stats.windows += len(batch)
        stats.frames_decoded += length * len(batch)
        stats.busy_s += elapsed
        stats.thread_cpu_s += cpu_s
        stats.max_batch_seen = max(stats.max_batch_seen, len(batch))
        DECODE_CALL.observe(elapsed)
        DECODE_BATCH.observe(len(batch))
        self.seconds_per_frame += 0.2 * (elapsed / length - self.seconds_per_frame)
        delivered = sum(r.emit_end - r.emit_start for r in batch)
        stats.frames_emitted += delivered
        if delivered:
            cost = elapsed / delivered
            self.cost_per_frame = cost if self.cost_per_frame is None else \
                self.cost_per_frame + 0.1 * (cost - self.cost_per_frame)
        for row, request in enumerate(batch):
            start = request.row_start(length)
            lo = (request.emit_start - start) * SAMPLES_PER_FRAME
            hi = (request.emit_end - start) * SAMPLES_PER_FRAME
            if not request.future.done():
                request.future.set_result(Decoded(pcm[row, lo:hi], elapsed))

    def _call(self, length: int, batch: list[DecodeRequest]) -> tuple[np.ndarray, float]:
        cpu_start = time.thread_time()
        codes = SnacCodes.batch([r.codes.fitted(length) for r in batch])
        audio = self.codec.decode(*codes)
        return to_int16(audio), time.thread_time() - cpu_start
