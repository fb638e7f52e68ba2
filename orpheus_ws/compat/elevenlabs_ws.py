"""ElevenLabs' input-streaming sockets, as pipecat's ``ElevenLabsTTSService`` and LiveKit's
``elevenlabs.TTS`` speak them (pipecat ``services/elevenlabs/tts.py``, LiveKit
``plugins/elevenlabs/tts.py``):

- ``WS /v1/text-to-speech/{voice_id}/multi-stream-input?output_format=&inactivity_timeout=``:
  contexts by ``context_id``. A context opens with its first message (``{"text": " "}``, the
  initialisation); ``text`` pieces are concatenated verbatim and segmented like the native
  ``auto`` buffering; ``flush: true`` speaks what is buffered now; ``close_context: true``
  ends the context's input: it is spoken to the end, then ``isFinal`` closes it (both
  frameworks send it after every normal turn, before the audio exists). A second
  ``close_context`` for a context still speaking stops it now (pipecat's barge-in).
  ``{"text": ""}`` is a keep-alive; ``{"close_socket": true}`` stops everything and closes.
- ``WS /v1/text-to-speech/{voice_id}/stream-input``: the one-context form, without
  ``context_id``; ``{"text": ""}`` ends the input, and the socket closes after ``isFinal``.
- server: ``{"audio": <base64>, "alignment", "normalizedAlignment", "isFinal": false,
  "contextId"}`` (``alignment`` on the last audio of each segment: ``chars``,
  ``charStartTimesMs``, ``charDurationsMs``, from that message's start, spanning the
  segment), then ``{"isFinal": true, "contextId"}``; ``{"error", "message", "code",
  "contextId"}`` for a failed context. A message the socket can't read, a bad
  ``output_format``, more than 5 contexts, or no message for ``inactivity_timeout`` seconds
  while nothing is speaking: an error, then close 1008, as ElevenLabs does.

The alignment is estimated (``orpheus_ws.timings``): Orpheus gives none.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import orjson
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from ..config import Settings
from ..engine import AudioChunk, Caller, SegmentFinished, SpeechEngine
from ..exceptions import ConnectionFault, OrpheusError, RequestError
from ..formats import AudioFormat
from ..outputs import parse_vendor_format
from ..policy import CLOSE_POLICY, close_code
from ..timings import SegmentTiming
from ..transport.http_glue import caller_of, engine_of
from ..transport.limits import SocketLimits
from ..transport.outbox import Outbox
from ..transport.runtime import Refusal, SocketRegistry, SocketRoute
from ..transport.utterance import Sink, Utterance, dumps
from .speech import Reading
from .voices import VoiceMap

MAX_CONTEXTS = 5  # ElevenLabs' limit per socket
INACTIVITY_S = (20.0, 180.0)  # ElevenLabs' default and largest inactivity_timeout
ENCODINGS = {"pcm": "pcm_s16le", "mulaw": "mulaw", "alaw": "alaw"}
SINGLE = "__single__"  # the one context of /stream-input


class ElevenLabsSocket:
    def __init__(self, settings: Settings, registry: SocketRegistry) -> None:
        self.voices = VoiceMap(settings)
        self.limits = SocketLimits.from_settings(settings)
        self.registry = registry

    def routes(self) -> list[WebSocketRoute]:
        base = "/v1/text-to-speech/{voice_id}"
        return [WebSocketRoute(base + "/multi-stream-input",
                               SocketRoute(self.registry, self.limits, self.multi)),
                WebSocketRoute(base + "/stream-input",
                               SocketRoute(self.registry, self.limits, self.single))]

    def multi(self, websocket: WebSocket, outbox: Outbox) -> ElevenLabsConnection:
        return self.connection(websocket, outbox, multi=True)

    def single(self, websocket: WebSocket, outbox: Outbox) -> ElevenLabsConnection:
        return self.connection(websocket, outbox, multi=False)

    def connection(self, websocket: WebSocket, outbox: Outbox, *,
                   multi: bool) -> ElevenLabsConnection:
        voice = websocket.path_params.get("voice_id", "")  # resolved when opened
        query = websocket.query_params
        return ElevenLabsConnection(engine_of(websocket), caller_of(websocket), self, outbox, voice,
                                    query.get("output_format", "mp3_44100_128"),
                                    query.get("inactivity_timeout"), multi=multi,
                                    reading=Reading.elevenlabs(query))


def _inactivity(value: str | None) -> float:
    """``inactivity_timeout`` in seconds: ElevenLabs' default, or a number up to its largest."""
    if value is None:
        return INACTIVITY_S[0]
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConnectionFault("invalid_request", "inactivity_timeout must be a number of "
                              f"seconds up to {INACTIVITY_S[1]:g}")
    return min(max(seconds, 1.0), INACTIVITY_S[1])


