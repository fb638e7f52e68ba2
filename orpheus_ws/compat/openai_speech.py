"""OpenAI's speech API: ``POST /v1/audio/speech``, ``GET /v1/audio/voices``, ``GET /v1/models``.

A translation onto the engine: the request becomes ``engine.speak`` (the text cut into
segments as the native routes cut it), its audio one continuous encoded stream
(``outputs.AudioOutput``), sent as it is produced. Followed from the clients' own code
(../shared/voice-agent-clients.md): the ``openai`` SDK, pipecat's ``OpenAITTSService`` (pcm,
OpenAI voice names only) and LiveKit's ``openai.TTS`` (mp3 over SSE, parser chosen by
``Content-Type``, ``x-request-id`` expected).

- ``model``: any name; every model answers with Orpheus (``/v1/models`` lists the usual ones).
- ``voice``: a string or ``{"id": ...}``: an OpenAI voice name (``compat.voices``) or an
  Orpheus voice.
- ``response_format``: mp3, opus (Ogg), aac (ADTS), flac, wav, pcm (24 kHz s16le mono).
- ``speed`` 0.25-4.0: time-stretched with the pitch kept (FFmpeg's atempo).
- ``instructions``: accepted and not used: Orpheus is steered by emotion tags in the text
  (``<laugh>``, ``<sigh>``, ...), not by instructions.
- ``stream_format``: ``audio`` (the default) or ``sse`` (``speech.audio.delta`` events with
  base64 audio, then ``speech.audio.done`` with ``usage``).
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..config import Settings
from ..exceptions import OrpheusError, ValidationError
from ..outputs import OutputFormat
from ..params import MAX_TEXT_CHARS
from ..policy import decide
from ..transport.http_glue import DisconnectAwareStream
from ..vocabulary import TOKENS_PER_FRAME
from .speech import Tally, audio_pieces, first_piece, speech_response
from .voices import VoiceMap

log = logging.getLogger("orpheus_ws.openai")
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "orpheus")


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    text: str
    voice: str
    format: OutputFormat
    speed: float
    sse: bool


class OpenAIError(Exception):
    """An error answered in OpenAI's shape, ``{"error": {message, type, param, code}}``."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = \
            status, message, param, code, kind
        self.headers = headers or {}

    def response(self, request_id: str) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}
        return JSONResponse(body, status_code=self.status,
                            headers={"x-request-id": request_id, **self.headers})


def openai_error(exc: BaseException) -> OpenAIError:
    """The policy's decision in OpenAI's vocabulary (the SDK maps statuses to its classes)."""
    decision = decide(exc, vendor=True)
    kind = ("rate_limit_exceeded" if decision.status == 429 else
            "server_error" if decision.status >= 500 else "invalid_request_error")
    return OpenAIError(decision.status, decision.message, param=decision.field,
                       code=decision.code, kind=kind, headers=decision.headers)


class OpenAISpeech:
    def __init__(self, settings: Settings) -> None:
        self.voices = VoiceMap(settings)

    def routes(self) -> list[Route]:
        return [Route("/v1/audio/speech", self.speech, methods=["POST"]),
                Route("/v1/audio/voices", self.list_voices, methods=["GET"]),
                Route("/v1/audio/models", self.audio_models, methods=["GET"]),
                Route("/v1/models", self.models, methods=["GET"])]

    async def list_voices(self, request: Request) -> Response:
        return JSONResponse({"voices": [
            *({"id": v, "name": v, "orpheus": v} for v in self.voices.voices),
            *({"id": k, "name": k, "orpheus": v} for k, v in self.voices.mapping.items())]})

    async def audio_models(self, request: Request) -> Response:
        """The speech models, as Open WebUI lists them for a base URL not OpenAI's."""
        return JSONResponse({"models": [{"id": m, "name": m} for m in MODELS]})

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": "orpheus_ws"}
            for m in MODELS]})

    def parse(self, data: Any) -> SpeechRequest:
        if not isinstance(data, dict):
            raise OpenAIError(400, "the body must be a JSON object")
        text = data.get("input")
        if not isinstance(text, str) or not text.strip():
            raise OpenAIError(400, "input is required and must be a non-empty string",
                              param="input")
        if len(text) > MAX_TEXT_CHARS:
            raise OpenAIError(400, f"input must be at most {MAX_TEXT_CHARS} characters",
                              param="input", code="string_above_max_length")
        voice = data.get("voice", "alloy")
        if isinstance(voice, dict):
            voice = voice.get("id")
        if not isinstance(voice, str):
            raise OpenAIError(400, "voice must be a string or {\"id\": ...}", param="voice")
        kind = data.get("response_format", "mp3")
        if kind not in FORMATS:
            raise OpenAIError(400, f"response_format must be one of {', '.join(FORMATS)}",
                              param="response_format")
        speed = data.get("speed", 1.0)
        if isinstance(speed, bool) or not isinstance(speed, int | float) \
                or not 0.25 <= speed <= 4.0:
            raise OpenAIError(400, "speed must be a number from 0.25 to 4.0", param="speed")
        stream_format = data.get("stream_format", "audio")
        if stream_format not in ("audio", "sse"):
            raise OpenAIError(400, "stream_format must be 'audio' or 'sse'",
                              param="stream_format")
        try:
            orpheus_voice = self.voices.resolve(voice)
        except ValidationError as exc:
            raise OpenAIError(400, str(exc), param="voice", code="invalid_voice") from None
        return SpeechRequest(text, orpheus_voice, OutputFormat(kind),
                             float(speed), stream_format == "sse")

    async def speech(self, request: Request) -> Response:
        request_id = "req_" + uuid.uuid4().hex
        try:
            try:
                data = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                raise OpenAIError(400, "the body is not valid JSON") from None
            req = self.parse(data)
        except OpenAIError as exc:
            return exc.response(request_id)

        def error(exc: OrpheusError) -> Response:
            return openai_error(exc).response(request_id)

        headers = {"x-request-id": request_id}
        if not req.sse:
            return await speech_response(request, req.text, req.voice, req.format,
                                         speed=req.speed, error=error, headers=headers)
        tally = Tally()
        try:
            pieces = await first_piece(request, audio_pieces(
                request, req.text, req.voice, req.format, speed=req.speed,
                tally=tally))
        except OrpheusError as exc:
            return Response(status_code=499) if exc.code == "client_gone" else error(exc)
        return DisconnectAwareStream(self._sse(pieces, req, tally),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", **headers})

    @staticmethod
    async def _sse(pieces: AsyncGenerator[bytes, None], req: SpeechRequest,
                   tally: Tally) -> AsyncIterator[bytes]:
        try:
            async for piece in pieces:
                if piece:
                    yield _event({"type": "speech.audio.delta",
                                  "audio": base64.b64encode(piece).decode()})
            # Usage: the text's tokens (about 4 characters each) and the audio tokens.
            input_tokens = max(1, len(req.text) // 4)
            output_tokens = tally.frames * TOKENS_PER_FRAME
            yield _event({"type": "speech.audio.done", "usage": {
                "input_tokens": input_tokens, "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens}})
        except OrpheusError as exc:
            log.warning("speech stream failed: %s", exc)
            error = openai_error(exc)
            yield _event({"type": "error", "error": {"message": error.message,
                                                     "type": error.kind, "code": error.code}})
        finally:
            await pieces.aclose()


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
