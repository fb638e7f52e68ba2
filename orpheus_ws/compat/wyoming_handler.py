"""One Wyoming connection (Home Assistant's TTS client, ``wyoming``'s ``AsyncTcpClient``): its
events onto the engine, the engine's audio back as ``wyoming``'s own events. It follows
OHF-Voice/wyoming-piper's ``wyoming_piper/handler.py``, the reference TTS server
(../shared/voice-agent-clients.md, "Home Assistant"):

- ``describe`` -> ``info`` (``wyoming_requests.describe``);
- ``synthesize {text, voice?, text_format?}`` -> ``audio-start`` (24 kHz, 16-bit, mono),
  ``audio-chunk`` as the audio is generated, ``audio-stop``;
- a stream (wyoming >= 1.7): ``synthesize-start {voice?, text_format?}``, ``synthesize-chunk
  {text}`` x n (through the engine's ``TextFeed``, as the native ``auto`` buffering),
  ``synthesize-stop`` -> one ``audio-start`` before the first audio (Home Assistant reads
  only the first), ``audio-chunk``s, ``audio-stop``, ``synthesize-stopped``. The
  ``synthesize`` sent inside a stream for older servers is ignored; a stream with no text
  answers ``synthesize-stopped`` alone, as wyoming-piper does;
- a fault is ``error {text, code}`` (protocol.md's codes) and the connection goes on. A
  one-shot refused or failed still ends with ``audio-stop`` (Home Assistant's one-shot client
  reads until it); a stream still ends with ``synthesize-stopped`` at ``synthesize-stop``.
  What the engine refuses (a drain, overload, a key's cap) it refuses here as on every
  route, when the request's first segment asks for a generation slot.

Each request is answered by a :class:`Reply`, its own task, in the order asked, while the
connection reads on (a ``synthesize-chunk`` arrives while earlier sentences are spoken, and a
client that goes away stops its generation at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any, cast

from wyoming.audio import AudioChunk as WyomingAudio
from wyoming.audio import AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_read_event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)

from ..engine import (
    AudioChunk,
    Caller,
    PlayoutClock,
    SpeechEngine,
    SsmlFeed,
    SynthesisEvent,
    TextFeed,
)
from ..exceptions import OrpheusError, ProtocolError
from ..formats import SAMPLE_RATE
from ..metrics import PROTOCOL_ERRORS, SOCKETS_OPEN
from ..params import DEFAULTS
from ..policy import decide
from ..transport.limits import SocketLimits
from .wyoming_requests import checked, choose_voice, is_ssml

log = logging.getLogger("orpheus_ws.compat")
ROUTE = "wyoming"
CALLER = Caller(key=None, route=ROUTE)  # the protocol has no keys
FORMAT: dict[str, int] = {"rate": SAMPLE_RATE, "width": 2, "channels": 1}  # never changes
Events = AsyncGenerator[SynthesisEvent, None]
READ_PAST_BYTES = 65536  # an event over the size limit is read past in pieces of this size


class _BoundedReader:
    """The connection's reader as ``wyoming.event.async_read_event`` reads it: an event's
    data or payload over ``max_bytes`` is read past, a piece at a time, and never held (the
    event comes back empty, ``refused`` set: it is answered with ``message_too_big``, and the
    connection goes on). The JSON line itself is bounded by the stream's limit (64 KiB)."""

    def __init__(self, reader: asyncio.StreamReader, max_bytes: int) -> None:
        self._reader = reader
        self.max_bytes = max_bytes
        self.refused = False

    async def readline(self) -> bytes:
        return await self._reader.readline()

    async def readexactly(self, n: int) -> bytes:
        if n <= self.max_bytes:
            return await self._reader.readexactly(n)
        self.refused = True
        while n > 0:
            n -= len(await self._reader.readexactly(min(n, READ_PAST_BYTES)))
        return b"{}"  # as data, no fields; as a payload, dropped with its event


