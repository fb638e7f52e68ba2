"""Fuzzing the sans-I/O protocol core (protocol.md) with hypothesis, no sockets.

1. Random text, bytes, JSON values and messages with wrongly typed fields: the parser and the
   options give a message or raise only documented errors (a code of protocol.md's tables);
   frames round-trip; random bytes are only a ``ValueError`` to the frame decoder.
2. A state machine over ``Session``: its contexts match a model, move only along protocol.md's
   diagram, ids are reused only once free, the context limit holds.
3. A state machine playing a client and the send loop against a connection's message handling,
   a fake engine and the outbox, with cancels at random points: no frame or event of a context
   after its ``cancelled``, none naming a context never opened, one final event per context.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast

from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from starlette.websockets import WebSocket

from orpheus_ws.config import Settings
from orpheus_ws.engine import Engine
from orpheus_ws.exceptions import BackendError, ConnectionFault, OrpheusError, RequestError
from orpheus_ws.formats import ENCODINGS, SAMPLE_RATES, AudioFormat
from orpheus_ws.ws import protocol
from orpheus_ws.ws.endpoint import Connection
from orpheus_ws.ws.protocol import OPTION_FIELDS, Cancel, Configure, End, Flush, Ping, Text
from orpheus_ws.ws.session import LIVE, Context, ContextState, Session

from .test_ws_delivery import FakeEngine
from .test_ws_protocol import BASE, PROTOCOL_MD, VOICES
from .test_ws_session import LEGAL

T = TypeVar("T")
S = ContextState


def documented_codes(section: str, row: str) -> set[str]:
    text = PROTOCOL_MD.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(row, text, re.MULTILINE))


ERROR_CODES = documented_codes("Error codes", r"^\| `([a-z_]+)` \|")
CLOSE_CODES = documented_codes("Close codes", r"^\| \d+ \| `([a-z_]+)` \|")
FAILURE_CODES = {"backend_unavailable", "backend_protocol_error", "backend_error",
                 "decoder_error", "internal_error"}
CONTEXT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # protocol.md, "Contexts"
MESSAGE_TYPES = {"config": Configure, "text": Text, "flush": Flush, "end": End,
                 "cancel": Cancel, "ping": Ping}
FIELDS = ("type", "context_id", "text", "flush", "end", "flush_id", "all", "id", *OPTION_FIELDS)
PARSING = settings(max_examples=200, deadline=None)


def attempt(call: Callable[[], T]) -> T | OrpheusError:
    """The call's result, or the OrpheusError it raised once its code is checked documented;
    any other exception escapes and fails the test."""
    try:
        return call()
    except OrpheusError as exc:
        assert exc.code in ERROR_CODES | CLOSE_CODES, exc.code
        assert isinstance(exc, RequestError | ConnectionFault)
        return exc


def parse(raw: str) -> object:
    return attempt(lambda: protocol.parse_client_message(raw, max_text_chars=40))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
formats = st.fixed_dictionaries({}, optional={
    "encoding": st.sampled_from([*ENCODINGS, "wav", ""]) | json_values,
    "sample_rate": st.sampled_from(SAMPLE_RATES) | st.integers(-1, 10**6) | json_values})
option_values = (st.sampled_from([*VOICES, "nobody", "auto", "none", 0, 1, 64, 2048, 0.5, 2.0,
                                  5000, 10000, 10001, True, False, None, "", 1e300, -0.0])
                 | st.floats(-10, 3000) | st.integers(-10, 3000) | formats | json_values)
overrides = st.dictionaries(st.sampled_from(OPTION_FIELDS), option_values, max_size=4)
context_ids = (st.sampled_from(["r1", "", "x" * 64, "x" * 65, "a b", "r1\n"])
               | st.from_regex(r"[A-Za-z0-9_.:\-]{1,66}", fullmatch=True) | json_values)
field_values = context_ids | option_values | st.text(max_size=80)
messages = st.builds(
    lambda kind, fields: fields if kind is None else {**fields, "type": kind},
    st.none() | st.sampled_from([*MESSAGE_TYPES, "hello", "TEXT"]) | json_values,
    st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=6))


# -- 1. parsing, options, frames -----------------------------------------------------------


@PARSING
@given(st.text() | st.binary().map(lambda b: b.decode("utf-8", "replace"))
       | json_values.map(json.dumps))
def test_random_text_is_a_message_or_a_documented_error(raw: str) -> None:
    result = parse(raw)
    if isinstance(result, OrpheusError):
        assert result.code in {"invalid_json", "unknown_type", "invalid_parameter",
                               "text_too_long"}
    else:
        data = json.loads(raw)
        assert isinstance(data, dict) and isinstance(result, MESSAGE_TYPES[data["type"]])


@PARSING
@given(messages)
def test_a_parsed_message_keeps_the_contract(data: dict[str, Any]) -> None:
    result = parse(json.dumps(data))
    if isinstance(result, OrpheusError):
        assert isinstance(result, RequestError)
        assert result.field is None or result.field in FIELDS
        return
    assert isinstance(result, MESSAGE_TYPES[data["type"]])
    if isinstance(result, Text | Flush | End | Cancel) and result.context_id is not None:
        assert result.context_id == data["context_id"]
    if isinstance(result, Text):
        assert isinstance(result.text, str) and len(result.text) <= 40
        assert isinstance(result.flush, bool) and isinstance(result.end, bool)
    if isinstance(result, Text | Flush):
        assert result.flush_id is None or (isinstance(result.flush_id, str)
                                           and len(result.flush_id) <= 64)
    if isinstance(result, Configure | Text):
        assert set(result.overrides) <= set(OPTION_FIELDS)


@PARSING
@given(st.sampled_from(["text", "flush", "end", "cancel"]), context_ids)
@example("text", "r1\n")  # CONTEXT_ID's "$" matches before a final newline
@example("cancel", "x" * 64 + "\n")  # 65 characters: more than a frame header carries
def test_only_documented_context_ids_are_accepted(kind: str, context_id: object) -> None:
    result = parse(json.dumps({"type": kind, "context_id": context_id, "text": ""}))
    if isinstance(context_id, str) and CONTEXT_ID.fullmatch(context_id):
        assert not isinstance(result, OrpheusError), result
    else:
        assert isinstance(result, OrpheusError), f"{context_id!r} accepted: {result}"
        assert (result.code, getattr(result, "field", None)) == ("invalid_parameter",
                                                                 "context_id")


def check_ranges(options: protocol.Options) -> None:
    """protocol.md's ``config`` table, every row."""
    p = options.params
    assert options.voice in VOICES
    assert 0.0 <= p.temperature <= 2.0 and 0.0 < p.top_p <= 1.0
    assert 0.5 <= p.repetition_penalty <= 2.0
    assert type(p.max_tokens) is int and 64 <= p.max_tokens <= 2048
    assert options.format == AudioFormat(options.format.encoding, options.format.sample_rate)
    assert options.buffering in ("auto", "none") and isinstance(options.timestamps, bool)
    assert 0 <= options.buffer_delay_ms <= 10000 and 0 <= options.client_buffer_ms <= 5000


