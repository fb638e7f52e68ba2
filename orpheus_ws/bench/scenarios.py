"""The five measurements of BENCHMARKS.md, each one function returning a JSON-able dict.

Every ratio is measured side by side within one run, since the machine is shared and noisy.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

from .harness import (
    BenchSetupError,
    cpu_snapshot,
    llm_backend,
    llm_process,
    orpheus_server,
    process_cpu,
    server_stats,
)
from .load import percentile, summarize
from .load_process import run_load_processes

SENTENCE = "The quick brown fox jumps over the lazy dog while the band plays on."
# A voice agent's reply: three sentences, so three segments of one context.
REPLY = ("Sure, I can help with that. Your order shipped this morning and should arrive on "
         "Thursday. Is there anything else I can do for you?")


def _ws(url: str) -> str:
    return url.replace("http://", "ws://") + "/api/tts/ws"


def load_run(*, llm_url: str, snac_model: str, streams: int, contexts: int, paced: bool,
             server: dict[str, Any], jitter_s: float = 0.2, text: str = REPLY,
             options: dict[str, Any] | None = None, tree: str | None = None
             ) -> dict[str, Any]:
    """One server process under load: CPU, decoder calls and latencies over the run. The
    load runs in processes of its own (``load_process.py``); its CPU and the stand-in LLM's
    are reported beside the server's. ``tree``: the server runs that source tree's code."""
    llm = llm_process(llm_url)
    with orpheus_server(llm_url, snac_model, tree=tree, **server) as (url, proc):
        before = server_stats(url)
        cpu0 = cpu_snapshot(proc)  # inside the stats requests: their CPU is not the run's
        llm0 = process_cpu(llm)
        wall0 = time.monotonic()
        results, load_cpu = run_load_processes(_ws(url), streams=streams, contexts=contexts,
                                               text=text, paced=paced, jitter_s=jitter_s,
                                               options=options)
        wall = time.monotonic() - wall0
        cpu1, threads = cpu_snapshot(proc), proc.num_threads()
        llm_cpu = process_cpu(llm) - llm0
        after = server_stats(url)
    cpu, loop_cpu, decoder_cpu = (end - start for end, start in zip(cpu1, cpu0, strict=True))
    summary = summarize(results)
    calls = after["decoder"]["calls"] - before["decoder"]["calls"]
    windows = after["decoder"]["windows"] - before["decoder"]["windows"]
    busy = after["decoder"]["busy_s"] - before["decoder"]["busy_s"]
    latencies = after["first_audio_added_ms"][len(before["first_audio_added_ms"]):]
    audio = summary["audio_s"]
    summary.update({
        "streams": streams, "paced": paced, "jitter_ms": round(jitter_s * 1000),
        "wall_s": round(wall, 2),
        "server_cpu_s": round(cpu, 3), "server_threads": threads,
        "server_cpu_s_per_audio_s": round(cpu / audio, 5) if audio else None,
        # split by thread: the event loop (everything but decoding) and the others (decoding)
        "loop_cpu_s_per_audio_s": round(loop_cpu / audio, 5) if audio else None,
        "decoder_threads_cpu_s_per_audio_s": round(decoder_cpu / audio, 5) if audio else None,
        "load_cpu_s": round(load_cpu, 3),
        "llm_cpu_s": round(llm_cpu, 3) if llm is not None else None,
        "decoder_busy_s": round(busy, 3),
        "decode_calls": calls, "decode_windows": windows,
        "mean_batch": round(windows / calls, 2) if calls else None,
        "calls_per_audio_s": round(calls / audio, 4) if audio else None,
        "added_latency_ms_p50": round(percentile(latencies, 50), 2),
        "added_latency_ms_p99": round(percentile(latencies, 99), 2),
        "added_latency_samples": len(latencies),
    })
    return summary


def overhead(snac_model: str, streams: int = 64, tps: float = 100.0, frames: int = 32,
             server: dict[str, Any] | None = None, jitter_s: float = 0.2,
             llm_url: str | None = None, paced: bool = False,
             baseline: str | None = None) -> dict[str, Any]:
    """1: server CPU per second of audio, pass-through codec, stand-in at ``tps``, every
    context admitted. ``baseline``: another source tree (the code before a change) measured
    the same way in the same run, this tree, then it, then each once more; the report gives
    the medians side by side and their ratio."""
    settings = {"codec": "passthrough", "realtime_admission": False, **(server or {})}
    trees: list[str | None] = [None] if baseline is None else [None, baseline] * 2
    runs: dict[str | None, list[dict[str, Any]]] = {}
    with llm_backend(llm_url, tps, 2 * streams, frames) as llm:  # 2 slots a session: lookahead
        for tree in trees:
            runs.setdefault(tree, []).append(load_run(
                llm_url=llm, snac_model=snac_model, streams=streams, contexts=2, paced=paced,
                jitter_s=jitter_s, options=_length(llm_url, frames), server=settings,
                tree=tree))
    value = _median_cpu(runs[None])
    result = {"name": "overhead", "target": "<= 0.0012 CPU-s per audio-s (issue #23; 0.01 "
              "before)", "value": value, "met": value is not None and value <= 0.0012,
              "run": _strip(runs[None][0])}
    if baseline is not None:
        before = _median_cpu(runs[baseline])
        result.update({"baseline": baseline, "baseline_value": before,
                       "ratio": round(before / value, 2) if before and value else None,
                       "runs": {"this": [_brief(r) for r in runs[None]],
                                "baseline": [_brief(r) for r in runs[baseline]]}})
    return result


def _median_cpu(runs: list[dict[str, Any]]) -> float | None:
    values = [r["server_cpu_s_per_audio_s"] for r in runs
              if r["server_cpu_s_per_audio_s"] is not None]
    return round(statistics.median(values), 5) if values else None


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("server_cpu_s_per_audio_s", "loop_cpu_s_per_audio_s", "server_cpu_s",
            "load_cpu_s", "llm_cpu_s", "audio_s", "wall_s", "contexts", "exact",
            "added_latency_ms_p50", "added_latency_ms_p99", "underruns_after_1s")
    return {k: run[k] for k in keys}


def batching(snac_model: str, streams: int = 32, tps: float = 100.0, frames: int = 32,
             server: dict[str, Any] | None = None, jitter_s: float = 0.2,
             llm_url: str | None = None, paced: bool = False) -> dict[str, Any]:
    """3 and 4: decode calls per audio second with batching on vs off, and the latency the
    server adds to first audio (batching on), pass-through codec."""
    with llm_backend(llm_url, tps, 2 * streams, frames) as llm:  # 2 slots a session: lookahead
        settings = {"codec": "passthrough", **(server or {})}
        on, off = (load_run(llm_url=llm, snac_model=snac_model, streams=streams, contexts=2,
                            paced=paced, jitter_s=jitter_s, options=_length(llm_url, frames),
                            server={**settings, "batching": enabled})
                   for enabled in (True, False))
    ratio = on["calls_per_audio_s"] / off["calls_per_audio_s"] if off["calls_per_audio_s"] \
        else None
    p50, p99 = on["added_latency_ms_p50"], on["added_latency_ms_p99"]
    return {
        "name": "batching", "target": "calls per audio-s on/off <= 1/8; added latency p50 <= "
        "5 ms, p99 <= 20 ms", "calls_ratio": round(ratio, 4) if ratio else None,
        "mean_batch": on["mean_batch"], "added_latency_ms_p50": p50,
        "added_latency_ms_p99": p99,
        "met": bool(ratio is not None and ratio <= 1 / 8 and p50 <= 5 and p99 <= 20),
        "batching_on": _strip(on), "batching_off": _strip(off),
    }


def realtime(snac_model: str, streams: int = 3, tps: float = 100.0, frames: int = 32,
             server: dict[str, Any] | None = None, jitter_s: float = 0.2,
             llm_url: str | None = None, paced: bool = False) -> dict[str, Any]:
    """5: real SNAC on this CPU, stand-in at ``tps``: underruns after the first second. The
    server admits by the decoder's real-time capacity (``--realtime-admission``): contexts it
    can't carry are refused (``server_busy``), and those it takes must not run dry."""
    with llm_backend(llm_url, tps, 2 * streams, frames) as llm:  # 2 slots a session: lookahead
        run = load_run(llm_url=llm, snac_model=snac_model, streams=streams, contexts=2,
                       paced=paced, jitter_s=jitter_s, options=_length(llm_url, frames),
                       server={"codec": "snac", "device": "cpu", "realtime_admission": True,
                               **(server or {})})
    return {"name": "realtime",
            "target": f"{streams} streams: no underrun after 1 s in those admitted",
            "underruns_after_1s": run["underruns_after_1s"],
            "underruns_first_1s": run["underruns_first_1s"],
            "admitted": run["contexts"], "refused": run["refused"],
            "met": run["underruns_after_1s"] == 0 and run["exact"] == run["contexts"] > 0,
            "run": _strip(run)}


