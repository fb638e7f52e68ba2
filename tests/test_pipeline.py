"""One segment end to end: stand-in tokens -> frames -> real SNAC windows -> PCM chunks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from orpheus_ws.devtools.standin_llm import StandinConfig, StandinLLMServer, generate_tokens
from orpheus_ws.devtools.standin_tokens import Fault
from orpheus_ws.engine.clock import PlayoutClock
from orpheus_ws.engine.codec import SnacCodec
from orpheus_ws.engine.codes import SnacCodes
from orpheus_ws.engine.decoder import DecoderService, to_int16
from orpheus_ws.engine.events import AudioChunk
from orpheus_ws.engine.guard import LENGTH, REPEAT, REPEAT_FRAMES, frame_budget
from orpheus_ws.engine.llm import LLMClient
from orpheus_ws.engine.pipeline import (
    UNCLOCKED_IN_HAND_S,
    StreamTuning,
    audio_in_hand,
    plan_window,
    stream_segment,
)
from orpheus_ws.engine.schedule import affordable_frames
from orpheus_ws.engine.tokens import FrameParser
from orpheus_ws.exceptions import (
    BackendError,
    BackendProtocolError,
    BackendUnavailable,
    DecoderError,
)
from orpheus_ws.metrics import FRAMES_DROPPED, RUNAWAYS
from orpheus_ws.params import SamplingParams

from .fakes import ConstantCodec, FailingCodec, decoders, relative_error
from .utils import eventually

PARAMS = SamplingParams(max_tokens=2000)
TEXT = "Hello there, this is one segment."


def oneshot_pcm(codec: SnacCodec, config: StandinConfig, text: str, frames: int,
                voice: str = "tara") -> np.ndarray:
    """The stand-in's first ``frames`` frames for the prompt, decoded in one call."""
    source = generate_tokens(config, f"{voice}: {text}")
    parsed = FrameParser().feed(next(source) for _ in range(7 * frames))
    assert len(parsed) == frames
    return to_int16(codec.decode(*SnacCodes.batch([SnacCodes.from_frames(parsed)]))[0])


def check_chunks(chunks: list[AudioChunk], frames: int, segment: int = 0) -> None:
    """Every frame exactly once, in order, and only the last chunk final."""
    assert chunks
    next_frame = 0
    for chunk in chunks:
        assert chunk.segment == segment
        assert chunk.frame_start == next_frame
        assert chunk.frames >= 1
        assert chunk.samples == chunk.frames * 2048
        assert chunk.pcm.dtype == np.int16
        next_frame += chunk.frames
    assert next_frame == frames
    assert [c.final for c in chunks] == [False] * (len(chunks) - 1) + [True]


@pytest_asyncio.fixture
async def llm(standin: StandinLLMServer) -> AsyncIterator[LLMClient]:
    client = LLMClient(standin.url, read_timeout_s=5)
    yield client
    await client.close()


@pytest_asyncio.fixture
async def make_decoder() -> AsyncIterator[Callable[..., DecoderService]]:
    async with decoders() as make:
        yield make


async def run(llm: LLMClient, decoder: DecoderService, **options: Any) -> list[AudioChunk]:
    options.setdefault("voice", "tara")
    options.setdefault("text", TEXT)
    options.setdefault("params", PARAMS)
    return [chunk async for chunk in stream_segment(llm, decoder, **options)]