class _Context(Sink):
    def __init__(self, connection: ElevenLabsConnection, context_id: str) -> None:
        self.connection = connection
        self.id = context_id
        self.closing = False  # close_context came: speak to the end, then isFinal
        self.held = b""  # a segment's last audio, sent with the segment's alignment
        self.utterance: Utterance | None = None

    @property
    def speaking(self) -> bool:
        return self.utterance is not None and self.utterance.busy

    def send(self, message: dict[str, Any]) -> None:
        if self.connection.multi:
            message["contextId"] = self.id
        self.connection.outbox.put(dumps(message), self.utterance)

    def send_audio(self, payload: bytes, alignment: dict[str, Any] | None = None) -> None:
        self.send({"audio": base64.b64encode(payload).decode(), "isFinal": False,
                   "alignment": alignment, "normalizedAlignment": alignment})

    def audio(self, payload: bytes, chunk: AudioChunk | None) -> None:
        if chunk is not None and chunk.final:
            self.held += payload
        else:
            self.send_audio(payload)

    def segment_finished(self, event: SegmentFinished, timing: SegmentTiming | None) -> None:
        held, self.held = self.held, b""
        # The space after the segment's text ends its last word for the client's word
        # splitting (the segments' texts are trimmed).
        alignment = timing.chars(event.text + " ").as_alignment() if timing else None
        self.send_audio(held, alignment)

    def finished(self) -> None:
        if self.held:
            self.send_audio(self.held)
        self.connection.close_context(self)

    def failed(self, error: OrpheusError) -> None:
        self.send({"error": error.code, "message": str(error), "code": 1011})
        self.connection.close_context(self)


