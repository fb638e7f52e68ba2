"""The seed API's error bodies; the status and headers are the policy's (``policy.py``).

Body: ``{"error": {"code", "message", "field"?, "voices"?}, "detail": ...}``; ``detail`` is the
seed server's (FastAPI's) shape: a message, or for a bad field a list naming its location.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from ..exceptions import UnknownVoice, ValidationError
from ..policy import decide


def error_response(exc: BaseException) -> JSONResponse:
    """The seed API's error for ``exc``, its status and headers as the policy decides."""
    decision = decide(exc)
    body: dict[str, Any] = {"code": decision.code, "message": decision.message}
    if isinstance(exc, ValidationError):
        body["field"] = exc.field
        if isinstance(exc, UnknownVoice):
            body["voices"] = exc.voices
        detail: Any = [{"loc": ["body", exc.field], "msg": exc.message, "type": exc.code}]
    else:
        detail = decision.message
    return JSONResponse({"error": body, "detail": detail}, status_code=decision.status,
                        headers=decision.headers)