class Reply:
    """One request's answer in its own task, after the connection's previous reply: the
    engine's ``events`` as ``audio-start``, ``audio-chunk``s and ``audio-stop``; or
    ``refusal``, an error, in their place (a one-shot's still followed by ``audio-stop``).
    A stream (``stream``: its text goes to ``source``, whose segments ``feed`` holds) ends
    with ``synthesize-stopped`` once ``end()`` is called (``synthesize-stop``)."""

    def __init__(self, connection: WyomingConnection, events: Events | None, *,
                 after: Reply | None, stream: bool = False, text_chars: int = 0,
                 feed: TextFeed | None = None, source: TextFeed | SsmlFeed | None = None,
                 refusal: OrpheusError | None = None) -> None:
        self.connection = connection
        self.stream = stream
        self.feed = feed
        self.source = source
        self.text_chars = text_chars
        self.ended = asyncio.Event()  # a stream: synthesize-stop came
        self.failed = refusal is not None
        self.task = asyncio.ensure_future(self._run(events, after, refusal))

    @property
    def held_chars(self) -> int:
        """Text taken and not yet spoken."""
        if self.task.done():
            return 0
        return self.source.held_chars if self.source is not None else self.text_chars

    @property
    def busy(self) -> bool:
        """Audio is being generated or sent: a client waiting for it is not idle."""
        if self.task.done():
            return False
        if not self.stream or self.ended.is_set():
            return True
        return self.feed is not None and (self.feed.busy or self.held_chars > 0)

    def push(self, text: str) -> None:
        """A stream's text (ignored once it has failed: its error has been sent)."""
        if self.source is not None and not self.failed and not self.ended.is_set():
            self.source.push(text)

    def end(self) -> None:
        """The stream's text is all there (its held SSML may raise SsmlError: what came
        before it is spoken, and the stream ends all the same)."""
        if self.ended.is_set():
            return
        self.ended.set()
        if self.source is not None and not self.failed:
            self.source.end()

    async def _run(self, events: Events | None, after: Reply | None,
                   refusal: OrpheusError | None) -> None:
        try:
            if after is not None:  # answers go out in the order they were asked for
                await asyncio.wait({after.task})
            started = False
            if refusal is not None:
                await self.connection.error(refusal)
            elif events is not None:
                started = await self._speak(events)
            if not self.stream and not started and not self.failed:
                started = True  # nothing to say: an empty answer, still well formed
                await self.connection.write_event(AudioStart(**FORMAT).event())
            if started or (not self.stream and self.failed):
                # a one-shot ends with audio-stop, after an error too: Home Assistant's
                # one-shot client reads until it (and would otherwise wait for its timeout)
                await self.connection.write_event(AudioStop().event())
            if self.stream:
                await self.ended.wait()
                await self.connection.write_event(SynthesizeStopped().event())
        except OSError:  # the client went away: the connection's read loop sees it too
            pass

    async def _speak(self, events: Events) -> bool:
        """Writes the audio as it comes; whether any was written."""
        started = False
        try:
            # aclosing: a cancel (the client gone) closes the engine's stream, and so its LLM
            # requests, at once, not when it is collected
            async with contextlib.aclosing(events) as stream:
                async for event in stream:
                    if not isinstance(event, AudioChunk) or not event.samples:
                        continue
                    if not started:
                        started = True
                        await self.connection.write_event(AudioStart(**FORMAT).event())
                    pcm = event.pcm.astype("<i2", copy=False).tobytes()
                    await self.connection.write_event(WyomingAudio(audio=pcm, **FORMAT).event())
        except OrpheusError as exc:
            self.failed = True
            log.warning("wyoming utterance failed: %s", exc)
            await self.connection.error(exc)
        except OSError:
            raise
        except Exception:
            self.failed = True
            log.exception("wyoming utterance failed unexpectedly")
            await self.connection.error(OrpheusError())
        return started


