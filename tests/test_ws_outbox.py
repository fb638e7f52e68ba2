"""The outbox: one socket's ordered, flow-controlled queue of outgoing messages (protocol.md,
"Limits, timeouts and flow control"). No socket: the tests play the send loop."""

from __future__ import annotations

import asyncio

import pytest

from orpheus_ws.transport.outbox import Outbox, Outgoing

from .utils import scaled


async def settle() -> None:
    """Lets every ready task run until it blocks again."""
    for _ in range(5):
        await asyncio.sleep(0)


async def take(outbox: Outbox) -> Outgoing:
    return await asyncio.wait_for(outbox.get(), scaled(5))


async def test_fifo_order_and_fields() -> None:
    outbox = Outbox(1 << 20)
    owner = object()
    sent: list[float] = []
    outbox.put("first")
    outbox.put(b"\x00\x01", owner, sent.append)
    outbox.put("third", owner)
    assert len(outbox) == 3
    first, second, third = [await take(outbox) for _ in range(3)]
    assert (first.data, first.owner, first.on_sent) == ("first", None, None)
    assert (second.data, second.owner) == (b"\x00\x01", owner)
    assert second.on_sent is not None
    second.on_sent(12.5)
    assert sent == [12.5]
    assert (third.data, third.owner, third.on_sent) == ("third", owner, None)
    assert len(outbox) == 0


async def test_bytes_accounting() -> None:
    outbox = Outbox(1 << 20)
    assert outbox.queued_bytes == 0
    outbox.put("abc")
    outbox.put(b"\x00" * 10)
    outbox.put("é")  # counted in characters, as queued
    assert outbox.queued_bytes == 14
    await take(outbox)
    assert outbox.queued_bytes == 11
    await take(outbox)
    await take(outbox)
    assert outbox.queued_bytes == 0


async def test_a_callable_counts_64_bytes() -> None:
    outbox = Outbox(1 << 20)
    outbox.put(lambda: "x" * 1000)
    assert outbox.queued_bytes == 64
    assert Outgoing(lambda: "").size == 64
    item = await take(outbox)
    assert callable(item.data)
    assert item.data() == "x" * 1000
    assert outbox.queued_bytes == 0


async def test_room_runs_out_at_max_bytes() -> None:
    outbox = Outbox(20)
    assert outbox.has_room
    outbox.put(b"\x00" * 10)
    assert outbox.has_room
    outbox.put(b"\x00" * 9)
    assert outbox.has_room  # 19 < 20
    outbox.put(b"\x00")
    assert not outbox.has_room  # 20: full
    await take(outbox)
    assert outbox.has_room


async def test_wait_for_room_returns_at_once_with_room() -> None:
    outbox = Outbox(20)
    outbox.put(b"\x00" * 5)
    await asyncio.wait_for(outbox.wait_for_room(), scaled(5))


async def test_wait_for_room_blocks_until_a_get_makes_room() -> None:
    outbox = Outbox(20)
    outbox.put(b"\x00" * 15)
    outbox.put(b"\x00" * 15)
    waiter = asyncio.ensure_future(outbox.wait_for_room())
    await settle()
    assert not waiter.done()
    await take(outbox)  # 15 < 20: room again
    await asyncio.wait_for(waiter, scaled(5))
    assert outbox.has_room


async def test_wait_for_room_keeps_waiting_while_still_full() -> None:
    outbox = Outbox(20)
    for _ in range(3):
        outbox.put(b"\x00" * 10)
    waiter = asyncio.ensure_future(outbox.wait_for_room())
    await settle()
    await take(outbox)  # 20 left: still full
    await settle()
    assert not waiter.done()
    assert not outbox.has_room
    await take(outbox)
    await asyncio.wait_for(waiter, scaled(5))


async def test_every_waiting_producer_wakes() -> None:
    outbox = Outbox(10)
    outbox.put(b"\x00" * 10)
    waiters = [asyncio.ensure_future(outbox.wait_for_room()) for _ in range(3)]
    await settle()
    assert not any(w.done() for w in waiters)
    await take(outbox)
    await asyncio.wait_for(asyncio.gather(*waiters), scaled(5))


async def test_get_waits_for_an_item() -> None:
    outbox = Outbox(100)
    getter = asyncio.ensure_future(outbox.get())
    await settle()
    assert not getter.done()
    outbox.put("hello")
    item = await asyncio.wait_for(getter, scaled(5))
    assert item.data == "hello"
    assert outbox.queued_bytes == 0


async def test_get_waits_again_once_drained() -> None:
    outbox = Outbox(100)
    outbox.put("one")
    assert (await take(outbox)).data == "one"
    getter = asyncio.ensure_future(outbox.get())
    await settle()
    assert not getter.done()
    outbox.put("two")
    assert (await asyncio.wait_for(getter, scaled(5))).data == "two"


async def test_purge_drops_only_that_owners_items() -> None:
    outbox = Outbox(1 << 20)
    a, b = object(), object()
    outbox.put("event")
    outbox.put(b"a1", a)
    outbox.put(b"b1", b)
    outbox.put(b"a22", a)
    outbox.put(b"b22", b)
    outbox.put(lambda: "made", a)
    outbox.purge(a)
    assert len(outbox) == 3
    assert outbox.queued_bytes == len("event") + 2 + 3
    assert [(await take(outbox)).data for _ in range(3)] == ["event", b"b1", b"b22"]


async def test_purge_restores_room_and_wakes_producers() -> None:
    outbox = Outbox(20)
    a, b = object(), object()
    outbox.put(b"\x00" * 15, a)
    outbox.put(b"\x00" * 4, b)
    outbox.put(b"\x00" * 5, a)
    assert not outbox.has_room
    waiter = asyncio.ensure_future(outbox.wait_for_room())
    await settle()
    assert not waiter.done()
    outbox.purge(a)
    assert outbox.has_room
    assert outbox.queued_bytes == 4
    await asyncio.wait_for(waiter, scaled(5))


async def test_purging_an_owner_with_nothing_queued_changes_nothing() -> None:
    outbox = Outbox(10)
    owner = object()
    outbox.put(b"\x00" * 10, owner)
    outbox.purge(object())
    assert (len(outbox), outbox.queued_bytes, outbox.has_room) == (1, 10, False)


@pytest.mark.parametrize("max_bytes", [1, 64, 1000])
async def test_a_get_after_a_purge_sees_only_what_is_left(max_bytes: int) -> None:
    outbox = Outbox(max_bytes)
    gone = object()
    outbox.put(b"\x00" * 100, gone)
    outbox.put("kept")
    outbox.purge(gone)
    item = await take(outbox)
    assert item.data == "kept"
    assert (len(outbox), outbox.queued_bytes, outbox.has_room) == (0, 0, True)