@pytest.mark.parametrize("max_new_frames,pad,realtime,tokens_per_second", [
    (1, False, False, 0),
    (4, True, True, 0),
    (16, False, False, 0),
    (16, False, True, 400),
    (2, True, False, 1500),
])
async def test_streamed_audio_matches_a_one_shot_decode(
    max_new_frames: int, pad: bool, realtime: bool, tokens_per_second: float,
    standin: StandinLLMServer, llm: LLMClient, snac_codec: SnacCodec,
    make_decoder: Callable[..., DecoderService],
) -> None:
    frames = 12
    standin.config.frames = frames
    standin.config.tokens_per_second = tokens_per_second
    decoder = make_decoder(snac_codec, pad_windows=pad)
    clock = PlayoutClock() if realtime else None
    chunks = await run(llm, decoder, segment=3, clock=clock,
                       tuning=StreamTuning(max_new_frames=max_new_frames))
    check_chunks(chunks, frames, segment=3)
    streamed = np.concatenate([c.pcm for c in chunks])
    assert streamed.size == frames * 2048
    want = oneshot_pcm(snac_codec, standin.config, TEXT, frames)
    error = relative_error(streamed, want)
    worst = max(relative_error(c.pcm, want[2048 * c.frame_start : 2048 * (c.frame_start
                                                                          + c.frames)])
                for c in chunks)
    print(f"\nmax_new_frames={max_new_frames} pad={pad} realtime={realtime}: "
          f"{len(chunks)} chunks, streamed vs one-shot {100 * error:.3f} % "
          f"(worst chunk {100 * worst:.3f} %)")
    assert error < 0.02
    assert worst < 0.05
    if realtime:
        assert clock is not None and clock.started is not None


async def test_single_frame_segment(standin: StandinLLMServer, llm: LLMClient,
                                    snac_codec: SnacCodec,
                                    make_decoder: Callable[..., DecoderService]) -> None:
    standin.config.frames = 1
    chunks = await run(llm, make_decoder(snac_codec))
    check_chunks(chunks, 1)
    want = oneshot_pcm(snac_codec, standin.config, TEXT, 1)
    assert np.max(np.abs(chunks[0].pcm.astype(np.int32) - want)) <= 4


async def test_long_segment_every_frame_once(standin: StandinLLMServer, llm: LLMClient,
                                             make_decoder: Callable[..., DecoderService]) -> None:
    frames = 200
    standin.config.frames = frames
    standin.config.tokens_per_second = 20000
    chunks = await run(llm, make_decoder(ConstantCodec()), clock=PlayoutClock())
    check_chunks(chunks, frames)
    source = generate_tokens(standin.config, f"tara: {TEXT}")
    parsed = FrameParser().feed(next(source) for _ in range(7 * frames))
    want = to_int16(np.repeat(np.array([f.codes[0] for f in parsed]) / 4096, 2048))
    assert np.array_equal(np.concatenate([c.pcm for c in chunks]), want)
    assert all(c.frames <= StreamTuning().max_new_frames for c in chunks)


@pytest.mark.parametrize("in_hand_s,first_frames", [(0.0, 1), (3.0, 8)])
async def test_first_window_follows_the_audio_in_hand(
    in_hand_s: float, first_frames: int, standin: StandinLLMServer, llm: LLMClient,
    make_decoder: Callable[..., DecoderService],
) -> None:
    """A later segment of an utterance starts while its listener still holds the earlier
    segments' audio: no lone first frame then (a 2-frame window costs twice per frame)."""
    standin.config.frames = 24
    standin.config.tokens_per_second = 700  # ten frames a second: slower than playback
    clock = PlayoutClock()
    if in_hand_s:
        clock.sent(round(in_hand_s * 24000))
    chunks = await run(llm, make_decoder(ConstantCodec()), clock=clock,
                       tuning=StreamTuning(max_new_frames=8, margin_s=0.05))
    check_chunks(chunks, 24)
    assert chunks[0].frames == first_frames


@pytest.mark.parametrize("fault,error", [
    ("refuse", BackendUnavailable),
    ("text", BackendProtocolError),
    ("strays", BackendProtocolError),
])
async def test_backend_faults(fault: str, error: type[Exception], standin: StandinLLMServer,
                              llm: LLMClient,
                              make_decoder: Callable[..., DecoderService]) -> None:
    standin.config.frames = 5
    standin.config.fault = fault  # type: ignore[assignment]
    chunks: list[AudioChunk] = []
    with pytest.raises(error):
        async for chunk in stream_segment(llm, make_decoder(ConstantCodec()), voice="tara",
                                          text=TEXT, params=PARAMS):
            chunks.append(chunk)
    # only frames that came before the fault can have been played
    assert sum(c.frames for c in chunks) <= 2


