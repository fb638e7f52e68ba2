"""What one HTTP request may make the server hold: a body of at most ``--http-max-body-bytes``
(else 413), arriving within ``--http-body-timeout`` seconds of the route asking for it (else
408). The gate applies both to every route (``gate.py``): a ``Content-Length`` over the cap
is refused before any of the body is read; any other body is counted as the route receives
it, and refused as soon as it passes the cap or the deadline, never read further. The
request head is bounded by uvicorn itself (``--http-max-header-bytes``, ``serving.py``).

A refused request is answered by the gate, in the route's own error shape, with
``Connection: close`` (the rest of the body is never read); the route's next ``receive``
raises ClientGone, as if its client had left, and whatever it sends after is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

from starlette.types import Message, Receive, Scope, Send

from ..exceptions import ClientGone


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request's body is refused: an HTTP status, a stable code, a message."""

    status: int
    code: str
    message: str


def too_large(max_bytes: int) -> Refusal:
    return Refusal(413, "body_too_large", f"the request body is over {max_bytes} bytes "
                   "(--http-max-body-bytes)")


def declared_too_large(scope: Scope, max_bytes: int) -> Refusal | None:
    """A refusal when the request's ``Content-Length`` is over ``max_bytes``."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            return too_large(max_bytes) if value.strip().isdigit() and \
                int(value) > max_bytes else None
    return None


class BoundedBody:
    """One request's ``receive`` and ``send`` as its route gets them: the body counted and
    timed as it comes; past a bound, ``refuse`` answers (if the route has not begun its
    response) and the route's ``receive`` raises ClientGone. Once the whole body is in,
    ``receive`` is untimed: a streaming route waits on it for the client to leave."""

    def __init__(self, receive: Receive, send: Send, *, max_bytes: int, timeout_s: float,
                 refuse: Callable[[Refusal], Awaitable[None]]) -> None:
        self._receive = receive
        self._send = send
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.refuse = refuse
        self.received = 0
        self.deadline: float | None = None  # set when the route first asks for the body
        self.complete = False
        self.started = False  # the route has begun its response
        self.refused: Refusal | None = None

    async def receive(self) -> Message:
        if self.refused is not None:
            raise ClientGone()
        if self.complete:
            return await self._receive()
        if self.deadline is None:
            self.deadline = asyncio.get_running_loop().time() + self.timeout_s
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            await self._refuse(Refusal(408, "body_timeout", "the request body took more than "
                                       f"{self.timeout_s:g} s to arrive (--http-body-timeout)"))
        if message["type"] != "http.request":  # the client left
            self.complete = True
            return message
        self.received += len(message.get("body", b""))
        if self.received > self.max_bytes:
            await self._refuse(too_large(self.max_bytes))
        self.complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.refused is not None:
            return  # the gate has answered
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def _refuse(self, refusal: Refusal) -> NoReturn:
        self.refused = refusal
        if not self.started:
            await self.refuse(refusal)
        raise ClientGone()
