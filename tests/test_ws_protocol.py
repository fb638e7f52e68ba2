"""The sans-I/O protocol core (protocol.md): client messages parsed from plain strings, their
error codes, the options of a context, binary audio frames and close codes. No sockets."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from orpheus_ws.exceptions import (
    ConnectionFault,
    ProtocolError,
    RequestError,
    TooManyContexts,
    UnknownVoice,
    ValidationError,
)
from orpheus_ws.formats import AudioFormat
from orpheus_ws.params import DEFAULTS, SamplingParams
from orpheus_ws.policy import close_code
from orpheus_ws.ws.protocol import (
    FLAG_SEGMENT_END,
    FLAG_SEGMENT_START,
    Cancel,
    ClientMessage,
    Configure,
    End,
    Flush,
    Options,
    Ping,
    Text,
    apply_options,
    decode_audio_frame,
    encode_audio_frame,
    parse_client_message,
)

PROTOCOL_MD = Path(__file__).resolve().parent.parent / "protocol.md"
VOICES = ["tara", "leo"]
BASE = Options("tara", DEFAULTS, AudioFormat())


def parse(message: dict[str, Any] | str, max_text_chars: int = 5000) -> ClientMessage:
    raw = message if isinstance(message, str) else json.dumps(message)
    return parse_client_message(raw, max_text_chars=max_text_chars)


def refused(message: dict[str, Any] | str, max_text_chars: int = 5000) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse(message, max_text_chars)
    return info.value


def client_examples() -> list[dict[str, Any]]:
    """Every JSON example of protocol.md's "Client messages" section."""
    text = PROTOCOL_MD.read_text()
    section = text.split("## Client messages", 1)[1].split("## Server events", 1)[0]
    found: list[dict[str, Any]] = []
    for block in re.findall(r"```json\n(.*?)```", section, re.S):
        try:
            found.append(json.loads(block))
        except json.JSONDecodeError:  # several one-line examples in one block
            found.extend(json.loads(line) for line in block.splitlines() if line.strip())
    return found


# -- client messages ---------------------------------------------------------------------


def test_every_example_of_protocol_md_parses() -> None:
    examples = client_examples()
    assert {e["type"] for e in examples} == {"config", "text", "flush", "end", "cancel", "ping"}
    for example in examples:
        parse(example)


def test_config_keeps_only_option_fields() -> None:
    options = {"voice": "leo", "temperature": 0.6, "top_p": 0.9, "repetition_penalty": 1.1,
               "max_tokens": 512, "format": {"encoding": "pcm_s16le", "sample_rate": 24000},
               "buffering": "auto", "buffer_delay_ms": 300, "client_buffer_ms": 200}
    assert parse({"type": "config", **options, "extra": 1}) == Configure(options)
    assert parse({"type": "config"}) == Configure({})


def test_text_with_every_field() -> None:
    message = parse({"type": "text", "context_id": "r1", "text": "Hello there, ", "voice": "leo",
                     "format": {"encoding": "mulaw", "sample_rate": 8000}, "flush": True,
                     "flush_id": "f-7", "end": True, "unknown": 3})
    assert message == Text("r1", "Hello there, ",
                           {"voice": "leo", "format": {"encoding": "mulaw", "sample_rate": 8000}},
                           flush=True, end=True, flush_id="f-7")


def test_plain_text() -> None:
    assert parse({"type": "text", "context_id": "a.b:c-d_9", "text": ""}) == \
        Text("a.b:c-d_9", "", {}, flush=False, end=False, flush_id=None)