async def test_failure_midway_plays_what_came_then_raises(
    standin: StandinLLMServer, llm: LLMClient, make_decoder: Callable[..., DecoderService]
) -> None:
    standin.config.fault = "fail_midway"  # two frames, then the connection drops
    chunks: list[AudioChunk] = []
    with pytest.raises(BackendError) as info:
        async for chunk in stream_segment(llm, make_decoder(ConstantCodec()), voice="tara",
                                          text=TEXT, params=PARAMS):
            chunks.append(chunk)
    assert type(info.value) is BackendError
    assert sum(c.frames for c in chunks) == 2
    assert [c.frame_start for c in chunks] == list(np.cumsum([0] + [c.frames for c in chunks])[:-1])


async def test_no_audio_is_a_protocol_error(standin: StandinLLMServer, llm: LLMClient,
                                            make_decoder: Callable[..., DecoderService]) -> None:
    standin.config.frames = 0  # end of speech straight away
    with pytest.raises(BackendProtocolError):
        await run(llm, make_decoder(ConstantCodec()))


async def test_leaving_early_aborts_the_generation(
    standin: StandinLLMServer, llm: LLMClient, make_decoder: Callable[..., DecoderService]
) -> None:
    standin.config.tokens_per_second = 300
    chunks = stream_segment(llm, make_decoder(ConstantCodec()), voice="tara", text=TEXT,
                            params=PARAMS, clock=PlayoutClock())
    first = await anext(chunks)
    assert first.frame_start == 0
    assert standin.active == 1
    await chunks.aclose()
    await eventually(lambda: standin.aborted == 1 and standin.active == 0,
                     what="generation aborted")


async def test_decoder_failure_aborts_the_generation(
    standin: StandinLLMServer, llm: LLMClient, make_decoder: Callable[..., DecoderService]
) -> None:
    standin.config.tokens_per_second = 300
    with pytest.raises(DecoderError):
        await run(llm, make_decoder(FailingCodec()))
    await eventually(lambda: standin.aborted == 1 and standin.active == 0,
                     what="generation aborted")


def test_playout_clock() -> None:
    clock = PlayoutClock()
    assert clock.buffered_s(5.0) == 0.0
    clock.sent(24000, now=10.0)
    assert clock.started == 10.0
    assert clock.buffered_s(10.0) == pytest.approx(1.0)
    assert clock.buffered_s(10.25) == pytest.approx(0.75)
    clock.sent(12000, now=10.5)  # queued behind what is still playing
    assert clock.buffered_s(10.5) == pytest.approx(1.0)
    assert clock.buffered_s(20.0) == 0.0
    clock.sent(2400, now=20.0)  # the listener ran dry; playback resumes now
    assert clock.buffered_s(20.0) == pytest.approx(0.1)
    assert clock.started == 10.0


def test_queueing_behind_other_streams_costs_time_not_time_per_frame() -> None:
    """A window that waited 0.3 s behind other streams' calls leaves 0.3 s less to spend,
    whatever its length; it does not make every frame of the next window look dearer."""
    clock = PlayoutClock()
    clock.sent(24000)  # one second in hand
    arrivals = [0.0, 0.07, 0.14, 0.21]  # a frame every 70 ms
    tuning = StreamTuning(max_new_frames=16, margin_s=0.05)
    target = plan_window(clock, arrivals, 0.01, 0.3, tuning, 0).target
    in_hand = clock.buffered_s()
    assert target == affordable_frames(in_hand - 0.3, 0.07, 0.01, margin_s=0.05, cap=16)
    assert target < plan_window(clock, arrivals, 0.01, 0.0, tuning, 0).target
    assert target > affordable_frames(in_hand, 0.07, 0.01 + 0.3 / 4, margin_s=0.05, cap=16)


