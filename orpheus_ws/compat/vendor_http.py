"""The HTTP speech routes of Deepgram, ElevenLabs and Cartesia, which pipecat and LiveKit use
for non-streaming synthesis (../shared/voice-agent-clients.md), each a translation of the
vendor's query and body onto ``speech.speech_response``:

- Deepgram ``POST /v1/speak?model=&encoding=&sample_rate=&container=``, body ``{"text"}``:
  ``encoding`` linear16 (default), mulaw, alaw, mp3, opus, flac, aac; ``container`` none or
  wav (linear16's default, as Deepgram's); the voice from the model name (``aura-2-tara-en``
  or ``tara``).
- ElevenLabs ``POST /v1/text-to-speech/{voice_id}[/stream]?output_format=``, body
  ``{"text", "model_id", ...}``: ``output_format`` as ElevenLabs names them
  (``mp3_44100_128``, the default; ``pcm_16000``, ``ulaw_8000``, ``opus_48000_64``, ...).
- Cartesia ``POST /tts/bytes``, body ``{"transcript", "voice": {"id"}, "output_format":
  {"container": raw|wav|mp3, "encoding": pcm_s16le|pcm_mulaw|pcm_alaw, "sample_rate"}}``.

Voice ids that are neither Orpheus voices nor mapped speak with the default voice
(``voices.VoiceMap.lenient``). Errors come in each vendor's shape with a 4xx that its SDK
raises; a backend that is down is 503.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import params as fields
from ..config import Settings
from ..exceptions import RequestError, ValidationError
from ..outputs import OutputFormat, parse_vendor_format
from ..policy import decide
from .speech import Reading, json_body, speech_response
from .voices import VoiceMap, deepgram_names

DEEPGRAM_ENCODINGS = {"linear16": "pcm", "mulaw": "mulaw", "alaw": "alaw", "mp3": "mp3",
                      "opus": "opus", "flac": "flac", "aac": "aac"}
CARTESIA_ENCODINGS = {"pcm_s16le": "pcm", "pcm_mulaw": "mulaw", "pcm_alaw": "alaw"}


class VendorHttp:
    def __init__(self, settings: Settings) -> None:
        self.voices = VoiceMap(settings)

    def routes(self) -> list[Route]:
        return [Route("/v1/speak", self.deepgram, methods=["POST"]),
                Route("/v1/text-to-speech/{voice_id}", self.elevenlabs, methods=["POST"]),
                Route("/v1/text-to-speech/{voice_id}/stream", self.elevenlabs,
                      methods=["POST"]),
                Route("/v1/voices", self.elevenlabs_voices, methods=["GET"]),
                Route("/tts/bytes", self.cartesia, methods=["POST"])]

    async def elevenlabs_voices(self, request: Request) -> Response:
        """ElevenLabs' voice list (``GET /v1/voices``): the model's voices, by name."""
        lineup = self.voices.lineup
        return JSONResponse({"voices": [
            {"voice_id": voice, "name": voice, "category": "premade",
             "labels": {"language": lineup.language_of(voice)}}
            for voice in lineup.voices]})

    # -- Deepgram ---------------------------------------------------------------------------

    @staticmethod
    def deepgram_error(exc: BaseException) -> Response:
        decision = decide(exc, vendor=True)
        return JSONResponse({"err_code": decision.code.upper(), "err_msg": decision.message},
                            status_code=decision.status, headers=decision.headers)

    async def deepgram(self, request: Request) -> Response:
        query = request.query_params
        try:
            text = fields.text(await json_body(request))
            encoding = query.get("encoding", "linear16")
            if encoding not in DEEPGRAM_ENCODINGS:
                raise ValidationError("encoding", f"must be one of {', '.join(DEEPGRAM_ENCODINGS)}")
            kind = DEEPGRAM_ENCODINGS[encoding]
            container = query.get("container", "wav" if encoding == "linear16" else "none")
            if kind == "pcm" and container == "wav":
                kind = "wav"
            default_rate = 8000 if kind in ("mulaw", "alaw") else 24000
            fmt = _format(kind, query.get("sample_rate", str(default_rate)),
                          query.get("bit_rate"), "sample_rate")
            voice = self.voices.lenient(*deepgram_names(query.get("model", "")))
        except RequestError as exc:
            return self.deepgram_error(exc)
        return await speech_response(request, text, voice, fmt, error=self.deepgram_error)

    # -- ElevenLabs -------------------------------------------------------------------------

    @staticmethod
    def elevenlabs_error(exc: BaseException) -> Response:
        decision = decide(exc, vendor=True)
        status = "invalid_request" if isinstance(exc, RequestError) else decision.code
        return JSONResponse({"detail": {"status": status, "message": decision.message}},
                            status_code=decision.status, headers=decision.headers)

    async def elevenlabs(self, request: Request) -> Response:
        try:
            body = await json_body(request)
            text = fields.text(body)
            reading = Reading.elevenlabs(request.query_params,
                                         body if isinstance(body, dict) else None)
            try:
                fmt = parse_vendor_format(request.query_params.get("output_format",
                                                                   "mp3_44100_128"))
            except ValueError as exc:
                raise ValidationError("output_format", str(exc)) from None
            voice = self.voices.lenient(request.path_params["voice_id"])
        except RequestError as exc:
            return self.elevenlabs_error(exc)
        return await speech_response(request, text, voice, fmt, error=self.elevenlabs_error,
                                     reading=reading)

    # -- Cartesia ---------------------------------------------------------------------------

    @staticmethod
    def cartesia_error(exc: BaseException) -> Response:
        decision = decide(exc, vendor=True)
        return JSONResponse({"error": decision.message, "code": decision.code},
                            status_code=decision.status, headers=decision.headers)

    async def cartesia(self, request: Request) -> Response:
        try:
            data = await json_body(request)
            text = fields.text({"text": data.get("transcript")})
            spec = data.get("output_format") or {}
            if not isinstance(spec, dict):
                raise ValidationError("output_format", "must be an object")
            container = spec.get("container", "raw")
            if container == "mp3":
                kind = "mp3"
            elif isinstance(encoding := spec.get("encoding", "pcm_s16le"), str) \
                    and encoding in CARTESIA_ENCODINGS:
                kind = CARTESIA_ENCODINGS[encoding]
                if container == "wav" and kind == "pcm":
                    kind = "wav"
            else:
                raise ValidationError("output_format.encoding",
                                      f"must be one of {', '.join(CARTESIA_ENCODINGS)}")
            fmt = _format(kind, spec.get("sample_rate", 24000), spec.get("bit_rate"),
                          "output_format.sample_rate")
            voice_spec = data.get("voice") or {}
            voice_id = voice_spec.get("id", "") if isinstance(voice_spec, dict) else ""
            voice = self.voices.lenient(str(voice_id))
        except RequestError as exc:
            return self.cartesia_error(exc)
        return await speech_response(request, text, voice, fmt, error=self.cartesia_error)


def _whole(value: Any, field: str) -> int:
    """A whole number from a query string or JSON, or a ValidationError naming ``field``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ValidationError(field, "must be a whole number")


def _format(kind: str, rate: Any, bit_rate: Any, field: str) -> OutputFormat:
    rate = _whole(rate, field)
    bits = _whole(bit_rate, "bit_rate") if bit_rate not in (None, "") else None
    try:
        return OutputFormat(kind, rate, bits)
    except ValueError as exc:  # OutputFormat's own messages: the values it takes
        raise ValidationError("bit_rate" if "bit rate" in str(exc) else field,
                              str(exc)) from None