class WyomingConnection(AsyncEventHandler):
    """One client's connection; ``handle_event`` only reads events and hands text on, the
    replies write the audio."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 engine: SpeechEngine, info: Info, limits: SocketLimits,
                 registry: set[WyomingConnection] | None = None) -> None:
        super().__init__(reader, writer)
        self.registry = registry if registry is not None else set()  # the server's, open ones
        self.engine = engine
        self.info = info
        self.limits = limits
        self.replies: list[Reply] = []  # in the order asked; done ones dropped as new come
        self.stream: Reply | None = None  # synthesize-start came, synthesize-stop not yet
        self._writing = asyncio.Lock()  # the read loop and the replies both write
        self.closed = asyncio.Event()

    @property
    def busy(self) -> bool:
        return any(reply.busy for reply in self.replies)

    @property
    def held_chars(self) -> int:
        return sum(reply.held_chars for reply in self.replies)

    async def run(self) -> None:
        """Reads events until the client leaves, stops reading for ``idle_timeout_s`` while
        nothing is spoken, or sends what can't be read as an event; the replies are stopped
        however it ends."""
        SOCKETS_OPEN.labels(ROUTE).inc()
        self.registry.add(self)
        bounded = _BoundedReader(self.reader, self.limits.max_message_bytes)
        reader = cast(asyncio.StreamReader, bounded)
        pending: asyncio.Future[Event | None] | None = None
        try:
            while True:
                if pending is None:  # one read, waited on across idle checks: none lost
                    pending = asyncio.ensure_future(async_read_event(reader))
                done, _ = await asyncio.wait({pending}, timeout=self.limits.idle_timeout_s)
                if not done:
                    if self.busy:
                        continue
                    log.info("wyoming connection closed: no event for %g s",
                             self.limits.idle_timeout_s)
                    break
                read, pending = pending, None
                try:
                    event = read.result()
                except (OSError, EOFError):  # gone, or cut off within an event
                    break
                except Exception:  # JSON that is no Wyoming event: the stream can't be followed
                    await self.error(ProtocolError("invalid_json", "not a Wyoming event"))
                    break
                if event is None:
                    break
                if bounded.refused:
                    bounded.refused = False
                    await self.handle_fault(ProtocolError(
                        "message_too_big", f"an event over {self.limits.max_message_bytes} "
                        "bytes: not read"))
                    continue
                await self.handle_event(event)
        except OSError:
            pass
        finally:
            if pending is not None:
                pending.cancel()
            await self.disconnect()
            SOCKETS_OPEN.labels(ROUTE).dec()
            self.writer.close()
            self.registry.discard(self)
            self.closed.set()

    async def disconnect(self) -> None:
        """Stops every reply now (the engine closes their LLM requests)."""
        replies, self.replies, self.stream = self.replies, [], None
        for reply in replies:
            reply.task.cancel()
        await asyncio.gather(*(reply.task for reply in replies), return_exceptions=True)

    async def stop(self) -> None:
        """The server is stopping: replies stopped, then the connection closed."""
        await self.disconnect()
        await super().stop()

    async def write_event(self, event: Event) -> None:
        """Writes one event whole; a client that reads nothing for ``send_timeout_s`` is cut
        off (ConnectionError)."""
        async with self._writing:
            try:
                async with asyncio.timeout(self.limits.send_timeout_s):
                    await super().write_event(event)
            except TimeoutError:
                self.writer.transport.abort()
                raise ConnectionError("the client stopped reading") from None

    async def error(self, exc: OrpheusError) -> None:
        """An ``error`` event for ``exc``, in the error policy's code and words."""
        decision = decide(exc)
        await self.write_event(Error(text=decision.message, code=decision.code).event())

    async def handle_fault(self, exc: OrpheusError) -> None:
        """An event the connection can't act on: an error, and it goes on."""
        PROTOCOL_ERRORS.labels(exc.code).inc()
        await self.error(exc)

    async def handle_event(self, event: Event) -> bool:
        try:
            await self._dispatch(event)
        except OrpheusError as exc:
            await self.handle_fault(exc)
        except OSError:
            raise
        except Exception:
            log.exception("wyoming event %s failed", event.type[:40])
            await self.error(OrpheusError())
        return True

    async def _dispatch(self, event: Event) -> None:
        kind = event.type
        if Describe.is_type(kind):
            await self.write_event(self.info.event())
        elif Synthesize.is_type(kind):
            if self.stream is None:  # inside a stream it is there for older servers: ignored
                self._synthesize(event)
        elif SynthesizeStart.is_type(kind):
            self._start(event)
        elif SynthesizeChunk.is_type(kind):
            if self.stream is None:
                raise ProtocolError("invalid_state", "synthesize-chunk without synthesize-start")
            text = SynthesizeChunk.from_event(checked(event, text=True)).text
            self.limits.check_text(len(text), self.stream.held_chars, self.held_chars)
            self.stream.push(text)
        elif SynthesizeStop.is_type(kind):
            if self.stream is None:
                raise ProtocolError("invalid_state", "synthesize-stop without synthesize-start")
            stream, self.stream = self.stream, None
            stream.end()
        elif Ping.is_type(kind):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
        elif kind != "select-program":  # wyoming 1.9's: we have one program, any name is it
            raise ProtocolError("unknown_type", f"cannot act on an event of type {kind[:40]!r}")

    def _synthesize(self, event: Event) -> None:
        self._check_room()
        try:
            fields = checked(event, text=True)
            request = Synthesize.from_event(fields)
            voice = choose_voice(self.engine, request.voice)
            self.limits.check_text(len(request.text), 0, self.held_chars)
            events = self.engine.speak(request.text, voice=voice, params=DEFAULTS,
                                       caller=CALLER, ssml=is_ssml(fields))  # SsmlError now
        except OrpheusError as exc:
            self._answer(None, refusal=exc)  # in order, after what was asked before
            return
        self._answer(events, text_chars=len(request.text))

    def _start(self, event: Event) -> None:
        if self.stream is not None:
            raise ProtocolError("invalid_state", "a stream is open: synthesize-stop ends it "
                                "before the next synthesize-start")
        self._check_room()
        try:
            fields = checked(event)
            voice = choose_voice(self.engine, SynthesizeStart.from_event(fields).voice)
        except OrpheusError as exc:  # the stream is answered with it; its text is ignored
            self.stream = self._answer(None, stream=True, refusal=exc)
            return
        feed = TextFeed(max_tokens=DEFAULTS.max_tokens)
        source: TextFeed | SsmlFeed = feed
        if is_ssml(fields):
            source = SsmlFeed(feed, language=self.engine.lineup.language_of(voice),
                              keep_tags=self.engine.lineup.emotion_tags)
        events = self.engine.synthesize(feed, voice=voice, params=DEFAULTS, caller=CALLER,
                                        clock=PlayoutClock())
        self.stream = self._answer(events, stream=True, feed=feed, source=source)

    def _check_room(self) -> None:
        """Requests wait their turn on a connection, at most ``max_contexts`` of them."""
        self.replies = [reply for reply in self.replies if not reply.task.done()]
        if len(self.replies) >= self.limits.max_contexts:
            raise ProtocolError("too_many_contexts", f"{len(self.replies)} requests are "
                                "waiting on this connection; send more once they are answered")

    def _answer(self, events: Events | None, *, refusal: OrpheusError | None = None,
                **options: Any) -> Reply:
        if refusal is not None:
            PROTOCOL_ERRORS.labels(refusal.code).inc()
        after = self.replies[-1] if self.replies else None
        reply = Reply(self, events, after=after, refusal=refusal, **options)
        self.replies.append(reply)
        return reply
