"""The engine: many segments in order, none skipped, errors surfaced, generations aborted."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import numpy as np
import pytest

from orpheus_ws.devtools.standin_llm import StandinConfig, StandinLLMServer, generate_tokens
from orpheus_ws.engine import (
    Admission,
    Caller,
    Engine,
    SegmentFinished,
    SegmentStarted,
    TextFeed,
)
from orpheus_ws.engine.clock import PlayoutClock
from orpheus_ws.engine.codec import SnacCodec
from orpheus_ws.engine.codes import SnacCodes
from orpheus_ws.engine.decoder import to_int16
from orpheus_ws.engine.events import FADE_SAMPLES, AudioChunk, Flushed, SynthesisEvent
from orpheus_ws.engine.pipeline import StreamTuning
from orpheus_ws.engine.segmenter import chars_for_tokens, split_text
from orpheus_ws.engine.tokens import FrameParser
from orpheus_ws.exceptions import (
    BackendError,
    BackendProtocolError,
    BackendUnavailable,
    Draining,
    Overloaded,
    RateLimited,
    UnknownVoice,
)
from orpheus_ws.params import SamplingParams

from .conftest import ENGINE_VOICES, MakeEngine
from .fakes import ConstantCodec
from .utils import eventually, scaled

PARAMS = SamplingParams(max_tokens=512)
VOICES = ENGINE_VOICES
WORDS = ("speech", "server", "streams", "audio", "while", "you", "listen", "to", "the", "first",
         "sentence", "and", "Orpheus", "writes", "the", "next", "one", "a", "quick", "fox")


def long_text(chars: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    out = ""
    while len(out) < chars:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 25)))
        out += sentence.capitalize() + rng.choice([". ", "! ", "? ", ", "])
    return out[:chars]


def frame_codes(config: StandinConfig, voice: str, text: str, frames: int) -> Any:
    source = generate_tokens(config, f"{voice}: {text}")
    parsed = FrameParser().feed(next(source) for _ in range(7 * frames))
    assert len(parsed) == frames
    return tuple(SnacCodes.from_frames(parsed))



def check_order(events: list[Any], texts: list[str], frames: int) -> dict[int, np.ndarray]:
    """Events come as Started(i), chunks of i in frame order, Finished(i), for i = 0, 1, ...;
    returns each segment's audio."""
    audio: dict[int, list[np.ndarray]] = {}
    i = 0
    index = -1
    while i < len(events):
        started = events[i]
        assert isinstance(started, SegmentStarted)
        assert started.segment == index + 1
        index = started.segment
        assert started.text == texts[index]
        i += 1
        next_frame = 0
        audio[index] = []
        while isinstance(events[i], AudioChunk):
            chunk = events[i]
            assert chunk.segment == index
            assert chunk.frame_start == next_frame
            assert chunk.samples == 2048 * chunk.frames
            next_frame += chunk.frames
            audio[index].append(chunk.pcm)
            i += 1
        finished = events[i]
        assert isinstance(finished, SegmentFinished)
        assert (finished.segment, finished.text) == (index, texts[index])
        assert finished.frames == next_frame == frames
        assert finished.samples == frames * 2048
        assert finished.started_at <= finished.first_audio_at <= finished.finished_at
        i += 1
    assert index == len(texts) - 1
    return {k: np.concatenate(v) for k, v in audio.items()}


async def test_speak_a_long_text_every_segment_in_order(
    standin: StandinLLMServer, make_engine: MakeEngine
) -> None:
    frames = 3
    standin.config.frames = frames
    engine = make_engine(ConstantCodec(), lookahead=2)
    text = long_text(5000)
    texts = split_text(text, chars_for_tokens(PARAMS.max_tokens))
    assert len(texts) > 50
    events = [e async for e in engine.speak(text, voice="leo", params=PARAMS)]
    audio = check_order(events, texts, frames)
    total = sum(e.samples for e in events if isinstance(e, AudioChunk))
    assert total == len(texts) * frames * 2048
    # every segment was asked for exactly once
    prompts = Counter(r.body["prompt"][2] for r in standin.requests if r.path == "/completion")
    assert prompts == Counter(f"leo: {t}" for t in texts)
    # each segment's audio is its own frames; joins fade in and out without changing lengths
    # (the utterance's very end may fade out too: the engine can't always tell it's the end)
    for index, pcm in audio.items():
        c0 = frame_codes(standin.config, "leo", texts[index], frames)[0]
        want = to_int16(np.repeat(c0.astype(np.float32) / 4096, 2048))
        lo = FADE_SAMPLES if index > 0 else 0  # the utterance's start is not faded
        hi = pcm.size - FADE_SAMPLES
        assert np.array_equal(pcm[lo:hi], want[lo:hi])
        assert np.all(np.abs(pcm[:lo]) <= np.abs(want[:lo]))
        assert np.all(np.abs(pcm[hi:]) <= np.abs(want[hi:]))
        if index > 0:
            assert pcm[0] == 0  # faded in
        if index < len(texts) - 1:
            assert pcm[-1] == 0  # faded out
    assert engine.in_flight == 0