def test_the_frames_that_fill_the_jitter_buffer_leave_together() -> None:
    """Before the listener's jitter buffer fills nothing plays: after frame 0 the schedule
    asks for the frames still missing in one window, the earliest start, and a window issued
    before they are all in may wait for batch company until they are."""
    clock = PlayoutClock(start_after_s=0.2)
    tuning = StreamTuning(max_new_frames=16, margin_s=0.05, max_batch_wait_s=0.5)
    arrivals = [0.0, 0.07, 0.14, 0.21]
    # frame 0
    assert plan_window(clock, arrivals, 0.01, 0.0, tuning, 1, first=True)[:3] == (1, 0.0, False)
    clock.sent(2048)  # 85 ms held of 200: two more frames fill it
    assert clock.started is None
    assert plan_window(clock, arrivals, 0.01, 0.0, tuning, 2)[:3] == (2, 0.0, True)
    target, wait, exact, interval = plan_window(clock, arrivals, 0.01, 0.0, tuning, 1)
    assert interval == pytest.approx(0.07)  # what a frame later than it is measured against
    assert (target, exact) == (2, True) and wait == pytest.approx(0.07)
    clock.sent(2 * 2048)
    assert clock.started is not None  # playing: the usual schedule from here
    # a 300 ms buffer: three frames after frame 0, in one window (not two and one)
    clock = PlayoutClock(start_after_s=0.3)
    clock.sent(2048)
    assert plan_window(clock, arrivals, 0.01, 0.0, tuning, 3)[:3] == (3, 0.0, True)


def test_urgency_follows_the_listener() -> None:
    clock = PlayoutClock()
    assert audio_in_hand(clock, 0) == 0.0
    clock.sent(24000)
    assert audio_in_hand(clock, 5) == pytest.approx(1.0, abs=0.05)
    # no listener model (HTTP): first audio is urgent, the rest can wait a while
    assert audio_in_hand(None, 0) == 0.0
    assert audio_in_hand(None, 4) == UNCLOCKED_IN_HAND_S


async def test_streams_that_ride_other_calls_still_emit_every_frame_once(
    standin: StandinLLMServer, llm: LLMClient, make_decoder: Callable[..., DecoderService],
) -> None:
    """On a padding decoder, streams waiting for frames join calls other streams cause, with
    windows of whatever they have ready; each listener still gets its frames once, in order,
    each decoded to its own codes."""
    frames = 48
    standin.config.frames = frames
    standin.config.tokens_per_second = 1000  # 143 frames a second: listeners build a buffer
    decoder = make_decoder(ConstantCodec(), pad_windows=True)
    texts = [f"Stream number {k} says something of its own." for k in range(4)]

    async def one(k: int) -> list[AudioChunk]:
        await asyncio.sleep(0.05 * k)  # started apart, the streams' windows fall due apart
        return await run(llm, decoder, text=texts[k], clock=PlayoutClock(0.2))

    results = await asyncio.gather(*(one(k) for k in range(len(texts))))
    for text, chunks in zip(texts, results, strict=True):
        check_chunks(chunks, frames)
        source = generate_tokens(standin.config, f"tara: {text}")
        parsed = FrameParser().feed(next(source) for _ in range(7 * frames))
        want = to_int16(np.repeat(np.array([f.codes[0] for f in parsed]) / 4096, 2048))
        assert np.array_equal(np.concatenate([c.pcm for c in chunks]), want)
    assert decoder.stats.invited > 0
    assert decoder.stats.windows > decoder.stats.calls  # the riders shared calls


async def test_a_stray_token_costs_one_frame_of_the_segment(
        standin: StandinLLMServer, llm: LLMClient,
        make_decoder: Callable[..., DecoderService]) -> None:
    """One audio token out of position: its frame is dropped, counted, and the segment goes
    on, every other frame emitted once."""
    standin.config.frames = 5
    standin.config.fault = "garbage"  # in the third frame
    before = FRAMES_DROPPED._value.get()
    chunks = [chunk async for chunk in stream_segment(
        llm, make_decoder(ConstantCodec()), voice="tara", text=TEXT, params=PARAMS)]
    check_chunks(chunks, 4)
    assert FRAMES_DROPPED._value.get() == before + 1


# -- the runaway guard (engine/guard.py; tests/test_guard.py has its parts) -------------------

