"""Admission: the caps, the queue and its timeout, the refusals; slots taken and given back."""

from __future__ import annotations

import asyncio

import pytest

from orpheus_ws.engine import Admission
from orpheus_ws.exceptions import Draining, Overloaded, RateLimited

from .utils import eventually, scaled


async def test_a_slot_is_counted_until_it_is_given_back() -> None:
    admission = Admission(max_generations=2)
    await admission.acquire("a")
    await admission.acquire()
    assert admission.running == 2 and admission.by_key == {"a": 1}
    admission.release("a")
    assert admission.running == 1 and not admission.by_key
    async with admission.enter("b"):
        assert admission.running == 2 and admission.by_key == {"b": 1}
    admission.release()
    assert admission.running == 0


async def test_the_refusals() -> None:
    admission = Admission(max_generations=2, per_key=1)
    async with admission.enter("a"):
        with pytest.raises(RateLimited) as limited:
            await admission.acquire("a")
        assert limited.value.code == "rate_limited"
        async with admission.enter("b"):
            with pytest.raises(Overloaded) as busy:  # full, and no queue
                await admission.acquire("c")
            assert type(busy.value) is Overloaded and busy.value.code == "server_busy"
        admission.draining = True
        with pytest.raises(Draining):
            await admission.acquire("c")
    assert admission.running == 0 and admission.queued == 0


async def test_admission_over_capacity_is_server_busy_and_the_admitted_keep_going() -> None:
    admission = Admission(over_capacity=lambda running: "full" if running >= 2 else None)
    async with admission.enter(), admission.enter():
        with pytest.raises(Overloaded) as refused:
            async with admission.enter():
                pass
        assert refused.value.code == "server_busy" and admission.running == 2
    async with admission.enter():
        assert admission.running == 1


async def test_the_queue_takes_the_slots_given_back_in_turn() -> None:
    admission = Admission(max_generations=1, max_queued=2, queue_timeout_s=scaled(30))
    await admission.acquire()
    admitted: list[str] = []

    async def wait(name: str) -> None:
        await admission.acquire(name)
        admitted.append(name)

    first = asyncio.ensure_future(wait("first"))
    await eventually(lambda: admission.queued == 1)
    second = asyncio.ensure_future(wait("second"))
    await eventually(lambda: admission.queued == 2)
    with pytest.raises(Overloaded):  # the queue is full
        await admission.acquire()
    admission.release()
    await first
    assert admitted == ["first"] and admission.queued == 1 and not second.done()
    admission.release("first")
    await second
    assert admitted == ["first", "second"] and admission.queued == 0
    admission.release("second")
    assert admission.running == 0


async def test_a_woken_waiter_that_leaves_passes_its_turn_on() -> None:
    admission = Admission(max_generations=1, max_queued=2, queue_timeout_s=scaled(30))
    await admission.acquire()
    first = asyncio.ensure_future(admission.acquire("first"))
    await eventually(lambda: admission.queued == 1)
    second = asyncio.ensure_future(admission.acquire("second"))
    await eventually(lambda: admission.queued == 2)
    admission.release()  # wakes the first waiter, which is cancelled before it runs
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert admission.by_key == {"second": 1} and admission.queued == 0


async def test_a_waiter_is_refused_after_the_queue_timeout() -> None:
    admission = Admission(max_generations=1, max_queued=1, queue_timeout_s=0.01)
    async with admission.enter():
        with pytest.raises(Overloaded) as refused:
            await admission.acquire("late")
        assert "no generation slot freed" in str(refused.value)
        assert admission.queued == 0 and admission.running == 1
    assert admission.running == 0 and not admission.by_key
