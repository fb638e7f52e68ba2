"""The ASGI application: ``uvicorn orpheus_ws.app:app`` (settings from ORPHEUS_WS_* variables).

``create_app(settings)`` mounts the transports (the seed HTTP API, the WebSocket endpoint) and
the bundled web player; its lifespan builds the engine (loading the decoder's weights) and
hands it to every request through Starlette's lifespan state (``request.state.engine``), and
with ``--wyoming-port`` runs Home Assistant's Wyoming server on that engine while it lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TypedDict

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from . import __version__
from .compat.baseten import Baseten
from .compat.cartesia_ws import CartesiaSocket
from .compat.deepgram_ws import DeepgramSocket
from .compat.elevenlabs_ws import ElevenLabsSocket
from .compat.openai_speech import OpenAISpeech
from .compat.together import TogetherSocket
from .compat.vendor_http import VendorHttp
from .compat.voices import VoiceMap
from .compat.wyoming_server import WyomingServer
from .config import Settings
from .engine import Engine, build_engine
from .http.auth import KeyRing
from .http.gate import Gate, no_such_socket
from .http.openapi import document
from .http.seed_api import HttpApi
from .logs import configure_logging
from .managed.backend import ManagedBackend, start_managed, torch_threads_for
from .transport.runtime import SocketRegistry
from .ws.endpoint import WebSocketEndpoint

log = logging.getLogger("orpheus_ws")


class State(TypedDict):
    """What the lifespan hands to every request and socket."""

    engine: Engine
    managed: ManagedBackend | None  # the llama-server this server runs, if it runs one


def web_client_dir() -> Path:
    """The bundled player: ``web_client/`` at the top of the source tree, mapped into the
    package as ``orpheus_ws.web_client`` (pyproject.toml), so the wheel carries it too."""
    spec = importlib.util.find_spec("orpheus_ws.web_client")
    folders = spec.submodule_search_locations if spec is not None else None
    if not folders:
        raise RuntimeError("orpheus_ws.web_client is missing: reinstall orpheus_ws")
    return Path(next(iter(folders)))


def create_app(settings: Settings | None = None, engine: Engine | None = None,
               managed: ManagedBackend | None = None) -> Starlette:
    """The application. ``engine`` replaces the one the settings would build (tests);
    ``managed`` is a llama-server already started for it (``orpheus-ws serve``). With neither
    and no LLM URL, the lifespan starts the managed llama-server itself."""
    settings = settings or Settings.from_env()
    keys = KeyRing(settings.api_keys, settings.api_keys_file)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        backend, own = managed, None
        if engine is None and backend is None and not settings.llm_url:
            backend = own = await asyncio.to_thread(start_managed, settings)
        try:
            active = engine or build_engine(
                settings, llm_url=backend.url if backend else None,
                torch_threads=torch_threads_for(settings) if backend else None)
            try:
                await active.start()
                # Home Assistant's Wyoming port, on this engine (compat/wyoming_server.py)
                wyoming = WyomingServer(active, settings, version=__version__) \
                    if settings.wyoming_port else None
                if wyoming is not None:
                    await wyoming.start()
                try:
                    app.state.engine = active  # for the drain (serving.py)
                    with _reloading_on_sighup(keys):
                        yield {"engine": active, "managed": backend}
                finally:
                    if wyoming is not None:  # its connections closed, generations stopped
                        await wyoming.stop()
            finally:
                await active.close()
        finally:
            if own is not None:
                await asyncio.to_thread(own.stop)

    sockets = SocketRegistry()  # every socket of every route: the drain's and shutdown's
    ws = WebSocketEndpoint(settings, sockets)
    spec = document(settings, sorted(VoiceMap(settings).mapping))
    routes: list[Route | Mount | WebSocketRoute] = [
        *HttpApi(settings.lineup.default).routes(),
        *OpenAISpeech(settings).routes(),
        *VendorHttp(settings).routes(),
        WebSocketRoute("/api/tts/ws", ws),
        WebSocketRoute("/v1/speak", DeepgramSocket(settings, sockets)),
        *Baseten(settings, sockets).routes(),
        WebSocketRoute("/v1/audio/speech/websocket", TogetherSocket(settings, sockets)),
        WebSocketRoute("/tts/websocket", CartesiaSocket(settings, sockets)),
        *ElevenLabsSocket(settings, sockets).routes(),
        Route("/openapi.json", lambda request: JSONResponse(spec), methods=["GET"]),
        Route("/client", lambda request: RedirectResponse("/client/"), methods=["GET"]),
        Mount("/client", StaticFiles(directory=web_client_dir(), html=True), name="client"),
    ]
    middleware = [Middleware(CORSMiddleware, allow_origins=settings.origins,
                             allow_methods=["*"],
                             allow_headers=["*"],
                             expose_headers=["X-Processing-Time-Ms", "X-TTFA-Ms",
                                             "X-Audio-Duration-Seconds", "x-request-id"]),
                  Middleware(Gate, keys=keys, max_connections=settings.ws_max_connections,
                             allowed_origins=settings.origins,
                             max_body_bytes=settings.http_max_body_bytes,
                             body_timeout_s=settings.http_body_timeout,
                             metrics_token=settings.metrics_token)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    http_not_found = app.router.default

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        handler = no_such_socket if scope["type"] == "websocket" else http_not_found
        await handler(scope, receive, send)

    app.router.default = not_found
    app.state.sockets = sockets
    app.state.keys = keys
    return app


@contextlib.contextmanager
def _reloading_on_sighup(keys: KeyRing) -> Iterator[None]:
    """SIGHUP re-reads the API keys file (where this loop may handle signals: the main
    thread, not uvicorn's worker supervisor, which restarts its workers on SIGHUP)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, keys.reload)
    except (RuntimeError, ValueError, NotImplementedError):
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


def __getattr__(name: str) -> Starlette:
    """``orpheus_ws.app:app`` is built on first access, from the environment."""
    if name != "app":
        raise AttributeError(name)
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    application = create_app(settings)
    globals()["app"] = application
    return application