async def test_speak_with_snac_matches_one_shot_decodes(
    standin: StandinLLMServer, make_engine: MakeEngine, snac_codec: SnacCodec
) -> None:
    frames = 6
    standin.config.frames = frames
    standin.config.tokens_per_second = 2000
    engine = make_engine(snac_codec, tuning=StreamTuning(max_new_frames=2))
    texts = ["The first sentence is here.", "A second one follows it.", "And a third."]
    events = [e async for e in engine.synthesize(texts, voice="tara", params=PARAMS,
                                                 clock=PlayoutClock())]
    audio = check_order(events, texts, frames)
    for index, pcm in audio.items():
        c0, c1, c2 = frame_codes(standin.config, "tara", texts[index], frames)
        want = to_int16(snac_codec.decode(c0[None], c1[None], c2[None])[0])
        inner = slice(FADE_SAMPLES, pcm.size - FADE_SAMPLES)
        diff = pcm[inner].astype(np.float64) - want[inner]
        error = np.linalg.norm(diff) / np.linalg.norm(want[inner].astype(np.float64))
        print(f"\nsegment {index}: streamed vs one-shot {100 * error:.3f} %")
        assert error < 0.02


async def test_segments_from_an_async_source(standin: StandinLLMServer,
                                             make_engine: MakeEngine) -> None:
    standin.config.frames = 2
    engine = make_engine(ConstantCodec())
    texts = [f"Piece number {i}." for i in range(6)]

    async def source() -> AsyncIterator[str]:
        for text in texts:
            await asyncio.sleep(0.01)
            yield text

    events = [e async for e in engine.synthesize(source(), voice="tara", params=PARAMS,
                                                 first_index=0)]
    check_order(events, texts, 2)


async def test_failing_source_ends_the_stream_after_earlier_segments(
    standin: StandinLLMServer, make_engine: MakeEngine
) -> None:
    standin.config.frames = 2
    engine = make_engine(ConstantCodec())

    async def source() -> AsyncIterator[str]:
        yield "One."
        yield "Two."
        raise ValueError("the text source broke")

    events: list[Any] = []
    with pytest.raises(ValueError):
        async for event in engine.synthesize(source(), voice="tara", params=PARAMS):
            events.append(event)
    finished = [e.segment for e in events if isinstance(e, SegmentFinished)]
    assert finished == [0, 1]
    await eventually(lambda: engine.in_flight == 0 and standin.active == 0)


@pytest.mark.parametrize("fault,error", [
    ("refuse", BackendUnavailable),
    ("strays", BackendProtocolError),
    ("text", BackendProtocolError),
    ("fail_midway", BackendError),
])
async def test_backend_errors_surface(fault: str, error: type[Exception],
                                      standin: StandinLLMServer,
                                      make_engine: MakeEngine) -> None:
    standin.config.frames = 8  # "strays" from the third frame: refused within three more
    standin.config.fault = fault  # type: ignore[assignment]
    engine = make_engine(ConstantCodec())
    with pytest.raises(error) as info:
        async for _ in engine.speak("One sentence. And another.", voice="tara", params=PARAMS):
            pass
    if fault == "fail_midway":
        assert type(info.value) is BackendError
    await eventually(lambda: engine.in_flight == 0 and standin.active == 0)


