"""The managed backend as the server uses it: resolve the model, plan llama-server for the
streams asked for and the machine at hand, and run its supervisor on a thread of its own.

With ``--gpus 0,1,...`` there is one llama-server per GPU, each on its own GPU
(``CUDA_VISIBLE_DEVICES``), and the engine spreads generations over them.

Its own thread and event loop keep it independent of who serves: ``orpheus-ws serve`` starts
it before uvicorn (one llama-server for every ``--workers`` process), and the app's lifespan
starts it when it is run directly with no LLM URL. The thread lives until ``stop()``, which
matters on Linux: the parent-death signal fires when the thread that started the child ends.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from concurrent.futures import Future
from typing import Any

from ..config import Settings
from .plan import LlamaPlan, find_binary, parse_llama_args, split_cores
from .supervisor import LlamaServerFailed, ManagedLlamaServer


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def gpu_present(device: str) -> bool:
    """Whether llama-server should put its layers on a GPU: CUDA as torch sees it, unless the
    server is told to run on the CPU."""
    if device == "cpu":
        return False
    import torch

    return bool(torch.cuda.is_available())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (llama-server's, the tests')."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def plan_for(settings: Settings, model_path: str, gpu_index: str | None = None) -> LlamaPlan:
    """The llama-server command for these settings on this machine (on GPU ``gpu_index``,
    where one is named: ``CUDA_VISIBLE_DEVICES`` for its process)."""
    gpu = gpu_present(settings.device)
    llama_threads, _ = split_cores(usable_cores(), gpu=gpu or gpu_index is not None)
    return LlamaPlan(binary=find_binary(settings.llama_server), model=model_path,
                     port=free_port(), streams=settings.streams, threads=llama_threads,
                     gpu=gpu, extra=parse_llama_args(settings.llama_args), gpu_index=gpu_index)


def torch_threads_for(settings: Settings) -> int:
    """SNAC's CPU threads beside a managed llama-server: the cores it leaves, unless set."""
    if settings.torch_threads > 0:
        return settings.torch_threads
    _, torch_threads = split_cores(usable_cores(), gpu=gpu_present(settings.device))
    return torch_threads or 0


class SupervisedServer:
    """A ManagedLlamaServer on a thread of its own; ``start()`` blocks until it is ready."""

    def __init__(self, plan: LlamaPlan, *, model_name: str) -> None:
        self.server = ManagedLlamaServer(plan, model_name=model_name)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="llama-server-supervisor")

    @property
    def url(self) -> str:
        return self.server.url

    def health(self) -> dict[str, Any]:
        return self.server.health()

    def start(self) -> None:
        """Starts llama-server and waits until it is healthy (LlamaServerFailed if not)."""
        self._thread.start()
        self._call(self.server.start()).result()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self.server.stop()).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _call(self, coroutine: Any) -> Future[None]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)


class ManagedBackend:
    """The llama-servers this server runs: one, or one per GPU of ``--gpus``. Its ``url`` is
    theirs, comma-separated (the engine's backend pool takes the list)."""

    def __init__(self, plans: list[LlamaPlan], *, model_name: str) -> None:
        self.servers = [SupervisedServer(plan, model_name=model_name) for plan in plans]

    @property
    def url(self) -> str:
        return ",".join(server.url for server in self.servers)

    def health(self) -> dict[str, Any]:
        """One llama-server: its health. Several: ``ready`` while any is, and each one's."""
        if len(self.servers) == 1:
            return self.servers[0].health()
        each = [server.health() for server in self.servers]
        ready = [h for h in each if h["state"] == "ready"]
        return {"state": "ready" if ready else each[0]["state"], "url": self.url,
                "slots": sum(h["slots"] for h in each), "servers": each}

    def start(self) -> None:
        """Starts every llama-server, each waited for until healthy."""
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_managed(settings: Settings) -> ManagedBackend:
    """Resolves the model (downloading it if needed), starts llama-server and returns it
    ready; ModelError, LlamaServerMissing or LlamaServerFailed with one clear line if not."""
    from ..models import resolve_gguf

    path = resolve_gguf(settings.model)
    gpus: list[str | None] = [g.strip() for g in settings.gpus.split(",") if g.strip()]
    backend = ManagedBackend([plan_for(settings, str(path), gpu) for gpu in gpus or [None]],
                             model_name=settings.model)
    try:
        backend.start()
    except LlamaServerFailed:
        backend.stop()
        raise
    return backend
