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

import uuid

import orjson
from starlette.websockets import WebSocket

from ..config import Settings
from ..engine import CUT_MESSAGES, AudioChunk, Caller, SegmentFinished, SpeechEngine
from ..exceptions import ConnectionFault, OrpheusError, RequestError
from ..formats import AudioFormat
from ..policy import CLOSE_POLICY, close_code
from ..timings import SegmentTiming
from ..transport.http_glue import caller_of, engine_of
from ..transport.limits import SocketLimits
from ..transport.outbox import Outbox
from ..transport.runtime import Refusal, SocketRegistry, SocketRoute
from ..transport.utterance import Sink, Utterance, dumps
from .voices import VoiceMap

ENCODINGS = {"linear16": "pcm_s16le", "mulaw": "mulaw", "alaw": "alaw"}


class DeepgramSocket(SocketRoute):
    """The ASGI app of the route; each socket gets a :class:`DeepgramConnection`."""

    def __init__(self, settings: Settings, registry: SocketRegistry) -> None:
        self.voices = VoiceMap(settings)
        super().__init__(registry, SocketLimits.from_settings(settings), self.connection)

    def connection(self, websocket: WebSocket, outbox: Outbox) -> DeepgramConnection:
        query = websocket.query_params
        model = query.get("model", "")
        return DeepgramConnection(engine_of(websocket), caller_of(websocket), "",
                                  query.get("encoding", "linear16"), query.get("sample_rate"),
                                  model, outbox, self.limits, voices=self.voices)


def _format(encoding: str, sample_rate: str | None) -> AudioFormat:
    """The audio format a query asks for; a ConnectionFault naming what is wrong."""
    if encoding not in ENCODINGS:
        raise ConnectionFault("invalid_query", f"encoding must be one of {', '.join(ENCODINGS)}")
    rate = 8000 if encoding in ("mulaw", "alaw") else 24000
    if sample_rate is not None:
        if not sample_rate.isdigit():
            raise ConnectionFault("invalid_query", "sample_rate must be a whole number of Hz")
        rate = int(sample_rate)
    try:
        return AudioFormat(ENCODINGS[encoding], rate)
    except ValueError as exc:  # AudioFormat's own messages name the field and its values
        raise ConnectionFault("invalid_query", str(exc)) from None


class DeepgramConnection:
    """Deepgram's messages onto one utterance at a time, and its events back."""

    route = "deepgram"
    idle_timeout_s: float | None = None

    def __init__(self, engine: SpeechEngine, caller: Caller, voice: str, encoding: str,
                 sample_rate: str | None, model: str, outbox: Outbox, limits: SocketLimits,
                 *, voices: VoiceMap | None = None) -> None:
        self.voices = voices  # the model's voice is found when the socket opens
        self.engine = engine
        self.caller = caller
        self.voice = voice
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.format = AudioFormat()
        self.model = model
        self.outbox = outbox
        self.limits = limits
        self.utterance: Utterance | None = None
        self.flushes = 0  # sequence ids handed out
        self.pending: list[int] = []  # flushes not yet answered
        self.closing = False  # Close came: the socket closes once what was said is sent

    # -- the runtime's adapter --------------------------------------------------------------

    def opened(self) -> None:
        if self.voices is not None:
            self.voice = self.voices.deepgram(self.model)
        self.format = _format(self.encoding, self.sample_rate)
        self.outbox.put(dumps({"type": "Metadata", "request_id": str(uuid.uuid4()),
                               "model_name": self.model or self.voice,
                               "model_version": "orpheus", "model_uuid": self.voice}))

    async def received(self, text: str | None, data: bytes | None) -> None:
        if self.closing:
            return  # after Close, nothing more is taken
        if text is None:
            self.warn("BINARY_NOT_ACCEPTED", "the server accepts only JSON messages")
            return
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.warn("INVALID_JSON", "the message is not valid JSON")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        try:
            if kind == "Speak" and isinstance(message.get("text"), str):
                self.speak(message["text"])
            elif kind == "Flush":
                self.flush()
            elif kind == "Clear":
                await self.clear()
            elif kind == "Close":
                self.close()
            else:
                self.warn("UNKNOWN_MESSAGE", "cannot act on a message of type "
                          f"{str(kind)[:40]!r}")
        except RequestError as exc:
            self.warn(exc.code.upper(), str(exc))

    def busy(self) -> bool:
        return self.utterance is not None and self.utterance.generating

    def refusal(self, fault: ConnectionFault) -> Refusal:
        code = CLOSE_POLICY if fault.code == "invalid_query" else close_code(fault)
        return Refusal(code, [dumps({"type": "Error", "err_code": fault.code.upper(),
                                     "err_msg": str(fault), "description": str(fault)})])

    async def stop(self) -> None:
        if self.utterance is not None:
            await self.utterance.cancel()

    # -- client messages --------------------------------------------------------------------

    def speak(self, text: str) -> None:
        if self.utterance is None or not self.utterance.busy:
            answers = _Answers(self)
            self.utterance = answers.owner = Utterance(self.engine, self.voice, self.format,
                                                       answers, self.outbox, caller=self.caller)
        self.utterance.push(text, self.limits, self.utterance.held_chars)

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

    def close(self) -> None:
        """Finishes what was said, sends it, then closes."""
        self.closing = True
        if self.utterance is not None and self.utterance.busy:
            self.utterance.feed.end()  # the utterance's end closes the socket
        else:
            self.outbox.close(1000)

    # -- answers ----------------------------------------------------------------------------

    def answer(self, sequence: int) -> None:
        if sequence in self.pending:
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

    def segment_finished(self, event: SegmentFinished, timing: SegmentTiming | None) -> None:
        if event.cut is not None:  # the runaway guard cut its generation: a Warning says so
            self.connection.warn(event.cut.upper(), CUT_MESSAGES[event.cut])

    def flushed(self, mark: str | None) -> None:
        if mark is not None:
            self.connection.answer(int(mark))

    def finished(self) -> None:
        if self.connection.closing and self.connection.utterance is self.owner:
            self.connection.outbox.close(1000)

    def failed(self, error: OrpheusError) -> None:
        self.connection.warn(error.code.upper(), str(error))
        for sequence in list(self.connection.pending):
            self.connection.answer(sequence)
        self.finished()
