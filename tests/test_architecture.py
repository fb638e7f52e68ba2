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


def package_of(name: str) -> str | None:
    """The subpackage of orpheus_ws that module ``name`` is in (None: a top-level module)."""
    parts = name.split(".")
    if parts[0] != "orpheus_ws" or len(parts) < 3 or not (PACKAGE / parts[1]).is_dir():
        return None
    return parts[1]


def package_graph() -> dict[str, set[str]]:
    """Which subpackage imports which (a module of it imports a module of the other)."""
    graph: dict[str, set[str]] = {}
    for path in modules():
        parts = path.relative_to(PACKAGE).parts
        source = parts[0] if len(parts) > 1 else None
        if source is None:
            continue
        for name in imported(path):
            target = package_of(name)
            if target is not None and target != source:
                graph.setdefault(source, set()).add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle through the graph, each once, as the packages on it."""
    found: list[list[str]] = []

    def walk(path: list[str]) -> None:
        for target in sorted(graph.get(path[-1], ())):
            if target == path[0]:
                found.append(path)
            elif target not in path and target > path[0]:
                walk([*path, target])

    for start in sorted(graph):
        walk([start])
    return found


def test_no_package_imports_itself_round_a_cycle() -> None:
    assert cycles(package_graph()) == []
    assert cycles({"http": {"compat"}, "compat": {"http"}}) == [["compat", "http"]]


# What an adapter may build on: the engine's public face, the shared transport package and
# the shared vocabulary; never another transport (the native socket, the seed API) or the app.
ADAPTER_MAY_IMPORT = ("orpheus_ws.engine", "orpheus_ws.transport", "orpheus_ws.compat",
                      "orpheus_ws.exceptions", "orpheus_ws.policy", "orpheus_ws.params",
                      "orpheus_ws.formats", "orpheus_ws.outputs", "orpheus_ws.timings",
                      "orpheus_ws.vocabulary", "orpheus_ws.config", "orpheus_ws.metrics",
                      "orpheus_ws.audio", "orpheus_ws.encoders")


@pytest.mark.parametrize("path", sorted((PACKAGE / "compat").glob("*.py")),
                         ids=lambda p: p.name)
def test_adapters_build_only_on_the_engine_and_the_transport(path: Path) -> None:
    ours = {name for name in imported(path) if name.startswith("orpheus_ws.")}
    assert {name for name in ours if not name.startswith(ADAPTER_MAY_IMPORT)} == set()


@pytest.mark.parametrize("path", sorted((PACKAGE / "transport").glob("*.py")),
                         ids=lambda p: p.name)
def test_the_transport_knows_no_protocol(path: Path) -> None:
    assert {name for name in imported(path) if name.startswith(
        ("orpheus_ws.ws", "orpheus_ws.http", "orpheus_ws.compat", "orpheus_ws.app"))} == set()


ENGINE_MACHINERY = {f"orpheus_ws.engine.{name}" for name in (
    "Engine", "Admission", "DecoderService", "LLMClient", "build_engine", "load_codec")}


@pytest.mark.parametrize("path", [p for folder in ("compat", "transport", "ws", "http")
                                  for p in sorted((PACKAGE / folder).glob("*.py"))],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_transports_code_against_the_engine_interface(path: Path) -> None:
    """SpeechEngine (engine/interface.py), not the Engine class or what it is built of."""
    assert imported(path) & ENGINE_MACHINERY == set()
