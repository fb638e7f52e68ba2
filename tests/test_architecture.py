"""The layering the README draws is what the code does: a sans-I/O protocol core, an engine
seen only through its public face, small modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from .utils import scaled

PACKAGE = Path(__file__).resolve().parent.parent / "orpheus_ws"
HEAVY = ("aiohttp", "torch", "soxr", "starlette")
LIGHT_MODULES = ("orpheus_ws.ws.protocol", "orpheus_ws.ws.events", "orpheus_ws.ws.session",
                 "orpheus_ws.client", "orpheus_ws.params", "orpheus_ws.formats",
                 "orpheus_ws.exceptions", "orpheus_ws.vocabulary")


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    return IMPORTS[path]


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module (or module attribute) ``source`` imports, relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            prefix = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


# Parsed once, when the tests are collected: CPython 3.11.7's ast.parse can fail with
# "AST constructor recursion depth mismatch" later in a long session (fixed in 3.11.8).
IMPORTS = {path: imports_of(path.read_text(), module_name(path),
                            is_package=path.name == "__init__.py") for path in modules()}
SPELLINGS = [
    ("from ..engine.decoder import DecoderService", "orpheus_ws.ws.endpoint"),
    ("from .engine import decoder", "orpheus_ws.app"),
    ("import orpheus_ws.engine.llm", "orpheus_ws.bench.load"),
    ("from orpheus_ws.engine.tokens import FrameParser", "orpheus_ws.devtools.standin_llm"),
    ("from ..engine import Engine, TextFeed", "orpheus_ws.ws.delivery"),
]
SPELLING_IMPORTS = {source: imports_of(source, module) for source, module in SPELLINGS}


def test_the_protocol_core_and_the_client_import_nothing_heavy() -> None:
    """A pipecat or LiveKit user's client imports neither the server's HTTP client, torch, the
    resampler nor the web framework; nor does the sans-I/O protocol core."""
    code = (f"import sys\nimport {', '.join(LIGHT_MODULES)}\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=scaled(60), check=True)
    assert done.stdout.strip() == ""


def test_the_check_would_see_a_heavy_import() -> None:
    done = subprocess.run([sys.executable, "-c", "import sys\nimport orpheus_ws.audio\n"
                           "print('soxr' in sys.modules)"], capture_output=True, text=True,
                          timeout=scaled(60), check=True)
    assert done.stdout.strip() == "True"


ENGINE_MODULES = {p.stem for p in (PACKAGE / "engine").glob("*.py") if p.stem != "__init__"}


def engine_internals(names: set[str]) -> set[str]:
    """The engine modules (not its public face, ``orpheus_ws.engine``) among ``names``."""
    return {name for name in names if name.startswith("orpheus_ws.engine.")
            and name.split(".")[2] in ENGINE_MODULES}


@pytest.mark.parametrize("path", [p for p in modules() if "engine" not in
                                  p.relative_to(PACKAGE).parts[:1]],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_nothing_outside_the_engine_imports_past_its_public_face(path: Path) -> None:
    assert engine_internals(imported(path)) == set()


@pytest.mark.parametrize("source", [source for source, _ in SPELLINGS[:-1]])
def test_the_import_check_sees_every_spelling(source: str) -> None:
    assert engine_internals(SPELLING_IMPORTS[source])
    assert not engine_internals(SPELLING_IMPORTS[SPELLINGS[-1][0]])


def test_the_engine_never_imports_a_transport() -> None:
    for path in (PACKAGE / "engine").glob("*.py"):
        for name in imported(path):
            assert not name.startswith(("starlette", "orpheus_ws.ws", "orpheus_ws.http",
                                        "orpheus_ws.app", "orpheus_ws.compat")), (path, name)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400
