"""The decoder service: batching windows of many streams, routing, failures, cancellation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from orpheus_ws.codec import Codec, SnacCodec
from orpheus_ws.decoder import DecodeRequest, DecoderService, to_int16
from orpheus_ws.exceptions import DecoderError

from .utils import eventually, scaled

Codes = tuple[np.ndarray, np.ndarray, np.ndarray]
LONG_WAIT = 30.0  # a deadline that never comes: the batch cap starts the call


class FakeCodec:
    """Each frame decodes to 2048 samples of c0 / 4096, so a result names its frame's code.

    Records the c0 of every call; raises on any window holding the code ``fail_on``.
    """

    name = "fake"

    def __init__(self, *, fail_on: int | None = None, device: str = "cpu") -> None:
        self.device = device
        self.fail_on = fail_on
        self.calls: list[np.ndarray] = []

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        self.calls.append(c0.copy())
        assert c1.shape == (c0.shape[0], 2 * c0.shape[1])
        assert c2.shape == (c0.shape[0], 4 * c0.shape[1])
        if self.fail_on is not None and (c0 == self.fail_on).any():
            raise RuntimeError("secret internal failure text")
        return np.repeat(c0.astype(np.float32) / 4096, 2048, axis=1)


class Recording:
    """Wraps a codec and records the shape of each call."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.name = inner.name
        self.device = inner.device
        self.shapes: list[tuple[int, ...]] = []

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        self.shapes.append(c0.shape)
        return self.inner.decode(c0, c1, c2)


def stream_codes(seed: int, frames: int) -> Codes:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 4000, frames), rng.integers(0, 4096, 2 * frames),
            rng.integers(0, 4096, 4 * frames))


def window(codes: Codes, start: int, end: int) -> Codes:
    return codes[0][start:end], codes[1][2 * start : 2 * end], codes[2][4 * start : 4 * end]


def fake_pcm(c0: np.ndarray) -> np.ndarray:
    return to_int16(np.repeat(c0.astype(np.float32) / 4096, 2048))


def alone(codec: SnacCodec, codes: Codes, start: int, end: int) -> np.ndarray:
    """Int16 PCM of frames start..end decoded by themselves."""
    c0, c1, c2 = window(codes, start, end)
    return to_int16(codec.decode(c0[None], c1[None], c2[None])[0])


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    want64 = want.astype(np.float64)
    return float(np.linalg.norm(got.astype(np.float64) - want64) / np.linalg.norm(want64))


@pytest_asyncio.fixture
async def make_decoder() -> AsyncIterator[Callable[..., DecoderService]]:
    made: list[DecoderService] = []

    def make(codec: Codec, **options: Any) -> DecoderService:
        made.append(DecoderService(codec, **options))
        made[-1].streams = 4  # several streams decoding: windows wait for company
        return made[-1]

    yield make
    for decoder in made:
        await decoder.close()


async def test_results_go_back_to_their_stream(make_decoder: Callable[..., DecoderService]) -> None:
    codec = FakeCodec()
    decoder = make_decoder(codec, max_batch=4)
    streams = [stream_codes(seed, 10) for seed in range(4)]
    # each stream: frames 5..8 (first=5, need 3), keep frame 6
    results = await asyncio.gather(*(
        decoder.decode(window(codes, 5, 8), first=5, need=3, emit_start=6, emit_end=7,
                       max_wait_s=LONG_WAIT)
        for codes in streams))
    assert [c.shape for c in codec.calls] == [(4, 3)]  # one call for the four windows
    for codes, pcm in zip(streams, results, strict=True):
        assert np.array_equal(pcm, fake_pcm(codes[0][6:7]))
    stats = decoder.stats
    assert (stats.calls, stats.windows, stats.frames_decoded, stats.frames_emitted) == (1, 4, 12, 4)
    assert stats.max_batch_seen == 4
    assert decoder.stats.as_dict()["mean_batch"] == 4.0


