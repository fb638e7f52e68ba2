"""The sans-I/O protocol core (protocol.md) fuzzed with hypothesis; no sockets.

1. Random text, bytes, JSON and messages with wrongly typed fields give a message or a
   documented error (a code of protocol.md's tables); options stay in their ranges; frames
   round-trip, and random bytes are only a ValueError to the frame decoder.
2. A state machine over ``Session``: its contexts match a model and move only along
   protocol.md's diagram; an id is reused only once free; the context limit holds.
3. A state machine playing the client and the send loop against a connection's message
   handling, a fake engine and the outbox, cancelling at random points: no frame or event of
   a context after its ``cancelled``, none naming a context never opened, and every opened
   context ends with one final event.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from orpheus_ws.config import Settings
from orpheus_ws.exceptions import BackendError, ConnectionFault, OrpheusError, RequestError
from orpheus_ws.formats import ENCODINGS, SAMPLE_RATES, AudioFormat
from orpheus_ws.transport.outbox import CloseFrame
from orpheus_ws.ws import protocol
from orpheus_ws.ws.endpoint import Connection
from orpheus_ws.ws.protocol import OPTION_FIELDS, Cancel, Configure, End, Flush, Ping, Text
from orpheus_ws.ws.session import LIVE, Context, ContextState, Session

from .fakes import speech_engine
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
FAILURE_CODES = documented_codes("Error codes", r"^\| `([a-z_]+)` \|.*\| the context is FAILED \|$")
CONTEXT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # protocol.md, "Contexts"
MESSAGE_TYPES = {"config": Configure, "text": Text, "flush": Flush, "end": End,
                 "cancel": Cancel, "ping": Ping}
FIELDS = ("type", "context_id", "text", "flush", "end", "flush_id", "all", "id", *OPTION_FIELDS)
PARSING = settings(max_examples=200, deadline=None)


def attempt(call: Callable[[], T]) -> T | OrpheusError:
    """The call's result, or the (documented) OrpheusError it raised; others fail the test."""
    try:
        return call()
    except OrpheusError as exc:
        assert exc.code in ERROR_CODES | CLOSE_CODES, exc.code
        assert isinstance(exc, RequestError | ConnectionFault)
        return exc


def refused(result: object, code: str) -> None:
    assert isinstance(result, OrpheusError) and result.code == code, (result, code)


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
       | json_values.map(json.dumps) | messages.map(json.dumps))
def test_any_text_is_a_message_or_a_documented_error(raw: str) -> None:
    result = parse(raw)
    if isinstance(result, OrpheusError):
        assert result.code in {"invalid_json", "unknown_type", "invalid_parameter",
                               "text_too_long"}
        assert isinstance(result, RequestError) and result.field in (None, *FIELDS)
        return
    data = json.loads(raw)
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


@PARSING
@given(overrides, st.none() | st.just("r1"))
def test_options_are_in_range_or_refused_naming_the_field(
        changes: dict[str, Any], context_id: str | None) -> None:
    result = attempt(lambda: protocol.apply_options(BASE, changes, VOICES, context_id=context_id))
    session: Session[str] = Session(BASE, VOICES, max_contexts=1)
    configured = attempt(lambda: session.configure(changes))
    if isinstance(result, OrpheusError):
        assert result.code in ("invalid_parameter", "unknown_voice")
        assert isinstance(result, RequestError) and result.field in changes
        assert result.context_id == context_id
        assert isinstance(configured, OrpheusError) and configured.code == result.code
        assert session.defaults == BASE
    else:  # protocol.md's ``config`` table, every row
        p, fmt = result.params, result.format
        assert result.voice in VOICES and 0.5 <= p.repetition_penalty <= 2.0
        assert 0.0 <= p.temperature <= 2.0 and 0.0 < p.top_p <= 1.0
        assert type(p.max_tokens) is int and 64 <= p.max_tokens <= 2048
        assert fmt == AudioFormat(fmt.encoding, fmt.sample_rate)
        assert result.buffering in ("auto", "none") and isinstance(result.timestamps, bool)
        assert 0 <= result.buffer_delay_ms <= 10000 and 0 <= result.client_buffer_ms <= 5000
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
    None), ({"voice": "bob"}, "unknown_voice"), ({"temperature": 9}, "invalid_parameter"),
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
            return refused(result, expect)
        assert not isinstance(result, OrpheusError), result
        context, opened = result
        assert opened == (state is None)
        if opened:
            assert context not in self.expected and context.state is S.OPEN
            self.expected[context] = S.OPEN
            self.registered[context_id] = context
        assert context is self.registered[context_id]

    @rule(context_id=IDS, end=st.booleans())
    def flush_or_end(self, context_id: str, end: bool) -> None:
        state = self.live(context_id)
        result = attempt(lambda: (self.session.end if end else self.session.get)(context_id))
        if state is None:
            refused(result, "unknown_context")
        elif end and state is S.ENDING:  # a second end is an illegal move
            refused(result, "invalid_state")
        else:
            assert result is self.registered[context_id]
            if end:
                self.move(result, S.ENDING)

    @rule(context_id=st.none() | IDS)
    def cancel(self, context_id: str | None) -> None:
        targets = ([c for c, state in self.expected.items() if state in LIVE]
                   if context_id is None else
                   [self.registered[context_id]] if self.live(context_id) else [])
        result = attempt(lambda: self.session.cancel(context_id))
        if context_id is not None and not targets:
            return refused(result, "unknown_context")
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
            refused(result, "invalid_state")

    @precondition(lambda self: self.expected)
    @rule(index=st.integers(0, 63))
    def forget(self, index: int) -> None:
        context = list(self.expected)[index % len(self.expected)]
        self.session.forget(context)
        if self.registered.get(context.id) is context and self.expected[context] not in LIVE:
            del self.registered[context.id]

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


