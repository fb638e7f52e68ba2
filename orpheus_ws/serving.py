"""uvicorn's server with a graceful drain (``orpheus-ws serve``).

On SIGTERM (or Ctrl-C) the server first drains: the engine admits nothing new (``/ready``
answers 503, new sockets and requests are refused with 503 and ``Retry-After``, a new context
on an open socket gets ``draining``), and the utterances in progress finish and are sent, for
up to ``--drain-timeout`` seconds. Then it shuts down: every native socket gets an ``error``
event and close code 1001 (protocol.md), then uvicorn closes what is left. A second signal
stops at once.

Under ``serve --workers N`` every worker process drains the same way: the supervisor
(``DrainingWorkers``) passes each signal on to every worker at once (a second one stops
them), and waits for them to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from types import FrameType

import uvicorn
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.applications import Starlette
from uvicorn.supervisors import multiprocess

from .config import Settings
from .engine import SpeechEngine
from .transport.runtime import SocketRegistry

log = logging.getLogger("orpheus_ws")


class GracefulServer(uvicorn.Server):
    """``app``: the application, or None in a worker process, where it is the one uvicorn
    loaded (``orpheus_ws.app:app``)."""

    def __init__(self, config: uvicorn.Config, app: Starlette | None,
                 drain_timeout_s: float) -> None:
        super().__init__(config)
        self._app = app
        self.drain_timeout_s = drain_timeout_s
        self.drain_requested = False
        self.drainer: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig in (signal.SIGTERM, signal.SIGINT) and not self.drain_requested:
            self.drain_requested = True  # the drain starts at the next tick
            return
        self.should_exit = self.force_exit = True  # a second signal: stop now

    async def on_tick(self, counter: int) -> bool:
        if self.drain_requested and self.drainer is None:
            self.drainer = asyncio.get_running_loop().create_task(self.drain())
        return await super().on_tick(counter)

    @property
    def app(self) -> Starlette:
        if self._app is None:
            from . import app as module  # loaded by uvicorn by now: the same object
            self._app = module.app
        return self._app

    async def drain(self) -> None:
        """Admits nothing new, and waits (events, not polling) until the utterances in
        progress are generated and every socket has sent its audio, for up to
        ``drain_timeout_s``; then the server stops."""
        engine: SpeechEngine | None = getattr(self.app.state, "engine", None)
        sockets: SocketRegistry = self.app.state.sockets
        if engine is not None:
            engine.drain()
            log.info("draining: %d utterances in progress, up to %g s", engine.utterances,
                     self.drain_timeout_s)
            try:
                async with asyncio.timeout(self.drain_timeout_s):
                    await engine.idle()
                    await sockets.sent()
                log.info("drained")
            except TimeoutError:
                log.warning("drain timeout: %d utterances cut", engine.utterances)
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.app.state.sockets.shutdown()
        await super().shutdown(sockets)


class _DrainingProcess(multiprocess.Process):
    """A uvicorn worker process that runs a :class:`GracefulServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = GracefulServer(self.config, None, Settings.from_env().drain_timeout)
        return self._server


class DrainingWorkers(multiprocess.Multiprocess):
    """uvicorn's worker supervisor, its workers draining on SIGTERM. Each SIGTERM or SIGINT
    goes on to every worker from the signal handler itself, at once: uvicorn's loop would pass
    it on only after its health pings (seconds on a loaded machine), and the utterances could
    be over before the drain began. The first drains the workers, a second stops them."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self.passed_on = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._pass_on)

    def _pass_on(self, sig: int, frame: FrameType | None) -> None:
        self.passed_on = True
        for process in self.processes:
            if process.pid is not None and process.exitcode is None:
                with contextlib.suppress(OSError):
                    os.kill(process.pid, signal.SIGTERM)
        self.signal_queue.append(sig)  # uvicorn's loop: stop replacing workers, wait for them

    def run(self) -> None:
        plain, multiprocess.Process = multiprocess.Process, _DrainingProcess  # type: ignore[misc]
        try:
            super().run()
        finally:
            multiprocess.Process = plain  # type: ignore[misc]

    def keep_subprocess_alive(self) -> None:
        """uvicorn's: a worker that died is replaced; here its live gauges go with it
        (prometheus_client counts a dead worker's ``livesum`` gauges until told)."""
        before = {process.pid for process in self.processes}
        super().keep_subprocess_alive()
        for pid in before - {process.pid for process in self.processes}:
            if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                prometheus_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
                log.warning("worker %d died: replaced, its live metrics dropped", pid)

    def terminate_all(self) -> None:
        """The workers have had the signal (``_pass_on``): one more would stop them now."""
        if not self.passed_on:  # stopping for another reason (a worker failed to start)
            super().terminate_all()
            return
        for process in self.processes:
            process.parent_conn.close()
            process.child_conn.close()

    def join_all(self) -> None:
        for process in self.processes:
            while process.process.is_alive():  # a signal meanwhile goes on (_pass_on)
                process.process.join(0.1)


def http_options(settings: Settings) -> dict[str, object]:
    """uvicorn's Config options for HTTP (``serve``, with one worker or many)."""
    return {
        # h11, not httptools: llhttp has no bound on the request head, and httptools gathers
        # the URL and each header in bytes objects without one (a 100 MB header is held, and
        # parsed, before any key is checked); uvicorn's HttpToolsProtocol has no setting for
        # it. h11 refuses a head past max_incomplete_event_size (400, connection closed).
        "http": "h11", "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        "timeout_keep_alive": settings.http_keepalive_timeout,
    }
