"""Exceptions of orpheus_ws, every one of them.

Hierarchy::

    OrpheusError                    code: the stable error code a client sees
    ├── RequestError            the client asked for something it can't have (HTTP 400/422,
    │   │                       WS error event; the socket stays usable)
    │   ├── ValidationError         a field is missing, of the wrong type or out of range
    │   │   ├── UnknownVoice            the voice is not one the server offers
    │   │   └── SsmlError               SSML that can't be read (text/ssml.py: invalid_ssml)
    │   └── ProtocolError           a WS message the session can't act on (protocol.md,
    │                               "Error codes": invalid_json, unknown_context, ...)
    ├── ConnectionFault         the WS connection must close (protocol.md, "Close codes")
    │   └── TooManyContexts         one more context would pass the session's cap (4001)
    ├── ClientGone              the HTTP client went away before its answer was ready
    ├── Overloaded              the server can't take this work now: try again after
    │   │                       ``retry_after_s`` (HTTP 503 + Retry-After, WS ``server_busy``)
    │   ├── RateLimited             the API key has its share in flight (HTTP 429)
    │   └── Draining                the server is shutting down (HTTP 503, WS ``draining``)
    ├── BackendError            the LLM backend failed one generation (HTTP 502)
    │   ├── BackendUnavailable      it can't be reached or refuses (HTTP 503)
    │   └── BackendProtocolError    it streamed something other than Orpheus audio (HTTP 502)
    │       └── InvalidAudioToken       a token that is not audio where audio must be
    └── DecoderError            the SNAC decoder failed a window (HTTP 500)

Foreign exceptions (aiohttp, torch) are mapped to these at the module that calls them. Their
messages are safe to show a client: they never carry a foreign exception's text.
Exceptions become HTTP statuses in ``orpheus_ws.http.errors`` and WebSocket close codes in
``orpheus_ws.ws.protocol.close_code``, nowhere else.
"""

from __future__ import annotations


class OrpheusError(Exception):
    """Base of every error this package raises on purpose."""

    code = "internal_error"


class RequestError(OrpheusError):
    """The client's request can't be served as asked. ``field`` names the offending field
    and ``context_id`` the WebSocket context, where there is one."""

    code = "invalid_request"
    field: str | None = None
    context_id: str | None = None


class ValidationError(RequestError):
    """A request field is invalid; ``field`` names it."""

    code = "invalid_parameter"

    def __init__(self, field: str, message: str, *, context_id: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.context_id = context_id


class UnknownVoice(ValidationError):
    code = "unknown_voice"

    def __init__(self, voice: str, voices: list[str]) -> None:
        super().__init__("voice", f"unknown voice {voice!r}; available: {', '.join(voices)}")
        self.voices = voices


class ProtocolError(RequestError):
    """A WebSocket message the server can't act on, with its protocol.md error code."""

    def __init__(self, code: str, message: str, *, context_id: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.context_id = context_id
        self.field = field


class ConnectionFault(OrpheusError):
    """The WebSocket connection must close; ``code`` picks the close code (protocol.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TooManyContexts(ConnectionFault):
    def __init__(self, limit: int) -> None:
        super().__init__("too_many_contexts", f"more than {limit} open contexts")


class ClientGone(OrpheusError):
    """The HTTP client disconnected before its response was ready."""

    code = "client_gone"


class Overloaded(OrpheusError):
    """No room for this work now; worth retrying after ``retry_after_s``."""

    code = "server_busy"

    def __init__(self, message: str, retry_after_s: int = 2) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimited(Overloaded):
    code = "rate_limited"


class Draining(Overloaded):
    code = "draining"


class BackendError(OrpheusError):
    code = "backend_error"


class BackendUnavailable(BackendError):
    code = "backend_unavailable"


class BackendProtocolError(BackendError):
    code = "backend_protocol_error"


class InvalidAudioToken(BackendProtocolError, ValueError):
    """A token in the audio stream does not carry a valid code for its position."""


class DecoderError(OrpheusError):
    code = "decoder_error"
