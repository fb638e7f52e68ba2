"""``orpheus-ws bench quiet``: when a listener hears the first speech (orpheus_ws/bench/quiet.py),
and the scenario's report (its numbers are in BENCHMARKS.md, not asserted here)."""

from __future__ import annotations

import pytest

from orpheus_ws.bench.quiet import heard_at, run_quiet


def test_a_listener_hears_the_speech_after_what_came_before_it() -> None:
    # audio faster than real time: the quiet plays out first, the speech after it
    assert heard_at([(0.1, 24000, None), (0.2, 24000, 0)]) == pytest.approx(1.1)
    # audio late: the listener waits for it
    assert heard_at([(0.1, 2400, None), (0.5, 2400, 1200)]) == pytest.approx(0.55)
    assert heard_at([(0.1, 2400, None)]) is None


def test_the_scenario_reports_trimming_on_and_off() -> None:
    result = run_quiet(runs=1)
    for tps in (100, 200):
        for trim in ("on", "off"):
            assert result[f"ttfs_heard_ms_{tps}_tps_trim_{trim}"] > 0
        assert f"saving_ms_{tps}_tps" in result