async def test_an_error_in_a_later_segment_comes_after_the_earlier_audio(
    standin: StandinLLMServer, make_engine: MakeEngine
) -> None:
    standin.config.frames = 2
    engine = make_engine(ConstantCodec())

    async def source() -> AsyncIterator[str]:
        yield "One."
        await eventually(lambda: standin.completed == 1)
        standin.config.fault = "refuse"
        yield "Two."

    events: list[Any] = []
    with pytest.raises(BackendUnavailable):
        async for event in engine.synthesize(source(), voice="tara", params=PARAMS):
            events.append(event)
    assert events[-1] == SegmentStarted(1, "Two.")
    assert [e.segment for e in events if isinstance(e, SegmentFinished)] == [0]
    assert sum(e.frames for e in events if isinstance(e, AudioChunk)) == 2


async def test_closing_early_aborts_the_generations(standin: StandinLLMServer,
                                                    make_engine: MakeEngine) -> None:
    standin.config.tokens_per_second = 300  # no end of speech: segments run to max_tokens
    engine = make_engine(ConstantCodec(), lookahead=1)
    events = engine.synthesize(["First.", "Second.", "Third."], voice="tara",
                               params=SamplingParams(max_tokens=2000), clock=PlayoutClock())
    async for event in events:
        if isinstance(event, AudioChunk):
            break
    await eventually(lambda: standin.active == 2)  # segment 0 and one ahead
    await events.aclose()
    await eventually(lambda: standin.aborted == 2 and standin.active == 0,
                     what="generations aborted")
    assert engine.in_flight == 0
    assert standin.completed == 0


async def test_cancelling_the_consumer_aborts_the_generations(standin: StandinLLMServer,
                                                              make_engine: MakeEngine) -> None:
    standin.config.tokens_per_second = 300
    engine = make_engine(ConstantCodec(), lookahead=2)
    chunks = 0

    async def consume() -> None:
        nonlocal chunks
        async for event in engine.synthesize(["One.", "Two.", "Three.", "Four."], voice="tara",
                                             params=SamplingParams(max_tokens=2000)):
            chunks += isinstance(event, AudioChunk)

    task = asyncio.create_task(consume())
    await eventually(lambda: standin.active == 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: standin.aborted == 3 and standin.active == 0,
                     what="generations aborted")
    assert engine.in_flight == 0


async def test_unknown_voice(standin: StandinLLMServer, make_engine: MakeEngine) -> None:
    engine = make_engine(ConstantCodec())
    with pytest.raises(UnknownVoice):
        engine.check_voice("nobody")
    with pytest.raises(UnknownVoice):
        await anext(engine.speak("Hello.", voice="nobody", params=PARAMS))
    assert standin.requests == []


async def test_nothing_to_say(standin: StandinLLMServer, make_engine: MakeEngine) -> None:
    engine = make_engine(ConstantCodec())
    assert [e async for e in engine.speak("   ", voice="tara", params=PARAMS)] == []
    assert standin.requests == []


async def test_health(standin: StandinLLMServer, make_engine: MakeEngine) -> None:
    engine = make_engine(ConstantCodec(), decoder_options={"max_batch": 8})
    health = await engine.health()
    assert health["backend"]["status"] == "ok"
    assert health["decoder"]["codec"] == "constant"
    assert health["decoder"]["max_batch"] == 8
    assert health["generations_in_flight"] == 0


# -- real-time admission ----------------------------------------------------------------------


class _Measured:
    """A decoder whose measured cost per frame the test sets."""

    def __init__(self, cost: float | None) -> None:
        self.cost_per_frame = cost


def test_decoder_capacity_refuses_the_stream_that_would_pass_real_time() -> None:
    from orpheus_ws.engine.capacity import FRAMES_PER_SECOND, DecoderCapacity

    cost = 0.02  # 20 ms a frame: 11.7 frames/s each, 0.23 of real time per stream
    capacity = DecoderCapacity(_Measured(cost), headroom=0.85)  # type: ignore[arg-type]
    carried = int(0.85 / (FRAMES_PER_SECOND * cost))
    assert carried == 3
    assert capacity.over(carried - 1) is None
    reason = capacity.over(carried)
    assert reason is not None and "decoder" in reason and "20.0 ms" in reason
    nothing = DecoderCapacity(_Measured(None))  # type: ignore[arg-type]
    assert nothing.over(100) is None  # nothing measured yet


