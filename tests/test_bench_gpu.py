"""``orpheus-ws bench gpu --smoke``: the GPU measurement's script, every step at tiny sizes on
this machine's CPU, so that it runs as it is on a GPU machine (BENCHMARKS.md, "GPU")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .utils import scaled


def test_bench_gpu_smoke_runs_every_step(tmp_path: Path, snac_dir: Path) -> None:
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, "-m", "orpheus_ws.cli", "bench", "gpu", "--smoke",
         "--snac-model", str(snac_dir), "--out", str(out)],
        capture_output=True, text=True, timeout=scaled(300))
    assert done.returncode == 0, done.stderr[-3000:]
    gpu = json.loads(out.read_text())["gpu"]
    assert gpu["smoke"] is True and gpu["device"] in ("cpu", "cuda")
    checks = gpu["checks"]
    assert checks["passed"] and checks["replay_max_abs_diff"] <= 1e-3
    assert [row["batch"] for row in gpu["decode_cost"]] == [1, 2]
    assert all(row["eager_ms"] > 0 for row in gpu["decode_cost"])
    streams = gpu["streams"]
    assert [t["streams"] for t in streams["trials"]][:1] == [1]
    assert streams["max_realtime_streams"] in (0, 1, 2)
    fitting = [t for t in streams["trials"] if t["fits"]]
    assert all(t["exact"] == t["streams"] for t in fitting)
    # the load and the stand-in ran in processes of their own, their share beside the server's
    assert all(t["load_cores"] > 0 and t["llm_cores"] > 0 for t in streams["trials"])
    assert "== gpu ==" in done.stdout
