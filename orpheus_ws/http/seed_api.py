"""The seed server's HTTP API on Starlette: /, /health, /api/voices, /api/tts, /api/tts/wav,
/api/tts/stream (see ../shared/seed-fastapi-tts-server.md and the README).

Routes call the engine (from the application's lifespan state) and nothing else; exceptions
become HTTP statuses in ``errors.error_response`` only. A client that goes away cancels its
request's task, which aborts its generations.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from ..audio import wav_bytes
from ..engine import AudioChunk, SegmentFinished
from ..exceptions import ClientGone, OrpheusError, ValidationError
from ..formats import SAMPLE_RATE
from ..metrics import exposition
from ..params import TTSRequest, parse_tts_request
from ..policy import RETRY_AFTER_S
from ..transport.http_glue import (
    DisconnectAwareStream,
    caller_of,
    engine_of,
    until_disconnect,
)
from ..vocabulary import CUT_MESSAGES
from .errors import error_response

log = logging.getLogger("orpheus_ws.http")
# what a request's stream carries: audio, and the end of a segment the runaway guard cut
Spoken = AudioChunk | SegmentFinished


class HttpApi:
    """The seed API's routes; the engine comes from the application's lifespan state."""

    def __init__(self, default_voice: str) -> None:
        self.default_voice = default_voice

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/ready", self.ready, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/api/voices", self.voices, methods=["GET"]),
            Route("/api/stats", self.stats, methods=["GET"]),
            Route("/api/tts", self.tts_json, methods=["POST"]),
            Route("/api/tts/wav", self.tts_wav, methods=["POST"]),
            Route("/api/tts/stream", self.tts_stream, methods=["POST"]),
        ]

    async def index(self, request: Request) -> Response:
        return JSONResponse({
            "name": "orpheus_ws",
            "version": __version__,
            "status": "ok",
            "message": "Orpheus TTS server: REST, WAV, SSE and a realtime WebSocket",
            "endpoints": {
                "health": "GET /health",
                "ready": "GET /ready",
                "metrics": "GET /metrics",
                "voices": "GET /api/voices",
                "tts": "POST /api/tts",
                "tts_wav": "POST /api/tts/wav",
                "tts_stream": "POST /api/tts/stream",
                "websocket": "WS /api/tts/ws (protocol.md)",
                "web_client": "GET /client/",
            },
        })

    async def health(self, request: Request) -> Response:
        info: dict[str, Any] = {**await engine_of(request).health()}
        ok = info["backend"]["status"] == "ok"
        managed = request.state.managed
        if managed is not None:  # the llama-server this server runs
            info["llama_server"] = managed.health()
            ok = ok and info["llama_server"]["state"] == "ready"
        return JSONResponse({"status": "healthy" if ok else "degraded", **info})

    async def ready(self, request: Request) -> Response:
        """For load balancers: 200 while the server can take work, else 503 with why (no LLM
        backend can serve, the decoder isn't running, or the server is draining)."""
        engine = engine_of(request)
        info = await engine.health()
        waiting = []
        if info["backend"]["status"] != "ok":
            waiting.append("backend: " + str(info["backend"].get("error", "not serving")))
        managed = request.state.managed
        if managed is not None and managed.health()["state"] != "ready":
            waiting.append(f"llama-server: {managed.health()['state']}")
        if not engine.ready:
            waiting.append("decoder: not running")
        if engine.draining:
            waiting.append("draining: the server is shutting down")
        return JSONResponse({"ready": not waiting, "waiting_for": waiting},
                            status_code=503 if waiting else 200,
                            headers={"Retry-After": str(RETRY_AFTER_S)} if waiting else None)

    async def metrics(self, request: Request) -> Response:
        body, media_type = exposition()
        return Response(body, media_type=media_type)

    async def stats(self, request: Request) -> Response:
        return JSONResponse(engine_of(request).stats())

    async def voices(self, request: Request) -> Response:
        return JSONResponse({"voices": engine_of(request).voices, "default": self.default_voice,
                             "emotion_tags": engine_of(request).lineup.tags})

    async def _parse(self, request: Request) -> TTSRequest:
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise ValidationError("body", "is not valid JSON") from exc
        return parse_tts_request(data, engine_of(request).voices, self.default_voice)

    @staticmethod
    def _chunks(request: Request, req: TTSRequest) -> AsyncGenerator[Spoken, None]:
        """The audio, and the end of each segment the runaway guard cut (for its warning)."""
        engine, caller = engine_of(request), caller_of(request)

        async def audio_and_cuts() -> AsyncGenerator[Spoken, None]:
            # closed with this generator (a client gone), not when it is collected
            async with contextlib.aclosing(engine.speak(
                    req.text, voice=req.voice, params=req.params, caller=caller,
                    trim_quiet=req.trim_quiet, normalize=req.normalize)) as events:
                async for event in events:
                    if isinstance(event, AudioChunk) or \
                            (isinstance(event, SegmentFinished) and event.cut is not None):
                        yield event
        return audio_and_cuts()

    async def _whole(self, request: Request,
                     req: TTSRequest) -> tuple[np.ndarray, float, float]:
        """All samples, time to first audio (ms) and processing time (ms)."""
        started = time.monotonic()
        ttfa = 0.0
        parts: list[np.ndarray] = []
        async for chunk in self._chunks(request, req):
            if isinstance(chunk, AudioChunk):
                ttfa = ttfa or (time.monotonic() - started) * 1000
                parts.append(chunk.pcm)
        pcm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        return pcm, ttfa, (time.monotonic() - started) * 1000

    async def _handle(
        self, request: Request, handler: Callable[[], Awaitable[Response]]
    ) -> Response:
        try:
            return await handler()
        except ClientGone:
            log.info("client left %s before its answer; generation aborted", request.url.path)
            return Response(status_code=499)
        except Exception as exc:
            if not isinstance(exc, OrpheusError):
                log.exception("unexpected error on %s", request.url.path)
            else:
                log.warning("%s failed: %s", request.url.path, exc)
            return error_response(exc)

    async def _speak_whole(self, request: Request, label: str
                           ) -> tuple[np.ndarray, float, float, float]:
        """A whole request's samples, TTFA (ms), processing time (ms), duration (s); logged
        as the seed server does."""
        req = await self._parse(request)
        pcm, ttfa, total = await until_disconnect(request, self._whole(request, req))
        duration = pcm.shape[0] / SAMPLE_RATE
        log.info("%s completed: %d chars, %.2fs audio, %.1fms, TTFA: %.1fms",
                 label, len(req.text), duration, total, ttfa)
        return pcm, ttfa, total, duration

    async def tts_json(self, request: Request) -> Response:
        async def handler() -> Response:
            pcm, ttfa, total, duration = await self._speak_whole(request, "TTS")
            return JSONResponse({
                "audio_base64": base64.b64encode(wav_bytes(pcm)).decode("ascii"),
                "duration_seconds": round(duration, 3),
                "sample_rate": SAMPLE_RATE,
                "processing_time_ms": round(total, 1),
                "ttfa_ms": round(ttfa, 1),
            })
        return await self._handle(request, handler)

    async def tts_wav(self, request: Request) -> Response:
        async def handler() -> Response:
            pcm, ttfa, total, duration = await self._speak_whole(request, "TTS WAV")
            return Response(wav_bytes(pcm), media_type="audio/wav", headers={
                "X-Processing-Time-Ms": f"{total:.1f}",
                "X-TTFA-Ms": f"{ttfa:.1f}",
                "X-Audio-Duration-Seconds": f"{duration:.3f}",
                "Content-Disposition": 'attachment; filename="speech.wav"',
            })
        return await self._handle(request, handler)

    async def tts_stream(self, request: Request) -> Response:
        async def handler() -> Response:
            req = await self._parse(request)
            started = time.monotonic()
            chunks = self._chunks(request, req)
            try:
                first = await until_disconnect(request, anext(chunks))
            except StopAsyncIteration:
                first = None
            except BaseException:
                await chunks.aclose()
                raise
            ttfa = (time.monotonic() - started) * 1000
            return DisconnectAwareStream(
                self._sse(req, chunks, first, started, ttfa),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                         "X-TTFA-Ms": f"{ttfa:.1f}"},
            )
        return await self._handle(request, handler)

    async def _sse(self, req: TTSRequest, chunks: AsyncGenerator[Spoken, None],
                   first: Spoken | None, started: float, ttfa: float) -> AsyncIterator[bytes]:
        number = samples = 0
        try:
            pending = first
            while pending is not None:
                if isinstance(pending, SegmentFinished):  # the runaway guard cut it: say so
                    yield b"data: " + orjson.dumps({
                        "event": "warning", "code": pending.cut, "segment": pending.segment,
                        "message": CUT_MESSAGES.get(pending.cut or "", "")}) + b"\n\n"
                    pending = await anext(chunks, None)
                    continue
                number += 1
                samples += pending.samples
                event: dict[str, Any] = {
                    "chunk": number,
                    "audio_base64": base64.b64encode(pending.pcm.astype("<i2").tobytes()).decode(),
                    "samples": pending.samples,
                    "duration_ms": round(pending.samples * 1000 / SAMPLE_RATE, 2),
                }
                if number == 1:
                    event["ttfa_ms"] = round(ttfa, 1)
                yield b"data: " + orjson.dumps(event) + b"\n\n"
                pending = await anext(chunks, None)
            total = (time.monotonic() - started) * 1000
            log.info("TTS stream completed: %d chars, %.2fs audio, %.1fms, TTFA: %.1fms",
                     len(req.text), samples / SAMPLE_RATE, total, ttfa)
            yield b"data: " + orjson.dumps({
                "event": "complete",
                "total_chunks": number,
                "total_samples": samples,
                "total_duration_s": round(samples / SAMPLE_RATE, 3),
                "processing_time_ms": round(total, 1),
                "ttfa_ms": round(ttfa, 1),
            }) + b"\n\n"
        except OrpheusError as exc:
            log.warning("TTS stream failed after %d chunks: %s", number, exc)
            yield b"data: " + orjson.dumps({
                "event": "error", "error": {"code": exc.code, "message": str(exc)},
                "total_chunks": number, "total_samples": samples,
            }) + b"\n\n"
        finally:
            await chunks.aclose()
