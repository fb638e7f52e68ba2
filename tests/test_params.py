"""The seed API's request fields: defaults, types and ranges."""

from __future__ import annotations

from typing import Any

import pytest

from orpheus_ws.exceptions import UnknownVoice, ValidationError
from orpheus_ws.params import MAX_TEXT_CHARS, SamplingParams, parse_tts_request, sampling

VOICES = ["tara", "leo"]


def parse(**body: Any) -> Any:
    return parse_tts_request(body, VOICES, "tara")


def test_defaults() -> None:
    request = parse(text="Hello.")
    assert request.text == "Hello."
    assert request.voice == "tara"
    assert request.stream is True
    assert request.params == SamplingParams(temperature=0.3, top_p=0.9, repetition_penalty=1.1,
                                            max_tokens=512)


def test_every_field() -> None:
    request = parse(text="Hi", voice="leo", temperature=0.6, top_p=0.8, repetition_penalty=1.3,
                    max_tokens=1024.0, stream=False)
    assert (request.voice, request.stream) == ("leo", False)
    assert request.params == SamplingParams(0.6, 0.8, 1.3, 1024)
    assert isinstance(request.params.max_tokens, int)


def test_nulls_take_defaults() -> None:
    request = parse(text="Hi", voice=None, temperature=None, top_p=None, max_tokens=None)
    assert request.voice == "tara"
    assert request.params == SamplingParams()


@pytest.mark.parametrize("body,field", [
    ({}, "text"),
    ({"text": 5}, "text"),
    ({"text": "   "}, "text"),
    ({"text": "x" * (MAX_TEXT_CHARS + 1)}, "text"),
    ({"text": "Hi", "voice": 3}, "voice"),
    ({"text": "Hi", "temperature": "hot"}, "temperature"),
    ({"text": "Hi", "temperature": True}, "temperature"),
    ({"text": "Hi", "temperature": 2.5}, "temperature"),
    ({"text": "Hi", "temperature": -0.1}, "temperature"),
    ({"text": "Hi", "top_p": 0}, "top_p"),
    ({"text": "Hi", "top_p": 1.01}, "top_p"),
    ({"text": "Hi", "repetition_penalty": 0.4}, "repetition_penalty"),
    ({"text": "Hi", "max_tokens": 63}, "max_tokens"),
    ({"text": "Hi", "max_tokens": 2049}, "max_tokens"),
    ({"text": "Hi", "max_tokens": 100.5}, "max_tokens"),
    ({"text": "Hi", "max_tokens": True}, "max_tokens"),
    ({"text": "Hi", "stream": "yes"}, "stream"),
])
def test_invalid_fields(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse(**body)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_limits_are_inclusive() -> None:
    assert parse(text="x" * MAX_TEXT_CHARS).text == "x" * MAX_TEXT_CHARS
    low = parse(text="Hi", temperature=0, top_p=1, repetition_penalty=0.5, max_tokens=64)
    assert low.params == SamplingParams(0.0, 1.0, 0.5, 64)
    assert parse(text="Hi", temperature=2, max_tokens=2048).params.max_tokens == 2048


def test_unknown_voice() -> None:
    with pytest.raises(UnknownVoice) as info:
        parse(text="Hi", voice="nobody")
    assert info.value.code == "unknown_voice"
    assert info.value.voices == VOICES


def test_body_must_be_an_object() -> None:
    bodies: list[object] = [[], "text", None, 3]
    for body in bodies:
        with pytest.raises(ValidationError) as info:
            parse_tts_request(body, VOICES, "tara")
        assert info.value.field == "body"


def test_sampling_over_a_base() -> None:
    base = SamplingParams(temperature=0.6, top_p=0.8, repetition_penalty=1.2, max_tokens=1200)
    assert sampling({}, base) == base
    assert sampling({"temperature": 0.1}, base) == SamplingParams(0.1, 0.8, 1.2, 1200)