class _Rates:
    """A backend pool whose healthy backends' measured rates (now, best) the test sets."""

    def __init__(self, *rates: tuple[float | None, float | None]) -> None:
        self.rates = list(rates)

    def stream_rates(self) -> list[tuple[float | None, float | None]]:
        return self.rates


def test_backend_capacity_refuses_when_load_took_every_backend_below_real_time() -> None:
    from orpheus_ws.engine.capacity import TOKENS_PER_SECOND, BackendCapacity

    assert round(TOKENS_PER_SECOND) == 82  # 7 tokens a frame, 11.7 frames a second
    slow, fast = TOKENS_PER_SECOND * 0.9, TOKENS_PER_SECOND * 1.2
    loaded = (slow, fast)  # below real time now, above it before: the load slows it

    def over(*rates: tuple[float | None, float | None]) -> str | None:
        return BackendCapacity(_Rates(*rates)).over(1)  # type: ignore[arg-type]

    reason = over(loaded)
    assert reason is not None and "LLM backend" in reason and f"{slow:.0f} tokens/s" in reason
    assert over(loaded, (slow * 0.5, fast)) is not None
    for room in [((fast, fast),), (loaded, (fast, fast)), (loaded, (None, fast)),
                 ((None, None),), ()]:  # one backend can take it
        assert over(*room) is None, room
    # never in real time, even alone: slow, not loaded; refusing would not speed it up
    assert over((slow, slow)) is None and over(loaded, (slow * 0.5, slow)) is None


def test_a_flow_measures_tokens_per_second_from_its_first_token() -> None:
    from orpheus_ws.engine.backends import MEASURED_AFTER_S, Flow

    flow = Flow()
    assert flow.rate(0.0) is None
    flow.add(1, 10.0)  # the first token: the prompt's processing is left out
    for n in range(1, 51):
        flow.add(1, 10.0 + n / 50)  # 50 tokens a second
    assert flow.rate(10.0 + MEASURED_AFTER_S / 2) is None  # too soon to tell
    assert flow.rate(11.0) == pytest.approx(50.0)
    assert flow.rate(12.0) == pytest.approx(25.0)  # a stall slows it


def test_a_backend_measures_its_generations_mean_rate() -> None:
    from orpheus_ws.engine import LLMClient
    from orpheus_ws.engine.backends import Backend, Flow

    backend = Backend(LLMClient("http://127.0.0.1:1"))
    assert backend.stream_rate(20.0) is None
    for per_second in (40, 80):
        flow = Flow()
        flow.add(1, 10.0)
        flow.add(per_second * 2, 12.0)
        backend.flows.add(flow)
    backend.flows.add(Flow())  # not started: not counted
    assert backend.stream_rate(12.0) == pytest.approx(60.0)
    assert backend.best_rate == pytest.approx(80.0)  # the fastest one's
    assert backend.state()["tokens_per_second_per_stream"] is not None


# -- generation slots: held while an utterance speaks, not while it is quiet ------------------


def open_utterance(engine: Engine, feed: TextFeed, voice: str = "tara",
                   params: SamplingParams = PARAMS, caller: Caller = Caller()
                   ) -> contextlib.aclosing[AsyncGenerator[SynthesisEvent, None]]:
    return contextlib.aclosing(engine.synthesize(feed, voice=voice, params=params,
                                                 caller=caller))


async def until_flushed(events: AsyncIterator[SynthesisEvent]) -> list[SynthesisEvent]:
    """The events of an utterance up to and including its next ``Flushed``."""
    got: list[SynthesisEvent] = []
    while not got or not isinstance(got[-1], Flushed):
        got.append(await anext(events))
    return got


def spoken(events: list[SynthesisEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, SegmentFinished)]


