"""Request and sampling parameters, validated: shared by every transport, with no I/O and
nothing but the standard library imported (a client library can import it).

| field              | type   | default | range      |
| ------------------ | ------ | ------- | ---------- |
| text               | string | required| 1-5000     |
| voice              | string | "tara"  | configured |
| temperature        | number | 0.3     | 0.0-2.0    |
| max_tokens         | int    | 512     | 64-2048 (per segment) |
| stream             | bool   | true    |            |
| top_p              | number | 0.9     | 0.0-1.0 (> 0) |
| repetition_penalty | number | 1.1     | 0.5-2.0    |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .exceptions import UnknownVoice, ValidationError


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How the LLM samples one segment's generation (``max_tokens``: per segment)."""

    temperature: float = 0.3
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    max_tokens: int = 512


MAX_TEXT_CHARS = 5000
NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "repetition_penalty": (0.5, 2.0),
}
MAX_TOKENS_RANGE = (64, 2048)
DEFAULTS = SamplingParams(temperature=0.3, top_p=0.9, repetition_penalty=1.1, max_tokens=512)


@dataclass(frozen=True, slots=True)
class TTSRequest:
    text: str
    voice: str
    params: SamplingParams
    stream: bool = True
    trim_quiet: bool | None = None  # None: the server's setting (engine/trim.py)
    normalize: bool | None = None  # None: the server's setting (text/normalize.py)


def number(data: dict[str, Any], name: str, default: float) -> float:
    value = data.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(name, "must be a number")
    low, high = NUMBER_RANGES[name]
    if not low <= value <= high or (name == "top_p" and value <= 0):
        raise ValidationError(name, f"must be between {low} and {high}")
    return float(value)


def max_tokens(data: dict[str, Any], default: int) -> int:
    value = data.get("max_tokens", default)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("max_tokens", "must be an integer")
    low, high = MAX_TOKENS_RANGE
    if not low <= value <= high:
        raise ValidationError("max_tokens", f"must be between {low} and {high}")
    return value


def voice(data: dict[str, Any], voices: list[str], default: str) -> str:
    value = data.get("voice", default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValidationError("voice", "must be a string")
    if value not in voices:
        raise UnknownVoice(value, voices)
    return value


def sampling(data: dict[str, Any], base: SamplingParams = DEFAULTS) -> SamplingParams:
    return SamplingParams(
        temperature=number(data, "temperature", base.temperature),
        top_p=number(data, "top_p", base.top_p),
        repetition_penalty=number(data, "repetition_penalty", base.repetition_penalty),
        max_tokens=max_tokens(data, base.max_tokens),
    )


def text(data: dict[str, Any], *, max_chars: int = MAX_TEXT_CHARS, required: bool = True) -> str:
    value = data.get("text")
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ValidationError("text", "is required and must be a string")
    if required and not value.strip():
        raise ValidationError("text", "must not be empty")
    if len(value) > max_chars:
        raise ValidationError("text", f"must be at most {max_chars} characters")
    return value


def parse_tts_request(data: Any, voices: list[str], default_voice: str) -> TTSRequest:
    """The seed API's request body, or a ValidationError naming the first bad field."""
    if not isinstance(data, dict):
        raise ValidationError("body", "must be a JSON object")
    stream = data.get("stream", True)
    if not isinstance(stream, bool):
        raise ValidationError("stream", "must be a boolean")
    flags = {name: data.get(name) for name in ("trim_quiet", "normalize")}
    for name, value in flags.items():
        if value is not None and not isinstance(value, bool):
            raise ValidationError(name, "must be a boolean")
    return TTSRequest(
        text=text(data),
        voice=voice(data, voices, default_voice),
        params=sampling(data),
        stream=stream,
        trim_quiet=flags["trim_quiet"],
        normalize=flags["normalize"],
    )
