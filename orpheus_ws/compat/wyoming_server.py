"""Home Assistant's Wyoming protocol, a TCP port beside the HTTP one, in the same process and on
the same engine (``serve --wyoming-port 10200``): ``wyoming``'s own ``AsyncTcpServer``, each
connection a :class:`WyomingConnection` (``wyoming_handler.py``).

The application's lifespan starts it once the engine runs and stops it before the engine
closes: every connection closed and its generations stopped. It counts its connections in
``orpheus_ws_sockets_open{route="wyoming"}`` and its utterances under the route ``wyoming``.
The protocol has no keys (a LAN protocol): ``Settings.validate`` refuses a non-loopback host
while API keys are set, unless ``--wyoming-unauthenticated`` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from wyoming.server import AsyncTcpServer

from ..config import Settings
from ..engine import SpeechEngine
from ..transport.limits import SocketLimits
from .wyoming_handler import WyomingConnection
from .wyoming_requests import describe

log = logging.getLogger("orpheus_ws")
CLOSE_WAIT_S = 5.0  # how long stop() waits for the connections' tasks to end


class WyomingServer:
    """The Wyoming TTS server of one engine; ``version`` is the package's, for ``info``."""

    def __init__(self, engine: SpeechEngine, settings: Settings, *, version: str) -> None:
        self.engine = engine
        self.host = settings.wyoming_host
        self.port = settings.wyoming_port
        # the protocol has no keys: worth a warning where other doors take one
        self.warn = bool(settings.api_keys or settings.api_keys_file
                         or settings.wyoming_unauthenticated)
        self.limits = SocketLimits.from_settings(settings)
        self.info = describe(engine, version)
        self.connections: set[WyomingConnection] = set()
        self._server = AsyncTcpServer(self.host, self.port)

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listens; an OSError (the port taken) stops the start with the port named."""
        try:
            await self._server.start(self._connection)
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(exc.errno, f"can't listen on the Wyoming port {self.url}: "
                          f"{why}") from None
        log.info("Wyoming TTS on %s", self.url)
        if self.warn:
            log.warning("the Wyoming port %s takes no API key (the protocol has none): "
                        "whoever reaches it can speak", self.url)

    def _connection(self, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> WyomingConnection:
        return WyomingConnection(reader, writer, engine=self.engine, info=self.info,
                                 limits=self.limits, registry=self.connections)

    async def stop(self) -> None:
        """Listens no more; every connection closed, its generations stopped."""
        await self._server.stop()  # each connection's stop(): its replies cancelled first
        waits = [connection.closed.wait() for connection in list(self.connections)]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_WAIT_S):
                await asyncio.gather(*waits)
        log.info("Wyoming TTS stopped")
