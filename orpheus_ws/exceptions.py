"""Exceptions of orpheus_ws.

Hierarchy::

    OrpheusError
    ├── RequestError            the client's request is invalid (HTTP 400/422, WS error event)
    │   ├── ValidationError         a field is missing, of the wrong type or out of range
    │   └── UnknownVoice            the voice is not one the server offers
    ├── BackendError            the LLM backend failed one generation
    │   ├── BackendUnavailable      it can't be reached or refuses (HTTP 503)
    │   └── BackendProtocolError    it streamed something other than Orpheus audio (HTTP 502)
    └── DecoderError            the SNAC decoder failed a window (HTTP 500)

Foreign exceptions (aiohttp, torch) are mapped to these at the module that calls them. Their
messages are safe to show a client: they never carry a foreign exception's text.
"""

from __future__ import annotations


class OrpheusError(Exception):
    """Base of every error this package raises on purpose."""

    code = "internal_error"


class RequestError(OrpheusError):
    code = "invalid_request"


class ValidationError(RequestError):
    """A request field is invalid; ``field`` names it."""

    code = "invalid_parameter"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnknownVoice(ValidationError):
    code = "unknown_voice"

    def __init__(self, voice: str, voices: list[str]) -> None:
        super().__init__("voice", f"unknown voice {voice!r}; available: {', '.join(voices)}")
        self.voices = voices


class BackendError(OrpheusError):
    code = "backend_error"


class BackendUnavailable(BackendError):
    code = "backend_unavailable"


class BackendProtocolError(BackendError):
    code = "backend_protocol_error"


class DecoderError(OrpheusError):
    code = "decoder_error"
