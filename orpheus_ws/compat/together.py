"""Together's speech socket, ``WS /v1/audio/speech/websocket?model=&voice=``, as pipecat's
``TogetherTTSService`` speaks it (pipecat ``services/together/tts.py``; set its ``url`` to
``ws://HOST:9100/v1/audio/speech/websocket`` and an Orpheus model and voice):

- client: ``tts_session.updated`` (the voice), ``input_text_buffer.append`` (text gathered),
  ``input_text_buffer.commit`` (the gathered text becomes one item to speak; an empty commit,
  which pipecat sends after each utterance, is a no-op), ``input_text_buffer.clear`` (the
  gathered text is dropped and what is being spoken stops now);
- server: ``session.created`` on open, ``session.updated``, per item
  ``conversation.item.audio_output.delta`` (base64 24 kHz s16le) and
  ``conversation.item.audio_output.done``, ``conversation.item.tts.failed`` for a failed
  item, ``error`` for a message it can't act on.

Items are spoken in order through one utterance of the shared layer; each commit is a flush
whose mark is the item's id.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson
from starlette.websockets import WebSocket

from ..config import Settings
from ..engine import AudioChunk, Caller, SpeechEngine
from ..exceptions import ConnectionFault, OrpheusError, RequestError
from ..formats import AudioFormat
from ..policy import close_code
from ..transport.http_glue import caller_of, engine_of
from ..transport.limits import SocketLimits
from ..transport.outbox import Outbox
from ..transport.runtime import Refusal, SocketRegistry, SocketRoute
from ..transport.utterance import Sink, Utterance, dumps
from .voices import VoiceMap


class TogetherSocket(SocketRoute):
    def __init__(self, settings: Settings, registry: SocketRegistry) -> None:
        self.voices = VoiceMap(settings)
        super().__init__(registry, SocketLimits.from_settings(settings), self.connection)

    def connection(self, websocket: WebSocket, outbox: Outbox) -> TogetherConnection:
        return TogetherConnection(engine_of(websocket), caller_of(websocket), self, outbox,
                                  websocket.query_params.get("voice", ""))  # when opened


class TogetherConnection:
    """Together's events onto one utterance whose flushes are the committed items."""

    route = "together"
    idle_timeout_s: float | None = None

    def __init__(self, engine: SpeechEngine, caller: Caller, socket: TogetherSocket, outbox: Outbox,
                 voice: str) -> None:
        self.engine = engine
        self.caller = caller
        self.socket = socket
        self.voice = voice
        self.session_id = "sess_" + uuid.uuid4().hex[:16]
        self.outbox = outbox
        self.utterance: Utterance | None = None
        self.buffer = ""
        self.items: list[str] = []  # committed, not yet done, in order

    def session(self) -> dict[str, Any]:
        return {"id": self.session_id, "voice": self.voice}

    # -- the runtime's adapter --------------------------------------------------------------

    def opened(self) -> None:
        self.voice = self.socket.voices.at_open(self.voice)
        self.outbox.put(dumps({"type": "session.created", "session": self.session()}))

    async def received(self, text: str | None, data: bytes | None) -> None:
        if text is None:
            self.error("binary_not_accepted", "the server accepts only JSON events")
            return
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.error("invalid_json", "the message is not valid JSON")
            return
        try:
            await self.handle(message if isinstance(message, dict) else {})
        except RequestError as exc:
            self.error(exc.code, str(exc))

    def busy(self) -> bool:
        return self.utterance is not None and self.utterance.generating

    def refusal(self, fault: ConnectionFault) -> Refusal:
        return Refusal(close_code(fault), [dumps({"type": "error", "error": {
            "code": fault.code, "message": str(fault)}})])

    async def stop(self) -> None:
        if self.utterance is not None:
            await self.utterance.cancel()

    # -- client events ----------------------------------------------------------------------

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "tts_session.updated":
            session = message.get("session")
            voice = session.get("voice") if isinstance(session, dict) else None
            if isinstance(voice, str):
                self.voice = self.socket.voices.lenient(voice)
            self.outbox.put(dumps({"type": "session.updated", "session": self.session()}))
        elif kind == "input_text_buffer.append" and isinstance(message.get("text"), str):
            text = message["text"]
            held = self.utterance.held_chars if self.utterance is not None else 0
            self.socket.limits.check_text(len(text), len(self.buffer) + held,
                                          len(self.buffer) + held)
            self.buffer += text
        elif kind == "input_text_buffer.commit":
            self.commit()
        elif kind == "input_text_buffer.clear":
            await self.clear()
        else:
            self.error("unknown_event", f"cannot act on an event of type {str(kind)[:40]!r}")

    def commit(self) -> None:
        text, self.buffer = self.buffer, ""
        if not text.strip():
            return  # an empty commit is a no-op (pipecat sends one after each utterance)
        if self.utterance is None or not self.utterance.busy:
            answers = _Answers(self)
            self.utterance = answers.owner = Utterance(
                self.engine, self.voice, AudioFormat(), answers, self.outbox, caller=self.caller)
        item = "item_" + uuid.uuid4().hex[:16]
        self.items.append(item)
        self.outbox.put(dumps({"type": "conversation.item.input_text.received",
                               "item_id": item, "text": text}))
        self.utterance.feed.push(text)  # counted against the limits as it was appended
        self.utterance.feed.flush(item)

    async def clear(self) -> None:
        self.buffer = ""
        utterance, self.utterance = self.utterance, None
        if utterance is not None:
            self.outbox.purge(utterance)
            await utterance.cancel()
        self.items.clear()

    def error(self, code: str, message: str) -> None:
        self.outbox.put(dumps({"type": "error", "error": {"code": code, "message": message}}))


class _Answers(Sink):
    def __init__(self, connection: TogetherConnection) -> None:
        self.connection = connection
        self.owner: object | None = None

    def audio(self, payload: bytes, chunk: AudioChunk | None) -> None:
        items = self.connection.items
        self.connection.outbox.put(dumps({
            "type": "conversation.item.audio_output.delta", "item_id": items[0] if items else None,
            "delta": base64.b64encode(payload).decode()}), self.owner)

    def flushed(self, mark: str | None) -> None:
        items = self.connection.items
        if mark in items:
            items.remove(mark)
            self.connection.outbox.put(dumps({"type": "conversation.item.audio_output.done",
                                              "item_id": mark}))

    def failed(self, error: OrpheusError) -> None:
        for item in self.connection.items:
            self.connection.outbox.put(dumps({"type": "conversation.item.tts.failed",
                                              "item_id": item, "error": {
                                                  "code": error.code, "message": str(error)}}))
        self.connection.items.clear()
