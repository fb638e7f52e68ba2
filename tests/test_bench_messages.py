"""``orpheus-ws bench messages`` runs and reports what one message costs the loop (no timing
is asserted here: BENCHMARKS.md has the numbers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .utils import scaled


def test_bench_messages_reports_each_measurement(tmp_path: Path) -> None:
    out = tmp_path / "messages.json"
    done = subprocess.run([sys.executable, "-m", "orpheus_ws.cli", "bench", "messages",
                           "--out", str(out)], capture_output=True, text=True,
                          timeout=scaled(300))
    assert done.returncode in (0, 1), done.stderr[-2000:]
    result = json.loads(out.read_text())["messages"]
    for chars in (5000, 65536, 1000000):
        assert result[f"segmenter_{chars}_chars_ms"] > 0
    assert result["deepgram_speak_4999_chars_ms"] > 0
    assert result["deepgram_speak_65000_chars_ms"] > 0
    assert result["repeat_watch_false_loops"] == 0  # sampled codes are never taken for a loop
    assert result["repeat_watch_us_per_frame"] > 0
    assert all(result[f"normalize_{language}_sentence_us"] > 0
               for language in ("en", "fr", "de", "es", "zh"))
    assert isinstance(result["met"], bool)
    assert "== messages ==" in done.stdout


def test_bench_strays_compares_the_parser_tolerances() -> None:
    """``bench strays`` at a small size: a larger tolerance fails fewer generations with
    strays in them and takes more tokens to refuse junk; the default is the one it reports."""
    from orpheus_ws.bench.strays import run_strays
    from orpheus_ws.engine.tokens import MAX_LOST_IN_A_ROW

    result = run_strays(generations=40, frames=300, trials=300)
    assert result["default_max_lost"] == MAX_LOST_IN_A_ROW
    failed = {(row["max_lost"], row["stray_rate"]): row["generations_failed_pct"]
              for row in result["speech"]}
    assert failed[(1, 0.01)] >= failed[(2, 0.01)] >= failed[(3, 0.01)]
    assert failed[(1, 0.01)] > failed[(3, 0.01)]
    junk = [row["junk_refused_after_tokens_p50"] for row in result["junk"]]
    assert junk == sorted(junk) and junk[0] < junk[-1]
    assert all(row["junk_refused_after_tokens_p99"] <= 7 * (row["max_lost"] + 1) * 2
               for row in result["junk"])


def test_bench_wyoming_compares_its_first_audio_with_the_native_sockets() -> None:
    """``bench wyoming`` at a small size: both paths speak, each timed from the first text
    sent to the first audio received (no timing is asserted: BENCHMARKS.md has the numbers)."""
    from orpheus_ws.bench.wyoming import run_wyoming

    result = run_wyoming(runs=2, tps=400)
    assert result["native_ttfa_ms_p50"] > 0 and result["wyoming_ttfa_ms_p50"] > 0
    assert result["wyoming_adds_ms_p50"] == round(
        result["wyoming_ttfa_ms_p50"] - result["native_ttfa_ms_p50"], 1)
    assert isinstance(result["met"], bool)