async def test_emit_range_is_cut_from_the_window(
    make_decoder: Callable[..., DecoderService],
) -> None:
    decoder = make_decoder(FakeCodec())
    codes = stream_codes(7, 20)
    # frames 4..20 given, the window is the last 6 (14..20), keep 15..19
    pcm = await decoder.decode(window(codes, 4, 20), first=4, need=6, emit_start=15,
                               emit_end=19)
    assert np.array_equal(pcm, fake_pcm(codes[0][15:19]))
    # the utterance's start: no left context
    pcm = await decoder.decode(window(codes, 0, 2), first=0, need=2, emit_start=0, emit_end=1)
    assert np.array_equal(pcm, fake_pcm(codes[0][0:1]))


async def test_real_snac_batched_windows_match_decoding_each_alone(
    make_decoder: Callable[..., DecoderService], snac_codec: SnacCodec
) -> None:
    recording = Recording(snac_codec)
    decoder = make_decoder(recording, max_batch=3)
    streams = [stream_codes(10 + seed, 3) for seed in range(3)]
    results = await asyncio.gather(*(
        decoder.decode(codes, first=0, need=3, emit_start=1, emit_end=2, max_wait_s=LONG_WAIT)
        for codes in streams))
    assert recording.shapes == [(3, 3)]
    for codes, pcm in zip(streams, results, strict=True):
        assert pcm.dtype == np.int16 and pcm.shape == (2048,)
        want = alone(snac_codec, codes, 0, 3)[2048:4096]
        assert np.max(np.abs(pcm.astype(np.int32) - want)) <= 4
    # distinct codes, distinct audio (random weights: the streams differ by about 10 %)
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.max(np.abs(results[i].astype(np.int32) - results[j])) > 200


async def test_a_failing_window_fails_only_its_caller(
    make_decoder: Callable[..., DecoderService],
) -> None:
    codec = FakeCodec(fail_on=4095)
    decoder = make_decoder(codec, max_batch=3)
    good_a, good_c = stream_codes(1, 4), stream_codes(2, 4)
    bad = stream_codes(3, 4)
    bad[0][2] = 4095
    results = await asyncio.gather(
        *(decoder.decode(codes, first=0, need=4, emit_start=1, emit_end=3, max_wait_s=LONG_WAIT)
          for codes in (good_a, bad, good_c)),
        return_exceptions=True)
    assert isinstance(results[1], DecoderError)
    assert isinstance(results[0], np.ndarray) and isinstance(results[2], np.ndarray)
    assert np.array_equal(results[0], fake_pcm(good_a[0][1:3]))
    assert np.array_equal(results[2], fake_pcm(good_c[0][1:3]))
    assert "secret" not in str(results[1])  # the codec's text doesn't travel
    # the batch failed, then each window was retried alone
    assert [c.shape for c in codec.calls] == [(3, 4), (1, 4), (1, 4), (1, 4)]
    assert (decoder.stats.calls, decoder.stats.windows) == (2, 2)
    # the service carries on
    pcm = await decoder.decode(good_a, first=0, need=4, emit_start=0, emit_end=1)
    assert np.array_equal(pcm, fake_pcm(good_a[0][0:1]))


async def test_a_cancelled_callers_window_is_not_decoded(
    make_decoder: Callable[..., DecoderService],
) -> None:
    codec = FakeCodec()
    decoder = make_decoder(codec, max_batch=8)
    gone, stays = stream_codes(4, 3), stream_codes(5, 3)
    leaving = asyncio.create_task(decoder.decode(
        gone, first=0, need=3, emit_start=1, emit_end=2, max_wait_s=LONG_WAIT))
    await asyncio.sleep(0)
    staying = asyncio.create_task(decoder.decode(
        stays, first=0, need=3, emit_start=1, emit_end=2, max_wait_s=scaled(0.05)))
    await asyncio.sleep(0)
    assert decoder.queued == 2
    leaving.cancel()
    pcm = await asyncio.wait_for(staying, scaled(5))
    assert np.array_equal(pcm, fake_pcm(stays[0][1:2]))
    assert len(codec.calls) == 1
    assert np.array_equal(codec.calls[0], stays[0][None])  # only the staying window
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert decoder.queued == 0


