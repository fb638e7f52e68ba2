"""The code stays as the brief asks: ruff-clean and typed (mypy --strict), package and tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .utils import scaled

ROOT = Path(__file__).resolve().parent.parent


def check(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=scaled(300))
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


def test_ruff_is_clean() -> None:
    check("ruff", "check", "orpheus_ws", "tests", "web_client")


def test_mypy_strict_is_clean() -> None:
    check("mypy", "--strict", "orpheus_ws", "tests", "web_client")