def efficiency(snac_model: str, tps: float = 100.0, frames: int = 96, repeats: int = 2,
               server: dict[str, Any] | None = None, llm_url: str | None = None
               ) -> dict[str, Any]:
    """2: CPU of streamed decoding of an utterance against one decode of the same frames."""
    from .efficiency import measure_efficiency

    with llm_backend(llm_url, tps, 2, frames) as llm:
        result = asyncio.run(measure_efficiency(llm, snac_model, repeats=repeats,
                                                max_tokens=7 * frames))
    ratio = result["ratio"]
    return {"name": "efficiency", "target": "streamed / one-shot decode CPU <= 1.3",
            "value": ratio, "met": ratio <= 1.3, **result}


def encoders(snac_model: str, streams: int = 16, tps: float = 100.0, frames: int = 32,
             server: dict[str, Any] | None = None, llm_url: str | None = None,
             **_: Any) -> dict[str, Any]:
    """Server CPU per audio-second for MP3 and Opus against raw PCM (OpenAI speech route)."""
    from .encoders import measure_encoders

    return measure_encoders(snac_model, streams=streams, tps=tps, frames=frames, text=REPLY,
                            server=server, llm_url=llm_url)


def snac(snac_model: str, **_: Any) -> dict[str, Any]:
    """Decode cost per window length, published modules against the prepared network."""
    from .snac_cost import measure_snac_cost

    return measure_snac_cost(snac_model)


def _length(llm_url: str | None, frames: int) -> dict[str, Any] | None:
    """A running LLM server speaks until its model stops: cap each generation at ``frames``
    frames (7 tokens each), as the stand-in does by itself."""
    if not llm_url:
        return None
    if not 64 <= 7 * frames <= 2048:  # the server's max_tokens range
        raise BenchSetupError("with --llm-url, --frames must be 10-292 (max_tokens 64-2048)")
    return {"max_tokens": 7 * frames}


def _strip(run: dict[str, Any]) -> dict[str, Any]:
    return run  # per-context results stay in the JSON; the table leaves them out


def machine() -> dict[str, Any]:
    import platform

    import torch

    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(), "platform": platform.platform()}


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")