async def test_batching_off_decodes_one_window_per_call(
    make_decoder: Callable[..., DecoderService],
) -> None:
    codec = FakeCodec()
    decoder = make_decoder(codec, batching=False, max_batch=32)
    assert decoder.max_batch == 1
    streams = [stream_codes(seed, 2) for seed in range(3)]
    results = await asyncio.gather(*(
        decoder.decode(codes, first=0, need=2, emit_start=0, emit_end=1, max_wait_s=LONG_WAIT)
        for codes in streams))
    assert [c.shape for c in codec.calls] == [(1, 2)] * 3
    for codes, pcm in zip(streams, results, strict=True):
        assert np.array_equal(pcm, fake_pcm(codes[0][0:1]))
    assert decoder.stats.max_batch_seen == 1
    assert decoder.stats.calls == 3


async def test_windows_of_different_lengths_share_a_call_only_when_padding(
    make_decoder: Callable[..., DecoderService],
) -> None:
    long_history, short = stream_codes(8, 12), stream_codes(9, 6)
    for pad, shapes in ((True, [(2, 6)]), (False, [(1, 3), (1, 6)])):
        codec = FakeCodec()
        decoder = make_decoder(codec, max_batch=2, pad_windows=pad)
        a, b = await asyncio.gather(
            decoder.decode(long_history, first=0, need=3, emit_start=10, emit_end=11,
                           max_wait_s=scaled(0.05)),
            decoder.decode(short, first=0, need=6, emit_start=1, emit_end=5,
                           max_wait_s=scaled(0.05)))
        assert sorted(c.shape for c in codec.calls) == shapes
        assert np.array_equal(a, fake_pcm(long_history[0][10:11]))
        assert np.array_equal(b, fake_pcm(short[0][1:5]))


async def test_padded_windows_sound_like_unpadded_ones(
    make_decoder: Callable[..., DecoderService], snac_codec: SnacCodec
) -> None:
    recording = Recording(snac_codec)
    decoder = make_decoder(recording, max_batch=2, pad_windows=True)
    long_history, short = stream_codes(20, 12), stream_codes(21, 6)
    padded, other = await asyncio.gather(
        decoder.decode(long_history, first=0, need=3, emit_start=10, emit_end=11,
                       max_wait_s=LONG_WAIT),
        decoder.decode(short, first=0, need=6, emit_start=1, emit_end=5, max_wait_s=LONG_WAIT))
    assert recording.shapes == [(2, 6)]  # frames 6..12 of the first stream, not 9..12
    unpadded = alone(snac_codec, long_history, 9, 12)[2048:4096]
    error = relative_error(padded, unpadded)
    print(f"padded vs unpadded window: relative error {100 * error:.3f} %")
    assert error < 0.02
    assert np.max(np.abs(other.astype(np.int32) - alone(snac_codec, short, 0, 6)[2048:10240])) <= 4


def test_padding_defaults_to_the_device() -> None:
    assert not DecoderService(FakeCodec(device="cpu")).pad_windows
    assert DecoderService(FakeCodec(device="cuda")).pad_windows
    assert DecoderService(FakeCodec(device="cpu"), pad_windows=True).pad_windows


async def test_stats_report_each_call(make_decoder: Callable[..., DecoderService]) -> None:
    decoder = make_decoder(FakeCodec(), max_batch=2)
    codes = stream_codes(0, 2)
    await asyncio.gather(*(decoder.decode(codes, first=0, need=2, emit_start=0, emit_end=1,
                                          max_wait_s=LONG_WAIT) for _ in range(2)))
    stats = decoder.stats
    assert (stats.calls, stats.windows, stats.max_batch_seen) == (1, 2, 2)
    assert decoder.stats.busy_s >= 0 and decoder.seconds_per_frame > 0


async def test_close_cancels_waiting_windows() -> None:
    decoder = DecoderService(FakeCodec(), max_batch=8)
    decoder.streams = 2
    waiting = asyncio.create_task(decoder.decode(stream_codes(0, 2), first=0, need=2,
                                                 emit_start=0, emit_end=1, max_wait_s=LONG_WAIT))
    await asyncio.sleep(0.01)
    assert decoder.queued == 1
    await decoder.close()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, scaled(5))
    assert decoder.queued == 0


async def test_a_stream_decoding_alone_does_not_wait_for_company(
        make_decoder: Callable[..., DecoderService]) -> None:
    """Waiting for batch company is moot with one stream decoding: its window goes at once."""
    decoder = make_decoder(FakeCodec())
    decoder.streams = 1
    pcm = await asyncio.wait_for(decoder.decode(
        stream_codes(0, 3), first=0, need=3, emit_start=1, emit_end=2, max_wait_s=LONG_WAIT),
        scaled(5))
    assert pcm.shape == (2048,)


