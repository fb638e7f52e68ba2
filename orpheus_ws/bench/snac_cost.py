"""What a decode call costs per window length: the published SNAC modules against the server's
prepared network (baked weight norm, in-place snake, matmul upsample), side by side in one
process on the CPU, calls interleaved so both see the same machine."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..codec import SnacCodec

LENGTHS = (2, 3, 4, 6, 10, 18)


def measure_snac_cost(snac_model: str, *, lengths: tuple[int, ...] = LENGTHS,
                      repeats: int = 5) -> dict[str, Any]:
    import torch
    from snac import SNAC

    prepared = SnacCodec(snac_model, "cpu")
    published = SNAC.from_pretrained(snac_model).eval()
    rng = np.random.default_rng(0)
    rows = []
    for length in lengths:
        codes = [rng.integers(0, 4096, (1, m * length)) for m in (1, 2, 4)]
        tensors = [torch.from_numpy(c) for c in codes]

        def run_published(tensors: list[torch.Tensor] = tensors) -> None:
            with torch.inference_mode():
                published.decode(tensors)

        def run_prepared(codes: list[np.ndarray] = codes) -> None:
            prepared.decode(*codes)

        spent = {"published": 0.0, "prepared": 0.0}
        for round_ in range(repeats + 1):  # round 0 warms both up and is not counted
            for name, run in (("published", run_published), ("prepared", run_prepared)):
                started = time.perf_counter()
                run()
                if round_:
                    spent[name] += time.perf_counter() - started
        per_frame = {k: v / repeats / length * 1000 for k, v in spent.items()}
        rows.append({"frames": length,
                     "published_ms_per_frame": round(per_frame["published"], 2),
                     "prepared_ms_per_frame": round(per_frame["prepared"], 2),
                     "speedup": round(per_frame["published"] / per_frame["prepared"], 2)})
    return {"name": "snac", "threads": torch.get_num_threads(), "rows": rows}
