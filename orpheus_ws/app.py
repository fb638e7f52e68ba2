"""The ASGI application: ``uvicorn orpheus_ws.app:app`` (settings from ORPHEUS_WS_* variables).

``create_app(settings)`` wires the engine (LLM client, decoder service) to the HTTP routes, the
WebSocket endpoint and the bundled web player. The decoder's weights load at start-up.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from .codec import load_codec
from .config import Settings
from .decoder import DecoderService
from .engine import Engine
from .http_api import HttpApi
from .llm import LLMClient
from .ws_endpoint import WebSocketEndpoint

log = logging.getLogger("orpheus_ws")
WEB_CLIENT_DIR = Path(__file__).resolve().parent.parent / "web_client"


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(levelname)s:%(name)s:%(message)s")


def build_engine(settings: Settings) -> Engine:
    """The engine for these settings (loads the decoder's weights)."""
    if settings.torch_threads > 0:
        import torch

        torch.set_num_threads(settings.torch_threads)
    codec = load_codec(settings.snac_model, settings.device, kind=settings.codec,
                       noise=settings.decoder_noise, graphs=settings.snac_graphs)
    decoder = DecoderService(codec, max_batch=settings.max_batch, batching=settings.batching)
    llm = LLMClient(settings.llm_url, settings.llm_api,  # type: ignore[arg-type]
                    model=settings.llm_model, read_timeout_s=settings.llm_timeout)
    tuning = settings.stream_tuning(codec.device)
    return Engine(llm, decoder, voices=settings.voice_list, tuning=tuning,
                  lookahead=settings.lookahead)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    holder: dict[str, Engine] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        active = engine or build_engine(settings)
        holder["engine"] = active
        await active.decoder.start()
        log.info("orpheus_ws ready: LLM %s (%s), decoder %s on %s", settings.llm_url,
                 settings.llm_api, active.decoder.codec.name, active.decoder.codec.device)
        try:
            yield
        finally:
            await active.close()

    class LazyEngine:
        """Routes are built before the lifespan loads the engine."""

        def __getattr__(self, name: str) -> object:
            return getattr(holder["engine"], name)

    lazy: Engine = LazyEngine()  # type: ignore[assignment]
    api = HttpApi(lazy, settings.default_voice)
    ws = WebSocketEndpoint(lazy, settings)
    routes: list[Route | Mount | WebSocketRoute] = [
        *api.routes(),
        WebSocketRoute("/api/tts/ws", ws),
        Route("/client", lambda request: RedirectResponse("/client/"), methods=["GET"]),
    ]
    if WEB_CLIENT_DIR.is_dir():
        routes.append(Mount("/client", StaticFiles(directory=WEB_CLIENT_DIR, html=True),
                            name="client"))
    middleware = [Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"],
                             allow_headers=["*"],
                             expose_headers=["X-Processing-Time-Ms", "X-TTFA-Ms",
                                             "X-Audio-Duration-Seconds"])]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.ws_endpoint = ws
    return app


def __getattr__(name: str) -> Starlette:
    """``orpheus_ws.app:app`` is built on first access, from the environment."""
    if name != "app":
        raise AttributeError(name)
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    application = create_app(settings)
    globals()["app"] = application
    return application
