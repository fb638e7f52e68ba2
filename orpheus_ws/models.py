"""Model files from the Hugging Face Hub: the Orpheus GGUF and the SNAC folder.

A model spec is a local file when that file exists, and otherwise a Hub repo as llama.cpp's ``-hf``
reads it, whatever its name ends with: ``OWNER/NAME`` or ``OWNER/NAME:FILE``, FILE a file name or
a quant tag such as ``Q4_K_M``. Downloads go through
huggingface_hub into its cache (``HF_HOME``, ``HF_HUB_CACHE``) with its own progress bars on
stderr. When the Hub cannot be reached, or ``HF_HUB_OFFLINE=1`` is set, what the cache holds is
used, so a start after ``orpheus-ws download`` needs no network. Every failure is a
:class:`ModelError` whose text is one line for the user.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TypeVar

import httpx2
from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    IncompleteSnapshotError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .config import DEFAULT_MODEL, DEFAULT_SNAC

__all__ = ["DEFAULT_MODEL", "DEFAULT_SNAC", "SNAC_FILES", "ModelError", "add_download_arguments",
           "download", "resolve_gguf", "resolve_snac", "run_download"]

SNAC_FILES = ("config.json", "pytorch_model.bin")
DEFAULT_QUANT = "Q4_K_M"  # what llama.cpp's -hf picks when a repo has several quants
LIST_TIMEOUT_S = 10.0

# OWNER/NAME with an optional :FILE; anything else that is not an existing path is a path.
_REPO_SPEC = re.compile(r"(?P<repo>[\w][\w.-]*/[\w.-]+)(?::(?P<file>[^:]+))?")
_T = TypeVar("_T")


class ModelError(Exception):
    """A model could not be found or fetched; ``str()`` is one line saying what and the fix."""


class _RepoNotFound(ModelError):
    """The Hub has no such repo."""


class _NoHub(Exception):
    """The Hub could not answer (no network, offline mode, a server error): try the cache."""

    def __init__(self, offline: bool, status: int | None = None) -> None:
        super().__init__("offline" if offline else f"status {status}")
        self.offline = offline
        self.status = status


def resolve_gguf(spec: str) -> Path:
    """The local path of the GGUF ``spec`` names, downloading it into the cache if needed.

    ``spec`` is a local file when that file exists (returned as is), else ``REPO[:FILE]``
    whatever the name ends with (``lex-au/Orpheus-3b-FT-Q8_0.gguf`` is a repo): FILE a file
    name, or a quant tag matched case-insensitively against the repo's .gguf names; ``REPO`` alone
    takes the repo's
    only .gguf, else its Q4_K_M one, else the first by name (``mmproj`` files never count).
    """
    local = Path(spec).expanduser()
    if local.is_file():
        return local
    match = _REPO_SPEC.fullmatch(spec)
    if local.exists() or match is None:
        what = "is a folder, not a .gguf file" if local.exists() else "does not exist"
        raise ModelError(f"the model file '{spec}' {what}: check the path, or name a Hugging Face "
                         "repo as OWNER/NAME or OWNER/NAME:FILE")
    repo, wanted = match["repo"], match["file"]
    try:
        names = _hub(spec, lambda: _list_files(repo))
        chosen = _choose(names, wanted)
        if chosen is None:
            raise ModelError(_no_such_gguf(repo, wanted, names))
        name: str = chosen
        return Path(_hub(f"{repo}:{name}", lambda: hf_hub_download(repo, name)))
    except _RepoNotFound as exc:
        if not spec.endswith(".gguf"):
            raise
        # OWNER/NAME.gguf names a repo (lex-au publishes every quant so) or a mistyped path.
        raise ModelError(f"there is no local file '{spec}', and {exc}") from None
    except _NoHub as exc:
        cached = _cached_gguf(repo, wanted)
        if cached is None:
            raise ModelError(_unreachable(spec, exc, "a local .gguf path")) from None
        return cached


def resolve_snac(spec: str) -> str:
    """The local folder of the SNAC model ``spec`` names, downloading it into the cache if needed.

    ``spec`` is a folder holding config.json and pytorch_model.bin (returned as is) or a repo id,
    of which only those two files are fetched.
    """
    local = Path(spec).expanduser()
    if local.is_dir() and _has_snac_files(local):
        return spec
    if local.exists() or _REPO_SPEC.fullmatch(spec) is None or ":" in spec:
        what = "lacks config.json or pytorch_model.bin" if local.is_dir() else "does not exist"
        raise ModelError(f"the SNAC folder '{spec}' {what}: pass a folder with config.json and "
                         f"pytorch_model.bin, or a Hugging Face repo such as {DEFAULT_SNAC}")
    try:
        folder = Path(_hub(spec, lambda: snapshot_download(spec, allow_patterns=list(SNAC_FILES))))
    except _NoHub as exc:
        raise ModelError(_unreachable(spec, exc, "a local SNAC folder")) from None
    if not _has_snac_files(folder):
        raise ModelError(f"the repo '{spec}' on {constants.ENDPOINT} has no config.json and "
                         f"pytorch_model.bin: name a SNAC repo such as {DEFAULT_SNAC}, or pass "
                         "a local folder")
    return str(folder)


def download(model: str, snac_model: str) -> tuple[Path, str]:
    """Resolves both models (downloading what the cache lacks): ``(gguf path, SNAC folder)``."""
    return resolve_gguf(model), resolve_snac(snac_model)


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--model`` and ``--snac-model`` (the ``orpheus-ws download`` options) to ``parser``."""
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, metavar="SPEC",
        help="a local .gguf file, or a Hugging Face repo as OWNER/NAME[:FILE or :QUANT] "
             f"(default: {DEFAULT_MODEL})")
    parser.add_argument(
        "--snac-model", default=DEFAULT_SNAC, metavar="SPEC",
        help=f"a local SNAC folder or a Hugging Face repo (default: {DEFAULT_SNAC})")


