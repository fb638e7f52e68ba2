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

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from .. import params as fields
from ..config import Settings
from ..engine import AudioChunk, Caller, SpeechEngine
from ..exceptions import ConnectionFault, OrpheusError, RequestError
from ..formats import AudioFormat
from ..outputs import OutputFormat
from ..params import DEFAULTS, MAX_TOKENS_RANGE, SamplingParams
from ..policy import CLOSE_INTERNAL, CLOSE_POLICY, CLOSE_TRY_AGAIN_LATER, close_code, decide
from ..transport.http_glue import caller_of, engine_of
from ..transport.limits import SocketLimits
from ..transport.outbox import Outbox
from ..transport.runtime import Refusal, SocketRegistry, SocketRoute
from ..transport.utterance import Sink, Utterance
from .speech import json_body, speech_response
from .voices import VoiceMap

END = "__END__"


class Baseten:
    def __init__(self, settings: Settings, registry: SocketRegistry) -> None:
        self.settings = settings
        self.voices = VoiceMap(settings)
        self.limits = SocketLimits.from_settings(settings)
        self.registry = registry

    def routes(self) -> list[Route | WebSocketRoute]:
        return [Route("/v1/baseten", self.http, methods=["POST"]),
                WebSocketRoute("/v1/baseten",
                               SocketRoute(self.registry, self.limits, self.connection))]

    def _voice(self, value: Any) -> str:
        return self.voices.lenient(value) if isinstance(value, str) else self.voices.default

    @staticmethod
    def error(exc: BaseException) -> Response:
        decision = decide(exc, vendor=True)
        return JSONResponse({"error": decision.message, "code": decision.code},
                            status_code=decision.status, headers=decision.headers)

    async def http(self, request: Request) -> Response:
        try:
            data = await json_body(request)
            text = fields.text({"text": data.get("prompt")})
            params = fields.sampling({"temperature": data.get("temperature")})
        except RequestError as exc:
            return self.error(exc)
        return await speech_response(request, text, self._voice(data.get("voice")),
                                     OutputFormat("pcm"), error=self.error, params=params)

    def connection(self, websocket: WebSocket, outbox: Outbox) -> BasetenConnection:
        return BasetenConnection(engine_of(websocket), caller_of(websocket), self, outbox)


class BasetenConnection:
    """LiveKit's Baseten stream: options, text, ``__END__``; PCM back, then the close."""

    route = "baseten"
    idle_timeout_s: float | None = None

    def __init__(self, engine: SpeechEngine, caller: Caller, baseten: Baseten,
                 outbox: Outbox) -> None:
        self.engine = engine
        self.caller = caller
        self.baseten = baseten
        self.outbox = outbox
        self.utterance: Utterance | None = None  # made by the options message

    def opened(self) -> None:
        """Baseten's socket sends nothing first."""

    async def received(self, text: str | None, data: bytes | None) -> None:
        if text is None:
            raise ConnectionFault("binary_not_accepted", "the server accepts only text messages")
        if self.utterance is None:
            self.start(text)
        elif text == END:
            self.utterance.feed.end()  # the utterance's end closes the socket
        elif text and not self.utterance.feed.ended:
            try:
                self.utterance.push(text, self.baseten.limits, self.utterance.held_chars)
            except RequestError as exc:
                raise ConnectionFault(exc.code, str(exc)) from None

    def start(self, text: str) -> None:
        try:
            options = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ConnectionFault("invalid_options",
                                  "the first message must be JSON options") from None
        options = options if isinstance(options, dict) else {}
        max_tokens = options.get("max_tokens")
        low, high = MAX_TOKENS_RANGE
        params = DEFAULTS if not isinstance(max_tokens, int) else \
            SamplingParams(DEFAULTS.temperature, DEFAULTS.top_p, DEFAULTS.repetition_penalty,
                           min(high, max(low, max_tokens)))
        self.utterance = Utterance(self.engine, self.baseten._voice(options.get("voice")),
                                   AudioFormat(), _Sink(self.outbox), self.outbox,
                                   params=params, caller=self.caller)

    def busy(self) -> bool:
        return self.utterance is not None and self.utterance.generating

    def refusal(self, fault: ConnectionFault) -> Refusal:
        """Baseten's socket has no error message: the close code and reason say it."""
        special = {"invalid_options": 1003, "text_too_long": CLOSE_POLICY}
        return Refusal(special.get(fault.code, close_code(fault)), reason=str(fault))

    async def stop(self) -> None:
        if self.utterance is not None:
            await self.utterance.cancel()


class _Sink(Sink):
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def audio(self, payload: bytes, chunk: AudioChunk | None) -> None:
        self.outbox.put(payload)

    def finished(self) -> None:
        self.outbox.close(1000)

    def failed(self, error: OrpheusError) -> None:
        """1013 (try again later) when the server had no room, else 1011."""
        decision = decide(error)
        code = CLOSE_TRY_AGAIN_LATER if decision.retry_after_s is not None else CLOSE_INTERNAL
        self.outbox.close(code, decision.message)
