"""Deepgram's speak socket, ``WS /v1/speak?model=&encoding=&sample_rate=``, as pipecat's
``DeepgramTTSService`` and LiveKit's ``deepgram.TTS`` speak it
(../shared/voice-agent-clients.md; pipecat ``services/deepgram/tts.py``, LiveKit
``plugins/deepgram/tts.py``):

- client: ``Speak`` (pipecat: a sentence; LiveKit: one word at a time, so the text goes
  through the engine's segmentation, not spoken message by message), ``Flush``, ``Clear``
  (stop now, as the native ``cancel``), ``Close`` (finish what was said, then close);
- server: ``Metadata`` on open, binary audio in ``encoding`` (linear16, mulaw, alaw) at
  ``sample_rate``, ``Flushed`` with ``sequence_id`` (0, 1, ... per flush) once the audio before
  the flush is sent, ``Cleared`` (which stands for the flushes it cut short: no ``Flushed``
  follows for them), and ``Warning`` for a fault the socket survives (a message it
  can't act on, a failed generation; flushes pending then are still answered, so no client
  waits forever).

The voice is the model name's (``aura-2-tara-en`` or ``tara``), mapped like every vendor's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import orjson
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..config import Settings
from ..engine import AudioChunk, Engine
from ..exceptions import OrpheusError
from ..formats import AudioFormat
from ..ws.outbox import Outbox
from .utterance import Sink, Utterance, dumps, flushed_out, send_from, stop_socket
from .voices import VoiceMap

log = logging.getLogger("orpheus_ws.deepgram")
ENCODINGS = {"linear16": "pcm_s16le", "mulaw": "mulaw", "alaw": "alaw"}


class DeepgramSocket:
    """The ASGI app of the route; each socket gets a :class:`DeepgramConnection`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.voices = VoiceMap(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        query = websocket.query_params
        model = query.get("model", "")
        encoding = query.get("encoding", "linear16")
        await websocket.accept()
        try:
            if encoding not in ENCODINGS:
                raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
            default_rate = 8000 if encoding in ("mulaw", "alaw") else 24000
            fmt = AudioFormat(ENCODINGS[encoding], int(query.get("sample_rate", default_rate)))
        except ValueError as exc:  # Deepgram answers a bad query with an error, then closes
            await websocket.send_text(dumps({"type": "Error", "err_code": "INVALID_QUERY",
                                              "err_msg": str(exc)}))
            await websocket.close(1008, "invalid query")
            return
        voice = self.voices.deepgram(model)
        engine: Engine = websocket.state.engine
        await DeepgramConnection(websocket, engine, voice, fmt, model, self.settings).run()


class DeepgramConnection:
    def __init__(self, websocket: WebSocket, engine: Engine, voice: str, fmt: AudioFormat,
                 model: str, settings: Settings) -> None:
        self.ws = websocket
        self.engine = engine
        self.voice = voice
        self.format = fmt
        self.model = model
        self.settings = settings
        self.outbox = Outbox(settings.ws_max_buffered_bytes)
        self.utterance: Utterance | None = None
        self.flushes = 0  # sequence ids handed out
        self.pending: list[int] = []  # flushes not yet answered
        self.closing = False

    async def run(self) -> None:
        self.outbox.put(dumps({"type": "Metadata", "request_id": str(uuid.uuid4()),
                               "model_name": self.model or self.voice,
                               "model_version": "orpheus", "model_uuid": self.voice}))
        sender = asyncio.ensure_future(send_from(self.outbox, self.ws,
                                                 self.settings.ws_send_timeout))
        try:
            await self.receive_loop(sender)
        finally:
            await stop_socket(sender, self.utterance)

    async def receive_loop(self, sender: asyncio.Future[None]) -> None:
        while True:
            try:
                message = await self.ws.receive()
            except WebSocketDisconnect:
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self.warn("BINARY_NOT_ACCEPTED", "the server accepts only JSON messages")
                continue
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError:
                self.warn("INVALID_JSON", "the message is not valid JSON")
                continue
            kind = data.get("type") if isinstance(data, dict) else None
            if kind == "Speak" and isinstance(data.get("text"), str):
                self.speak(data["text"])
            elif kind == "Flush":
                self.flush()
            elif kind == "Clear":
                await self.clear()
            elif kind == "Close":
                await self.close(sender)
                return
            else:
                self.warn("UNKNOWN_MESSAGE", f"cannot act on a message of type {kind!r}")

    # -- client messages --------------------------------------------------------------------

    def speak(self, text: str) -> None:
        if self.utterance is None or not self.utterance.busy:
            answers = _Answers(self)
            self.utterance = answers.owner = Utterance(self.engine, self.voice, self.format,
                                                       answers, self.outbox)
        self.utterance.feed.push(text)

    def flush(self) -> None:
        sequence, self.flushes = self.flushes, self.flushes + 1
        if self.utterance is None or not self.utterance.busy:
            self.answer(sequence)  # nothing to speak: flushed at once
            return
        self.pending.append(sequence)
        self.utterance.feed.flush(str(sequence))

    async def clear(self) -> None:
        """Stops the audio now: queued audio is dropped, generation is aborted."""
        utterance, self.utterance = self.utterance, None
        if utterance is not None:
            self.outbox.purge(utterance)
            await utterance.cancel()
        # Cleared stands for the flushes it cut short, as Deepgram's does: a late Flushed
        # would end the client's next turn (pipecat ends whichever context is playing)
        self.pending.clear()
        self.outbox.put(dumps({"type": "Cleared", "sequence_id": self.flushes}))

    async def close(self, sender: asyncio.Future[None]) -> None:
        """Finishes what was said, sends it, then closes (unless the client leaves first)."""
        utterance = self.utterance
        if utterance is not None and utterance.busy:
            utterance.feed.end()
            if not await utterance.finish(self.ws, self.outbox, sender):
                return
        await flushed_out(self.outbox, sender)
        with contextlib.suppress(Exception):
            await self.ws.close(1000)

    # -- answers ----------------------------------------------------------------------------

    def answer(self, sequence: int) -> None:
        with contextlib.suppress(ValueError):
            self.pending.remove(sequence)
        self.outbox.put(dumps({"type": "Flushed", "sequence_id": sequence}))

    def warn(self, code: str, message: str) -> None:
        self.outbox.put(dumps({"type": "Warning", "warn_code": code, "warn_msg": message,
                               "description": message}))


class _Answers(Sink):
    """An utterance's audio and events, in Deepgram's messages."""

    def __init__(self, connection: DeepgramConnection) -> None:
        self.connection = connection
        self.owner: object | None = None  # the utterance, whose audio a Clear purges

    def audio(self, payload: bytes, chunk: AudioChunk | None) -> None:
        self.connection.outbox.put(payload, self.owner)

    def flushed(self, mark: str | None) -> None:
        if mark is not None:
            self.connection.answer(int(mark))

    def failed(self, error: OrpheusError) -> None:
        self.connection.warn(error.code.upper(), str(error))
        for sequence in list(self.connection.pending):
            self.connection.answer(sequence)