@pytest.mark.parametrize("message,expected", [
    ({"type": "flush", "context_id": "r1", "flush_id": "f-7"}, Flush("r1", "f-7")),
    ({"type": "flush", "context_id": "r1"}, Flush("r1", None)),
    ({"type": "flush", "context_id": "r1", "flush_id": "f" * 64}, Flush("r1", "f" * 64)),
    ({"type": "end", "context_id": "r1"}, End("r1")),
    ({"type": "cancel", "context_id": "r2"}, Cancel("r2")),
    ({"type": "cancel", "all": True}, Cancel(None)),
    ({"type": "cancel", "all": True, "context_id": "r2"}, Cancel(None)),
    ({"type": "cancel", "all": False, "context_id": "r2"}, Cancel("r2")),
    ({"type": "ping", "id": 42}, Ping(42)),
    ({"type": "ping", "id": "abc"}, Ping("abc")),
    ({"type": "ping"}, Ping(None)),
])
def test_control_messages(message: dict[str, Any], expected: ClientMessage) -> None:
    assert parse(message) == expected


def test_a_context_id_of_64_characters_is_accepted() -> None:
    assert parse({"type": "end", "context_id": "x" * 64}) == End("x" * 64)


# -- error codes -------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["not json", "{", "", "{'type': 'ping'}", "[1, 2]", "42",
                                 '"text"', "null", "true"])
def test_invalid_json(raw: str) -> None:
    exc = refused(raw)
    assert isinstance(exc, ProtocolError)
    assert exc.code == "invalid_json"
    assert exc.context_id is None


@pytest.mark.parametrize("message", [{}, {"type": None}, {"type": "speak"}, {"type": 5},
                                     {"type": "TEXT", "context_id": "r1", "text": "x"}])
def test_unknown_type(message: dict[str, Any]) -> None:
    exc = refused(message)
    assert isinstance(exc, ProtocolError)
    assert (exc.code, exc.field, exc.context_id) == ("unknown_type", "type", None)


@pytest.mark.parametrize("kind", ["text", "flush", "end", "cancel"])
@pytest.mark.parametrize("context_id", [None, "", "x" * 65, "a b", "r/1", "ü", 5, ["r1"]])
def test_bad_context_id(kind: str, context_id: Any) -> None:
    message: dict[str, Any] = {"type": kind, "text": "Hi"}
    if context_id is not None:
        message["context_id"] = context_id
    exc = refused(message)
    assert isinstance(exc, ValidationError)
    assert (exc.code, exc.field, exc.context_id) == ("invalid_parameter", "context_id", None)


@pytest.mark.parametrize("kind", ["text", "flush"])
@pytest.mark.parametrize("flush_id", ["f" * 65, 7, True, {"id": 1}])
def test_bad_flush_id(kind: str, flush_id: Any) -> None:
    exc = refused({"type": kind, "context_id": "r1", "text": "Hi", "flush_id": flush_id})
    assert isinstance(exc, ValidationError)
    assert (exc.code, exc.field, exc.context_id) == ("invalid_parameter", "flush_id", "r1")


@pytest.mark.parametrize("name", ["flush", "end"])
@pytest.mark.parametrize("value", ["yes", 1, 0, None])
def test_flush_and_end_must_be_booleans(name: str, value: Any) -> None:
    exc = refused({"type": "text", "context_id": "r1", "text": "Hi", name: value})
    assert isinstance(exc, ValidationError)
    assert (exc.code, exc.field, exc.context_id) == ("invalid_parameter", name, "r1")


@pytest.mark.parametrize("text", [None, 5, ["Hi"], {"text": "Hi"}])
def test_text_must_be_a_string(text: Any) -> None:
    message: dict[str, Any] = {"type": "text", "context_id": "r1"}
    if text is not None:
        message["text"] = text
    exc = refused(message)
    assert isinstance(exc, ValidationError)
    assert (exc.code, exc.field, exc.context_id) == ("invalid_parameter", "text", "r1")


def test_text_too_long() -> None:
    assert parse({"type": "text", "context_id": "r1", "text": "x" * 10}, 10) == \
        Text("r1", "x" * 10)
    exc = refused({"type": "text", "context_id": "r1", "text": "x" * 11}, 10)
    assert isinstance(exc, ProtocolError)
    assert (exc.code, exc.field, exc.context_id) == ("text_too_long", "text", "r1")


# -- options -----------------------------------------------------------------------------


