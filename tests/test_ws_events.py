"""The server's events (protocol.md, "Server events"): each builder makes exactly the fields of
protocol.md's example, and ``dumps`` makes the JSON text sent."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from orpheus_ws.exceptions import ProtocolError, UnknownVoice, ValidationError
from orpheus_ws.formats import AudioFormat
from orpheus_ws.params import DEFAULTS
from orpheus_ws.ws import events
from orpheus_ws.ws.protocol import Options, options_dict

PROTOCOL_MD = Path(__file__).resolve().parent.parent / "protocol.md"
OPTIONS = options_dict(Options("tara", DEFAULTS, AudioFormat()))
LIMITS: events.LimitsDict = {"max_contexts": 8, "max_message_bytes": 65536,
                             "max_text_chars": 5000, "idle_timeout_s": 180.0,
                             "max_buffered_bytes": 4194304, "send_timeout_s": 10.0}


def server_examples() -> dict[str, dict[str, Any]]:
    """protocol.md's JSON example of each server event, by type."""
    text = PROTOCOL_MD.read_text()
    section = text.split("## Server events", 1)[1].split("## Error codes", 1)[0]
    found: dict[str, dict[str, Any]] = {}
    for block in re.findall(r"```json\n(.*?)```", section, re.S):
        example = json.loads(block)
        found[example["type"]] = example
    return found


EXAMPLES = server_examples()


def every_event() -> list[events.ServerEvent]:
    return [
        events.ready(protocol=1, session_id="3f9c0a1b2c4d", sample_rate=24000,
                     encodings=["pcm_s16le"], sample_rates=[24000], voices=["tara"],
                     emotion_tags=["<laugh>"], defaults=OPTIONS, limits=LIMITS),
        events.configured(OPTIONS),
        events.context_started("r1", OPTIONS),
        events.segment_started("r1", 0, "Hello there, how are you?"),
        events.segment_finished("r1", 0, "Hello there, how are you?", samples=43008,
                                source_samples=43008, frames=21, sample_rate=24000,
                                ttfa_ms=61.3, ttfs_ms=492.7, generation_ms=640.2),
        events.timestamps("r1", 0, ["Hello", "there,"], [0.08, 0.4413], [0.4413, 0.8756]),
        events.flushed("r1", "f-7", 75776),
        events.done("r1", samples=75776, sample_rate=24000, frames=37, source_samples=75776,
                    segments=2, ttfa_ms=212.4, ttfs_ms=643.8),
        events.cancelled("r2", 12288, 24000),
        events.error("invalid_parameter", "temperature: must be between 0.0 and 2.0",
                     context_id="r1", field="temperature"),
        events.pong(42, 1764033600.123),
        events.warning("r1", 0, "runaway_length"),
    ]


def test_protocol_md_has_an_example_of_every_event() -> None:
    assert set(EXAMPLES) == {"ready", "configured", "context_started", "segment_started",
                             "segment_finished", "timestamps", "flushed", "done", "cancelled",
                             "error", "pong", "warning"}


@pytest.mark.parametrize("event", every_event(), ids=lambda e: str(e["type"]))
def test_each_event_has_the_fields_of_protocol_md(event: events.ServerEvent) -> None:
    assert set(event) == set(EXAMPLES[event["type"]])


def test_the_examples_values_come_out_as_documented() -> None:
    """The builders fed protocol.md's numbers give its examples (apart from nested dicts)."""
    for event in every_event():
        example = EXAMPLES[event["type"]]
        for key, value in event.items():
            if not isinstance(value, dict | list):
                assert value == example[key], (event["type"], key)


def test_options_and_limits_have_the_fields_of_ready() -> None:
    ready = EXAMPLES["ready"]
    assert set(OPTIONS) == set(ready["defaults"])
    assert set(OPTIONS["format"]) == set(ready["defaults"]["format"])
    assert set(LIMITS) == set(ready["limits"])
    assert ready["defaults"] == OPTIONS  # the server's defaults are the documented ones


