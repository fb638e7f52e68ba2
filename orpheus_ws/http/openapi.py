"""The OpenAPI 3.1 document of every HTTP route (``GET /openapi.json``): the seed API, the
operational routes and the compatibility routes, with the request fields each validates and
every status it can answer. Built from the server's settings (its voices), so that what the
document allows is what the server takes; the test suite holds the server to it with
schemathesis. The WebSocket protocols are documented in protocol.md and
docs/compatibility.md, which OpenAPI can't describe.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..compat.openai_speech import FORMATS, MODELS
from ..config import Settings
from ..formats import SAMPLE_RATES
from ..params import MAX_TEXT_CHARS, MAX_TOKENS_RANGE, NUMBER_RANGES

Schema = dict[str, Any]
TEXT: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS,
                "pattern": r"\S"}
OBJECT: Schema = {"type": "object"}
AUDIO: Schema = {"type": "string", "format": "binary"}
# Each server-sent event: its ``data`` is one JSON object (README, protocol of each route).
SSE: Schema = {"type": "object", "required": ["data"], "properties": {"data": {
    "type": "string", "contentMediaType": "application/json"}}}
AUDIO_TYPES = ("audio/mpeg", "audio/ogg", "audio/aac", "audio/flac", "audio/wav", "audio/pcm",
               "audio/basic", "audio/x-alaw-basic", "application/octet-stream")


def _json(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _errors(shape: Schema, *extra: int) -> dict[str, Any]:
    """The failures a speech route answers, in its own error ``shape``."""
    answer = {"description": "an error, in the route's own shape", "content": _json(shape)}
    retry = {**answer, "headers": {"Retry-After": {"schema": {"type": "string"}}}}
    out = {"400": answer, "401": answer, "429": retry, "502": answer, "503": retry}
    for status in extra:
        out[str(status)] = answer
    return out


def _audio(*media: str) -> dict[str, Any]:
    return {"description": "the audio, streamed as it is produced",
            "content": {m: {"schema": AUDIO} for m in media or AUDIO_TYPES}}


def _post(summary: str, body: Schema, ok: dict[str, Any], errors: dict[str, Any],
          parameters: list[Schema] | None = None) -> dict[str, Any]:
    return {"post": {"summary": summary, "parameters": parameters or [],
                     "requestBody": {"required": True, "content": _json(body)},
                     "responses": {"200": ok, **errors}}}


def _get(summary: str, ok: dict[str, Any], *more: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {"200": ok, **dict(more)}}}


def _query(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def document(settings: Settings, openai_voices: list[str]) -> dict[str, Any]:
    voices = settings.voice_list
    low, high = MAX_TOKENS_RANGE
    sampling: Schema = {name: {"type": "number", "minimum": lo, "maximum": hi}
                        for name, (lo, hi) in NUMBER_RANGES.items()}
    sampling["top_p"] = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
    seed_body: Schema = {"type": "object", "required": ["text"], "properties": {
        "text": TEXT, "voice": {"enum": voices}, **sampling,
        "max_tokens": {"type": "integer", "minimum": low, "maximum": high},
        "stream": {"type": "boolean"}, "trim_quiet": {"type": "boolean"},
        "normalize": {"type": "boolean"}}}
    seed_error: Schema = {"type": "object", "required": ["error"]}
    openai_error: Schema = {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "object", "required": ["message", "type", "code"]}}}
    json_ok = {"description": "JSON", "content": _json(OBJECT)}
    raw_rates = {"enum": list(SAMPLE_RATES)}
    paths: dict[str, Any] = {
        "/": _get("API information", json_ok),
        "/health": _get("Liveness: the backend, the managed llama-server, the decoder", json_ok),
        "/ready": _get("Readiness for load balancers", json_ok,
                       ("503", {"description": "not ready: waiting_for says why",
                                "content": _json(OBJECT)})),
        "/metrics": _get("Prometheus metrics", {"description": "text format",
                                                "content": {"text/plain": {"schema": {
                                                    "type": "string"}}}}),
        "/api/voices": _get("Voices, the default voice, emotion tags", json_ok),
        "/api/stats": _get("Counters for benchmarks", json_ok),
        "/api/tts": _post("Speech as JSON with a base64 WAV", seed_body, json_ok,
                          _errors(seed_error, 422)),
        "/api/tts/wav": _post("Speech as a WAV file", seed_body, _audio("audio/wav"),
                              _errors(seed_error, 422)),
        "/api/tts/stream": _post("Speech as server-sent events", seed_body, {
            "description": "SSE", "content": {"text/event-stream": {"schema": SSE}}},
            _errors(seed_error, 422)),
        "/v1/audio/speech": _post("OpenAI's speech API", {
            "type": "object", "required": ["input"], "properties": {
                "input": TEXT, "model": {"type": "string"},
                "voice": {"oneOf": [{"enum": [*voices, *openai_voices]}, {
                    "type": "object", "required": ["id"],
                    "properties": {"id": {"enum": [*voices, *openai_voices]}}}]},
                "instructions": {"type": "string"},
                "response_format": {"enum": list(FORMATS)},
                "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0},
                "stream_format": {"enum": ["audio", "sse"]}}},
            {"description": "audio, or SSE with stream_format sse",
             "content": {**{m: {"schema": AUDIO} for m in AUDIO_TYPES},
                         "text/event-stream": {"schema": SSE}}},
            _errors(openai_error)),
        "/v1/audio/voices": _get("OpenAI voice names and the Orpheus voice of each", json_ok),
        "/v1/audio/models": _get("The speech models, as Open WebUI lists them", json_ok),
        "/v1/models": _get("The model names accepted", json_ok),
        "/v1/speak": _post("Deepgram's speak API", {
            "type": "object", "required": ["text"], "properties": {"text": TEXT}},
            _audio(), _errors({"type": "object", "required": ["err_code", "err_msg"]}),
            [_query("model", {"type": "string"}),
             _query("encoding", {"enum": ["linear16", "mp3", "flac"]}),
             _query("sample_rate", {"enum": [16000, 24000, 48000]}),
             _query("container", {"enum": ["none", "wav"]})]),
        "/tts/bytes": _post("Cartesia's bytes API", {
            "type": "object", "required": ["transcript"], "properties": {
                "transcript": TEXT, "model_id": {"type": "string"},
                "voice": {"type": "object", "properties": {"mode": {"type": "string"},
                                                          "id": {"type": "string"}}},
                "output_format": {"type": "object", "properties": {
                    "container": {"enum": ["raw", "wav"]},
                    "encoding": {"enum": ["pcm_s16le"]}, "sample_rate": raw_rates}}}},
            _audio(), _errors({"type": "object", "required": ["error", "code"]})),
        "/v1/baseten": _post("Baseten's Orpheus API: raw 24 kHz PCM", {
            "type": "object", "required": ["prompt"], "properties": {
                "prompt": TEXT, "voice": {"type": "string"},
                "temperature": sampling["temperature"], "language": {"type": "string"}}},
            _audio("audio/pcm"), _errors({"type": "object", "required": ["error"]})),
    }
    eleven = _post("ElevenLabs' text-to-speech API", {
        "type": "object", "required": ["text"], "properties": {
            "text": TEXT, "model_id": {"type": "string"}, "voice_settings": OBJECT,
            "apply_text_normalization": {"enum": ["auto", "on", "off"]}}},
        _audio(), _errors({"type": "object", "required": ["detail"]}),
        [{"name": "voice_id", "in": "path", "required": True, "schema": {"type": "string",
                                                                         "minLength": 1}},
         _query("output_format", {"enum": ["mp3_44100_128", "mp3_22050_32", "pcm_16000",
                                           "pcm_24000", "ulaw_8000", "opus_48000_64"]}),
         _query("enable_ssml_parsing", {"enum": ["true", "false"]})])
    paths["/v1/text-to-speech/{voice_id}"] = eleven
    paths["/v1/text-to-speech/{voice_id}/stream"] = eleven
    paths["/v1/voices"] = _get("ElevenLabs' voice list: the model's voices", json_ok)
    return {"openapi": "3.1.0",
            "info": {"title": "orpheus_ws", "version": __version__,
                     "description": "Orpheus TTS: the seed REST API, OpenAI's and other "
                                    "vendors' speech routes. Models: " + ", ".join(MODELS)},
            "paths": paths}
