"""Model downloads (orpheus_ws.models) against the fake Hub (tests.support.fake_hub).

huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when it is imported, so every
download runs in a subprocess with its own environment: the fake Hub's URL and a fresh cache.
Nothing here reaches the real Hub: the in-process tests only use local paths, with
huggingface_hub's offline switch on in case one tried.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import pty
import re
import shutil
import socket
import struct
import sys
import termios
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import huggingface_hub.constants
import pytest
import pytest_asyncio

import orpheus_ws.models
from orpheus_ws.models import (
    DEFAULT_MODEL,
    DEFAULT_SNAC,
    SNAC_FILES,
    ModelError,
    add_download_arguments,
    resolve_gguf,
    resolve_snac,
    run_download,
)
from tests.support.fake_hub import FakeHub

from .utils import scaled

ROOT = Path(__file__).resolve().parent.parent
TINY = "tests/orpheus-tiny-GGUF"
TINY_FILE = "orpheus-tiny-f32.gguf"
SNAC = "tests/snac-random"
# Small stand-in files, each with its own bytes, for the choice of a quant.
REPOS = {
    "tests/quants": ["orpheus-Q8_0.gguf", "orpheus-Q4_K_M.gguf", "mmproj-orpheus-f16.gguf",
                     "README.md"],
    "tests/no-default": ["a-mmproj-f16.gguf", "b-Q5_K_M.gguf", "c-Q5_K.gguf"],
    "tests/gated-GGUF": ["gated-Q4_K_M.gguf"],
    # The repos the README names, under their real names and files.
    DEFAULT_MODEL: ["orpheus-3b-0.1-ft-q4_k_m.gguf", "README.md"],
    "lex-au/Orpheus-3b-FT-Q8_0.gguf": ["Orpheus-3b-FT-Q8_0.gguf", "README.md"],
}

DOWNLOAD = """
import sys
from orpheus_ws.cli import main
sys.exit(main(["download", *sys.argv[1:]]))
"""
RESOLVE = """
import sys
import termios
from orpheus_ws.models import ModelError, resolve_gguf
for spec in sys.argv[1:]:
    try:
        print("ok", resolve_gguf(spec))
    except ModelError as exc:
        print("error", exc)
"""


@dataclass
class Done:
    rc: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path, snac_dir: Path) -> Path:
    """``root/{owner}/{name}/...``: the tiny GGUF, SNAC with random weights, a few quants."""
    root = tmp_path_factory.mktemp("hub")
    tiny = root / TINY
    tiny.mkdir(parents=True)
    shutil.copyfile(tiny_gguf, tiny / TINY_FILE)
    (tiny / "README.md").write_text("# tiny\n")
    (tiny / ".gitattributes").write_text("*.gguf filter=lfs diff=lfs merge=lfs -text\n")
    (root / SNAC).mkdir(parents=True)
    for name in SNAC_FILES:
        shutil.copyfile(snac_dir / name, root / SNAC / name)
    for repo, names in REPOS.items():
        (root / repo).mkdir(parents=True)
        for name in names:
            (root / repo / name).write_bytes(f"{repo}/{name}\n".encode() * 1000)
    return root


@pytest_asyncio.fixture
async def hub(hub_root: Path) -> AsyncIterator[FakeHub]:
    """The fake Hub serving ``hub_root``; ``tests/gated-GGUF`` is gated."""
    async with FakeHub(hub_root, gated=["tests/gated-GGUF"]) as server:
        yield server


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """In-process: huggingface_hub offline with an empty cache, so no test can reach the Hub."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def hub_env(endpoint: str, home: Path, **extra: str) -> dict[str, str]:
    """This environment less any HF_*/TQDM_* setting, with the endpoint and a cache of its own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_", "TQDM_", "TRANSFORMERS_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(home), **extra)
    return env


async def python(script: str, args: list[str], env: dict[str, str], *,
                 tty_stderr: bool = False) -> Done:
    """Runs ``python -c script args``; with ``tty_stderr`` its stderr is a terminal (a pty)."""
    master = slave = -1
    if tty_stderr:
        master, slave = pty.openpty()
        # 24 rows, 120 columns: tqdm draws nothing on a terminal of width 0.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, *args, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=slave if tty_stderr else asyncio.subprocess.PIPE)
    finally:
        if tty_stderr:
            os.close(slave)
    terminal = asyncio.create_task(asyncio.to_thread(drain, master)) if tty_stderr else None
    out, err = await asyncio.wait_for(proc.communicate(), scaled(60))
    if terminal is not None:
        err = await asyncio.wait_for(terminal, scaled(10))
        os.close(master)
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode(errors="replace"))


def drain(fd: int) -> bytes:
    """Everything written to a pty until its last writer closes it."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def paths(done: Done) -> tuple[Path, Path]:
    """The ``model:`` and ``snac:`` paths ``orpheus-ws download`` printed, and nothing else."""
    lines = done.stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == ["model", "snac"], done
    return Path(lines[0].split(": ", 1)[1]), Path(lines[1].split(": ", 1)[1])