class ElevenLabsConnection:
    """ElevenLabs' contexts, each an utterance; their audio, alignment and ``isFinal``."""

    route = "elevenlabs"

    def __init__(self, engine: SpeechEngine, caller: Caller, socket: ElevenLabsSocket,
                 outbox: Outbox, voice: str, output_format: str,
                 inactivity_timeout: str | None, *, multi: bool,
                 reading: Reading = Reading()) -> None:
        self.engine = engine
        self.reading = reading  # enable_ssml_parsing, apply_text_normalization
        self.caller = caller
        self.socket = socket
        self.outbox = outbox
        self.voice = voice
        self.output_format = output_format
        self.inactivity_timeout = inactivity_timeout
        self.format = AudioFormat()
        self.bit_rate: int | None = None
        self.idle_timeout_s: float | None = INACTIVITY_S[0]
        self.multi = multi
        self.contexts: dict[str, _Context] = {}
        self.closing = False  # close_socket, or /stream-input's end: nothing more is taken

    # -- the runtime's adapter --------------------------------------------------------------

    def opened(self) -> None:
        self.voice = self.socket.voices.at_open(self.voice)
        try:
            output = parse_vendor_format(self.output_format)
            self.format = AudioFormat(ENCODINGS.get(output.kind, output.kind),
                                      output.sample_rate)
        except ValueError as exc:  # our own messages, naming output_format's values
            raise ConnectionFault("invalid_request", str(exc)) from None
        self.bit_rate = output.bit_rate
        self.idle_timeout_s = _inactivity(self.inactivity_timeout)

    async def received(self, text: str | None, data: bytes | None) -> None:
        if self.closing:
            return
        try:
            message = orjson.loads(text if text is not None else b"")
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            raise ConnectionFault("invalid_message", "each message must be a JSON object")
        try:
            await self.handle(message)
        except RequestError as exc:  # ElevenLabs closes on what it can't act on
            raise ConnectionFault(exc.code, str(exc)) from None

    def busy(self) -> bool:
        return any(c.utterance is not None and c.utterance.generating
                   for c in self.contexts.values())

    def refusal(self, fault: ConnectionFault) -> Refusal:
        """ElevenLabs' answer to a policy violation: the error, then close 1008."""
        ours = fault.code in ("going_away", "internal_error", "slow_consumer")
        code = close_code(fault) if ours else CLOSE_POLICY
        error = {"idle_timeout": "input_timeout_exceeded"}.get(fault.code, fault.code)
        return Refusal(code, [dumps({"error": error, "message": str(fault), "code": code})],
                       reason=error)

    async def stop(self) -> None:
        for context in list(self.contexts.values()):
            if context.utterance is not None:
                await context.utterance.cancel()

    # -- client messages --------------------------------------------------------------------

    async def handle(self, data: dict[str, Any]) -> None:
        if data.get("close_socket") is True:
            self.closing = True
            self.outbox.close(1000)
            return
        context_id = data.get("context_id", "default") if self.multi else SINGLE
        if not isinstance(context_id, str) or not context_id:
            raise ConnectionFault("invalid_message", "context_id must be a string")
        self.socket.limits.check_id(context_id, "context_id")
        context = self.contexts.get(context_id)
        text = data.get("text")
        if data.get("close_context") is True:
            if context is not None:
                await self.end_input(context)
            else:
                self.outbox.put(dumps({"isFinal": True, "contextId": context_id}))
            return
        if text == "" and not self.multi:  # /stream-input: the end of the input
            self.closing = True
            await self.end_input(context or self.open(context_id))
            return
        if text == "" and data.get("flush") is not True:
            return  # a keep-alive
        if text is not None and not isinstance(text, str):
            raise ConnectionFault("invalid_message", "text must be a string")
        if context is None:
            if len(self.contexts) >= MAX_CONTEXTS:
                raise ConnectionFault("max_active_conversations",
                                      f"more than {MAX_CONTEXTS} open contexts on one socket")
            context = self.open(context_id)
        assert context.utterance is not None
        if context.closing:
            return  # its input has ended: text after close_context is dropped
        if text:
            held = sum(c.utterance.held_chars for c in self.contexts.values()
                       if c.utterance is not None)
            context.utterance.push(text, self.socket.limits, held, context_id=context_id)
        if data.get("flush") is True or data.get("try_trigger_generation") is True:
            context.utterance.input.flush(None)

    def open(self, context_id: str) -> _Context:
        context = _Context(self, context_id)
        context.utterance = Utterance(self.engine, self.voice, self.format, context,
                                      self.outbox, bit_rate=self.bit_rate, timed=True,
                                      caller=self.caller, ssml=self.reading.ssml,
                                      normalize=self.reading.normalize)
        self.contexts[context_id] = context
        return context

    async def end_input(self, context: _Context) -> None:
        """``close_context``: the input ends and the context closes once spoken; a second
        one while it still speaks stops it now."""
        assert context.utterance is not None
        if not context.closing:
            context.closing = True
            context.utterance.input.end()
            return
        if context.speaking:
            self.outbox.purge(context.utterance)
            await context.utterance.cancel()
            self.close_context(context)

    def close_context(self, context: _Context) -> None:
        if self.contexts.pop(context.id, None) is None:
            return
        context.send({"isFinal": True})
        if not self.multi:  # /stream-input: the audio, isFinal, then the close
            self.outbox.close(1000)
