"""What every vendor's HTTP speech route shares: a text spoken by the engine into one
continuous encoded stream, sent as it is produced, with the error that comes before the first
audio answered as a status (each vendor in its own error shape) and a client that leaves
aborting the generation."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..engine import AudioChunk
from ..exceptions import OrpheusError, ValidationError
from ..outputs import AudioOutput, OutputFormat
from ..params import DEFAULTS, SamplingParams
from ..transport.http_glue import (
    DisconnectAwareStream,
    caller_of,
    engine_of,
    until_disconnect,
)

log = logging.getLogger("orpheus_ws.compat")


@dataclass(slots=True)
class Tally:
    """What one request generated (frames), for the vendors that report usage."""

    frames: int = 0


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or a ValidationError naming the body."""
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise ValidationError("body", "is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationError("body", "must be a JSON object")
    return data


@dataclass(frozen=True, slots=True)
class Reading:
    """How a request's text is read: as SSML, and normalized or not (None: the server's
    setting)."""

    ssml: bool = False
    normalize: bool | None = None

    @classmethod
    def elevenlabs(cls, query: Mapping[str, str], body: Mapping[str, Any] | None = None
                   ) -> Reading:
        """ElevenLabs' ``enable_ssml_parsing`` and ``apply_text_normalization`` (query or
        body): "off" turns normalization off, "on" and "auto" leave it to the server."""
        def get(name: str) -> Any:
            return (body or {}).get(name, query.get(name))
        ssml = str(get("enable_ssml_parsing")).lower() == "true"
        return cls(ssml, False if str(get("apply_text_normalization")) == "off" else None)


async def audio_pieces(request: Request, text: str, voice: str, fmt: OutputFormat, *,
                       speed: float = 1.0, tally: Tally | None = None,
                       params: SamplingParams = DEFAULTS, reading: Reading = Reading()
                       ) -> AsyncGenerator[bytes, None]:
    """The encoded stream in pieces; a piece is yielded once it holds audio."""
    output = AudioOutput(fmt, speed=speed)
    pending = b""
    engine, caller = engine_of(request), caller_of(request)
    # closed with this generator (a client gone), not when it is collected
    async with contextlib.aclosing(engine.speak(
            text, voice=voice, params=params, caller=caller, normalize=reading.normalize,
            ssml=reading.ssml)) as events:
        async for event in events:
            if isinstance(event, AudioChunk):
                if tally is not None:
                    tally.frames += event.frames
                pending += output.feed(event.pcm)
                if pending:
                    yield pending
                    pending = b""
    yield pending + output.finish()


async def first_piece(request: Request, pieces: AsyncGenerator[bytes, None]
                      ) -> AsyncGenerator[bytes, None]:
    """Waits for the first audio (so a failure before it is still a status to answer with),
    then the whole stream again from there; raises what came instead of audio."""
    try:
        first = await until_disconnect(request, anext(pieces))
    except StopAsyncIteration:
        first = b""
    except BaseException:
        await pieces.aclose()
        raise
    return _prepend(first, pieces)


async def _prepend(first: bytes, rest: AsyncGenerator[bytes, None]
                   ) -> AsyncGenerator[bytes, None]:
    try:
        yield first
        async for piece in rest:
            yield piece
    finally:
        await rest.aclose()


async def _audio_only(pieces: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    try:
        async for piece in pieces:
            if piece:
                yield piece
    except OrpheusError as exc:  # after the first bytes there is no status left to give
        log.warning("speech stream failed: %s", exc)
    finally:
        await pieces.aclose()


async def speech_response(request: Request, text: str, voice: str, fmt: OutputFormat, *,
                          error: Callable[[OrpheusError], Response], speed: float = 1.0,
                          headers: dict[str, str] | None = None,
                          params: SamplingParams = DEFAULTS,
                          reading: Reading = Reading()) -> Response:
    """The audio of ``text`` as a streamed response, or ``error(exc)`` if it fails first."""
    try:
        pieces = await first_piece(request, audio_pieces(request, text, voice, fmt,
                                                         speed=speed, params=params,
                                                         reading=reading))
    except OrpheusError as exc:
        if exc.code == "client_gone":
            return Response(status_code=499)
        log.warning("%s failed: %s", request.url.path, exc)
        return error(exc)
    return DisconnectAwareStream(_audio_only(pieces), media_type=fmt.media_type,
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                          **(headers or {})})
