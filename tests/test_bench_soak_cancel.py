"""``orpheus-ws bench soak`` and ``bench cancel`` (orpheus_ws.bench.soak, orpheus_ws.bench.cancel)
at smoke sizes: their invariants, never their timings."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orpheus_ws.bench.soak import growth
from orpheus_ws.devtools.llama_server import LlamaServerProcess

from .utils import scaled


def bench(tmp_path: Path, scenario: str, *args: str) -> dict[str, Any]:
    """The scenario's report from ``orpheus-ws bench SCENARIO ARGS``'s JSON."""
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "orpheus_ws.cli", "bench", scenario, *args, "--out", str(out)],
        capture_output=True, text=True, timeout=scaled(120))
    assert done.returncode in (0, 1) and out.exists(), done.stderr[-3000:]
    assert f"== {scenario} ==" in done.stdout
    report: dict[str, Any] = json.loads(out.read_text())[scenario]
    return report


def test_soak_keeps_completed_contexts_exact_through_cancels_and_drops(tmp_path: Path) -> None:
    """8 sessions for 15 s: contexts complete, are cancelled and lose their socket; every
    completed one is sample-exact, and the server's resources are sampled throughout."""
    report = bench(tmp_path, "soak", "--streams", "8", "--minutes", "0.25")
    assert report["inexact"] == 0 and report["inexact_examples"] == []
    assert report["completed"] > 0 and report["cancelled"] > 0
    assert report["sockets_dropped"] > 0 and report["dropped_mid_context"] > 0
    assert report["failed"] == {} and report["timeouts"] == 0
    samples = report["samples"]
    assert len(samples) >= 5
    assert all(s["rss_mb"] > 0 and s["fds"] > 0 and s["tasks"] > 0 for s in samples)
    for name in ("rss_mb", "fds", "tasks"):  # 15 s is too short to judge the growth itself
        value = report[f"{name}_growth_pct"]
        assert isinstance(value, float) and math.isfinite(value)
    assert report["after_close"]["tasks"] > 0
    assert report["met"] is all(report[f"{name}_growth_pct"] < 5
                                for name in ("rss_mb", "fds", "tasks"))


def test_growth_compares_the_last_fifth_with_the_fifth_after_warm_up() -> None:
    values = [1.0, 1.0, 10.0, 10.0, 5.0, 5.0, 7.0, 7.0, 11.0, 11.0]
    assert growth(values) == pytest.approx(0.1)  # 11 over 10: the warm-up is left out
    assert growth([3.0, 4.0]) == 0.0  # too few samples to say


def test_cancel_frees_the_slot_and_no_frame_follows_cancelled(
        tmp_path: Path, llama_server: LlamaServerProcess) -> None:
    """10 cancels against the real llama-server (the tiny GGUF, which speaks until
    max_tokens): each one answered by ``cancelled``, no frame after it, and a slot busy at the
    cancel found idle afterwards."""
    report = bench(tmp_path, "cancel", "--cancels", "10", "--llm-url", llama_server.url)
    assert report["frames_after_cancelled"] == 0 and report["met"] is True
    assert report["outcomes"] == {"cancelled": 10}
    assert report["idle_samples"] > 0
    rows = report["results"]
    assert len(rows) == 10 and all(row["frames_after_cancelled"] == 0 for row in rows)
    assert all(row["idle_ms"] > 0 for row in rows)
    assert 0 < report["idle_ms_p50"] <= report["idle_ms_p99"] <= report["idle_ms_max"]


def test_cancel_needs_a_running_llama_server(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orpheus_ws.cli", "bench", "cancel", "--cancels", "1",
         "--out", str(tmp_path / "bench.json")],
        capture_output=True, text=True, timeout=scaled(60))
    assert done.returncode == 2 and "--llm-url" in done.stderr
