"""Baseten's Orpheus endpoint, as LiveKit's ``baseten.TTS`` (model ``orpheus``) speaks it, at
``/v1/baseten`` (``model_endpoint="ws://HOST:9100/v1/baseten"`` streams,
``"http://HOST:9100/v1/baseten"`` synthesizes); LiveKit ``plugins/baseten/tts.py``:

- socket: a JSON options message ``{"voice", "max_tokens", "buffer_size"}``, then raw text
  messages (segmented like the native ``auto`` buffering), then the string ``"__END__"``; the
  server sends binary 24 kHz s16le PCM, then closes (1000; 1011 after a failed generation,
  1013 when the server had no room for it).
- HTTP: ``POST`` ``{"prompt", "voice", "temperature", "language"}``, raw 24 kHz s16le PCM
  back.

``max_tokens`` bounds each segment's generation, clamped to 64-2048; ``buffer_size`` and
``language`` are ignored. The voice maps like every vendor's.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .. import params as fields
from ..config import Settings
from ..engine import AudioChunk, Engine
from ..exceptions import OrpheusError, Overloaded, RequestError
from ..formats import AudioFormat
from ..outputs import OutputFormat
from ..params import DEFAULTS, MAX_TOKENS_RANGE, SamplingParams
from ..ws.outbox import Outbox
from .speech import json_body, retry_after, speech_response, status_of
from .utterance import Sink, Utterance, send_from, stop_socket
from .voices import VoiceMap

END = "__END__"


class Baseten:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.voices = VoiceMap(settings)

    def routes(self) -> list[Route | WebSocketRoute]:
        return [Route("/v1/baseten", self.http, methods=["POST"]),
                WebSocketRoute("/v1/baseten", self.socket)]

    def _voice(self, value: Any) -> str:
        return self.voices.lenient(value) if isinstance(value, str) else self.voices.default

    @staticmethod
    def error(exc: OrpheusError) -> Response:
        return JSONResponse({"error": str(exc), "code": exc.code}, status_code=status_of(exc),
                            headers=retry_after(exc))

    async def http(self, request: Request) -> Response:
        try:
            data = await json_body(request)
            text = fields.text({"text": data.get("prompt")})
            params = fields.sampling({"temperature": data.get("temperature")})
        except RequestError as exc:
            return self.error(exc)
        return await speech_response(request, text, self._voice(data.get("voice")),
                                     OutputFormat("pcm"), error=self.error, params=params)

    async def socket(self, websocket: WebSocket) -> None:
        engine: Engine = websocket.state.engine
        await websocket.accept()
        try:
            options = orjson.loads(await websocket.receive_text())
        except (orjson.JSONDecodeError, WebSocketDisconnect, KeyError):
            with contextlib.suppress(Exception):
                await websocket.close(1003, "the first message must be JSON options")
            return
        options = options if isinstance(options, dict) else {}
        max_tokens = options.get("max_tokens")
        low, high = MAX_TOKENS_RANGE
        params = DEFAULTS if not isinstance(max_tokens, int) else \
            SamplingParams(DEFAULTS.temperature, DEFAULTS.top_p, DEFAULTS.repetition_penalty,
                           min(high, max(low, max_tokens)))
        outbox = Outbox(self.settings.ws_max_buffered_bytes)
        sink = _Sink(outbox)
        utterance = Utterance(engine, self._voice(options.get("voice")), AudioFormat(), sink,
                              outbox, params=params)
        sender = asyncio.ensure_future(send_from(outbox, websocket,
                                                 self.settings.ws_send_timeout))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text == END:
                    utterance.feed.end()
                    if await utterance.finish(websocket, outbox, sender):
                        await websocket.close(*sink.close_code())
                    return
                if text:
                    utterance.feed.push(text)
        except WebSocketDisconnect:
            return
        finally:
            await stop_socket(sender, utterance)


class _Sink(Sink):
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.error: OrpheusError | None = None

    def audio(self, payload: bytes, chunk: AudioChunk | None) -> None:
        self.outbox.put(payload)

    def failed(self, error: OrpheusError) -> None:
        self.error = error

    def close_code(self) -> tuple[int, str]:
        """1000; 1013 (try again later) when the server had no room; 1011 after a failure."""
        if self.error is None:
            return 1000, ""
        return 1013 if isinstance(self.error, Overloaded) else 1011, str(self.error)[:120]