def test_options_apply_every_field() -> None:
    options = apply_options(BASE, {
        "voice": "leo", "temperature": 0.6, "top_p": 0.8, "repetition_penalty": 1.3,
        "max_tokens": 1024, "format": {"encoding": "pcm_f32le", "sample_rate": 16000},
        "buffering": "none", "buffer_delay_ms": 50, "client_buffer_ms": 200,
        "timestamps": True,
    }, VOICES)
    assert options == Options("leo", SamplingParams(0.6, 0.8, 1.3, 1024),
                              AudioFormat("pcm_f32le", 16000), "none", 50.0, 200.0, True)
    assert isinstance(options.buffer_delay_ms, float)


def test_no_overrides_keep_the_base() -> None:
    base = Options("leo", SamplingParams(0.5, 0.7, 1.2, 256), AudioFormat("mulaw", 8000),
                   "none", 10.0, 100.0)
    assert apply_options(base, {}, VOICES) == base


@pytest.mark.parametrize("overrides", [
    {"temperature": 0.0}, {"temperature": 2.0}, {"top_p": 1.0}, {"max_tokens": 64},
    {"max_tokens": 2048}, {"max_tokens": 512.0}, {"buffer_delay_ms": 0},
    {"buffer_delay_ms": 10000}, {"client_buffer_ms": 0}, {"client_buffer_ms": 5000},
    {"format": {"encoding": "alaw", "sample_rate": 8000}},
])
def test_the_ends_of_each_range_are_accepted(overrides: dict[str, Any]) -> None:
    apply_options(BASE, overrides, VOICES)


@pytest.mark.parametrize("overrides,field", [
    ({"temperature": 2.5}, "temperature"),
    ({"temperature": -0.1}, "temperature"),
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"repetition_penalty": 0.4}, "repetition_penalty"),
    ({"max_tokens": 63}, "max_tokens"),
    ({"max_tokens": 2049}, "max_tokens"),
    ({"max_tokens": 100.5}, "max_tokens"),
    ({"max_tokens": "512"}, "max_tokens"),
    ({"format": "pcm_s16le"}, "format"),
    ({"format": {"encoding": "ogg"}}, "format"),
    ({"format": {"encoding": "opus", "sample_rate": 44100}}, "format"),
    ({"format": {"sample_rate": 12345}}, "format"),
    ({"format": {"sample_rate": "16000"}}, "format"),
    ({"format": {"sample_rate": 16000.0}}, "format"),
    ({"format": {"sample_rate": True}}, "format"),
    ({"format": {"encoding": "mulaw", "sample_rate": 16000}}, "format"),
    ({"buffering": "sometimes"}, "buffering"),
    ({"buffering": None}, "buffering"),
    ({"buffer_delay_ms": -1}, "buffer_delay_ms"),
    ({"buffer_delay_ms": 10001}, "buffer_delay_ms"),
    ({"buffer_delay_ms": "300"}, "buffer_delay_ms"),
    ({"buffer_delay_ms": True}, "buffer_delay_ms"),
    ({"client_buffer_ms": 5001}, "client_buffer_ms"),
    ({"client_buffer_ms": -1}, "client_buffer_ms"),
    ({"voice": 5}, "voice"),
    ({"timestamps": 1}, "timestamps"),
    ({"timestamps": "yes"}, "timestamps"),
])
@pytest.mark.parametrize("context_id", ["r1", None])
def test_invalid_options(overrides: dict[str, Any], field: str, context_id: str | None) -> None:
    with pytest.raises(ValidationError) as info:
        apply_options(BASE, overrides, VOICES, context_id=context_id)
    exc = info.value
    assert (exc.code, exc.field, exc.context_id) == ("invalid_parameter", field, context_id)


@pytest.mark.parametrize("context_id", ["r1", None])
def test_unknown_voice(context_id: str | None) -> None:
    with pytest.raises(UnknownVoice) as info:
        apply_options(BASE, {"voice": "bob"}, VOICES, context_id=context_id)
    exc = info.value
    assert isinstance(exc, RequestError)
    assert (exc.code, exc.field, exc.context_id) == ("unknown_voice", "voice", context_id)


