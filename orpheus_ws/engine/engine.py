"""The speech engine: text segments in, ordered audio events out. Knows nothing of HTTP.

``Engine.synthesize`` takes segments (a list, an async iterator, or a ``TextFeed`` fed while
text arrives) and yields ``SegmentStarted``, ``AudioChunk`` and ``SegmentFinished`` events
strictly in order (and ``Flushed`` where a ``TextFeed`` was flushed).
While segment n is being delivered, up to ``lookahead`` later segments already generate (on
llama-server's parallel slots), so there is no gap between sentences. Closing the iterator
(``aclose()``, or cancelling the task that drives it) aborts every generation it started.

An utterance holds a generation slot (``admission.py``) only while it has a segment to generate
or deliver: one that sits quiet, everything said and its source waiting for more text (a
socket between sentences), gives the slot back, and asks again when more text comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

from ..exceptions import BackendError, OrpheusError, Overloaded, UnknownVoice
from ..formats import SAMPLE_RATE
from ..lineup import Lineup, check_served
from ..metrics import (
    AUDIO_SECONDS,
    BACKEND_ERRORS,
    GENERATION_TIME,
    GENERATIONS_IN_FLIGHT,
    OVERLOAD_REFUSALS,
    TIME_TO_FIRST_AUDIO,
    TIME_TO_FIRST_SPEECH,
)
from ..params import SamplingParams
from ..text.normalize import normalize as normalize_text
from .admission import Admission, UtteranceSlot
from .backends import BackendPool
from .clock import PlayoutClock
from .decoder import DecoderService
from .events import (
    AudioChunk,
    Flushed,
    SegmentFinished,
    SegmentStarted,
    SynthesisEvent,
    faded,
    silence,
)
from .feed import FlushMark, Pause, TextFeed, each_segment, take
from .interface import Caller, EngineHealth, Segments
from .llm import LLMClient
from .markup import ssml_segments
from .pipeline import StreamTuning, stream_segment
from .segmenter import chars_for_tokens, split_text
from .trim import QuietTrim

log = logging.getLogger("orpheus_ws")
_END = object()


class Engine:
    """Turns text into audio with one LLM client and the process's decoder service."""

    def __init__(
        self,
        llm: LLMClient | BackendPool,
        decoder: DecoderService,
        *,
        voices: list[str] | None = None,
        lineup: Lineup | None = None,
        tuning: StreamTuning = StreamTuning(),
        lookahead: int = 1,
        admission: Admission | None = None,
        trim_quiet: bool = False,
        normalize: bool = False,
    ) -> None:
        self.llm = llm if isinstance(llm, BackendPool) else BackendPool([llm])
        self.admission = admission or Admission()
        # Utterances holding a generation slot now: generating or delivering, not quiet (what
        # a drain waits for). CONTEXTS_OPEN counts those admitted and not over, quiet or not.
        self.utterances = 0
        self._idle = asyncio.Event()  # set while utterances == 0
        self._idle.set()
        self.decoder = decoder
        # the voices (``voices``, or a model's lineup), their languages and emotion tags
        self.lineup = lineup or Lineup.of("", voices=",".join(voices or ()))
        self.voices = list(self.lineup.voices)
        self.tuning = tuning
        self.lookahead = lookahead
        self.trim_quiet = trim_quiet  # the default of synthesize's trim_quiet
        self.normalize = normalize  # and of its normalize
        self.in_flight = 0
        # Server-added latency of each context's first audio (ms): sent - window complete -
        # decode call (BENCHMARKS.md, measurement 4). Bounded.
        self.first_audio_added_ms: deque[float] = deque(maxlen=100_000)
        self.first_audio_count = 0

    def record_first_audio(self, chunk: AudioChunk, sent_at: float) -> None:
        self.first_audio_added_ms.append((sent_at - chunk.window_ready_at - chunk.decode_s) * 1e3)
        self.first_audio_count += 1

    def stats(self) -> dict[str, Any]:
        """Counters for benchmarks: decoder calls, first-audio latencies, process CPU."""
        times = os.times()
        return {
            "decoder": self.decoder.stats.as_dict(),
            "first_audio_added_ms": list(self.first_audio_added_ms),
            "first_audio_count": self.first_audio_count,
            "generations_in_flight": self.in_flight,
            "process_cpu_s": times.user + times.system,
            "asyncio_tasks": len(asyncio.all_tasks()),  # bench soak: flat over a run
        }

    def count_utterances(self, change: int) -> None:
        self.utterances += change
        if self.utterances:
            self._idle.clear()
        else:
            self._idle.set()

    @property
    def ready(self) -> bool:
        return self.decoder.running

    @property
    def draining(self) -> bool:
        return self.admission.draining

    def drain(self) -> None:
        """Admits nothing new; utterances admitted before may speak on (``admission.py``)."""
        self.admission.draining = True

    async def idle(self) -> None:
        """Returns once no utterance holds a generation slot."""
        await self._idle.wait()

    def check_voice(self, voice: str) -> None:
        if voice not in self.voices:
            raise UnknownVoice(voice, self.voices)

    async def start(self) -> None:
        """Starts the decoder service (the codec's weights are loaded already), after
        checking that the backends serve a model with the lineup's voices (LineupMismatch)."""
        served = await asyncio.gather(*(b.client.served_model() for b in self.llm.backends))
        check_served(self.lineup, {b.url: name for b, name in
                                   zip(self.llm.backends, served, strict=True)})
        if self.normalize:  # each language's patterns (and cn2an) load now, not mid-request
            for language in set(self.lineup.languages.values()):
                normalize_text("1", language)
        await self.decoder.start()
        self.llm.start()
        if self.admission.over_capacity is not None:  # known before the first stream
            await self.decoder.calibrate()
        codec = self.decoder.codec
        log.info("engine ready: LLM %s (%s), decoder %s on %s; voices %s (%s)",
                 self.llm.base_url, self.llm.api, codec.name, codec.device,
                 ", ".join(self.voices), self.lineup.family)

    async def close(self) -> None:
        await self.llm.close()
        await self.decoder.close()

    async def health(self) -> EngineHealth:
        codec = self.decoder.codec
        return {
            "backend": await self.llm.health(),
            "decoder": {
                "codec": codec.name,
                "device": codec.device,
                "weights": codec.model_source,
                "batching": self.decoder.batching,
                "max_batch": self.decoder.max_batch,
                "stats": self.decoder.stats.as_dict(),
            },
            "generations_in_flight": self.in_flight,
            "utterances": self.utterances,
            "draining": self.draining,
        }

    def speak(
        self,
        text: str,
        *,
        voice: str,
        params: SamplingParams,
        caller: Caller = Caller(),
        clock: PlayoutClock | None = None,
        trim_quiet: bool | None = None,
        normalize: bool | None = None,
        ssml: bool = False,
    ) -> AsyncGenerator[SynthesisEvent, None]:
        """A whole text, split at sentence ends into segments that fit ``max_tokens`` each;
        ``ssml``: the text is SSML (markup.py; raises SsmlError at once if it can't be read)."""
        max_chars = chars_for_tokens(params.max_tokens)
        segments: list[str | Pause] = ssml_segments(
            text, max_chars, language=self.lineup.language_of(voice),
            keep_tags=self.lineup.emotion_tags) if ssml else list(split_text(text, max_chars))
        return self.synthesize(segments, voice=voice, params=params, caller=caller,
                               clock=clock, trim_quiet=trim_quiet, normalize=normalize)

    async def synthesize(
        self,
        segments: Segments,
        *,
        voice: str,
        params: SamplingParams,
        caller: Caller = Caller(),
        clock: PlayoutClock | None = None,
        first_index: int = 0,
        trim_quiet: bool | None = None,
        normalize: bool | None = None,
    ) -> AsyncGenerator[SynthesisEvent, None]:
        """Ordered events for each segment (``trim_quiet``: leading quiet left out, trim.py;
        ``normalize``: the text the model reads is normalized in the voice's language,
        text/normalize.py, while its events keep the client's words; None: the engine's
        defaults). A generation slot (``admission.py``) is taken for the caller (its key: the
        per-key cap) whenever the utterance has a segment to generate, and given back whenever
        it goes quiet: every segment so far delivered, the source waiting for text. Raises a
        segment's OrpheusError, or why a slot was refused (before any event, where the first
        segment's is)."""
        self.check_voice(voice)
        route = caller.route
        # the same caller for every slot it takes
        slot = UtteranceSlot(self.admission, caller.key, self.count_utterances)
        # first audio and generation time count from the first slot, not from the wait for it
        samples, first_audio_at, last_audio_at, spoke = 0, 0.0, 0.0, False
        try:
            async with contextlib.aclosing(self._synthesize(
                    segments, slot, voice=voice, params=params, clock=clock,
                    trim_quiet=self.trim_quiet if trim_quiet is None else trim_quiet,
                    normalize=self.normalize if normalize is None else normalize,
                    first_index=first_index)) as events:
                async for event in events:
                    if isinstance(event, AudioChunk):
                        samples += event.samples
                        last_audio_at = time.monotonic()
                        if not first_audio_at:
                            first_audio_at = last_audio_at
                            TIME_TO_FIRST_AUDIO.labels(route).observe(
                                first_audio_at - slot.opened_at)
                        if not spoke and event.speech_from is not None:  # level.py
                            spoke = True
                            TIME_TO_FIRST_SPEECH.labels(route).observe(
                                last_audio_at - slot.opened_at)
                    yield event
            if slot.opened_at:
                GENERATION_TIME.labels(route).observe(
                    (last_audio_at or time.monotonic()) - slot.opened_at)
        except BackendError as exc:
            BACKEND_ERRORS.labels(exc.code).inc()
            raise
        except Overloaded as exc:
            OVERLOAD_REFUSALS.labels(exc.code).inc()
            raise
        finally:
            slot.close()
            AUDIO_SECONDS.labels(route).inc(samples / SAMPLE_RATE)

    async def _synthesize(
        self,
        segments: Segments,
        slot: UtteranceSlot,
        *,
        voice: str,
        params: SamplingParams,
        clock: PlayoutClock | None = None,
        first_index: int = 0,
        trim_quiet: bool = False,
        normalize: bool = False,
    ) -> AsyncGenerator[SynthesisEvent, None]:
        """The events of ``synthesize`` (the voice checked there); segments generate while
        ``slot`` is held."""
        loop = asyncio.get_running_loop()
        trim = QuietTrim() if trim_quiet else None
        language = self.lineup.language_of(voice)
        order: asyncio.Queue[Any] = asyncio.Queue()
        fed = [first_index]  # index of the next segment the feeder will queue
        ahead = asyncio.Semaphore(self.lookahead + 1)  # segments generating or delivering
        tasks: set[asyncio.Task[None]] = set()
        waiting_for_text = False  # the feeder waits on the source: nothing is ready

        async def run(index: int, text: str, out: asyncio.Queue[Any],
                      current: asyncio.Event | None) -> None:
            self.in_flight += 1
            GENERATIONS_IN_FLIGHT.inc()
            try:
                async for chunk in stream_segment(
                    self.llm, self.decoder, voice=voice,
                    text=normalize_text(text, language) if normalize else text, params=params,
                    segment=index, clock=clock, tuning=self.tuning, delivers=False,
                    current=current,
                ):
                    out.put_nowait(chunk)
                out.put_nowait(_END)
            except OrpheusError as exc:
                out.put_nowait(exc)
            finally:
                self.in_flight -= 1
                GENERATIONS_IN_FLIGHT.dec()

        def start(index: int, text: str | Pause) -> None:
            out: asyncio.Queue[Any] = asyncio.Queue()
            if isinstance(text, Pause):  # silence: nothing to generate
                out.put_nowait(silence(index, text.seconds))
                out.put_nowait(_END)
                order.put_nowait((index, "", out, time.monotonic(), None))
                return
            # A listener in real time: decode a segment once its turn comes.
            current = asyncio.Event() if clock is not None else None
            tasks.add(loop.create_task(run(index, text, out, current),
                                       name=f"segment-{index}"))
            # the segment starts when its generation does, not when its turn comes
            order.put_nowait((index, text, out, time.monotonic(), current))

        async def feed() -> None:
            nonlocal waiting_for_text
            index = first_index
            try:
                async with contextlib.aclosing(each_segment(segments)) as source:
                    while True:
                        waiting_for_text = True
                        try:
                            text = await anext(source)
                        except StopAsyncIteration:
                            break
                        finally:
                            waiting_for_text = False
                        if isinstance(text, FlushMark):  # in order, after the segments before
                            order.put_nowait(text)
                            continue
                        await ahead.acquire()
                        await slot.take()  # quiet until now: admitted again, or refused
                        start(index, text)
                        index += 1
                        fed[0] = index
                order.put_nowait(_END)
            except Exception as exc:  # the source failed, or a slot was refused: the end
                order.put_nowait(exc)

        feeder = loop.create_task(feed(), name="segment-feed")
        try:
            while True:
                item = await take(order)
                if item is _END:
                    break
                if isinstance(item, FlushMark):
                    yield Flushed(item.mark)
                    continue
                index, text, out, started, current = item
                if current is not None:
                    current.set()
                first_audio = first_speech = 0.0
                frames = samples = 0
                cut: str | None = None
                yield SegmentStarted(index, text)
                while True:
                    got = await take(out)
                    if got is _END:
                        break
                    frames += got.frames
                    cut = got.cut or cut
                    if trim is not None and got.frames:  # its leading quiet left out (trim.py)
                        got = trim.chunk(got)
                        if not got.samples:
                            continue
                    # Fade in where a later segment's audio begins; out only where another
                    # segment follows (or may still come).
                    more = not feeder.done() or fed[0] > index + 1
                    chunk = faded(got, index > first_index and not samples,
                                  got.final and more)
                    samples += chunk.samples
                    first_audio = first_audio or chunk.ready_at
                    if not first_speech and chunk.speech_from is not None:
                        first_speech = chunk.ready_at
                    if clock is not None:  # the listener gets audio in order, from here
                        clock.sent(chunk.samples)
                    yield chunk
                if isinstance(segments, TextFeed):
                    segments.delivered(index + 1 - first_index)
                yield SegmentFinished(index, text, frames, samples, started, first_audio,
                                      time.monotonic(), cut, first_speech,
                                      trim.trimmed if trim is not None else 0)
                ahead.release()
                if waiting_for_text and fed[0] == index + 1:  # quiet: all said, none ready
                    slot.give_back()
        finally:
            feeder.cancel()
            for task in tasks:
                task.cancel()
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(feeder, *tasks, return_exceptions=True)
            finally:
                slot.give_back()  # once every generation has stopped
