"""Cartesia's speech socket, ``WS /tts/websocket`` (a ``Cartesia-Version`` header or
``?cartesia_version=``, any accepted), as pipecat's ``CartesiaTTSService`` and LiveKit's
``cartesia.TTS`` speak it (pipecat ``services/cartesia/tts.py``, LiveKit
``plugins/cartesia/tts.py``):

- client: per ``context_id``, ``transcript`` pieces (concatenated verbatim, segmented like the
  native ``auto`` buffering) with ``continue: true``; ``continue: false`` ends the context's
  input; ``{"context_id", "cancel": true}`` stops it now. The first message of a context sets
  its ``voice.id`` and ``output_format`` (raw ``pcm_s16le``, ``pcm_f32le``, ``pcm_mulaw``,
  ``pcm_alaw`` at ``sample_rate``).
- server: ``chunk`` (base64 ``data``), ``timestamps`` (``word_timestamps`` with ``words``,
  ``start``, ``end`` in seconds, when ``add_timestamps``), ``done``, ``error``; **every**
  message carries ``type``, ``context_id`` and ``done`` (pipecat and LiveKit each index a
  different subset).

Word timings are estimated (``orpheus_ws.timings``): Orpheus gives no alignment, so each
segment's words are spread over the speech in its audio in proportion to their characters
(docs/compatibility.md).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..config import Settings
from ..engine import AudioChunk, Engine, SegmentFinished
from ..exceptions import OrpheusError
from ..formats import SAMPLE_RATE, AudioFormat
from ..timings import SegmentTiming
from ..ws.outbox import Outbox
from .speech import status_of
from .utterance import Sink, Utterance, dumps, send_from, stop_socket
from .voices import VoiceMap

ENCODINGS = {"pcm_s16le": "pcm_s16le", "pcm_f32le": "pcm_f32le", "pcm_mulaw": "mulaw",
             "pcm_alaw": "alaw"}


class CartesiaSocket:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.voices = VoiceMap(settings)

    async def endpoint(self, websocket: WebSocket) -> None:
        engine: Engine = websocket.state.engine
        await websocket.accept()
        await _Connection(websocket, engine, self).run()


class _Context(Sink):
    def __init__(self, connection: _Connection, context_id: str, timestamps: bool) -> None:
        self.connection = connection
        self.id = context_id
        self.timestamps = timestamps
        self.utterance: Utterance | None = None

    def send(self, kind: str, done: bool = False, **fields: Any) -> None:
        self.connection.outbox.put(dumps({"type": kind, "context_id": self.id, "done": done,
                                          **fields}), self.utterance)

    def audio(self, payload: bytes, chunk: AudioChunk | None) -> None:
        self.send("chunk", data=base64.b64encode(payload).decode(), status_code=206,
                  step_time=0.0)

    def segment_finished(self, event: SegmentFinished, timing: SegmentTiming | None) -> None:
        if timing is not None:
            words, starts, ends = timing.words()
            self.send("timestamps", word_timestamps={"words": words, "start": starts,
                                                     "end": ends})

    def flushed(self, mark: str | None) -> None:
        self.send("flush_done", flush_id=mark)

    def finished(self) -> None:
        self.send("done", done=True, status_code=200)
        self.connection.contexts.pop(self.id, None)

    def failed(self, error: OrpheusError) -> None:
        self.send("error", done=True, error=str(error), status_code=status_of(error))
        self.connection.contexts.pop(self.id, None)


class _Connection:
    def __init__(self, websocket: WebSocket, engine: Engine, socket: CartesiaSocket) -> None:
        self.ws = websocket
        self.engine = engine
        self.socket = socket
        self.outbox = Outbox(socket.settings.ws_max_buffered_bytes)
        self.contexts: dict[str, _Context] = {}

    async def run(self) -> None:
        sender = asyncio.ensure_future(send_from(self.outbox, self.ws,
                                                 self.socket.settings.ws_send_timeout))
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    data = orjson.loads(message.get("text") or "")
                except orjson.JSONDecodeError:
                    self.error("", "the message is not valid JSON")
                    continue
                await self.handle(data if isinstance(data, dict) else {})
        except WebSocketDisconnect:
            return
        finally:
            await stop_socket(sender, *(c.utterance for c in self.contexts.values()))

    def error(self, context_id: str, message: str, status: int = 400) -> None:
        self.outbox.put(dumps({"type": "error", "context_id": context_id, "done": True,
                               "error": message, "status_code": status}))

    async def handle(self, data: dict[str, Any]) -> None:
        context_id = data.get("context_id")
        if not isinstance(context_id, str) or not context_id:
            self.error("", "context_id is required")
            return
        context = self.contexts.get(context_id)
        if data.get("cancel") is True:
            if context is not None:
                self.contexts.pop(context_id, None)
                if context.utterance is not None:
                    self.outbox.purge(context.utterance)
                    await context.utterance.cancel()
            return
        if context is None:
            context = self.open(context_id, data)
            if context is None:
                return
        transcript = data.get("transcript")
        assert context.utterance is not None
        if isinstance(transcript, str) and transcript:
            context.utterance.feed.push(transcript)
        if data.get("continue") is False:
            context.utterance.feed.end()

    def open(self, context_id: str, data: dict[str, Any]) -> _Context | None:
        if len(self.contexts) >= self.socket.settings.ws_max_contexts:
            self.error(context_id, f"more than {self.socket.settings.ws_max_contexts} open "
                       "contexts", 429)
            return None
        spec = data.get("output_format") or {}
        try:
            encoding = spec.get("encoding", "pcm_s16le") if isinstance(spec, dict) else None
            if encoding not in ENCODINGS or spec.get("container", "raw") != "raw":
                raise ValueError("output_format must be raw pcm_s16le, pcm_f32le, pcm_mulaw "
                                 "or pcm_alaw")
            fmt = AudioFormat(ENCODINGS[encoding], int(spec.get("sample_rate", SAMPLE_RATE)))
        except (ValueError, TypeError) as exc:
            self.error(context_id, str(exc))
            return None
        voice = data.get("voice") or {}
        voice_id = voice.get("id", "") if isinstance(voice, dict) else ""
        context = _Context(self, context_id, data.get("add_timestamps") is True)
        context.utterance = Utterance(self.engine, self.socket.voices.lenient(str(voice_id)),
                                      fmt, context, self.outbox, timed=context.timestamps)
        self.contexts[context_id] = context
        return context
