"""HTTP glue shared by every route: the engine and the caller from the request's state, and a
client that
goes away cancelling its request's work (the sender and a disconnect listener in one wait,
as Starlette's own StreamingResponse does)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import HTTPConnection, Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..engine import Caller, SpeechEngine
from ..exceptions import ClientGone

T = TypeVar("T")


class DisconnectAwareStream(StreamingResponse):
    """A StreamingResponse that always listens for the client leaving, whatever the ASGI
    version, so that a stalled generation is cancelled the moment its client goes."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = asyncio.ensure_future(self.stream_response(send))
        listen = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait({stream, listen}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stream, listen):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await asyncio.gather(stream, listen, return_exceptions=True)


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Runs ``work`` unless the client leaves first; then it is cancelled (ClientGone)."""

    async def listen() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    task = asyncio.ensure_future(work)
    listener = asyncio.ensure_future(listen())
    try:
        await asyncio.wait({task, listener}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            raise ClientGone()
        return task.result()
    finally:
        for t in (task, listener):
            t.cancel()
        await asyncio.gather(task, listener, return_exceptions=True)


CALLER = "caller"  # the key in a request's or socket's state (scope["state"])


def engine_of(connection: HTTPConnection) -> SpeechEngine:
    """The engine the application's lifespan put in its state."""
    engine: SpeechEngine = connection.state.engine
    return engine


def caller_of(connection: HTTPConnection) -> Caller:
    """Who asks, as the gate found it (``http/gate.py``): the key's name and the route."""
    state: dict[str, object] = connection.scope.get("state") or {}
    caller = state.get(CALLER)
    return caller if isinstance(caller, Caller) else Caller()