class GatedCodec(FakeCodec):
    """Records each call's window length, then holds the call until ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.lengths: list[int] = []

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        self.lengths.append(int(c0.shape[1]))
        assert self.gate.wait(30)
        return super().decode(c0, c1, c2)


async def test_the_listener_closest_to_running_dry_goes_first(
    make_decoder: Callable[..., DecoderService],
) -> None:
    codec = GatedCodec()
    decoder = make_decoder(codec)
    codes = stream_codes(9, 8)
    busy = asyncio.create_task(decoder.decode(window(codes, 0, 2), first=0, need=2,
                                              emit_start=0, emit_end=1))
    await eventually(lambda: codec.lengths == [2], what="the first call running")
    # queued behind the running call, in arrival order: 3 s in hand, 0.1 s, 1 s (lengths
    # differ, so on the CPU each is a call of its own)
    queued = [
        asyncio.create_task(decoder.decode(window(codes, 0, n), first=0, need=n,
                                           emit_start=1, emit_end=n - 1, in_hand_s=in_hand))
        for n, in_hand in ((5, 3.0), (4, 0.1), (3, 1.0))
    ]
    await eventually(lambda: decoder.queued == 3, what="three windows queued")
    codec.gate.set()
    results = await asyncio.gather(busy, *queued)
    assert codec.lengths == [2, 4, 3, 5]
    for (n, _), pcm in zip(((5, 0), (4, 0), (3, 0)), results[1:], strict=True):
        np.testing.assert_array_equal(pcm, fake_pcm(codes[0][1 : n - 1]))


async def test_a_first_window_stretches_to_share_a_call_already_due(
    make_decoder: Callable[..., DecoderService], snac_codec: SnacCodec,
) -> None:
    """Frame 0 of a stream (no history) joins the call of a longer window, its last frame
    repeated on the right, instead of a call of its own; on the CPU it does not."""
    waiting, starting = stream_codes(30, 12), stream_codes(31, 2)
    for pad, shapes in ((True, [(2, 6)]), (False, [(1, 2)])):
        recording = Recording(snac_codec)
        decoder = make_decoder(recording, pad_windows=pad)
        later = asyncio.create_task(decoder.decode(
            waiting, first=0, need=6, emit_start=7, emit_end=11, max_wait_s=LONG_WAIT))

        def one_queued(d: DecoderService = decoder) -> bool:
            return d.queued == 1

        await eventually(one_queued, what="a window waiting for company")
        first = await decoder.decode(starting, first=0, need=2, emit_start=0, emit_end=1)
        if not pad:
            assert recording.shapes == shapes[:1] and not later.done()
            await decoder.close()  # the other window waits for its (never) deadline
            with pytest.raises(asyncio.CancelledError):
                await later
            continue
        other = await later
        assert recording.shapes == shapes
        want = alone(snac_codec, waiting, 6, 12)[2048 : 5 * 2048]
        assert np.abs(other.astype(np.int32) - want).max() <= 4  # batched as decoded alone
        unstretched = alone(snac_codec, starting, 0, 2)[:2048]
        error = relative_error(first, unstretched)
        print(f"stretched vs 2-frame first window: relative error {100 * error:.3f} %")
        assert first.shape == (2048,)
        assert error < 0.03


def test_only_a_first_window_with_right_context_stretches() -> None:
    loop = asyncio.new_event_loop()
    try:
        def request(first: int, frames: int, emit_end: int) -> DecodeRequest:
            c0, c1, c2 = stream_codes(1, frames)
            return DecodeRequest(c0, c1, c2, first=first, need=frames, emit_start=first,
                                 emit_end=emit_end, deadline=0.0, future=loop.create_future())

        assert request(0, 2, 1).longest > 32  # frame 0 with frame 1 as context
        assert request(0, 3, 3).longest == 3  # the stream's end: no right context to repeat
        assert request(4, 3, 6).longest == 3  # a later window: its history pads it instead
        c0, c1, c2 = request(0, 2, 1).row(4)
        assert c0.tolist() == [*stream_codes(1, 2)[0], *[stream_codes(1, 2)[0][-1]] * 2]
        assert c1.shape == (8,) and c2.shape == (16,)
    finally:
        loop.close()


@pytest.mark.parametrize("device,batching,joins", [
    ("cuda", True, True), ("cpu", True, False), ("cuda", False, False)])
async def test_a_stream_standing_by_joins_a_call_being_made(
    device: str, batching: bool, joins: bool, make_decoder: Callable[..., DecoderService],
) -> None:
    """Where a call costs about the same whatever it carries (padding devices), a stream
    waiting for more frames is invited into a call being made and brings what it has; on
    the CPU, or with batching off, it is left to wait."""
    codec = FakeCodec(device=device)
    decoder = make_decoder(codec, batching=batching)
    due, riding = stream_codes(40, 4), stream_codes(41, 20)
    wake = asyncio.Event()
    ticket = decoder.stand_by(wake)

    async def rider() -> np.ndarray:
        await wake.wait()
        decoder.withdraw(ticket)
        assert ticket.invited
        return await decoder.decode(window(riding, 0, 6), first=0, need=4, emit_start=3,
                                    emit_end=5, max_wait_s=LONG_WAIT)

    waiting = asyncio.create_task(rider())
    pcm = await decoder.decode(due, first=0, need=4, emit_start=1, emit_end=3)
    np.testing.assert_array_equal(pcm, fake_pcm(due[0][1:3]))
    assert wake.is_set() is joins and ticket.invited is joins
    assert decoder.stats.invited == int(joins)
    if not joins:
        assert len(codec.calls) == 1 and not waiting.done()
        waiting.cancel()
        return
    np.testing.assert_array_equal(await waiting, fake_pcm(riding[0][3:5]))
    assert len(codec.calls) == 1 and codec.calls[0].shape == (2, 4)  # one call, both rows


async def test_a_withdrawn_stream_is_not_invited(
        make_decoder: Callable[..., DecoderService]) -> None:
    """A stream that stopped standing by (woken by a frame, or cancelled) is left alone."""
    decoder = make_decoder(FakeCodec(device="cuda"))
    gone, staying = asyncio.Event(), asyncio.Event()
    decoder.withdraw(decoder.stand_by(gone))
    ticket = decoder.stand_by(staying)
    await decoder.decode(stream_codes(42, 3), first=0, need=3, emit_start=1, emit_end=2)
    assert not gone.is_set() and staying.is_set() and ticket.invited
    assert decoder.stats.invited == 1


async def test_a_padded_call_is_rounded_up_to_a_fast_length(
        make_decoder: Callable[..., DecoderService]) -> None:
    """Where the codec has fast lengths (CUDA graphs captured), windows that can take more
    left context share a call of the next fast length, not of an odd one run eagerly; a
    window without the history for it keeps its own length."""
    codec = FakeCodec(device="cuda")
    codec.fast_lengths = (4, 10)  # type: ignore[attr-defined]
    decoder = make_decoder(codec)
    a, b, c = stream_codes(43, 12), stream_codes(44, 12), stream_codes(45, 12)
    queued = [
        asyncio.create_task(decoder.decode(a, first=0, need=3, emit_start=9, emit_end=11,
                                           max_wait_s=LONG_WAIT)),
        asyncio.create_task(decoder.decode(b, first=0, need=5, emit_start=8, emit_end=11,
                                           max_wait_s=LONG_WAIT)),
    ]
    await eventually(lambda: decoder.queued == 2, what="two windows queued")
    due = await decoder.decode(c, first=0, need=3, emit_start=10, emit_end=11)
    got_a, got_b = await asyncio.gather(*queued)
    np.testing.assert_array_equal(got_a, fake_pcm(a[0][9:11]))
    np.testing.assert_array_equal(got_b, fake_pcm(b[0][8:11]))
    np.testing.assert_array_equal(due, fake_pcm(c[0][10:11]))
    assert [call.shape for call in codec.calls] == [(3, 10)]  # 5 rounded up; all three fit

    short = window(c, 4, 9)  # frames 4..8 only: no history to pad with
    pcm = await decoder.decode(short, first=4, need=5, emit_start=5, emit_end=8)
    np.testing.assert_array_equal(pcm, fake_pcm(c[0][5:8]))
    assert codec.calls[-1].shape == (1, 5)