def one_error_line(done: Done) -> str:
    """The single line a failed ``orpheus-ws download`` wrote, checked for its form."""
    assert done.rc == 1, done
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("orpheus-ws download: "), lines
    return lines[0]


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_download_fills_a_fresh_cache_then_needs_no_hub(
    hub: FakeHub, tiny_gguf: Path, snac_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "hf"
    args = ["--model", TINY, "--snac-model", SNAC]
    first = await python(DOWNLOAD, args, hub_env(hub.url, home))
    assert first.rc == 0, first
    model, snac = paths(first)
    assert model.is_relative_to(home / "hub") and snac.is_relative_to(home / "hub")
    assert model.name == TINY_FILE
    assert model.read_bytes() == tiny_gguf.read_bytes()
    assert sorted(os.listdir(snac)) == sorted(SNAC_FILES)
    for name in SNAC_FILES:
        assert (snac / name).read_bytes() == (snac_dir / name).read_bytes()
    fetched = {r.path.split("?")[0] for r in hub.requests if r.method == "GET"}
    assert f"/api/models/{TINY}" in fetched
    assert sum(path.startswith("/lfs/") for path in fetched) == 2  # the GGUF and the weights
    # Not a terminal: the per-file bars hide, snapshot_download's file count still shows.
    assert TINY_FILE not in first.stderr
    assert "Fetching 2 files: 100%" in first.stderr
    assert "Traceback" not in first.stderr

    await hub.stop()
    second = await python(DOWNLOAD, args, hub_env(hub.url, home))
    assert second.rc == 0, second
    assert second.stdout == first.stdout


async def test_progress_bars_show_on_a_terminal(hub: FakeHub, tmp_path: Path) -> None:
    done = await python(DOWNLOAD, ["--model", TINY, "--snac-model", SNAC],
                        hub_env(hub.url, tmp_path / "hf"), tty_stderr=True)
    assert done.rc == 0, done
    paths(done)
    bar = [part for part in done.stderr.replace("\n", "\r").split("\r") if TINY_FILE in part]
    assert bar, done.stderr
    assert "100%" in bar[-1]
    assert "Fetching 2 files: 100%" in done.stderr


async def test_offline_mode_reads_the_cache_without_a_request(
    hub: FakeHub, tmp_path: Path
) -> None:
    home = tmp_path / "hf"
    args = ["--model", f"{TINY}:{TINY_FILE}", "--snac-model", SNAC]
    online = await python(DOWNLOAD, args, hub_env(hub.url, home))
    assert online.rc == 0, online
    before = len(hub.requests)
    offline = await python(DOWNLOAD, args, hub_env(hub.url, home, HF_HUB_OFFLINE="1"))
    assert offline.rc == 0, offline
    assert offline.stdout == online.stdout
    empty = await python(DOWNLOAD, args, hub_env(hub.url, tmp_path / "empty", HF_HUB_OFFLINE="1"))
    line = one_error_line(empty)
    assert line.startswith(f"orpheus-ws download: HF_HUB_OFFLINE=1 is set and "
                           f"'{TINY}:{TINY_FILE}' is not in the cache"), line
    assert len(hub.requests) == before, hub.requests[before:]


async def test_the_spec_chooses_the_file(hub: FakeHub, hub_root: Path, tmp_path: Path) -> None:
    expected = {
        TINY: TINY_FILE,  # the only .gguf, next to README.md and .gitattributes
        "tests/quants": "orpheus-Q4_K_M.gguf",  # llama.cpp's default quant
        "tests/quants:q8_0": "orpheus-Q8_0.gguf",  # a tag, any case
        "tests/quants:orpheus-Q8_0.gguf": "orpheus-Q8_0.gguf",  # a file name
        "tests/no-default": "b-Q5_K_M.gguf",  # the first by name, mmproj skipped
        "tests/no-default:Q5_K": "c-Q5_K.gguf",  # a name ending in the tag first
    }
    env = hub_env(hub.url, tmp_path / "hf")
    done = await python(RESOLVE, list(expected), env)
    assert done.rc == 0, done
    results = done.stdout.splitlines()
    assert len(results) == len(expected), done
    for (spec, name), result in zip(expected.items(), results, strict=True):
        status, _, path = result.partition(" ")
        assert status == "ok", (spec, result)
        assert Path(path).name == name, (spec, result)
        assert Path(path).read_bytes() == (hub_root / spec.split(":")[0] / name).read_bytes()

    missing = await python(RESOLVE, ["tests/quants:F16", "tests/quants:orpheus-Q2_K.gguf"], env)
    assert missing.stdout.splitlines() == [
        f"error the repo 'tests/quants' on {hub.url} has no .gguf file matching 'F16': its "
        ".gguf files are mmproj-orpheus-f16.gguf, orpheus-Q4_K_M.gguf, orpheus-Q8_0.gguf",
        f"error the repo 'tests/quants' on {hub.url} has no file 'orpheus-Q2_K.gguf': its "
        ".gguf files are mmproj-orpheus-f16.gguf, orpheus-Q4_K_M.gguf, orpheus-Q8_0.gguf",
    ]

    await hub.stop()  # the same choices from what the cache holds
    again = await python(RESOLVE, list(expected), env)
    assert again.stdout == done.stdout


async def test_every_model_the_readme_names_downloads(hub: FakeHub, hub_root: Path,
                                                      tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    specs = sorted(set(re.findall(r"--model ([\w.-]+/[\w.:-]+)", readme)))
    assert "lex-au/Orpheus-3b-FT-Q8_0.gguf" in specs  # a repo whose name ends in .gguf
    assert f"`{DEFAULT_MODEL}`" in readme
    for spec in [DEFAULT_MODEL, *specs]:
        done = await python(DOWNLOAD, ["--model", spec, "--snac-model", SNAC],
                            hub_env(hub.url, tmp_path / "hf"))
        assert done.rc == 0, (spec, done)
        model, _ = paths(done)
        repo = spec.split(":")[0]
        assert model.read_bytes() == (hub_root / repo / model.name).read_bytes(), spec


@pytest.mark.parametrize("case", ["missing repo", "missing file", "gated repo",
                                  "missing SNAC repo", "unreachable", "neither file nor repo"])
async def test_failures_are_one_line(
    case: str, hub: FakeHub, tiny_gguf: Path, tmp_path: Path
) -> None:
    endpoint = hub.url
    model, snac = TINY, SNAC
    if case == "missing repo":
        model, expected = "tests/nope", f"the model repo 'tests/nope' was not found on {hub.url}"
    elif case == "missing file":
        model = f"{TINY}:missing.gguf"
        expected = f"the repo '{TINY}' on {hub.url} has no file 'missing.gguf'"
    elif case == "gated repo":
        model = "tests/gated-GGUF"
        expected = f"the repo 'tests/gated-GGUF' on {hub.url} is gated"
    elif case == "neither file nor repo":
        model = "models/orpheus.gguf"  # a relative path that isn't there, and no such repo
        expected = ("there is no local file 'models/orpheus.gguf', and the model repo "
                    f"'models/orpheus.gguf' was not found on {hub.url}")
    elif case == "missing SNAC repo":
        model, snac = str(tiny_gguf), "tests/nope-snac"
        expected = f"the model repo 'tests/nope-snac' was not found on {hub.url}"
    else:
        endpoint = f"http://127.0.0.1:{closed_port()}"
        expected = f"cannot reach {endpoint} to download '{TINY}' and it is not in the cache"
    done = await python(DOWNLOAD, ["--model", model, "--snac-model", snac],
                        hub_env(endpoint, tmp_path / "hf"))
    line = one_error_line(done)
    assert line.startswith(f"orpheus-ws download: {expected}"), line
    assert not (tmp_path / "hf" / "hub" / "models--tests--orpheus-tiny-GGUF" / "snapshots").exists()


def test_local_paths_are_returned_untouched(
    offline_hub: Path, monkeypatch: pytest.MonkeyPatch, tiny_gguf: Path, snac_dir: Path,
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def forbidden(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError(f"huggingface_hub called with {args} {kwargs}")

    for name in ("HfApi", "hf_hub_download", "snapshot_download"):
        monkeypatch.setattr(orpheus_ws.models, name, forbidden)
    link = tmp_path / "link.gguf"  # a spelling of the path that resolving would change
    link.symlink_to(tiny_gguf)
    assert resolve_gguf(str(link)) == link
    assert resolve_gguf(str(tiny_gguf)) == tiny_gguf
    assert resolve_snac(str(snac_dir)) == str(snac_dir)
    parser = argparse.ArgumentParser(prog="orpheus-ws download")
    add_download_arguments(parser)
    args = parser.parse_args(["--model", str(tiny_gguf), "--snac-model", str(snac_dir)])
    assert run_download(args) == 0
    assert capsys.readouterr() == (f"model: {tiny_gguf}\nsnac: {snac_dir}\n", "")
    defaults = parser.parse_args([])
    assert (defaults.model, defaults.snac_model) == (DEFAULT_MODEL, DEFAULT_SNAC)
    assert DEFAULT_MODEL == "isaiahbjork/orpheus-3b-0.1-ft-Q4_K_M-GGUF"
    assert DEFAULT_SNAC == "hubertsiuzdak/snac_24khz"


def test_missing_local_paths_are_model_errors(
    offline_hub: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ModelError, match=r"^the model file '.*missing\.gguf' does not exist: "):
        resolve_gguf(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelError, match=r"^the model file '\./missing\.gguf' does not exist"):
        resolve_gguf("./missing.gguf")
    with pytest.raises(ModelError, match=r"is a folder, not a \.gguf file"):
        resolve_gguf(str(tmp_path))
    with pytest.raises(ModelError, match=r"^the SNAC folder '.*' lacks config\.json"):
        resolve_snac(str(tmp_path))
    with pytest.raises(ModelError, match=r"^the SNAC folder '/nonexistent/snac' does not exist"):
        resolve_snac("/nonexistent/snac")
    parser = argparse.ArgumentParser(prog="orpheus-ws download")
    add_download_arguments(parser)
    assert run_download(parser.parse_args(["--model", "/nonexistent/x.gguf"])) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "orpheus-ws download: the model file '/nonexistent/x.gguf' does not exist: check the "
        "path, or name a Hugging Face repo as OWNER/NAME or OWNER/NAME:FILE"]


def test_offline_with_an_empty_cache_is_a_model_error(offline_hub: Path) -> None:
    with pytest.raises(ModelError, match=r"^HF_HUB_OFFLINE=1 is set and 'x/y:Q8_0' is not in"):
        resolve_gguf("x/y:Q8_0")
    with pytest.raises(ModelError, match=r"^HF_HUB_OFFLINE=1 is set and 'x/snac' is not in"):
        resolve_snac("x/snac")
