"""The one place where exceptions become HTTP statuses and error bodies.

Body: ``{"error": {"code", "message", "field"?, "voices"?}, "detail": ...}``; ``detail`` is the
seed server's (FastAPI's) shape: a message, or for a bad field a list naming its location.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from ..exceptions import (
    BackendError,
    BackendUnavailable,
    DecoderError,
    OrpheusError,
    Overloaded,
    RateLimited,
    UnknownVoice,
    ValidationError,
)

RETRY_AFTER_S = 2  # a restarting llama-server is usually back by then (README)


def error_response(exc: Exception) -> JSONResponse:
    """The one place where exceptions become HTTP statuses."""
    status = 500
    body: dict[str, Any] = {"code": "internal_error", "message": "internal server error"}
    if isinstance(exc, OrpheusError):
        body = {"code": exc.code, "message": str(exc)}
    if isinstance(exc, ValidationError):
        status = 400 if exc.field == "body" else 422
        body["field"] = exc.field
        if isinstance(exc, UnknownVoice):
            body["voices"] = exc.voices
        detail = [{"loc": ["body", exc.field], "msg": exc.message, "type": exc.code}]
        return JSONResponse({"error": body, "detail": detail}, status_code=status)
    if isinstance(exc, Overloaded):  # 429 for a key over its share, else the server is full
        return JSONResponse({"error": body, "detail": body["message"]},
                            status_code=429 if isinstance(exc, RateLimited) else 503,
                            headers={"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, BackendUnavailable):
        return JSONResponse({"error": body, "detail": body["message"]}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_S)})
    elif isinstance(exc, BackendError):
        status = 502
    elif isinstance(exc, DecoderError):
        status = 500
    return JSONResponse({"error": body, "detail": body["message"]}, status_code=status)
