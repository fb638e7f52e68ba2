"""The load in processes of its own: a benchmark's socket clients never share the server's
process nor the bench's, run nicer than the server (``harness.OTHERS_NICE``), and their CPU is
reported beside the server's, so a figure is never the load generator's limit in disguise.

``run_load_processes`` starts ``processes`` children (``python -m orpheus_ws.bench.
load_process``), each running ``load.run_load`` over its share of the sessions, and returns
every context's result and the children's CPU seconds (their own rusage, read as each is
reaped).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .harness import OTHERS_NICE, lowered
from .load import ContextResult

STREAMS_PER_PROCESS = 128


def run_load_processes(ws_url: str, *, streams: int, contexts: int, text: str, paced: bool,
                       jitter_s: float, options: dict[str, Any] | None = None,
                       processes: int | None = None
                       ) -> tuple[list[ContextResult], float]:
    """Every context's result and the load processes' CPU seconds together."""
    count = max(1, min(streams, processes or -(-streams // STREAMS_PER_PROCESS)))
    shares = [streams // count + (1 if i < streams % count else 0) for i in range(count)]
    children: list[tuple[subprocess.Popen[bytes], Path]] = []
    for index, share in enumerate(shares):
        out = Path(tempfile.mkstemp(prefix="orpheus-load-", suffix=".json")[1])
        job = {"url": ws_url, "streams": share, "contexts": contexts, "text": text,
               "paced": paced, "jitter_s": jitter_s, "options": options or {},
               "seed": index, "out": str(out)}
        child = subprocess.Popen([sys.executable, "-m", "orpheus_ws.bench.load_process",
                                  json.dumps(job)], preexec_fn=lowered(OTHERS_NICE))
        children.append((child, out))
    results: list[ContextResult] = []
    cpu = 0.0
    failed: list[str] = []
    for child, out in children:
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        if child.returncode != 0:
            failed.append(f"load process {child.pid} exited with {child.returncode}")
        else:
            results.extend(_result(r) for r in json.loads(out.read_text()))
        out.unlink(missing_ok=True)
    if failed:
        raise RuntimeError("; ".join(failed))
    return results, cpu


def _result(row: dict[str, Any]) -> ContextResult:
    row["gaps"] = tuple(tuple(gap) for gap in row.get("gaps", ()))
    return ContextResult(**row)


def main() -> None:
    import asyncio

    from .load import run_load

    job = json.loads(sys.argv[1])
    results = asyncio.run(run_load(job["url"], streams=job["streams"],
                                   contexts=job["contexts"], text=job["text"],
                                   paced=job["paced"], jitter_s=job["jitter_s"],
                                   options=job["options"], seed=job["seed"]))
    Path(job["out"]).write_text(json.dumps([asdict(r) for r in results]))


if __name__ == "__main__":
    main()
