"""The chunk schedule: every frame exactly once, in order, with context; affordable_frames."""

from __future__ import annotations

import random

import pytest

from orpheus_ws.engine.schedule import ChunkSchedule, Window, affordable_frames


def drain(schedule: ChunkSchedule, received: int, ended: bool, target: int,
          exact: bool = False) -> list[Window]:
    """Asks for windows until the schedule says wait (as the segment stream does)."""
    windows = []
    while (window := schedule.next_window(received, ended, target, exact=exact)) is not None:
        windows.append(window)
        assert len(windows) < 1000
    return windows


def check_window(schedule: ChunkSchedule, window: Window, received: int, ended: bool,
                 exact: bool = False) -> None:
    context = schedule.context
    assert 0 <= window.start <= window.emit_start < window.emit_end <= window.end <= received
    # context on each side where there is any
    assert window.start == max(0, window.emit_start - context)
    assert window.end == min(received, window.emit_end + context)
    if not ended:
        assert window.end == window.emit_end + context  # never decoded without right context
    n = window.new_frames
    assert 1 <= n <= schedule.max_new_frames
    if not ended and not exact:
        assert n & (n - 1) == 0, "new frames come in powers of two while streaming"


def simulate(
    rng: random.Random, total: int, max_new_frames: int, context: int = 1
) -> tuple[ChunkSchedule, list[tuple[Window, int, bool]]]:
    """Frames arrive in random bursts, with random targets; returns every window issued."""
    schedule = ChunkSchedule(max_new_frames=max_new_frames, context=context)
    issued: list[tuple[Window, int, bool]] = []
    received = 0
    while received < total:
        received = min(total, received + rng.choice([1, 1, 1, 2, 3, 7, 20]))
        target = rng.randrange(1, 2 * max_new_frames + 2)
        exact = rng.random() < 0.2  # filling a jitter buffer: exactly the target
        before = schedule.emitted
        windows = drain(schedule, received, False, target, exact)
        issued.extend((w, received, False) for w in windows)
        for window in windows:
            check_window(schedule, window, received, False, exact)
        # the schedule waits only when the next window is not yet worth it
        ready = received - schedule.emitted - context
        want = min(target, max_new_frames)
        if not exact:
            want = 1 << (want.bit_length() - 1)
        assert ready < want, (before, schedule.emitted, received, target)
    windows = drain(schedule, received, True, rng.randrange(1, 20))
    issued.extend((w, received, True) for w in windows)
    for window in windows:
        check_window(schedule, window, received, True)
    return schedule, issued


@pytest.mark.parametrize("max_new_frames", [1, 2, 3, 4, 8, 16])
def test_every_frame_once_and_in_order(max_new_frames: int) -> None:
    rng = random.Random(max_new_frames)
    for _ in range(300):
        total = rng.randrange(1, 120)
        schedule, issued = simulate(rng, total, max_new_frames)
        emitted = [f for w, _, _ in issued for f in range(w.emit_start, w.emit_end)]
        assert emitted == list(range(total))
        assert schedule.emitted == total
        # nothing more once everything is out
        assert schedule.next_window(total, True) is None


def test_wider_context() -> None:
    rng = random.Random(7)
    for _ in range(200):
        total = rng.randrange(1, 60)
        _, issued = simulate(rng, total, 8, context=2)
        emitted = [f for w, _, _ in issued for f in range(w.emit_start, w.emit_end)]
        assert emitted == list(range(total))


def test_first_frame_leaves_once_two_frames_are_in() -> None:
    schedule = ChunkSchedule()
    assert schedule.next_window(0, False, 1) is None
    assert schedule.next_window(1, False, 1) is None
    assert schedule.next_window(2, False, 1) == Window(0, 2, 0, 1)


def test_first_window_waits_for_a_larger_target() -> None:
    # a later segment of an utterance: the listener has audio in hand, so no lone first frame
    schedule = ChunkSchedule(max_new_frames=16)
    for received in range(2, 5):
        assert schedule.next_window(received, False, 4) is None
    assert schedule.next_window(5, False, 4) == Window(0, 5, 0, 4)


def test_first_window_takes_what_is_ready() -> None:
    schedule = ChunkSchedule(max_new_frames=16)
    # six frames already in when first asked: four new frames (a power of two), one of context
    assert schedule.next_window(6, False, 1) == Window(0, 5, 0, 4)
    assert schedule.next_window(6, False, 1) == Window(3, 6, 4, 5)
    assert schedule.next_window(6, False, 1) is None


