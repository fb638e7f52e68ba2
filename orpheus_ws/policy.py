"""The one error policy: every exception of the tree (``exceptions.py``) to what every route
answers for it. No I/O.

:func:`decide` gives the :class:`Decision` for an exception: its HTTP status, its stable code
(the native protocol's error code), the WebSocket close code where it ends a socket,
``Retry-After`` where a retry can help, the field the client got wrong, and the message a
client may see. Each protocol formats that decision in its own shape and decides nothing:
the seed API's JSON, OpenAI's, each vendor's, the native ``error`` event and close code.

An exception from outside the tree (a ``ValueError``, a library's error) is an internal error:
status 500, code ``internal_error``, and its text never reaches a client.
"""

from __future__ import annotations

from dataclasses import dataclass

from .exceptions import (
    BackendError,
    BackendProtocolError,
    BackendUnavailable,
    ClientGone,
    ConnectionFault,
    DecoderError,
    Draining,
    InvalidAudioToken,
    OrpheusError,
    Overloaded,
    ProtocolError,
    RateLimited,
    RequestError,
    TooManyContexts,
    UnknownVoice,
    ValidationError,
)

RETRY_AFTER_S = 2  # a restarting llama-server is usually back by then (README)
INTERNAL_MESSAGE = "internal server error"

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_SLOW_CONSUMER = 4002
# A connection fault's close code, by its code (protocol.md, "Close codes").
CLOSE_CODES = {
    "going_away": CLOSE_GOING_AWAY,
    "binary_not_accepted": 1003,
    "message_too_big": 1009,
    "internal_error": CLOSE_INTERNAL,
    "idle_timeout": 4000,
    "too_many_contexts": 4001,
    "slow_consumer": CLOSE_SLOW_CONSUMER,
}
# The same faults as HTTP statuses, where a route has to give one.
_FAULT_STATUS = {
    "going_away": 503, "binary_not_accepted": 415, "message_too_big": 413,
    "idle_timeout": 408, "too_many_contexts": 429, "slow_consumer": 408,
}


@dataclass(frozen=True, slots=True)
class Decision:
    status: int
    code: str
    message: str
    close_code: int | None = None  # set where the exception ends a socket
    retry_after_s: int | None = None
    field: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """``Retry-After`` where a retry can help."""
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


# The table: the first class in an exception's MRO found here decides its status, and whether
# a retry helps. Order doesn't matter; every class of exceptions.py is listed
# (tests/test_policy.py checks it).
_STATUS: dict[type[OrpheusError], tuple[int, bool]] = {
    OrpheusError: (500, False),
    RequestError: (400, False),
    ValidationError: (422, False),
    UnknownVoice: (422, False),
    ProtocolError: (400, False),
    ConnectionFault: (500, False),
    TooManyContexts: (429, False),
    ClientGone: (499, False),
    Overloaded: (503, True),
    RateLimited: (429, True),
    Draining: (503, True),
    BackendError: (502, False),
    BackendUnavailable: (503, True),
    BackendProtocolError: (502, False),
    InvalidAudioToken: (502, False),
    DecoderError: (500, False),
}


def close_code(fault: ConnectionFault) -> int:
    """The close code a connection fault ends a socket with."""
    return CLOSE_CODES.get(fault.code, CLOSE_INTERNAL)


def decide(exc: BaseException, *, vendor: bool = False) -> Decision:
    """What every route answers for ``exc``. ``vendor``: a vendor's route (OpenAI, Deepgram,
    ElevenLabs, Cartesia, Baseten), whose APIs answer a field the client got wrong with 400
    where the seed server (FastAPI) answers 422."""
    if not isinstance(exc, OrpheusError):
        return Decision(500, "internal_error", INTERNAL_MESSAGE, close_code=CLOSE_INTERNAL)
    status, retry = next(_STATUS[k] for k in type(exc).__mro__ if k in _STATUS)
    field = getattr(exc, "field", None)
    if isinstance(exc, ValidationError) and (field == "body" or vendor):
        status = 400  # the body itself is unreadable (FastAPI's 400), or a vendor's field
    closes: int | None = None
    if isinstance(exc, ConnectionFault):
        closes = close_code(exc)
        status = _FAULT_STATUS.get(exc.code, status)
    retry_after = None
    if retry:
        retry_after = exc.retry_after_s if isinstance(exc, Overloaded) else RETRY_AFTER_S
    message = str(exc) or INTERNAL_MESSAGE
    return Decision(status, exc.code, message, closes, retry_after, field)
