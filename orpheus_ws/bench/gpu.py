"""``orpheus-ws bench gpu``: the GPU measurement, ready to run on a bare GPU machine with no
network (BENCHMARKS.md, "GPU"), in under 8 minutes. Three steps, one JSON file and a table:

1. **checks** (the CUDA-only checks): SNAC's CUDA graphs are captured at start-up, and a
   decode through them (graph replay) equals the eager network's on the same codes;
2. **decode cost** per call at batch 1, 8, 32 and 128, with graphs and without;
3. **streams**: the largest number of real-time streams the server carries (stand-in LLM at
   100 tokens/s per stream, real SNAC on the device, admission off) with zero underruns after
   the first second, found by doubling then bisecting, with the server's CPU per stream at
   that load.

``--smoke`` runs every step at tiny sizes on whatever device there is (the CPU here, without
graphs), so the script is exercised by the test suite and cannot rot.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..engine import SnacCodec
from .harness import llm_backend


def _codes(batch: int, frames: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 4096, (batch, m * frames)) for m in (1, 2, 4)]


def checks(snac_model: str, device: str) -> dict[str, Any]:
    """Graphs captured (on CUDA) and graph replay equal to eager decoding."""
    graphs = device == "cuda"
    served = SnacCodec(snac_model, device, noise=False, graphs=graphs)
    eager = SnacCodec(snac_model, device, noise=False, graphs=False)
    worst = 0.0
    for batch, frames in ((1, 2), (4, 10), (8, 18)):
        codes = _codes(batch, frames, seed=batch)
        worst = max(worst, float(np.abs(served.decode(*codes) - eager.decode(*codes)).max()))
    captured = len(served.captured_shapes)
    return {"device": device, "graphs": graphs, "captured_shapes": captured,
            "replay_max_abs_diff": round(worst, 6),
            "passed": (captured > 0 or not graphs) and worst <= 1e-3}


def decode_cost(snac_model: str, device: str, batches: tuple[int, ...], frames: int,
                repeats: int) -> list[dict[str, Any]]:
    """Milliseconds per decode call of ``frames`` frames, by batch, graphs on and off."""
    modes = (True, False) if device == "cuda" else (False,)
    codecs = {graphs: SnacCodec(snac_model, device, noise=False, graphs=graphs)
              for graphs in modes}
    rows = []
    for batch in batches:
        codes = _codes(batch, frames)
        row: dict[str, Any] = {"batch": batch, "frames": frames}
        for graphs, codec in codecs.items():
            codec.decode(*codes)  # warm: the first call of a shape pays its set-up
            started = time.perf_counter()
            for _ in range(repeats):
                codec.decode(*codes)
            ms = (time.perf_counter() - started) / repeats * 1000
            row["graphs_ms" if graphs else "eager_ms"] = round(ms, 2)
            row["graphs_ms_per_stream_frame" if graphs else "eager_ms_per_stream_frame"] = \
                round(ms / batch / frames, 4)
        rows.append(row)
    return rows


def max_streams(snac_model: str, device: str, *, start: int, limit: int, frames: int,
                tps: float = 100.0) -> dict[str, Any]:
    """The most real-time streams with no underrun after the first second. One stand-in and
    one server for every trial (SNAC's graphs are captured once), loads of growing size."""
    from .harness import cpu_snapshot, llm_process, orpheus_server, process_cpu
    from .load import summarize
    from .load_process import run_load_processes
    from .scenarios import REPLY

    trials: list[dict[str, Any]] = []
    settings: dict[str, Any] = {"codec": "snac", "device": device, "realtime_admission": False}
    with llm_backend(None, tps, 2 * limit, frames) as llm, \
            orpheus_server(llm, snac_model, **settings) as (url, proc):

        stand_in = llm_process(llm)

        def fits(streams: int) -> bool:
            cpu0, wall0 = cpu_snapshot(proc)[0], time.monotonic()
            llm0 = process_cpu(stand_in)
            results, load_cpu = run_load_processes(  # the load in processes of its own
                url.replace("http://", "ws://") + "/api/tts/ws", streams=streams, contexts=1,
                text=REPLY, paced=False, jitter_s=0.2)
            run = summarize(results)
            wall = time.monotonic() - wall0
            cores = (cpu_snapshot(proc)[0] - cpu0) / wall
            llm_cores = (process_cpu(stand_in) - llm0) / wall if stand_in is not None else None
            ok = bool(run["underruns_after_1s"] == 0 and run["exact"] == run["contexts"]
                      == streams)
            trials.append({"streams": streams, "underruns_after_1s": run["underruns_after_1s"],
                           "exact": run["exact"], "ttfa_ms_p50": run["ttfa_ms_p50"],
                           "ttfs_ms_p50": run["ttfs_ms_p50"],
                           "server_cores": round(cores, 3),
                           "server_cores_per_stream": round(cores / streams, 4),
                           "load_cores": round(load_cpu / wall, 3),
                           "llm_cores": None if llm_cores is None else round(llm_cores, 3),
                           "fits": ok})
            return ok

        good, bad = 0, None
        streams = start
        while streams <= limit:  # double while it fits
            if not fits(streams):
                bad = streams
                break
            good, streams = streams, streams * 2
        while bad is not None and bad - good > max(1, good // 8):  # then bisect, to 1/8
            middle = (good + bad) // 2
            good, bad = (middle, bad) if fits(middle) else (good, middle)
    best = next((t for t in trials if t["streams"] == good), None)
    return {"max_realtime_streams": good, "limit_reached": bad is None,
            "server_cores_per_stream": best["server_cores_per_stream"] if best else None,
            "trials": trials}


def run_gpu(snac_model: str, *, smoke: bool = False) -> dict[str, Any]:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.monotonic()
    result: dict[str, Any] = {"name": "gpu", "device": device, "smoke": smoke,
                              "torch": torch.__version__,
                              "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None}
    result["checks"] = checks(snac_model, device)
    result["decode_cost"] = decode_cost(
        snac_model, device, (1, 2) if smoke else (1, 8, 32, 128), 2 if smoke else 10,
        1 if smoke else 20)
    result["streams"] = max_streams(snac_model, device, start=1 if smoke else 8,
                                    limit=2 if smoke else 1024, frames=8 if smoke else 64)
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["met"] = bool(result["checks"]["passed"])
    return result