def test_later_windows_wait_for_the_target() -> None:
    schedule = ChunkSchedule(max_new_frames=16)
    assert schedule.next_window(2, False, 1) == Window(0, 2, 0, 1)
    for received in range(2, 6):
        assert schedule.next_window(received, False, 4) is None
    assert schedule.next_window(6, False, 4) == Window(0, 6, 1, 5)
    # a target that isn't a power of two rounds down: 3 -> 2
    assert schedule.next_window(7, False, 3) is None
    assert schedule.next_window(8, False, 3) == Window(4, 8, 5, 7)
    # more ready than the target: the window takes the largest power of two ready
    assert schedule.next_window(15, False, 2) == Window(6, 12, 7, 11)


def test_end_flushes_everything() -> None:
    schedule = ChunkSchedule(max_new_frames=4)
    assert schedule.next_window(2, False, 1) == Window(0, 2, 0, 1)
    windows = drain(schedule, 11, True, 16)
    assert windows == [Window(0, 6, 1, 5), Window(4, 10, 5, 9), Window(8, 11, 9, 11)]
    assert schedule.emitted == 11


def test_single_frame_utterance() -> None:
    schedule = ChunkSchedule()
    assert schedule.next_window(1, False) is None
    assert schedule.next_window(1, True) == Window(0, 1, 0, 1)
    assert schedule.next_window(1, True) is None


def test_empty_utterance() -> None:
    assert ChunkSchedule().next_window(0, True) is None


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        ChunkSchedule(max_new_frames=0)
    with pytest.raises(ValueError):
        ChunkSchedule(context=-1)


def test_affordable_frames_when_dry_or_unlimited() -> None:
    assert affordable_frames(0.0, 0.085, 0.02) == 1
    assert affordable_frames(0.06, 0.085, 0.02) == 1
    assert affordable_frames(100.0, 0.085, 0.02) == 16
    assert affordable_frames(100.0, 0.085, 0.02, cap=4) == 4
    assert affordable_frames(1.0, 0.0, 0.0) == 16
    assert affordable_frames(-1.0, 0.0, 0.0) == 1


def test_affordable_frames_fit_the_budget() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        buffered = rng.uniform(0, 3)
        interval = rng.uniform(0.001, 0.2)
        decode = rng.uniform(0.001, 0.1)
        margin = rng.uniform(0, 0.2)
        ready = rng.choice([0, 0, 1, 3, 8])
        k = affordable_frames(buffered, interval, decode, ready=ready, margin_s=margin, cap=16)
        assert 1 <= k <= 16

        def cost(n: int) -> float:
            # gather the n - ready frames not yet in, then decode n + 2 (the window's context)
            return (n - ready) * interval + (n + 2) * decode  # noqa: B023

        budget = buffered - margin
        if k > 1:
            assert cost(k) <= budget + 1e-9
        if k < 16:
            assert cost(k + 1) > budget - 1e-9


def test_affordable_frames_grow_with_the_buffer() -> None:
    previous = 0
    for step in range(400):
        k = affordable_frames(step * 0.01, 0.085, 0.03)
        assert k >= previous
        previous = k
    assert previous == 16


def test_ready_counts_new_frames_with_right_context() -> None:
    schedule = ChunkSchedule()
    assert [schedule.ready(n) for n in range(4)] == [0, 0, 1, 2]
    schedule.next_window(3, False, 1)  # emits frames 0..2
    assert schedule.emitted == 2
    assert schedule.ready(3) == 0
    assert schedule.ready(6) == 3


def test_an_exact_window_takes_the_target_not_a_power_of_two() -> None:
    schedule = ChunkSchedule(max_new_frames=16)
    assert schedule.next_window(2, False, 1) == Window(0, 2, 0, 1)
    assert schedule.next_window(4, False, 3, exact=True) is None  # frames 1, 2 ready: not 3
    assert schedule.next_window(5, False, 3, exact=True) == Window(0, 5, 1, 4)
    # without exact, a target of 3 rounds down to 2
    schedule = ChunkSchedule(max_new_frames=16)
    schedule.next_window(2, False, 1)
    assert schedule.next_window(4, False, 3) == Window(0, 4, 1, 3)


def test_frames_for_is_the_first_count_that_gives_a_window() -> None:
    """A segment waiting for its next window sleeps until ``frames_for`` frames are in: one
    frame fewer must give no window, that many must give one (pipeline.py)."""
    rng = random.Random(7)
    for _ in range(2000):
        emitted, target = rng.randrange(0, 60), rng.randrange(0, 40)
        exact = rng.random() < 0.5
        schedule = ChunkSchedule(max_new_frames=rng.choice([1, 4, 16]))
        schedule.emitted = emitted
        need = schedule.frames_for(target, exact=exact)
        assert schedule.next_window(need - 1, False, target, exact=exact) is None
        window = schedule.next_window(need, False, target, exact=exact)
        assert window is not None and window.emit_start == emitted
