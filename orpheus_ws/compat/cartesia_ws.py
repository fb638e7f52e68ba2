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

import base64
from typing import Any

import orjson
from starlette.websockets import WebSocket

from ..config import Settings
from ..engine import AudioChunk, Caller, SegmentFinished, SpeechEngine
from ..exceptions import ConnectionFault, OrpheusError, RequestError, UnknownVoice, ValidationError
from ..formats import SAMPLE_RATE, AudioFormat
from ..policy import close_code, decide
from ..timings import SegmentTiming
from ..transport.http_glue import caller_of, engine_of
from ..transport.limits import SocketLimits
from ..transport.outbox import Outbox
from ..transport.runtime import Refusal, SocketRegistry, SocketRoute
from ..transport.utterance import Sink, Utterance, dumps
from .voices import VoiceMap

ENCODINGS = {"pcm_s16le": "pcm_s16le", "pcm_f32le": "pcm_f32le", "pcm_mulaw": "mulaw",
             "pcm_alaw": "alaw"}


class CartesiaSocket(SocketRoute):
    def __init__(self, settings: Settings, registry: SocketRegistry) -> None:
        self.voices = VoiceMap(settings)
        super().__init__(registry, SocketLimits.from_settings(settings), self.connection)

    def connection(self, websocket: WebSocket, outbox: Outbox) -> CartesiaConnection:
        return CartesiaConnection(engine_of(websocket), caller_of(websocket), self, outbox)


class _Context(Sink):
    def __init__(self, connection: CartesiaConnection, context_id: str,
                 timestamps: bool) -> None:
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
        self.send("error", done=True, error=str(error), status_code=decide(error).status)
        self.connection.contexts.pop(self.id, None)


class CartesiaConnection:
    """Cartesia's contexts, each an utterance; their events in Cartesia's messages."""

    route = "cartesia"
    idle_timeout_s: float | None = None

    def __init__(self, engine: SpeechEngine, caller: Caller, socket: CartesiaSocket,
                 outbox: Outbox) -> None:
        self.engine = engine
        self.caller = caller
        self.socket = socket
        self.outbox = outbox
        self.contexts: dict[str, _Context] = {}

    # -- the runtime's adapter --------------------------------------------------------------

    def opened(self) -> None:
        """Cartesia's socket sends nothing first."""

    async def received(self, text: str | None, data: bytes | None) -> None:
        if text is None:
            self.error("", "the server accepts only JSON messages")
            return
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.error("", "the message is not valid JSON")
            return
        await self.handle(message if isinstance(message, dict) else {})

    def busy(self) -> bool:
        return any(c.utterance is not None and c.utterance.generating
                   for c in self.contexts.values())

    def refusal(self, fault: ConnectionFault) -> Refusal:
        return Refusal(close_code(fault), [dumps({
            "type": "error", "context_id": "", "done": True, "error": str(fault),
            "status_code": decide(fault).status})])

    async def stop(self) -> None:
        for context in list(self.contexts.values()):
            if context.utterance is not None:
                await context.utterance.cancel()

    # -- client messages --------------------------------------------------------------------

    def error(self, context_id: str, message: str, status: int = 400) -> None:
        self.outbox.put(dumps({"type": "error", "context_id": context_id, "done": True,
                               "error": message, "status_code": status}))

    def held(self) -> int:
        return sum(c.utterance.held_chars for c in self.contexts.values()
                   if c.utterance is not None)

    async def handle(self, data: dict[str, Any]) -> None:
        context_id = data.get("context_id")
        if not isinstance(context_id, str) or not context_id:
            self.error("", "context_id is required")
            return
        try:
            self.socket.limits.check_id(context_id, "context_id")
        except RequestError as exc:
            self.error("", str(exc))  # not echoed: its length is the fault
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
            try:
                context.utterance.push(transcript, self.socket.limits, self.held(),
                                       context_id=context_id)
            except RequestError as exc:
                self.error(context_id, str(exc))
                return
        if data.get("continue") is False:
            context.utterance.feed.end()

    def open(self, context_id: str, data: dict[str, Any]) -> _Context | None:
        limit = self.socket.limits.max_contexts
        if len(self.contexts) >= limit:
            self.error(context_id, f"more than {limit} open contexts", 429)
            return None
        spec = data.get("output_format") or {}
        try:
            fmt = _output_format(spec)
        except ValidationError as exc:
            self.error(context_id, str(exc))
            return None
        voice = data.get("voice") or {}
        voice_id = voice.get("id", "") if isinstance(voice, dict) else ""
        try:
            speaker = self.socket.voices.lenient(str(voice_id))
        except UnknownVoice as exc:  # another model's voice
            self.error(context_id, str(exc))
            return None
        context = _Context(self, context_id, data.get("add_timestamps") is True)
        context.utterance = Utterance(self.engine, speaker,
                                      fmt, context, self.outbox, timed=context.timestamps,
                                      caller=self.caller)
        self.contexts[context_id] = context
        return context


def _output_format(spec: object) -> AudioFormat:
    """Cartesia's ``output_format`` (raw PCM only on the socket), or a ValidationError."""
    if not isinstance(spec, dict):
        raise ValidationError("output_format", "must be an object")
    encoding, container = spec.get("encoding", "pcm_s16le"), spec.get("container", "raw")
    if not isinstance(encoding, str) or encoding not in ENCODINGS or container != "raw":
        raise ValidationError("output_format", "must be raw pcm_s16le, pcm_f32le, pcm_mulaw "
                              "or pcm_alaw")
    rate = spec.get("sample_rate", SAMPLE_RATE)
    if not isinstance(rate, int) or isinstance(rate, bool):
        raise ValidationError("output_format.sample_rate", "must be a whole number of Hz")
    try:
        return AudioFormat(ENCODINGS[encoding], rate)
    except ValueError as exc:  # AudioFormat's own messages name the field and its values
        raise ValidationError("output_format", str(exc)) from None
