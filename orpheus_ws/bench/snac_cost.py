"""What a decode call costs per window length: the published SNAC modules (eager) against the
server's codec (prepared network; on CUDA also its CUDA graphs), side by side in one process,
calls interleaved so both see the same machine. On the CPU at batch 1; where torch sees CUDA,
also on the GPU at batch 1 and 32."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..engine import SnacCodec

LENGTHS = (2, 3, 4, 6, 10, 18)


def measure_snac_cost(snac_model: str, *, lengths: tuple[int, ...] = LENGTHS,
                      repeats: int = 5) -> dict[str, Any]:
    import torch

    rows = _measure(snac_model, "cpu", (1,), lengths, repeats)
    if torch.cuda.is_available():
        rows += _measure(snac_model, "cuda", (1, 32), lengths, repeats)
    return {"name": "snac", "threads": torch.get_num_threads(), "rows": rows}


def _measure(snac_model: str, device: str, batches: tuple[int, ...],
             lengths: tuple[int, ...], repeats: int) -> list[dict[str, Any]]:
    import torch
    from snac import SNAC

    served = SnacCodec(snac_model, device)
    published = SNAC.from_pretrained(snac_model).eval().to(device)
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        for length in lengths:
            codes = [rng.integers(0, 4096, (batch, m * length)) for m in (1, 2, 4)]
            tensors = [torch.from_numpy(c).to(device) for c in codes]

            def run_published(tensors: list[torch.Tensor] = tensors) -> None:
                with torch.inference_mode():
                    published.decode(tensors).cpu()

            def run_served(codes: list[np.ndarray] = codes) -> None:
                served.decode(*codes)

            spent = _interleaved({"published": run_published, "served": run_served}, repeats)
            ms = {k: v / repeats / length * 1000 for k, v in spent.items()}
            rows.append({"device": device, "batch": batch, "frames": length,
                         "published_ms_per_frame": round(ms["published"], 2),
                         "served_ms_per_frame": round(ms["served"], 2),
                         "speedup": round(ms["published"] / ms["served"], 2)})
    return rows


def _interleaved(runs: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    spent = dict.fromkeys(runs, 0.0)
    for round_ in range(repeats + 1):  # round 0 warms everything up and is not counted
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            if round_:
                spent[name] += time.perf_counter() - started
    return spent
