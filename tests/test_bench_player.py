"""The benchmark's simulated player and load summary (orpheus_ws.bench)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import orpheus_ws
from orpheus_ws.bench.load import ContextResult, percentile, summarize
from orpheus_ws.bench.player import simulate_player
from orpheus_ws.devtools.llama_server import LlamaServerProcess, free_port

from .utils import scaled


def test_a_stream_faster_than_real_time_never_underruns() -> None:
    arrivals = [(0.05 * k, 0.0853) for k in range(40)]
    result = simulate_player(arrivals, jitter_s=0.2)
    assert (result.underruns, result.early_underruns, result.gaps) == (0, 0, ())
    assert result.started_at == 0.1  # the third chunk fills the 200 ms jitter buffer


def test_gaps_are_counted_where_they_happen() -> None:
    # 0.5 s of audio at once, then a chunk 0.3 s after the audio ran out, then one 2 s later
    arrivals = [(0.0, 0.5), (0.8, 1.0), (3.8, 0.5)]
    result = simulate_player(arrivals, jitter_s=0.2, grace_s=1.0)
    assert result.gaps == ((0.5, 0.3), (1.5, 2.0))
    assert (result.early_underruns, result.underruns) == (1, 1)
    assert result.underrun_s == 2.0


def test_summary_counts_exactness_and_percentiles() -> None:
    results = [ContextResult(0.1 * k, 0.3 * k, 2048 * k, k, k != 3, 0, 0, 0.0, 0.0853 * k, 1.0)
               for k in range(1, 6)]
    summary = summarize(results)
    assert summary["exact"] == 4 and summary["contexts"] == 5
    assert summary["ttfs_ms_p50"] is None  # none of them had speech
    spoke = [replace(r, ttfs_s=r.ttfa_s + 0.5) if r.frames > 2 else r for r in results]
    assert summarize(spoke)["ttfs_ms_p50"] == 900.0  # over the three that spoke
    assert summary["ttfa_ms_p50"] == 300.0 and summary["playback_start_ms_p50"] == 900.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


@pytest.mark.parametrize("paced", [False, True])
def test_bench_command_runs_a_scenario_end_to_end(tmp_path: Path, paced: bool) -> None:
    """``orpheus-ws bench overhead`` with a small load: stand-in and server processes, the
    load through the client (the text whole, or word by word), and a JSON report whose
    numbers add up."""
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "orpheus_ws.cli", "bench", "overhead", "--streams", "2",
         "--frames", "4", "--tokens-per-second", "400", "--out", str(out),
         *(["--paced"] if paced else [])],
        capture_output=True, text=True, timeout=scaled(180))
    assert done.returncode in (0, 1) and out.exists(), done.stderr[-3000:]
    report = json.loads(out.read_text())["overhead"]
    run = report["run"]
    assert run["contexts"] == 4 and run["exact"] == 4  # 2 sessions x 2 replies, sample-exact
    assert (run["paced"], run["jitter_ms"]) == (paced, 200)
    assert run["audio_s"] == round(4 * 3 * 4 * 2048 / 24000, 2)  # 3 sentences of 4 frames
    assert run["server_cpu_s"] > 0 and run["decode_calls"] > 0
    assert run["ttfs_ms_p50"] is None  # the pass-through codec's silence: no speech
    loop, decoder = run["loop_cpu_s_per_audio_s"], run["decoder_threads_cpu_s_per_audio_s"]
    assert loop > 0 and decoder >= 0  # the pass-through codec: almost all of it is the loop
    # the split counts the threads alive at the end (one that ended took its time with it),
    # so it does not exceed the process's total by more than the kernel's rounding: each
    # thread's time and the total are counted in 10 ms clock ticks, rounded apart
    ticks = 0.02 * (1 + run["server_threads"]) / run["audio_s"]
    assert loop + decoder <= run["server_cpu_s_per_audio_s"] + ticks
    assert "== overhead ==" in done.stdout
    # the load and the stand-in LLM ran in processes of their own, their CPU beside the server's
    assert run["load_cpu_s"] > 0 and run["llm_cpu_s"] > 0


def test_overhead_runs_a_baseline_tree_side_by_side(tmp_path: Path) -> None:
    """``--baseline TREE``: the server from another source tree (here a copy of this one's
    package, changed so the report can tell which ran), alternating with this tree's, both
    in the report with their ratio."""
    tree = tmp_path / "before"
    shutil.copytree(Path(orpheus_ws.__file__).parent, tree / "orpheus_ws",
                    ignore=shutil.ignore_patterns("__pycache__"))
    marker = tree / "ran.txt"
    init = tree / "orpheus_ws" / "__init__.py"
    init.write_text(init.read_text() + "\nfrom pathlib import Path as _Path\n"
                    f"_Path({str(marker)!r}).write_text('baseline')\n")
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "orpheus_ws.cli", "bench", "overhead", "--streams", "2",
         "--frames", "4", "--tokens-per-second", "400", "--baseline", str(tree),
         "--out", str(out)], capture_output=True, text=True, timeout=scaled(300))
    assert done.returncode in (0, 1) and out.exists(), done.stderr[-3000:]
    report = json.loads(out.read_text())["overhead"]
    assert marker.read_text() == "baseline"  # the baseline's server ran the other tree
    assert report["baseline"] == str(tree)
    assert [len(report["runs"][k]) for k in ("this", "baseline")] == [2, 2]
    for run in report["runs"]["this"] + report["runs"]["baseline"]:
        assert run["contexts"] == run["exact"] == 4
    assert report["baseline_value"] > 0
    assert report["ratio"] == round(report["baseline_value"] / report["value"], 2)


def test_bench_runs_on_a_real_llama_server(tmp_path: Path, snac_dir: Path,
                                          llama_server: LlamaServerProcess) -> None:
    """``--llm-url``: the scenario's server generates with a running llama-server (the tiny
    GGUF, which speaks until max_tokens) instead of a stand-in; each generation is capped at
    ``--frames`` frames, and real SNAC decodes it."""
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "orpheus_ws.cli", "bench", "realtime", "--streams", "1",
         "--frames", "10", "--llm-url", llama_server.url, "--snac-model", str(snac_dir),
         "--out", str(out)],
        capture_output=True, text=True, timeout=scaled(240))
    assert done.returncode in (0, 1) and out.exists(), done.stderr[-3000:]
    run = json.loads(out.read_text())["realtime"]["run"]
    assert run["contexts"] == 2 and run["exact"] == 2
    # max_tokens 70 also bounds a segment's text (about 6 characters a token): the reply is
    # spoken in short segments, each of exactly 10 frames
    frames = [r["frames"] for r in run["results"]]
    assert all(n > 10 and n % 10 == 0 for n in frames), frames
    assert run["decode_calls"] > 0
    # random SNAC weights are loud from the first frame: speech comes with the first audio
    assert all(r["ttfs_s"] >= r["ttfa_s"] for r in run["results"])
    assert run["ttfs_ms_p50"] >= run["ttfa_ms_p50"]


def test_bench_refuses_an_llm_url_that_does_not_answer(tmp_path: Path, snac_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orpheus_ws.cli", "bench", "overhead", "--llm-url",
         f"http://127.0.0.1:{free_port()}", "--snac-model", str(snac_dir),
         "--out", str(tmp_path / "bench.json")],
        capture_output=True, text=True, timeout=scaled(60))
    assert done.returncode not in (0, 1)
    assert "not reachable" in done.stderr


def test_snac_cost_compares_published_and_prepared_modules(snac_dir: Path) -> None:
    from orpheus_ws.bench.snac_cost import measure_snac_cost

    result = measure_snac_cost(str(snac_dir), lengths=(2, 3), repeats=1)
    assert [row["frames"] for row in result["rows"]] == [2, 3]
    for row in result["rows"]:
        assert row["published_ms_per_frame"] > 0 and row["served_ms_per_frame"] > 0
        assert row["speedup"] == pytest.approx(
            row["published_ms_per_frame"] / row["served_ms_per_frame"], rel=0.05)


def test_bench_encoders_compares_formats_in_one_server(tmp_path: Path) -> None:
    """``orpheus-ws bench encoders``: PCM, MP3 and Opus through the OpenAI route, side by
    side; every phase hears the same audio, and the compressed ones are smaller."""
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "orpheus_ws.cli", "bench", "encoders", "--streams", "2",
         "--frames", "4", "--tokens-per-second", "400", "--out", str(out)],
        capture_output=True, text=True, timeout=scaled(180))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())["encoders"]
    rows = report["formats"]
    assert set(rows) == {"pcm", "mp3", "opus"}
    audio = 2 * 2 * 3 * 4 * 2048 / 24000  # 2 rounds x 2 streams x 3 sentences of 4 frames
    assert all(row["audio_s"] == round(audio, 1) for row in rows.values())
    assert rows["pcm"]["kbit_per_s"] == 384.0  # 24 kHz x 16 bit, exactly
    assert rows["mp3"]["kbit_per_s"] < 100 and rows["opus"]["kbit_per_s"] < 100
    assert report["ratio_to_pcm"]["pcm"] == 1.0
    assert all(row["cpu_s_per_audio_s"] > 0 for row in rows.values())


def test_the_stand_in_and_the_load_run_nicer_than_the_server() -> None:
    """On a machine of few cores the stand-in LLM and the load would take the cores the
    server's loop waits for: they run ``OTHERS_NICE`` nicer (the bench's report gives their
    CPU either way)."""
    import os

    from orpheus_ws.bench.harness import OTHERS_NICE, llm_process, lowered, standin

    own = os.nice(0)
    with standin(tokens_per_second=0, slots=1, frames=2) as url:
        process = llm_process(url)
        assert process is not None and process.nice() == min(19, own + OTHERS_NICE)
    assert llm_process(url) is None
    assert lowered(0) is None
    child = subprocess.run([sys.executable, "-c", "import os; print(os.nice(0))"],
                           capture_output=True, text=True, preexec_fn=lowered(OTHERS_NICE),
                           check=True)
    assert int(child.stdout) == min(19, own + OTHERS_NICE)