@PARSING
@given(overrides, st.none() | st.just("r1"))
def test_options_are_in_range_or_refused_naming_the_field(
        changes: dict[str, Any], context_id: str | None) -> None:
    result = attempt(lambda: protocol.apply_options(BASE, changes, VOICES, context_id=context_id))
    session: Session[str] = Session(BASE, VOICES, max_contexts=1)
    configured = attempt(lambda: session.configure(changes))
    if isinstance(result, OrpheusError):
        assert isinstance(result, RequestError)
        assert result.field in changes and result.context_id == context_id
        assert isinstance(configured, RequestError) and configured.code == result.code
        assert session.defaults == BASE
    else:
        check_ranges(result)
        assert configured == result == session.defaults


frame_fields = st.fixed_dictionaries({
    "context_id": st.from_regex(r"[A-Za-z0-9_.:\-]{1,64}", fullmatch=True),
    "payload": st.binary(max_size=64), "encoding": st.sampled_from(ENCODINGS),
    "sample_rate": st.integers(0, 2**32 - 1), "sample_offset": st.integers(0, 2**64 - 1),
    "sequence": st.integers(0, 2**32 - 1), "segment": st.integers(0, 2**16 - 1),
    "flags": st.integers(0, 255)})


def frame_of(fields: dict[str, Any]) -> bytes:
    return protocol.encode_audio_frame(**fields)


@PARSING
@given(frame_fields)
def test_frames_round_trip(fields: dict[str, Any]) -> None:
    frame = frame_of(fields)
    header, payload = protocol.decode_audio_frame(frame)
    assert payload == fields.pop("payload") and header.header_length % 4 == 0
    assert len(frame) == header.header_length + len(payload)
    assert {name: getattr(header, name) for name in fields} == fields