GUARDED = StreamTuning(runaway_guard=True)
LONG = SamplingParams(max_tokens=2048)


async def segment(standin: StandinLLMServer, llm: LLMClient, decoder: DecoderService,
                  text: str) -> list[AudioChunk]:
    return [chunk async for chunk in stream_segment(llm, decoder, voice="tara", text=text,
                                                    params=LONG, tuning=GUARDED)]


async def test_a_generation_that_never_ends_is_cut_at_its_budget(
        standin: StandinLLMServer, llm: LLMClient,
        make_decoder: Callable[..., DecoderService]) -> None:
    standin.config.frames = None  # never says end-of-speech: runs to max_tokens 2048
    before = RUNAWAYS.labels(LENGTH)._value.get()
    chunks = await segment(standin, llm, make_decoder(ConstantCodec()), "Hi.")
    frames = sum(c.frames for c in chunks)
    assert frames == frame_budget("Hi.")  # about 1.9 s, not 24 s
    assert chunks[-1].final and chunks[-1].cut == LENGTH
    assert RUNAWAYS.labels(LENGTH)._value.get() == before + 1
    assert standin.requests[-1].body["prompt"][-1] != "" and standin.active == 0


async def test_a_loop_is_cut_where_it_comes_back(
        standin: StandinLLMServer, llm: LLMClient,
        make_decoder: Callable[..., DecoderService]) -> None:
    standin.config.frames = 200
    standin.config.fault = "loop"  # ten frames, then the same ten again and again
    chunks = await segment(standin, llm, make_decoder(ConstantCodec()),
                           "A sentence long enough to have a budget past the loop.")
    assert chunks[-1].cut == REPEAT
    assert 10 <= sum(c.frames for c in chunks) <= 10 + REPEAT_FRAMES


async def test_a_runaway_nobody_heard_is_generated_again_less_repetitive(
        standin: StandinLLMServer, llm: LLMClient,
        make_decoder: Callable[..., DecoderService]) -> None:
    """A segment generated ahead (its turn not come, ``current`` unset) loops: none of it has
    been heard, so it is generated once more with a 10 % higher repetition penalty; the second
    generation loops too, and is cut."""
    standin.config.frames = 200
    standin.config.fault = "loop"
    current = asyncio.Event()
    stream = stream_segment(llm, make_decoder(ConstantCodec()), voice="tara",
                            text="A sentence long enough to have a budget past the loop.",
                            params=LONG, tuning=GUARDED, current=current, delivers=False)
    first = asyncio.ensure_future(anext(stream))
    await eventually(lambda: standin.completed + standin.aborted >= 2, what="two generations")
    current.set()
    chunks = [await first] + [chunk async for chunk in stream]
    assert chunks[-1].cut == REPEAT
    penalties = [float(r.body["repeat_penalty"]) for r in standin.requests
                 if r.path == "/completion"]
    assert penalties == [pytest.approx(1.1), pytest.approx(1.1 * 1.1)]


async def test_a_runaway_already_heard_is_cut_not_generated_again(
        standin: StandinLLMServer, llm: LLMClient,
        make_decoder: Callable[..., DecoderService]) -> None:
    standin.config.frames = 200
    standin.config.fault = "loop"
    standin.config.tokens_per_second = 100  # its first frames are decoded long before the loop
    chunks = await segment(standin, llm, make_decoder(ConstantCodec()),
                           "A sentence long enough to have a budget past the loop.")
    assert chunks[-1].cut == REPEAT
    assert len([r for r in standin.requests if r.path == "/completion"]) == 1


