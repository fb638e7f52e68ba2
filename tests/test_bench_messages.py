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
    assert isinstance(result["met"], bool)
    assert "== messages ==" in done.stdout