# -- binary audio frames -----------------------------------------------------------------


@pytest.mark.parametrize("context_id", ["r", "r1", "abc", "abcd", "abcde", "x" * 64])
@pytest.mark.parametrize("encoding,rate", [("pcm_s16le", 24000), ("pcm_f32le", 48000),
                                           ("mulaw", 8000), ("alaw", 8000)])
def test_frame_round_trip(context_id: str, encoding: str, rate: int) -> None:
    payload = bytes(range(256)) * 3
    flags = FLAG_SEGMENT_START | FLAG_SEGMENT_END
    frame = encode_audio_frame(context_id, payload, encoding=encoding, sample_rate=rate,
                               sample_offset=2**40 + 7, sequence=70000, segment=513,
                               flags=flags)
    header, pcm = decode_audio_frame(frame)
    assert pcm == payload
    assert header.header_length % 4 == 0
    assert 24 + len(context_id) <= header.header_length < 24 + len(context_id) + 4
    assert len(frame) == header.header_length + len(payload)
    assert (header.encoding, header.sample_rate, header.sample_offset, header.sequence,
            header.flags, header.segment, header.context_id) == \
        (encoding, rate, 2**40 + 7, 70000, flags, 513, context_id)
    # the layout of protocol.md, read as its Python recipe does
    fields = struct.unpack_from("<BBHIQIBBH", frame)
    assert fields == (1, ["pcm_s16le", "pcm_f32le", "mulaw", "alaw"].index(encoding),
                      header.header_length, rate, 2**40 + 7, 70000, 3, len(context_id), 513)
    assert frame[24:24 + len(context_id)].decode() == context_id
    assert frame[24 + len(context_id):header.header_length] == \
        b"\0" * (header.header_length - 24 - len(context_id))


def test_an_empty_payload_round_trips() -> None:
    frame = encode_audio_frame("r1", b"", encoding="pcm_s16le", sample_rate=24000,
                               sample_offset=0, sequence=0, segment=0)
    header, pcm = decode_audio_frame(frame)
    assert (pcm, header.flags, header.header_length) == (b"", 0, 28)


def good_frame() -> bytes:
    return encode_audio_frame("r1", b"\1\2\3\4", encoding="pcm_s16le", sample_rate=24000,
                              sample_offset=0, sequence=0, segment=0)


@pytest.mark.parametrize("frame", [
    b"",
    b"\1" * 23,
    good_frame()[:23],
    bytes([2]) + good_frame()[1:],  # version 2
    good_frame()[:1] + bytes([8]) + good_frame()[2:],  # encoding 8
    good_frame()[:2] + struct.pack("<H", 400) + good_frame()[4:],  # header past the end
    good_frame()[:2] + struct.pack("<H", 0) + good_frame()[4:],  # header inside the fields
    good_frame()[:2] + struct.pack("<H", 26) + good_frame()[4:],  # not a multiple of 4
    good_frame()[:21] + bytes([0]) + good_frame()[22:],  # no context id
])
def test_a_bogus_frame_is_a_value_error(frame: bytes) -> None:
    with pytest.raises(ValueError):
        decode_audio_frame(frame)


# -- close codes -------------------------------------------------------------------------


@pytest.mark.parametrize("code,close", [
    ("going_away", 1001), ("binary_not_accepted", 1003), ("message_too_big", 1009),
    ("internal_error", 1011), ("idle_timeout", 4000), ("too_many_contexts", 4001),
    ("slow_consumer", 4002),
])
def test_close_codes(code: str, close: int) -> None:
    assert close_code(ConnectionFault(code, "bye")) == close


def test_too_many_contexts_closes_with_4001() -> None:
    fault = TooManyContexts(8)
    assert fault.code == "too_many_contexts"
    assert "8" in str(fault)
    assert close_code(fault) == 4001


def test_an_unknown_fault_is_an_internal_error() -> None:
    assert close_code(ConnectionFault("something_else", "?")) == 1011