@pytest.mark.parametrize("fault,frames,cut", [("loop", 200, REPEAT), ("none", None, LENGTH)])
async def test_a_runaway_heard_only_as_quiet_is_generated_again(
        fault: Fault, frames: int | None, cut: str, standin: StandinLLMServer, llm: LLMClient,
        make_decoder: Callable[..., DecoderService]) -> None:
    """A live segment whose first window went out long ago, but all of it quiet (the model's
    leading quiet, trimmed): no one has heard a word, so the runaway is generated once more,
    after the frames already yielded, and every frame is still yielded exactly once."""
    standin.config.frames, standin.config.fault = frames, fault
    standin.config.quiet_frames = 10_000
    standin.config.tokens_per_second = 400
    text = "Hi." if cut == LENGTH else "A sentence long enough to have a budget past the loop."
    chunks = await segment(standin, llm, make_decoder(ConstantCodec()), text)
    check_chunks(chunks, sum(c.frames for c in chunks))
    assert chunks[-1].cut == cut
    assert all(c.speech_from is None for c in chunks)
    penalties = [float(r.body["repeat_penalty"]) for r in standin.requests
                 if r.path == "/completion"]
    assert penalties == [pytest.approx(1.1), pytest.approx(1.1 * 1.1)]
    if cut == LENGTH:  # each attempt bounded by the budget: the two together by twice it
        assert frame_budget("Hi.") < sum(c.frames for c in chunks) <= 2 * frame_budget("Hi.")
    assert standin.active == 0


async def test_a_runaway_with_speech_heard_is_not_generated_again(
        standin: StandinLLMServer, llm: LLMClient,
        make_decoder: Callable[..., DecoderService]) -> None:
    """A generation that never ends, with speech from its fifth frame: its first chunk is
    quiet, but the next (frames 1-16, out long before the budget's 22 frames are in at 14
    frames a second) has speech in it, so it is only cut."""
    standin.config.frames = None
    standin.config.quiet_frames = 4
    standin.config.tokens_per_second = 100
    chunks = await segment(standin, llm, make_decoder(ConstantCodec()), "Hi.")
    assert chunks[-1].cut == LENGTH and chunks[0].speech_from is None
    assert sum(c.frames for c in chunks) == frame_budget("Hi.")
    assert any(c.speech_from is not None for c in chunks)
    assert len([r for r in standin.requests if r.path == "/completion"]) == 1


async def test_each_chunk_says_where_its_speech_begins(
        standin: StandinLLMServer, llm: LLMClient,
        make_decoder: Callable[..., DecoderService]) -> None:
    """Time to first speech is read off the decoded audio's level (engine/level.py): with the
    first 5 frames quiet and the rest loud, the first frame of speech is frame 5."""
    standin.config.frames = 12
    standin.config.quiet_frames = 5
    chunks = await run(llm, make_decoder(ConstantCodec()))
    check_chunks(chunks, 12)
    speech = [c.frame_start + c.speech_from // 2048 for c in chunks if c.speech_from is not None]
    assert speech == [5]  # looked for until the first speech, not after (loud as they are)
    assert all(c.speech_from is None for c in chunks if c.frame_start + c.frames <= 5)


async def test_a_frame_wakes_the_segment_only_when_it_is_waited_for() -> None:
    """The segment sleeps until the frames its next window needs are in (``wake_at``), or
    until a frame comes later than its plan counted on (``slow_after_s``)."""
    from orpheus_ws.engine.guard import RepeatWatch
    from orpheus_ws.engine.pipeline import _FrameSink, _Generation

    class Idle:
        async def generate(self, *args: Any) -> None:
            await asyncio.Event().wait()

        def can_fail_over(self) -> bool:
            return False

    generation = _Generation(Idle(), "tara", "Hello.", SamplingParams(), 0, guard=False)
    try:
        sink = _FrameSink(generation, frame_budget("Hello."), RepeatWatch())
        frame = [128266 + k * 4096 + 5 for k in range(7)]
        generation.wake_at, generation.slow_after_s = 3, 60.0
        sink.take(frame)  # the first frame: nothing to be late after, so it wakes
        generation.wake.clear()
        sink.take(frame)
        assert not generation.wake.is_set()  # 2 of 3, in time
        sink.take(frame)
        assert generation.wake.is_set()  # the third: the window's frames are in
        generation.wake.clear()
        generation.wake_at, generation.slow_after_s = 10, 0.0
        sink.take(frame)
        assert generation.wake.is_set()  # later than the plan's interval: plan again
    finally:
        await generation.stop()
