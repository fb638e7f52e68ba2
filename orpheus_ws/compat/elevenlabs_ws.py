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

import asyncio
import base64
import contextlib
from typing import Any

import orjson
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..config import Settings
from ..engine import AudioChunk, Engine, SegmentFinished
from ..exceptions import OrpheusError
from ..formats import AudioFormat
from ..outputs import parse_vendor_format
from ..timings import SegmentTiming
from ..ws.outbox import Outbox
from .utterance import Sink, Utterance, dumps, flushed_out, send_from, stop_socket
from .voices import VoiceMap

MAX_CONTEXTS = 5  # ElevenLabs' limit per socket
INACTIVITY_S = (20.0, 180.0)  # ElevenLabs' default and largest inactivity_timeout
ENCODINGS = {"pcm": "pcm_s16le", "mulaw": "mulaw", "alaw": "alaw"}
SINGLE = "__single__"  # the one context of /stream-input


class ElevenLabsSocket:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.voices = VoiceMap(settings)

    def routes(self) -> list[WebSocketRoute]:
        base = "/v1/text-to-speech/{voice_id}"
        return [WebSocketRoute(base + "/multi-stream-input", self.multi),
                WebSocketRoute(base + "/stream-input", self.single)]

    async def multi(self, websocket: WebSocket) -> None:
        await self.serve(websocket, multi=True)

    async def single(self, websocket: WebSocket) -> None:
        await self.serve(websocket, multi=False)

    async def serve(self, websocket: WebSocket, *, multi: bool) -> None:
        query = websocket.query_params
        await websocket.accept()
        try:
            output = parse_vendor_format(query.get("output_format", "mp3_44100_128"))
            fmt = AudioFormat(ENCODINGS.get(output.kind, output.kind), output.sample_rate)
            inactivity = float(query.get("inactivity_timeout", INACTIVITY_S[0]))
        except ValueError as exc:
            await websocket.send_text(dumps({"error": "invalid_request", "message": str(exc),
                                             "code": 1008}))
            await websocket.close(1008, "invalid request")
            return
        voice = self.voices.lenient(websocket.path_params.get("voice_id", ""))
        connection = _Connection(websocket, websocket.state.engine, self, voice, fmt,
                                 output.bit_rate, multi=multi)
        await connection.run(min(max(inactivity, 1.0), INACTIVITY_S[1]))


class _Context(Sink):
    def __init__(self, connection: _Connection, context_id: str) -> None:
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


class _Connection:
    def __init__(self, websocket: WebSocket, engine: Engine, socket: ElevenLabsSocket,
                 voice: str, fmt: AudioFormat, bit_rate: int | None, *, multi: bool) -> None:
        self.ws = websocket
        self.engine = engine
        self.socket = socket
        self.voice = voice
        self.format = fmt
        self.bit_rate = bit_rate
        self.multi = multi
        self.outbox = Outbox(socket.settings.ws_max_buffered_bytes)
        self.contexts: dict[str, _Context] = {}
        self.done = asyncio.Event()  # /stream-input: its context is final

    async def run(self, inactivity_s: float) -> None:
        sender = asyncio.ensure_future(send_from(self.outbox, self.ws,
                                                 self.socket.settings.ws_send_timeout))
        try:
            while not sender.done():
                try:
                    async with asyncio.timeout(inactivity_s):
                        message = await self.ws.receive()
                except TimeoutError:
                    if any(c.speaking for c in self.contexts.values()):
                        continue
                    await self.refuse(sender, "input_timeout_exceeded",
                                      f"no message for {inactivity_s:g} seconds")
                    return
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    data = orjson.loads(message.get("text") or b"")
                    if not isinstance(data, dict):
                        raise ValueError("not an object")
                except (orjson.JSONDecodeError, ValueError):
                    await self.refuse(sender, "invalid_message",
                                      "each message must be a JSON object")
                    return
                if not await self.handle(data, sender):
                    return
        except WebSocketDisconnect:
            return
        finally:
            await stop_socket(sender, *(c.utterance for c in self.contexts.values()))

    async def handle(self, data: dict[str, Any], sender: asyncio.Future[None]) -> bool:
        """Acts on one message; False once the socket is to close."""
        if data.get("close_socket") is True:
            await self.close(sender)
            return False
        context_id = data.get("context_id", "default") if self.multi else SINGLE
        if not isinstance(context_id, str) or not context_id:
            await self.refuse(sender, "invalid_message", "context_id must be a string")
            return False
        context = self.contexts.get(context_id)
        text = data.get("text")
        if data.get("close_context") is True:
            if context is not None:
                await self.end_input(context)
            else:
                self.outbox.put(dumps({"isFinal": True, "contextId": context_id}))
            return True
        if text == "" and not self.multi:  # /stream-input: the end of the input
            if context is None:
                context = self.open(context_id)
            await self.end_input(context)
            await self.finish_single(sender)
            return False
        if text == "" and data.get("flush") is not True:
            return True  # a keep-alive
        if text is not None and not isinstance(text, str):
            await self.refuse(sender, "invalid_message", "text must be a string")
            return False
        if context is None:
            if len(self.contexts) >= MAX_CONTEXTS:
                await self.refuse(sender, "max_active_conversations",
                                  f"more than {MAX_CONTEXTS} open contexts on one socket")
                return False
            context = self.open(context_id)
        assert context.utterance is not None
        if context.closing:
            return True  # its input has ended: text after close_context is dropped
        if text:
            context.utterance.feed.push(text)
        if data.get("flush") is True or data.get("try_trigger_generation") is True:
            context.utterance.feed.flush(None)
        return True

    def open(self, context_id: str) -> _Context:
        context = _Context(self, context_id)
        context.utterance = Utterance(self.engine, self.voice, self.format, context,
                                      self.outbox, bit_rate=self.bit_rate, timed=True)
        self.contexts[context_id] = context
        return context

    async def end_input(self, context: _Context) -> None:
        """``close_context``: the input ends and the context closes once spoken; a second
        one while it still speaks stops it now."""
        assert context.utterance is not None
        if not context.closing:
            context.closing = True
            context.utterance.feed.end()
            return
        if context.speaking:
            self.outbox.purge(context.utterance)
            await context.utterance.cancel()
            self.close_context(context)

    def close_context(self, context: _Context) -> None:
        if self.contexts.pop(context.id, None) is None:
            return
        context.send({"isFinal": True})
        if not self.multi:
            self.done.set()

    async def finish_single(self, sender: asyncio.Future[None]) -> None:
        """/stream-input after its end of input: the audio, ``isFinal``, then close."""
        listener = asyncio.ensure_future(self.ws.receive())
        final = asyncio.ensure_future(self.done.wait())
        try:
            await asyncio.wait({final, listener}, return_when=asyncio.FIRST_COMPLETED)
            if not listener.done():  # else the client left (or spoke) first
                await self.close(sender)
        finally:
            listener.cancel()
            final.cancel()

    async def close(self, sender: asyncio.Future[None]) -> None:
        """Sends what is queued, then closes the socket normally."""
        await flushed_out(self.outbox, sender)
        with contextlib.suppress(Exception):
            await self.ws.close(1000)

    async def refuse(self, sender: asyncio.Future[None], error: str, message: str) -> None:
        """ElevenLabs' answer to a policy violation: the error, then close 1008."""
        for context in self.contexts.values():
            if context.utterance is not None:
                self.outbox.purge(context.utterance)
        self.outbox.put(dumps({"error": error, "message": message, "code": 1008}))
        await flushed_out(self.outbox, sender)
        with contextlib.suppress(Exception):
            await self.ws.close(1008, error)
