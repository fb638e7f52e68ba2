"""The decoder service: batching windows of many streams, routing, failures, cancellation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest
import pytest_asyncio

from orpheus_ws.engine.codec import SnacCodec
from orpheus_ws.engine.decoder import Decoded, DecoderService
from orpheus_ws.exceptions import DecoderError

from .fakes import (
    LONG_WAIT,
    FakeCodec,
    Recording,
    alone,
    decoders,
    fake_pcm,
    stream_codes,
    window,
)
from .utils import eventually, scaled


@pytest_asyncio.fixture
async def make_decoder() -> AsyncIterator[Callable[..., DecoderService]]:
    async with decoders(company=4) as make:
        yield make


async def test_results_go_back_to_their_stream(make_decoder: Callable[..., DecoderService]) -> None:
    codec = FakeCodec()
    decoder = make_decoder(codec, max_batch=4)
    streams = [stream_codes(seed, 10) for seed in range(4)]
    # each stream: frames 5..8 (first=5, need 3), keep frame 6
    results = await asyncio.gather(*(
        decoder.decode(window(codes, 5, 8), first=5, need=3, emit_start=6, emit_end=7,
                       max_wait_s=LONG_WAIT)
        for codes in streams))
    assert all(r.call_s >= 0 for r in results)  # each result says what its call took
    assert [c.shape for c in codec.calls] == [(4, 3)]  # one call for the four windows
    for codes, (pcm, _) in zip(streams, results, strict=True):
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
    pcm, _ = await decoder.decode(window(codes, 4, 20), first=4, need=6, emit_start=15,
                                  emit_end=19)
    assert np.array_equal(pcm, fake_pcm(codes[0][15:19]))
    # the utterance's start: no left context
    pcm, _ = await decoder.decode(window(codes, 0, 2), first=0, need=2, emit_start=0,
                                  emit_end=1)
    assert np.array_equal(pcm, fake_pcm(codes[0][0:1]))


async def test_real_snac_batched_windows_match_decoding_each_alone(
    make_decoder: Callable[..., DecoderService], snac_codec: SnacCodec
) -> None:
    recording = Recording(snac_codec)
    decoder = make_decoder(recording, max_batch=3)
    streams = [stream_codes(10 + seed, 3) for seed in range(3)]
    results = [r.pcm for r in await asyncio.gather(*(
        decoder.decode(codes, first=0, need=3, emit_start=1, emit_end=2, max_wait_s=LONG_WAIT)
        for codes in streams))]
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
    assert isinstance(results[0], Decoded) and isinstance(results[2], Decoded)
    assert np.array_equal(results[0].pcm, fake_pcm(good_a[0][1:3]))
    assert np.array_equal(results[2].pcm, fake_pcm(good_c[0][1:3]))
    assert "secret" not in str(results[1])  # the codec's text doesn't travel
    # the batch failed, then each window was retried alone
    assert [c.shape for c in codec.calls] == [(3, 4), (1, 4), (1, 4), (1, 4)]
    assert (decoder.stats.calls, decoder.stats.windows) == (2, 2)
    # the service carries on
    pcm, _ = await decoder.decode(good_a, first=0, need=4, emit_start=0, emit_end=1)
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
    pcm, _ = await asyncio.wait_for(staying, scaled(5))
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
    results = [r.pcm for r in await asyncio.gather(*(
        decoder.decode(codes, first=0, need=2, emit_start=0, emit_end=1, max_wait_s=LONG_WAIT)
        for codes in streams))]
    assert [c.shape for c in codec.calls] == [(1, 2)] * 3
    for codes, pcm in zip(streams, results, strict=True):
        assert np.array_equal(pcm, fake_pcm(codes[0][0:1]))
    assert decoder.stats.max_batch_seen == 1
    assert decoder.stats.calls == 3


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
    with decoder.stream(), decoder.stream():  # two streams decoding: windows wait for company
        waiting = asyncio.create_task(decoder.decode(stream_codes(0, 2), first=0, need=2,
                                                     emit_start=0, emit_end=1,
                                                     max_wait_s=LONG_WAIT))
        await asyncio.sleep(0.01)
    assert decoder.queued == 1
    await decoder.close()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, scaled(5))
    assert decoder.queued == 0


async def test_a_stream_decoding_alone_does_not_wait_for_company(
        make_decoder: Callable[..., DecoderService]) -> None:
    """Waiting for batch company is moot with one stream decoding: its window goes at once."""
    async with decoders() as make:  # no other stream registered
        decoder = make(FakeCodec())
        with decoder.stream():
            assert decoder.streams == 1
            pcm, _ = await asyncio.wait_for(decoder.decode(
                stream_codes(0, 3), first=0, need=3, emit_start=1, emit_end=2,
                max_wait_s=LONG_WAIT), scaled(5))
        assert decoder.streams == 0
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
    for (n, _), (pcm, _) in zip(((5, 0), (4, 0), (3, 0)), results[1:], strict=True):
        np.testing.assert_array_equal(pcm, fake_pcm(codes[0][1 : n - 1]))