@PARSING
@given(st.binary(max_size=100)
       | st.tuples(frame_fields.map(frame_of), st.integers(0, 99), st.integers(0, 255))
       .map(lambda t: t[0][:t[1]] + bytes([t[2]]) + t[0][t[1] + 1:]))
def test_random_bytes_are_a_frame_or_a_value_error(frame: bytes) -> None:
    try:
        header, payload = protocol.decode_audio_frame(frame)
    except ValueError:
        return
    assert header.encoding in ENCODINGS and header.header_length % 4 == 0
    assert 24 < 24 + len(header.context_id.encode()) <= header.header_length <= len(frame)
    assert payload == frame[header.header_length:]


# -- 2. the session's contexts against a model ---------------------------------------------

IDS = st.sampled_from(["r1", "r2", "r3", "r4"])
FIRST_MESSAGES = st.sampled_from([  # (overrides, the refusal's code)
    ({}, None), ({"voice": "leo"}, None), ({"format": {"encoding": "alaw", "sample_rate": 8000}},
                                           None),
    ({"voice": "bob"}, "unknown_voice"), ({"temperature": 9}, "invalid_parameter"),
    ({"format": {"encoding": "alaw"}}, "invalid_parameter")])


class SessionMachine(RuleBasedStateMachine):
    """The model: each context's expected state, and the context each id names."""

    def __init__(self) -> None:
        super().__init__()
        self.session: Session[str] = Session(BASE, VOICES, max_contexts=1)
        self.expected: dict[Context[str], ContextState] = {}
        self.registered: dict[str, Context[str]] = {}

    @initialize(limit=st.integers(1, 3))
    def start(self, limit: int) -> None:
        self.session = Session(BASE, VOICES, max_contexts=limit)

    def live(self, context_id: str) -> ContextState | None:
        context = self.registered.get(context_id)
        state = None if context is None else self.expected[context]
        return state if state in LIVE else None

    def move(self, context: Context[str], state: ContextState) -> None:
        assert (self.expected[context], state) in LEGAL
        self.expected[context] = state

    @rule(context_id=IDS, first=FIRST_MESSAGES)
    def text(self, context_id: str, first: tuple[dict[str, Any], str | None]) -> None:
        changes, refusal = first
        state = self.live(context_id)
        full = sum(s in LIVE for s in self.expected.values()) >= self.session.max_contexts
        expect = ("context_ended" if state is S.ENDING else
                  ("invalid_state" if changes else None) if state is S.OPEN else
                  "too_many_contexts" if full else refusal)
        result = attempt(lambda: self.session.text(context_id, dict(changes)))
        if expect is not None:
            assert isinstance(result, OrpheusError) and result.code == expect
            return
        assert not isinstance(result, OrpheusError), result
        context, opened = result
        assert opened == (state is None)
        if opened:
            assert context not in self.expected and context.state is S.OPEN
            self.expected[context] = S.OPEN
            self.registered[context_id] = context
        assert context is self.registered[context_id]

    @rule(context_id=IDS)
    def flush(self, context_id: str) -> None:
        result = attempt(lambda: self.session.get(context_id))
        if self.live(context_id) is None:
            assert isinstance(result, OrpheusError) and result.code == "unknown_context"
        else:
            assert result is self.registered[context_id]

    @rule(context_id=IDS)
    def end(self, context_id: str) -> None:
        state = self.live(context_id)
        result = attempt(lambda: self.session.end(context_id))
        if state is S.OPEN:
            assert result is self.registered[context_id]
            self.move(result, S.ENDING)
        else:  # a second end is an illegal move; no live context: unknown
            assert isinstance(result, OrpheusError)
            assert result.code == ("invalid_state" if state else "unknown_context")

    @rule(context_id=st.none() | IDS)
    def cancel(self, context_id: str | None) -> None:
        targets = ([c for c, state in self.expected.items() if state in LIVE]
                   if context_id is None else
                   [self.registered[context_id]] if self.live(context_id) else [])
        result = attempt(lambda: self.session.cancel(context_id))
        if context_id is not None and not targets:
            assert isinstance(result, OrpheusError) and result.code == "unknown_context"
            return
        assert not isinstance(result, OrpheusError)
        assert set(result) == set(targets) and len(result) == len(targets)
        for context in targets:
            self.move(context, S.CANCELLED)

    @precondition(lambda self: self.expected)
    @rule(index=st.integers(0, 63), state=st.sampled_from(ContextState))
    def backend_moves(self, index: int, state: ContextState) -> None:
        """The delivery finishing (DONE) or failing (FAILED) a context, or any other move."""
        context = list(self.expected)[index % len(self.expected)]
        legal = (self.expected[context], state) in LEGAL
        result = attempt(lambda: context.move(state))
        if legal:
            assert result is None
            self.move(context, state)
        else:
            assert isinstance(result, OrpheusError) and result.code == "invalid_state"

    @precondition(lambda self: self.expected)
    @rule(index=st.integers(0, 63))
    def forget(self, index: int) -> None:
        context = list(self.expected)[index % len(self.expected)]
        self.session.forget(context)
        if self.registered.get(context.id) is context and self.expected[context] not in LIVE:
            del self.registered[context.id]

    @rule(first=FIRST_MESSAGES)
    def configure(self, first: tuple[dict[str, Any], str | None]) -> None:
        changes, refusal = first
        before = self.session.defaults
        result = attempt(lambda: self.session.configure(dict(changes)))
        if refusal is None:
            assert result == self.session.defaults
        else:
            assert isinstance(result, OrpheusError) and result.code == refusal
            assert self.session.defaults == before

    @invariant()
    def matches_the_model(self) -> None:
        assert all(c.state is state for c, state in self.expected.items())
        assert {c.id: c for c in self.session.contexts} == self.registered
        assert len(self.session.contexts) == len(self.registered)
        live = {c.id for c in self.registered.values() if self.expected[c] in LIVE}
        assert {c.id for c in self.session.live} == live
        assert len(live) <= self.session.max_contexts


SessionMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=30,
                                            deadline=None)
test_session_against_a_model = SessionMachine.TestCase


# -- 3. delivery: a client, the connection's message handling, a fake engine, the outbox ------

POOL = st.sampled_from(["r1", "r2", "r3"])
PIECES = st.sampled_from(["Hello there. ", "How are you? ", "", "so, well, ", "Stop!\n",
                          "x" * 120])
FIRST_OPTIONS = st.sampled_from([{}, {"voice": "leo"}, {"voice": "bob"}, {"timestamps": True},
                                 {"format": {"encoding": "pcm_f32le", "sample_rate": 16000}}])
JUNK = st.builds(lambda kind, fields: {**fields, "type": kind},
                 st.sampled_from(["ping", "flush", "end", "nope"]),
                 st.dictionaries(st.sampled_from(FIELDS[1:8]), POOL | field_values, max_size=4))
CONTEXT_EVENTS = {"segment_started", "segment_finished", "timestamps", "flushed", "done",
                  "cancelled"}


class VoicedEngine(FakeEngine):
    voices: ClassVar[list[str]] = list(VOICES)


class DeliveryMachine(RuleBasedStateMachine):
    """The test is the client and the send loop; it checks what leaves, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.connection: Connection | None = None
        self.closed = False  # a ConnectionFault ended the connection
        self.named: set[str] = set()  # ids the client put in a message
        self.open: dict[str, int] = {}  # context_started arrived, no final event yet: next seq

    @initialize(chunks=st.lists(st.integers(1, 3), min_size=1, max_size=3),
                fail_at=st.none() | st.none() | st.integers(3, 40), room=st.integers(1, 20000),
                buffering=st.sampled_from(["auto", "none"]))
    def connect(self, chunks: list[int], fail_at: int | None, room: int, buffering: str) -> None:
        # the backend goes down for good at chunk number fail_at, if any
        engine = VoicedEngine(tuple(chunks), fail=None if fail_at is None else
                              BackendError("the backend broke off"), fail_at=fail_at or 0)
        config = Settings(ws_max_contexts=2, ws_max_buffered_bytes=room,
                          ws_buffer_delay_ms=10000.0)  # no idle flush within a test
        self.connection = Connection(cast(WebSocket, None), cast(Engine, engine), config)
        self.send({"type": "config", "buffering": buffering})

    @property
    def conn(self) -> Connection:
        assert self.connection is not None
        return self.connection

    def run(self, work: Callable[[], Any]) -> None:
        self.loop.run_until_complete(work())

    def send(self, message: dict[str, Any]) -> None:
        if isinstance(message.get("context_id"), str):
            self.named.add(message["context_id"])

        async def handle() -> None:
            self.conn.handle(json.dumps(message))

        try:
            self.run(handle)
        except ConnectionFault as fault:  # the endpoint closes the socket with 4001
            assert fault.code == "too_many_contexts"
            self.closed = True

    async def spin(self, turns: int, until: Callable[[], bool] = lambda: False) -> bool:
        for _ in range(turns):
            if until():
                return True
            await asyncio.sleep(0)
        return until()

    async def take(self, count: int) -> None:
        """Sends up to ``count`` queued messages, as the send loop does, and checks each."""
        outbox = self.conn.outbox
        for _ in range(min(count, len(outbox))):
            item = await outbox.get()
            data = item.data() if callable(item.data) else item.data
            if item.on_sent is not None:
                item.on_sent(0.0)
            self.received(data)

    def received(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            header, _ = protocol.decode_audio_frame(data)
            context_id = header.context_id
            assert context_id in self.open, f"a frame of {context_id} outside its context"
            assert header.sequence == self.open[context_id]
            self.open[context_id] += 1
            return
        event = json.loads(data)
        kind, context_id = event["type"], event.get("context_id")
        if kind == "error":
            assert event["code"] in ERROR_CODES and event["code"] != "internal_error", event
            assert context_id is None or context_id in self.named, event
            if event["code"] in FAILURE_CODES:
                assert self.open.pop(context_id, None) is not None, event
        elif kind == "context_started":
            assert context_id in self.named and context_id not in self.open, event
            self.open[context_id] = 0
        elif kind in CONTEXT_EVENTS:
            assert context_id in self.open, f"{kind} of {context_id}, not an open context"
            if kind in ("done", "cancelled"):
                del self.open[context_id]
        else:
            assert kind in ("configured", "pong") and context_id is None, event

    @precondition(lambda self: not self.closed)
    @rule(context_id=POOL, piece=PIECES, options=FIRST_OPTIONS, flush=st.booleans(),
          end=st.booleans())
    def text(self, context_id: str, piece: str, options: dict[str, Any], flush: bool,
             end: bool) -> None:
        # A client reuses an id only after its old context's final event (protocol.md): the
        # loop runs until a finished context of that id is retired, its final event queued.
        def retired() -> bool:
            return all(c.live for c in self.conn.session.contexts if c.id == context_id)

        self.run(lambda: self.spin(100, retired))
        assert retired(), f"context {context_id} never retired"
        self.send({"type": "text", "context_id": context_id, "text": piece, "flush": flush,
                   "end": end, **options})

    @precondition(lambda self: not self.closed)
    @rule(context_id=POOL, kind=st.sampled_from(["flush", "end"]),
          flush_id=st.none() | st.sampled_from(["f1", "f2"]))
    def flush_or_end(self, context_id: str, kind: str, flush_id: str | None) -> None:
        self.send({"type": kind, "context_id": context_id, "flush_id": flush_id})

    @precondition(lambda self: not self.closed)
    @rule(context_id=st.none() | POOL)
    def cancel(self, context_id: str | None) -> None:
        self.send({"type": "cancel", "all": True} if context_id is None
                  else {"type": "cancel", "context_id": context_id})

    @precondition(lambda self: not self.closed)
    @rule(message=JUNK)
    def junk(self, message: dict[str, Any]) -> None:
        self.send(message)

    @rule(turns=st.integers(0, 8), reads=st.integers(0, 12))
    def time_passes(self, turns: int, reads: int) -> None:
        """The deliveries run for a few turns of the loop, then the client reads a few."""
        self.run(lambda: self.spin(turns))
        self.run(lambda: self.take(reads))

    @invariant()
    def limits_hold(self) -> None:
        if self.connection is not None:
            assert len(self.connection.session.live) <= 2

    async def read_to_the_end(self) -> bool:
        for _ in range(5000):
            await self.take(1000)
            if not self.conn.session.contexts and not len(self.conn.outbox):
                return True
            await asyncio.sleep(0)
        return False

    def teardown(self) -> None:
        """Ends every context and reads to the end: each opened context had a final event."""
        try:
            if self.connection is not None and not self.closed:
                for context_id in ("r1", "r2", "r3"):
                    self.send({"type": "end", "context_id": context_id})
                finished = self.loop.run_until_complete(self.read_to_the_end())
                assert finished and not self.open, f"no final event: {self.open}"
        finally:
            if self.connection is not None:
                self.run(self.connection.stop_contexts)
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()


DeliveryMachine.TestCase.settings = settings(max_examples=250, stateful_step_count=30,
                                             deadline=None)
test_delivery_with_cancels_at_random_points = DeliveryMachine.TestCase
