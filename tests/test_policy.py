"""One table decides every answer (orpheus_ws/policy.py): every exception of the tree, walked
through every kind of route that formats it, gets the table's status, code and Retry-After in
that route's shape, and nothing from outside the tree reaches a client."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from starlette.responses import Response

from orpheus_ws import exceptions
from orpheus_ws.compat.baseten import Baseten
from orpheus_ws.compat.openai_speech import openai_error
from orpheus_ws.compat.vendor_http import VendorHttp
from orpheus_ws.exceptions import (
    ConnectionFault,
    OrpheusError,
    Overloaded,
    ProtocolError,
    TooManyContexts,
    UnknownVoice,
    ValidationError,
)
from orpheus_ws.http.errors import error_response
from orpheus_ws.policy import _STATUS, decide

SECRET = "secret /internal/path.py line 42"


def make(cls: type[OrpheusError]) -> OrpheusError:
    """An instance of ``cls`` with plausible arguments."""
    if issubclass(cls, UnknownVoice):
        return cls("nobody", ["tara", "leo"])
    if issubclass(cls, ValidationError):
        return cls("temperature", "must be from 0 to 2")
    if issubclass(cls, ProtocolError):
        return cls("unknown_context", "no context 'x'", context_id="x")
    if issubclass(cls, TooManyContexts):
        return cls(8)
    if issubclass(cls, ConnectionFault):
        return cls("idle_timeout", "no message for 3 s")
    if issubclass(cls, Overloaded):
        return cls("the server is full", 3)
    return cls(f"{cls.__name__} happened")


TREE = sorted((c for _, c in inspect.getmembers(exceptions, inspect.isclass)
               if issubclass(c, OrpheusError)), key=lambda c: c.__name__)


def body(response: Response) -> dict[str, Any]:
    data = orjson.loads(bytes(response.body))
    assert isinstance(data, dict)
    return data


# Each HTTP route kind's formatter: the exception in, the response out.
FORMATTERS: dict[str, Callable[[BaseException], Response]] = {
    "seed": error_response,
    "openai": lambda exc: openai_error(exc).response("req_1"),
    "deepgram": VendorHttp.deepgram_error,
    "elevenlabs": VendorHttp.elevenlabs_error,
    "cartesia": VendorHttp.cartesia_error,
    "baseten": Baseten.error,
}


def test_the_table_names_every_exception_of_the_tree() -> None:
    assert len(TREE) >= 15
    assert set(TREE) == set(_STATUS)


@pytest.mark.parametrize("cls", TREE, ids=lambda c: c.__name__)
@pytest.mark.parametrize("route", list(FORMATTERS))
def test_every_exception_through_every_http_route(cls: type[OrpheusError], route: str) -> None:
    exc = make(cls)
    decision = decide(exc, vendor=route != "seed")
    response = FORMATTERS[route](exc)
    assert response.status_code == decision.status
    assert 400 <= response.status_code < 600
    assert response.headers.get("retry-after") == (
        None if decision.retry_after_s is None else str(decision.retry_after_s))
    text = bytes(response.body).decode()
    assert str(exc) in text or decision.message in text
    assert body(response)  # JSON, in the route's shape
    if isinstance(exc, ValidationError):
        assert response.status_code in (400, 422)
        assert "temperature" in text or "voice" in text  # the field is named


@pytest.mark.parametrize("route", list(FORMATTERS))
@pytest.mark.parametrize("foreign", [ValueError(SECRET), KeyError(SECRET),
                                     RuntimeError(SECRET), OSError(SECRET)],
                         ids=lambda e: type(e).__name__)
def test_nothing_from_outside_the_tree_reaches_a_client(route: str,
                                                         foreign: Exception) -> None:
    response = FORMATTERS[route](foreign)
    assert response.status_code == 500
    assert SECRET not in bytes(response.body).decode()
    assert "internal" in bytes(response.body).decode()


def test_statuses_the_clients_read() -> None:
    """The statuses pipecat, LiveKit and the SDKs act on: 429 and 503 are retried."""
    assert decide(exceptions.RateLimited("busy", 2)).status == 429
    assert decide(exceptions.Overloaded("full", 2)).headers == {"Retry-After": "2"}
    assert decide(exceptions.Draining("bye", 2)).status == 503
    assert decide(exceptions.BackendUnavailable("down")).headers == {"Retry-After": "2"}
    assert decide(exceptions.BackendProtocolError("junk")).status == 502
    assert decide(exceptions.DecoderError("gpu")).status == 500  # the same on every route
    assert decide(ValidationError("body", "is not JSON")).status == 400
    assert decide(ValidationError("voice", "?")).status == 422
    assert decide(ValidationError("voice", "?"), vendor=True).status == 400
    fault = decide(ConnectionFault("message_too_big", "over"))
    assert (fault.status, fault.close_code) == (413, 1009)
    assert decide(ConnectionFault("idle_timeout", "idle")).close_code == 4000
    assert decide(ConnectionFault("slow_consumer", "slow")).close_code == 4002
    assert decide(ValueError("x")).close_code == 1011