class VoicedEngine(FakeEngine):
    voices = list(VOICES)  # noqa: RUF012


class DeliveryMachine(RuleBasedStateMachine):
    """The test is the client and the send loop; it checks what leaves, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.connection = Connection(speech_engine(VoicedEngine()),
                                     Settings())  # replaced by connect()
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
        self.connection = Connection(speech_engine(engine), config)
        self.send({"type": "config", "buffering": buffering})

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        if isinstance(message.get("context_id"), str):
            self.named.add(message["context_id"])

        async def handle() -> None:
            self.connection.handle(json.dumps(message))

        try:
            self.run(handle())
        except ConnectionFault as fault:  # the endpoint closes the socket with 4001
            assert fault.code == "too_many_contexts"
            self.closed = True

    async def spin(self, turns: int, until: Callable[[], bool] = lambda: False, *,
                   read: bool = False) -> bool:
        """Runs the loop for up to ``turns`` turns, reading everything at each if ``read``."""
        for _ in range(turns):
            if read:
                await self.take(10**6)
            if until():
                return True
            await asyncio.sleep(0)
        return until()

    async def take(self, count: int) -> None:
        """Sends up to ``count`` queued messages, as the send loop does, and checks each."""
        outbox = self.connection.outbox
        for _ in range(min(count, len(outbox))):
            item = await outbox.get()
            data = item.data() if callable(item.data) else item.data
            if item.on_sent is not None:
                item.on_sent(0.0)
            assert not isinstance(data, CloseFrame)  # the native socket queues none
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
        elif kind not in ("configured", "pong"):
            assert context_id in self.open, f"{kind} of {context_id}, not an open context"
            if kind in ("done", "cancelled"):
                del self.open[context_id]

    @rule(context_id=POOL, piece=PIECES, options=FIRST_OPTIONS, flush=st.booleans(),
          end=st.booleans())
    def text(self, context_id: str, piece: str, options: dict[str, Any], flush: bool,
             end: bool) -> None:
        # A client reuses an id only after its old context's final event (protocol.md): the
        # loop runs until a finished context of that id is retired, its final event queued.
        def retired() -> bool:
            return all(c.live for c in self.connection.session.contexts if c.id == context_id)

        assert self.run(self.spin(100, retired)), f"context {context_id} never retired"
        self.send({"type": "text", "context_id": context_id, "text": piece, "flush": flush,
                   "end": end, **options})

    @rule(context_id=POOL, kind=st.sampled_from(["flush", "end"]),
          flush_id=st.none() | st.sampled_from(["f1", "f2"]))
    def flush_or_end(self, context_id: str, kind: str, flush_id: str | None) -> None:
        self.send({"type": kind, "context_id": context_id, "flush_id": flush_id})

    @rule(context_id=st.none() | POOL)
    def cancel(self, context_id: str | None) -> None:
        self.send({"type": "cancel", "all": True} if context_id is None
                  else {"type": "cancel", "context_id": context_id})

    @rule(message=JUNK)
    def junk(self, message: dict[str, Any]) -> None:
        self.send(message)

    @rule(turns=st.integers(0, 8), reads=st.integers(0, 12))
    def time_passes(self, turns: int, reads: int) -> None:
        """The deliveries run for a few turns of the loop, then the client reads a few."""
        self.run(self.spin(turns))
        self.run(self.take(reads))

    @invariant()
    def limits_hold(self) -> None:
        assert len(self.connection.session.live) <= self.connection.settings.ws_max_contexts

    def teardown(self) -> None:
        """Ends every context and reads to the end: each opened context had a final event."""
        try:
            if not self.closed:
                for context_id in ("r1", "r2", "r3"):
                    self.send({"type": "end", "context_id": context_id})
                over = self.run(self.spin(5000, lambda: not (
                    self.connection.session.contexts or len(self.connection.outbox)), read=True))
                assert over and not self.open, f"no final event: {self.open}"
        finally:
            self.run(self.connection.stop_contexts())
            self.run(self.loop.shutdown_asyncgens())
            self.loop.close()


DeliveryMachine.TestCase.settings = settings(max_examples=250, stateful_step_count=30,
                                             deadline=None)
test_delivery_with_cancels_at_random_points = DeliveryMachine.TestCase


def test_a_cancel_right_after_text_is_answered() -> None:
    """The machine's find, replayed: text releases a segment and a cancel follows at once. On
    Python 3.11 ``asyncio.wait_for`` in ``TextFeed.__aiter__`` (engine/feed.py) swallows that
    cancel: the delivery runs on, ``cancelled`` never comes, the generation is not aborted."""
    machine = DeliveryMachine()
    try:
        machine.connect(chunks=[1], fail_at=None, room=1, buffering="auto")
        machine.text("r1", "so, well, ", {}, flush=False, end=False)
        machine.text("r1", "Hello there. ", {}, flush=False, end=False)
        machine.cancel(None)
    finally:
        machine.teardown()  # reads to the end: every opened context had its final event