def run_download(args: argparse.Namespace) -> int:
    """``orpheus-ws download``: fills the cache, prints where both models are; 0, or 1 on error."""
    try:
        model, snac = download(args.model, args.snac_model)
    except ModelError as exc:
        print(f"orpheus-ws download: {exc}", file=sys.stderr)
        return 1
    print(f"model: {model}")
    print(f"snac: {snac}")
    return 0


# -- the Hub -------------------------------------------------------------------------------------


def _list_files(repo: str) -> list[str]:
    """The repo's file names: one ``model_info`` request, which (unlike the tree listing) is not
    retried with backoff, so an unreachable Hub falls back to the cache at once."""
    info = HfApi().model_info(repo, timeout=LIST_TIMEOUT_S)
    return [s.rfilename for s in info.siblings or []]


def _hub(target: str, call: Callable[[], _T]) -> _T:
    """Runs a huggingface_hub call; its errors become a :class:`ModelError` naming ``target``,
    or :class:`_NoHub` when the cache may still serve."""
    where = constants.ENDPOINT
    try:
        return call()
    except GatedRepoError:
        raise ModelError(
            f"the repo '{_repo_of(target)}' on {where} is gated: accept its terms on its page, "
            "then log in with `hf auth login` or set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise _RepoNotFound(
            f"the model repo '{_repo_of(target)}' was not found on {where}: check the name (a "
            "private repo needs `hf auth login` or HF_TOKEN), or pass a local path") from None
    except RevisionNotFoundError:
        raise ModelError(f"the repo '{_repo_of(target)}' on {where} has no branch 'main': "
                         "pass a local path") from None
    except RemoteEntryNotFoundError:
        raise ModelError(f"the repo '{_repo_of(target)}' on {where} has no file "
                         f"'{target.partition(':')[2]}': check the name") from None
    except (OfflineModeIsEnabled, LocalEntryNotFoundError) as exc:
        raise _no_hub(exc) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code
        if status in (408, 429) or status >= 500:
            raise _NoHub(offline=False, status=status) from None
        raise ModelError(f"{where} refused '{target}' (HTTP {status}): check the name and your "
                         "token (HF_TOKEN), or pass a local path") from None
    except httpx2.TransportError:
        raise _NoHub(offline=False) from None
    except HFValidationError:
        raise ModelError(f"'{target}' is not a valid Hugging Face repo id: write it as "
                         "OWNER/NAME, or pass a local path") from None
    except OSError as exc:
        raise ModelError(f"cannot save '{target}' in the cache {constants.HF_HUB_CACHE}: "
                         f"{exc.strerror or type(exc).__name__}: free space or set HF_HOME "
                         "to a writable folder") from None