@pytest.mark.parametrize("event", every_event(), ids=lambda e: str(e["type"]))
def test_dumps_round_trips(event: events.ServerEvent) -> None:
    text = events.dumps(event)
    assert isinstance(text, str)
    assert json.loads(text) == event


def test_dumps_keeps_unicode_and_null() -> None:
    event = events.flushed("r1", None, 0)
    assert json.loads(events.dumps(event))["flush_id"] is None
    started = events.segment_started("r1", 3, "Grüße, 世界 <laugh>")
    assert json.loads(events.dumps(started))["text"] == "Grüße, 世界 <laugh>"


def test_error_omits_what_is_none() -> None:
    assert events.error("invalid_json", "bad") == \
        {"type": "error", "code": "invalid_json", "message": "bad"}
    assert events.error("unknown_context", "no", context_id="r1") == \
        {"type": "error", "code": "unknown_context", "message": "no", "context_id": "r1"}
    assert events.error("unknown_type", "no", field="type") == \
        {"type": "error", "code": "unknown_type", "message": "no", "field": "type"}


def test_request_error_of_a_validation_error() -> None:
    exc = ValidationError("temperature", "must be between 0.0 and 2.0", context_id="r1")
    assert events.request_error(exc) == {
        "type": "error", "code": "invalid_parameter",
        "message": "temperature: must be between 0.0 and 2.0", "context_id": "r1",
        "field": "temperature"}


def test_request_error_of_an_unknown_voice() -> None:
    exc = UnknownVoice("bob", ["tara", "leo"])
    exc.context_id = "r9"
    event = events.request_error(exc)
    assert (event["code"], event.get("field"), event.get("context_id")) == \
        ("unknown_voice", "voice", "r9")
    assert "bob" in event["message"]


def test_request_error_of_a_protocol_error() -> None:
    event = events.request_error(ProtocolError("unknown_context", "no open context 'r3'",
                                               context_id="r3"))
    assert event == {"type": "error", "code": "unknown_context",
                     "message": "no open context 'r3'", "context_id": "r3"}
    bare = events.request_error(ProtocolError("invalid_json", "not JSON"))
    assert bare == {"type": "error", "code": "invalid_json", "message": "not JSON"}


@pytest.mark.parametrize("samples,rate,expected", [
    (12288, 24000, 512.0),
    (43008, 24000, 1792.0),
    (75776, 24000, 3157.3),
    (12288, 16000, 768.0),
    (1, 24000, 0.0),
    (3, 24000, 0.1),
    (0, 8000, 0.0),
    (44100, 44100, 1000.0),
])
def test_duration_ms(samples: int, rate: int, expected: float) -> None:
    assert events.ms(samples, rate) == expected
    assert events.cancelled("r", samples, rate)["duration_ms"] == expected
    done = events.done("r", samples=samples, sample_rate=rate, frames=0, source_samples=0,
                       segments=0, ttfa_ms=None, ttfs_ms=None)
    assert done["duration_ms"] == expected
    finished = events.segment_finished("r", 0, "", samples=samples, source_samples=0,
                                       frames=0, sample_rate=rate, ttfa_ms=0.0,
                                       ttfs_ms=None, generation_ms=0.0)
    assert finished["duration_ms"] == expected


def test_done_without_audio_has_a_null_ttfa() -> None:
    done = events.done("r1", samples=0, sample_rate=24000, frames=0, source_samples=0,
                       segments=0, ttfa_ms=None, ttfs_ms=None)
    assert json.loads(events.dumps(done))["ttfa_ms"] is None
    assert json.loads(events.dumps(done))["ttfs_ms"] is None


def test_pong_echoes_any_id() -> None:
    for ping_id in (42, "abc", None, {"n": 1}):
        pong = events.pong(ping_id, 5.5)
        assert json.loads(events.dumps(pong)) == {"type": "pong", "id": ping_id,
                                                  "server_time": 5.5}
