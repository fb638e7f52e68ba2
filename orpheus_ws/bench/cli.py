"""``orpheus-ws bench SCENARIO``: the measurements of BENCHMARKS.md, or a custom load.

Scenarios: ``overhead`` (1), ``efficiency`` (2), ``batching`` (3 and 4), ``realtime`` (5),
``snac`` (decode cost per window length), ``encoders`` (server CPU for MP3 and Opus against raw
PCM), ``all`` (every one of those), ``load`` (a custom load against a running server: --url),
``soak`` (N sessions for --minutes with random cancels and drops: leaks, exactness; not in
``all``), ``cancel`` (--cancels cancels against a real llama-server, --llm-url: slot idle time,
frames after ``cancelled``; not in ``all``), ``gpu`` (the GPU measurement: CUDA checks,
decode cost by batch, real-time streams carried; ``--smoke`` for tiny sizes), ``messages``
(what one client message costs the event loop: the segmenter, a socket adapter), ``quiet``
(time to first speech as heard, the leading quiet trimmed and not), ``strays`` (the token
parser's tolerance of audio tokens out of position: speech failed against junk refused),
``wyoming`` (time to first audio over Wyoming streaming against the native socket). The
scenarios
start a stand-in LLM server, or use a running one (e.g. a real llama-server) with --llm-url.
Each prints a table and writes JSON (--out). Without --snac-model, SNAC with random weights
(same network, same cost) is written to a temporary folder, so no weights are downloaded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import scenarios
from .harness import BenchSetupError
from .load import run_load, summarize

SCENARIOS = ("overhead", "efficiency", "batching", "realtime", "snac", "encoders", "all",
             "load", "soak", "cancel", "gpu", "messages", "quiet", "strays", "wyoming")
# the pass-through codec or no server: no SNAC weights
NO_SNAC = ("load", "soak", "cancel", "messages", "quiet", "strays", "wyoming")


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--snac-model", default=None,
                        help="SNAC weights (repo id or folder); default: random weights")
    parser.add_argument("--streams", type=int, default=None, help="concurrent sessions")
    parser.add_argument("--tokens-per-second", type=float, default=100.0,
                        help="stand-in LLM speed per stream")
    parser.add_argument("--frames", type=int, default=None, help="frames per utterance")
    parser.add_argument("--out", default="bench-results/bench.json", help="JSON output")
    parser.add_argument("--url", default="http://127.0.0.1:9100",
                        help="load: a running orpheus_ws server")
    parser.add_argument("--llm-url", default=None,
                        help="a running LLM server (e.g. a real llama-server) instead of the "
                        "stand-in; --tokens-per-second then doesn't apply, and each "
                        "generation is capped at --frames frames")
    parser.add_argument("--contexts", type=int, default=2, help="load: utterances per session")
    parser.add_argument("--paced", action="store_true",
                        help="send the text word by word at an LLM's pace (default: whole)")
    parser.add_argument("--text", default=scenarios.SENTENCE, help="load: the text to speak")
    parser.add_argument("--jitter-ms", type=float, default=200.0,
                        help="the simulated player's jitter buffer (declared to the server)")
    parser.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                        help="a server setting for the scenario's server (e.g. max_batch=64)")
    parser.add_argument("--smoke", action="store_true",
                        help="gpu: every step at tiny sizes (the test suite runs it on the CPU)")
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="soak: how long (fractions allowed)")
    parser.add_argument("--cancels", type=int, default=1000, help="cancel: how many")
    parser.add_argument("--baseline", default=None, metavar="TREE",
                        help="overhead: also run the server from this source tree (the code "
                        "before a change), alternating with this one, and give both")
    parser.add_argument("--seed", type=int, default=0,
                        help="soak, cancel: the random texts, actions and points")


def _kwargs(args: argparse.Namespace, **defaults: Any) -> dict[str, Any]:
    out = dict(defaults)
    if args.streams:
        out["streams"] = args.streams
    if args.frames:
        out["frames"] = args.frames
    out["tps"] = args.tokens_per_second
    out["server"] = dict(item.split("=", 1) for item in args.set)
    out["jitter_s"] = args.jitter_ms / 1000
    out["llm_url"] = args.llm_url
    out["paced"] = args.paced
    return out


def run_bench(args: argparse.Namespace) -> int:
    """0: every target met, 1: some missed, 2: the benchmark could not run."""
    try:
        return _run_bench(args)
    except BenchSetupError as exc:
        print(f"orpheus-ws bench: {exc}", file=sys.stderr)
        return 2


def _run_bench(args: argparse.Namespace) -> int:
    if args.snac_model is not None or args.scenario in NO_SNAC:
        return _run(args, args.snac_model)
    from ..devtools.random_snac import save_random_snac

    # Random weights (same network and cost as the published ones), removed afterwards.
    with tempfile.TemporaryDirectory(prefix="snac-random-") as folder:
        return _run(args, str(save_random_snac(Path(folder))))


def _run(args: argparse.Namespace, snac_model: str | None) -> int:
    report: dict[str, Any] = {"machine": scenarios.machine(), "scenario": args.scenario,
                              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    chosen = ["overhead", "efficiency", "batching", "realtime", "snac", "encoders"] \
        if args.scenario == "all" \
        else [args.scenario]
    for name in chosen:
        if name == "load":
            results = asyncio.run(run_load(
                args.url.replace("http://", "ws://") + "/api/tts/ws",
                streams=args.streams or 4, contexts=args.contexts, text=args.text,
                paced=args.paced, jitter_s=args.jitter_ms / 1000))
            report["load"] = summarize(results)
            _print_table("load", {k: v for k, v in report["load"].items() if k != "results"})
            continue
        if name in ("messages", "quiet", "strays", "wyoming"):
            from .messages import run_messages
            from .quiet import run_quiet
            from .strays import run_strays
            from .wyoming import run_wyoming

            measure: dict[str, Callable[[], dict[str, Any]]] = {
                "messages": run_messages, "quiet": run_quiet, "strays": run_strays,
                "wyoming": run_wyoming}
            report[name] = result = measure[name]()
            _print_table(name, result)
            continue
        if name == "gpu":
            from .gpu import run_gpu

            assert snac_model is not None
            report[name] = result = run_gpu(snac_model, smoke=args.smoke)
            _print_table(name, result)
            continue
        kwargs = _kwargs(args)
        if name in ("soak", "cancel"):
            report[name] = result = _stress(name, args, snac_model, kwargs)
            _print_table(name, result)
            continue
        if name == "overhead" and args.baseline:
            kwargs["baseline"] = str(Path(args.baseline).resolve())
        if name == "efficiency":
            kwargs.pop("streams", None)
            kwargs.pop("jitter_s", None)
            kwargs.pop("paced", None)
        result = getattr(scenarios, name)(snac_model, **kwargs)
        report[name] = result
        _print_table(name, result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nJSON written to {out}")
    met = [report[n].get("met", True) for n in chosen if n != "load"]
    return 0 if all(met) else 1


def _stress(name: str, args: argparse.Namespace, snac_model: str | None,
            kwargs: dict[str, Any]) -> dict[str, Any]:
    if name == "soak":
        from .soak import soak

        return soak(snac_model, minutes=args.minutes, seed=args.seed, **kwargs)
    from .cancel import cancel

    return cancel(snac_model, cancels=args.cancels, seed=args.seed, server=kwargs["server"],
                  llm_url=args.llm_url)


def _print_table(name: str, result: dict[str, Any]) -> None:
    print(f"\n== {name} ==")
    for key, value in result.items():
        if key == "results":
            continue
        if isinstance(value, dict):
            print(f"  {key}:")
            for k, v in value.items():
                if k != "results":
                    print(f"    {k:<28} {v}")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            print(f"  {key}:")
            for row in value:
                print("    " + "  ".join(f"{k} {v}" for k, v in row.items()))
        else:
            print(f"  {key:<30} {value}")