def _no_hub(exc: BaseException) -> _NoHub:
    """Why huggingface_hub fell back to a cache that lacked the file: offline mode, a server
    error (its status) or no connection, from the exception's chain of causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OfflineModeIsEnabled) and constants.is_offline_mode():
            return _NoHub(offline=True)
        if isinstance(seen, HfHubHTTPError):
            return _NoHub(offline=False, status=seen.response.status_code)
        seen = seen.__cause__ or seen.__context__
    return _NoHub(offline=False)


def _repo_of(target: str) -> str:
    return target.partition(":")[0]


# -- choosing a GGUF -----------------------------------------------------------------------------


def _choose(names: list[str], wanted: str | None) -> str | None:
    """The file ``wanted`` names among ``names`` (llama.cpp's ``-hf`` rules), or None."""
    ggufs = sorted(n for n in names if n.lower().endswith(".gguf")
                   and "mmproj" not in PurePosixPath(n).name.lower())
    if wanted is not None:
        if wanted in names:
            return wanted
        if wanted.lower().endswith(".gguf"):
            return None
        tag = wanted.lower()
        # A name ending in the tag (x-Q4_K.gguf) beats one merely containing it (x-Q4_K_M.gguf).
        ending = [n for n in ggufs if n.lower().removesuffix(".gguf").endswith(tag)]
        containing = [n for n in ggufs if tag in PurePosixPath(n).name.lower()]
        found = ending or containing
        return found[0] if found else None
    if len(ggufs) <= 1:
        return ggufs[0] if ggufs else None
    default = [n for n in ggufs if DEFAULT_QUANT.lower() in n.lower()]
    return (default or ggufs)[0]


def _no_such_gguf(repo: str, wanted: str | None, names: list[str]) -> str:
    ggufs = sorted(n for n in names if n.lower().endswith(".gguf"))
    where = f"the repo '{repo}' on {constants.ENDPOINT}"
    if not ggufs:
        return (f"{where} has no .gguf file: name a GGUF repo (llama-server loads GGUF), "
                "or pass a local .gguf path")
    shown = ", ".join(ggufs[:8]) + (", ..." if len(ggufs) > 8 else "")
    if wanted is not None and wanted.lower().endswith(".gguf"):
        return f"{where} has no file '{wanted}': its .gguf files are {shown}"
    return f"{where} has no .gguf file matching '{wanted}': its .gguf files are {shown}"


def _cached_gguf(repo: str, wanted: str | None) -> Path | None:
    """The GGUF the cache holds for ``repo`` at ``main`` that ``wanted`` names, chosen among the
    cached files by the same rules, without any request."""
    try:
        folder = Path(snapshot_download(repo, local_files_only=True))
    except IncompleteSnapshotError as exc:
        folder = Path(exc.snapshot_path)
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        return None
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*.gguf") if p.is_file()]
    name = _choose(names, wanted)
    return None if name is None else folder / name


def _unreachable(spec: str, exc: _NoHub, local: str) -> str:
    cache = constants.HF_HUB_CACHE
    if exc.offline:
        return (f"HF_HUB_OFFLINE=1 is set and '{spec}' is not in the cache {cache}: unset "
                f"HF_HUB_OFFLINE to download it, or pass {local}")
    if exc.status is not None:
        return (f"{constants.ENDPOINT} answered HTTP {exc.status} for '{spec}' and it is not in "
                f"the cache {cache}: try again later, or pass {local}")
    return (f"cannot reach {constants.ENDPOINT} to download '{spec}' and it is not in the cache "
            f"{cache}: connect, pass {local}, or fill the cache with `orpheus-ws download` "
            "and set HF_HUB_OFFLINE=1")


def _has_snac_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in SNAC_FILES)
