"""The decoder service sharing calls across streams: windows of different lengths padded with
their own history, a stream's first window stretched, streams standing by invited into a call,
and calls rounded up to the codec's fast lengths."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest
import pytest_asyncio

from orpheus_ws.engine.codec import SnacCodec
from orpheus_ws.engine.decoder import Decoded, DecodeRequest, DecoderService

from .fakes import (
    LONG_WAIT,
    FakeCodec,
    Recording,
    alone,
    decoders,
    fake_pcm,
    relative_error,
    stream_codes,
    window,
)
from .utils import eventually, scaled


@pytest_asyncio.fixture
async def make_decoder() -> AsyncIterator[Callable[..., DecoderService]]:
    async with decoders(company=4) as make:
        yield make


async def test_windows_of_different_lengths_share_a_call_only_when_padding(
    make_decoder: Callable[..., DecoderService],
) -> None:
    long_history, short = stream_codes(8, 12), stream_codes(9, 6)
    for pad, shapes in ((True, [(2, 6)]), (False, [(1, 3), (1, 6)])):
        codec = FakeCodec()
        decoder = make_decoder(codec, max_batch=2, pad_windows=pad)
        (a, _), (b, _) = await asyncio.gather(
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
    (padded, _), (other, _) = await asyncio.gather(
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
        first, _ = await decoder.decode(starting, first=0, need=2, emit_start=0, emit_end=1)
        if not pad:
            assert recording.shapes == shapes[:1] and not later.done()
            await decoder.close()  # the other window waits for its (never) deadline
            with pytest.raises(asyncio.CancelledError):
                await later
            continue
        other, _ = await later
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
            return DecodeRequest(stream_codes(1, frames), first=first, need=frames,
                                 emit_start=first, emit_end=emit_end, deadline=0.0,
                                 future=loop.create_future())

        assert request(0, 2, 1).longest > 32  # frame 0 with frame 1 as context
        assert request(0, 3, 3).longest == 3  # the stream's end: no right context to repeat
        assert request(4, 3, 6).longest == 3  # a later window: its history pads it instead
        c0, c1, c2 = request(0, 2, 1).codes.fitted(4)
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

    async def rider() -> Decoded:
        await wake.wait()
        decoder.withdraw(ticket)
        assert ticket.invited
        return await decoder.decode(window(riding, 0, 6), first=0, need=4, emit_start=3,
                                    emit_end=5, max_wait_s=LONG_WAIT)

    waiting = asyncio.create_task(rider())
    pcm, _ = await decoder.decode(due, first=0, need=4, emit_start=1, emit_end=3)
    np.testing.assert_array_equal(pcm, fake_pcm(due[0][1:3]))
    assert wake.is_set() is joins and ticket.invited is joins
    assert decoder.stats.invited == int(joins)
    if not joins:
        assert len(codec.calls) == 1 and not waiting.done()
        waiting.cancel()
        return
    np.testing.assert_array_equal((await waiting).pcm, fake_pcm(riding[0][3:5]))
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
    codec.fast_lengths = (4, 10)
    decoder = make_decoder(codec)
    a, b, c = stream_codes(43, 12), stream_codes(44, 12), stream_codes(45, 12)
    queued = [
        asyncio.create_task(decoder.decode(a, first=0, need=3, emit_start=9, emit_end=11,
                                           max_wait_s=LONG_WAIT)),
        asyncio.create_task(decoder.decode(b, first=0, need=5, emit_start=8, emit_end=11,
                                           max_wait_s=LONG_WAIT)),
    ]
    await eventually(lambda: decoder.queued == 2, what="two windows queued")
    due, _ = await decoder.decode(c, first=0, need=3, emit_start=10, emit_end=11)
    (got_a, _), (got_b, _) = await asyncio.gather(*queued)
    np.testing.assert_array_equal(got_a, fake_pcm(a[0][9:11]))
    np.testing.assert_array_equal(got_b, fake_pcm(b[0][8:11]))
    np.testing.assert_array_equal(due, fake_pcm(c[0][10:11]))
    assert [call.shape for call in codec.calls] == [(3, 10)]  # 5 rounded up; all three fit

    short = window(c, 4, 9)  # frames 4..8 only: no history to pad with
    pcm, _ = await decoder.decode(short, first=4, need=5, emit_start=5, emit_end=8)
    np.testing.assert_array_equal(pcm, fake_pcm(c[0][5:8]))
    assert codec.calls[-1].shape == (1, 5)