async def test_quiet_utterances_hold_no_generation_slot(standin: StandinLLMServer,
                                                        make_engine: MakeEngine) -> None:
    standin.config.frames = 2
    admission = Admission(max_generations=2)  # no queue: a full server refuses at once
    engine = make_engine(ConstantCodec(), admission=admission)
    feeds = [TextFeed(max_tokens=512), TextFeed(max_tokens=512)]
    async with open_utterance(engine, feeds[0]) as first, \
            open_utterance(engine, feeds[1]) as second:
        for n, (feed, stream) in enumerate([(feeds[0], first), (feeds[1], second)]):
            feed.push(f"Socket {n} speaks once.")
            feed.flush(f"m{n}")
            events = await until_flushed(stream)
            assert spoken(events) == [f"Socket {n} speaks once."]
            assert events[-1] == Flushed(f"m{n}")
        # both stay open and quiet: neither holds a slot
        assert (admission.running, engine.utterances) == (0, 0)
        third = [e async for e in engine.speak("A third voice.", voice="leo", params=PARAMS)]
        assert spoken(third) == ["A third voice."]
        feeds[0].push("And then more.")  # a quiet one speaks again: admitted again
        feeds[0].flush("again")
        events = await until_flushed(first)
        assert events[0] == SegmentStarted(1, "And then more.")
        assert spoken(events) == ["And then more."] and events[-1] == Flushed("again")
        for feed, stream in [(feeds[0], first), (feeds[1], second)]:
            feed.end()
            assert [e async for e in stream] == []
    assert (admission.running, engine.utterances) == (0, 0)


async def test_an_utterance_holds_its_slot_from_segment_to_segment(
        standin: StandinLLMServer, make_engine: MakeEngine) -> None:
    standin.config.frames = 2
    admission = Admission(max_generations=1)
    engine = make_engine(ConstantCodec(), admission=admission, lookahead=1)
    texts = ["One.", "Two.", "Three."]
    events = []
    async for event in engine.synthesize(texts, voice="tara", params=PARAMS):
        assert (admission.running, engine.utterances) == (1, 1), event
        events.append(event)
    check_order(events, texts, 2)
    assert (admission.running, engine.utterances) == (0, 0)


async def test_speaking_again_is_for_the_caller_that_opened_the_utterance(
        standin: StandinLLMServer, make_engine: MakeEngine) -> None:
    standin.config.frames = 2
    admission = Admission(per_key=1)
    engine = make_engine(ConstantCodec(), admission=admission)
    feed = TextFeed(max_tokens=512)
    async with open_utterance(engine, feed, caller=Caller("first", "native")) as stream:
        feed.push("Spoken for the first key.")
        feed.flush()
        await until_flushed(stream)
        assert not admission.by_key  # quiet: no slot held
        feed.push("Still the first key's.")
        assert isinstance(await anext(stream), SegmentStarted)
        assert admission.by_key == Counter({"first": 1})
        feed.end()
        assert spoken([e async for e in stream]) == ["Still the first key's."]
    assert not admission.by_key


async def test_speaking_again_waits_in_the_queue_for_a_slot(standin: StandinLLMServer,
                                                            make_engine: MakeEngine) -> None:
    standin.config.frames = 2
    admission = Admission(max_generations=1, max_queued=1, queue_timeout_s=scaled(30))
    engine = make_engine(ConstantCodec(), admission=admission)
    feed = TextFeed(max_tokens=512)
    async with open_utterance(engine, feed) as stream:
        feed.push("First words.")
        feed.flush()
        await until_flushed(stream)
        async with admission.enter():  # someone else takes the only slot
            feed.push("Second words.")
            feed.flush("second")
            pending = asyncio.ensure_future(until_flushed(stream))
            await eventually(lambda: admission.queued == 1, what="queued for a slot")
            assert not pending.done()
        events = await pending
        assert spoken(events) == ["Second words."] and events[-1] == Flushed("second")
        feed.end()
        assert [e async for e in stream] == []


@pytest.mark.parametrize("refusal,error", [("full", Overloaded), ("key", RateLimited)])
async def test_a_refusal_on_speaking_again_ends_the_utterance(
        refusal: str, error: type[Overloaded], standin: StandinLLMServer,
        make_engine: MakeEngine) -> None:
    standin.config.frames = 2
    admission = Admission(max_generations=1, per_key=1)
    engine = make_engine(ConstantCodec(), admission=admission)
    feed = TextFeed(max_tokens=512)
    async with open_utterance(engine, feed, caller=Caller("key")) as stream, \
            contextlib.AsyncExitStack() as held:
        feed.push("Said before the refusal.")
        feed.flush()
        await until_flushed(stream)
        # the only slot, or the key's only one, taken elsewhere
        await held.enter_async_context(admission.enter("key" if refusal == "key" else None))
        feed.push("Never said.")
        feed.flush("never")
        with pytest.raises(error) as refused:
            await anext(stream)
        assert type(refused.value) is error
        assert admission.running == 1
        with pytest.raises(StopAsyncIteration):  # the utterance is over
            await anext(stream)
    assert (admission.running, engine.utterances) == (0, 0)
    assert standin.completed == 1


async def test_a_drain_lets_an_utterance_admitted_before_it_speak_on(
        standin: StandinLLMServer, make_engine: MakeEngine) -> None:
    """Only new utterances are refused while the server drains: one that went quiet between
    sentences (an LLM still writing its reply) takes a slot again and finishes."""
    standin.config.frames = 2
    admission = Admission(max_generations=2)
    engine = make_engine(ConstantCodec(), admission=admission)
    feed = TextFeed(max_tokens=512)
    async with open_utterance(engine, feed) as stream:
        feed.push("Said before the drain.")
        feed.flush()
        await until_flushed(stream)
        admission.draining = True
        with pytest.raises(Draining):  # a new one is refused
            await anext(engine.speak("New.", voice="tara", params=PARAMS))
        feed.push("Said during the drain.")
        feed.flush("during")
        events = await until_flushed(stream)
        assert spoken(events) == ["Said during the drain."]
        feed.end()
    assert (admission.running, engine.utterances) == (0, 0)


async def test_a_flush_with_nothing_to_speak_needs_no_slot(standin: StandinLLMServer,
                                                          make_engine: MakeEngine) -> None:
    standin.config.frames = 2
    admission = Admission(max_generations=1)
    engine = make_engine(ConstantCodec(), admission=admission)
    feed = TextFeed(max_tokens=512)
    async with open_utterance(engine, feed) as stream:
        async with admission.enter():  # the server is full before the utterance says a word
            feed.flush("empty")
            assert await anext(stream) == Flushed("empty")
        feed.push("Said once.")
        feed.flush()
        await until_flushed(stream)
        async with admission.enter():  # and full again once it is quiet
            feed.flush("quiet")
            assert await anext(stream) == Flushed("quiet")
            assert (admission.running, engine.utterances) == (1, 0)
        feed.end()
        assert [e async for e in stream] == []
    assert standin.completed == 1


async def test_closing_an_utterance_gives_its_slot_back_once(standin: StandinLLMServer,
                                                            make_engine: MakeEngine) -> None:
    standin.config.tokens_per_second = 300  # no end of speech: segments run to max_tokens
    admission = Admission(max_generations=2)
    engine = make_engine(ConstantCodec(), admission=admission)
    params = SamplingParams(max_tokens=2000)
    closed, cancelled = TextFeed(max_tokens=2000), TextFeed(max_tokens=2000)
    chunks = 0

    async def consume() -> None:  # a task cancelled while its utterance speaks
        nonlocal chunks
        async for event in engine.synthesize(cancelled, voice="leo", params=params):
            chunks += isinstance(event, AudioChunk)

    async with open_utterance(engine, closed, params=params) as stream:
        closed.push("A long sentence that is cut off.")
        closed.flush()
        assert isinstance(await anext(stream), SegmentStarted)
        assert isinstance(await anext(stream), AudioChunk)
        task = asyncio.ensure_future(consume())
        cancelled.push("Another long sentence, cancelled.")
        cancelled.flush()
        await eventually(lambda: chunks > 0, what="audio")
        assert (admission.running, engine.utterances) == (2, 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (admission.running, engine.utterances) == (0, 0)
    await eventually(lambda: standin.active == 0, what="generations aborted")
    assert engine.in_flight == 0


async def test_closing_a_quiet_utterance_gives_back_nothing(standin: StandinLLMServer,
                                                           make_engine: MakeEngine) -> None:
    standin.config.frames = 2
    admission = Admission(max_generations=1)
    engine = make_engine(ConstantCodec(), admission=admission)
    feed = TextFeed(max_tokens=512)
    async with open_utterance(engine, feed) as stream:
        feed.push("Said, then quiet.")
        feed.flush()
        await until_flushed(stream)
        async with admission.enter():
            await stream.aclose()
            assert admission.running == 1  # the other holder's, untouched
    assert (admission.running, engine.utterances) == (0, 0)
