"""The WebSocket protocol's client messages, binary audio frames and close codes
(protocol.md), without I/O: nothing but the standard library, numpy and orjson is imported.

``parse_client_message`` turns a text message into a typed message or raises a
``RequestError`` with a stable code (protocol.md, "Error codes"); ``events`` builds the server's
events; ``encode_audio_frame`` / ``decode_audio_frame`` implement the binary layout (protocol.md,
"Binary audio frames"); ``close_code`` maps a connection fault to its close code.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any

import orjson

from .. import params as fields
from ..exceptions import ProtocolError, ValidationError
from ..formats import ENCODINGS, AudioFormat
from ..params import SamplingParams
from .events import OptionsDict

PROTOCOL_VERSION = 1
FRAME_VERSION = 1
ENCODING_IDS = {name: index for index, name in enumerate(ENCODINGS)}
CONTEXT_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
BUFFERING_MODES = ("auto", "none")
TEXT_FORMATS = ("text", "ssml")

# protocol.md, "Binary audio frames": <BBHIQIBBH then the context id, padded to 4 bytes.
_HEADER = struct.Struct("<BBHIQIBBH")
FLAG_SEGMENT_START = 1
FLAG_SEGMENT_END = 2

@dataclass(frozen=True, slots=True)
class Options:
    """Per-context settings: session defaults, overridden per context (protocol.md)."""

    voice: str
    params: SamplingParams
    format: AudioFormat
    buffering: str = "auto"
    buffer_delay_ms: float = 300.0
    client_buffer_ms: float = 0.0
    timestamps: bool = False
    trim_quiet: bool = True
    normalize: bool = True  # text/normalize.py: numbers, dates... read as words
    text_format: str = "text"  # or "ssml" (engine/markup.py)


@dataclass(frozen=True, slots=True)
class Configure:
    overrides: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Text:
    context_id: str
    text: str
    overrides: dict[str, Any] = field(default_factory=dict)
    flush: bool = False
    end: bool = False
    flush_id: str | None = None


@dataclass(frozen=True, slots=True)
class Flush:
    context_id: str
    flush_id: str | None = None


@dataclass(frozen=True, slots=True)
class End:
    context_id: str


@dataclass(frozen=True, slots=True)
class Cancel:
    context_id: str | None  # None: every context


@dataclass(frozen=True, slots=True)
class Ping:
    id: Any = None


ClientMessage = Configure | Text | Flush | End | Cancel | Ping
OPTION_FIELDS = ("voice", "temperature", "top_p", "repetition_penalty", "max_tokens", "format",
                 "buffering", "buffer_delay_ms", "client_buffer_ms", "timestamps", "trim_quiet",
                 "normalize", "text_format")


def _context_id(data: dict[str, Any], *, required: bool = True) -> str | None:
    value = data.get("context_id")
    if value is None and not required:
        return None
    if not isinstance(value, str) or not CONTEXT_ID.fullmatch(value):
        raise ValidationError("context_id", "must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    return value


def _flush_id(data: dict[str, Any], context_id: str | None) -> str | None:
    value = data.get("flush_id")
    if value is not None and not (isinstance(value, str) and len(value) <= 64):
        raise ValidationError("flush_id", "must be a string of at most 64 characters",
                              context_id=context_id)
    return value


def _bool(data: dict[str, Any], name: str, context_id: str | None) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise ValidationError(name, "must be a boolean", context_id=context_id)
    return value


def parse_client_message(raw: str, *, max_text_chars: int) -> ClientMessage:
    """One client text message -> a typed message (protocol.md, "Client messages")."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProtocolError("invalid_json", "the message is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("invalid_json", "the message must be a JSON object")
    kind = data.get("type")
    if kind == "ping":
        return Ping(data.get("id"))
    if kind == "config":
        return Configure({k: data[k] for k in OPTION_FIELDS if k in data})
    if kind == "cancel":
        if data.get("all") is True:
            return Cancel(None)
        return Cancel(_context_id(data))
    if kind == "text":
        context_id = _context_id(data)
        text = data.get("text")
        if not isinstance(text, str):
            raise ValidationError("text", "must be a string", context_id=context_id)
        if len(text) > max_text_chars:
            raise ProtocolError("text_too_long", f"text is over {max_text_chars} characters",
                                context_id=context_id, field="text")
        return Text(context_id or "", text, {k: data[k] for k in OPTION_FIELDS if k in data},
                    flush=_bool(data, "flush", context_id), end=_bool(data, "end", context_id),
                    flush_id=_flush_id(data, context_id))
    if kind == "flush":
        context_id = _context_id(data)
        return Flush(context_id or "", _flush_id(data, context_id))
    if kind == "end":
        return End(_context_id(data) or "")
    raise ProtocolError("unknown_type", f"unknown message type {kind!r}" if kind is not None
                        else "the message has no type", field="type")


def apply_options(base: Options, overrides: dict[str, Any], voices: list[str], *,
                  context_id: str | None = None) -> Options:
    """``base`` with the validated overrides of a config or a context's first message."""
    try:
        voice = fields.voice(overrides, voices, base.voice)
        params = fields.sampling(overrides, base.params)
    except ValidationError as exc:
        exc.context_id = context_id
        raise
    fmt = base.format
    if "format" in overrides:
        spec = overrides["format"]
        if not isinstance(spec, dict):
            raise ValidationError("format", "must be an object", context_id=context_id)
        try:
            fmt = AudioFormat(spec.get("encoding", "pcm_s16le"), spec.get("sample_rate", 24000))
        except (ValueError, TypeError) as exc:
            raise ValidationError("format", str(exc), context_id=context_id) from None
    buffering = overrides.get("buffering", base.buffering)
    if buffering not in BUFFERING_MODES:
        raise ValidationError("buffering", "must be 'auto' or 'none'", context_id=context_id)
    delay = _milliseconds(overrides, "buffer_delay_ms", base.buffer_delay_ms, context_id)
    client_buffer = _milliseconds(overrides, "client_buffer_ms", base.client_buffer_ms,
                                  context_id, high=5000)
    flags = {}
    text_format = overrides.get("text_format", base.text_format)
    if text_format not in TEXT_FORMATS:
        raise ValidationError("text_format", "must be 'text' or 'ssml'", context_id=context_id)
    for name in ("timestamps", "trim_quiet", "normalize"):
        flags[name] = overrides.get(name, getattr(base, name))
        if not isinstance(flags[name], bool):
            raise ValidationError(name, "must be true or false", context_id=context_id)
    return Options(voice, params, fmt, buffering, delay, client_buffer, flags["timestamps"],
                   flags["trim_quiet"], flags["normalize"], text_format)


def _milliseconds(overrides: dict[str, Any], name: str, default: float,
                  context_id: str | None, high: float = 10000) -> float:
    value = overrides.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        raise ValidationError(name, f"must be a number from 0 to {high:g}",
                              context_id=context_id)
    return float(value)


def options_dict(options: Options) -> OptionsDict:
    p = options.params
    return {
        "voice": options.voice, "temperature": p.temperature, "top_p": p.top_p,
        "repetition_penalty": p.repetition_penalty, "max_tokens": p.max_tokens,
        "format": {"encoding": options.format.encoding,
                   "sample_rate": options.format.sample_rate},
        "buffering": options.buffering, "buffer_delay_ms": options.buffer_delay_ms,
        "client_buffer_ms": options.client_buffer_ms, "timestamps": options.timestamps,
        "trim_quiet": options.trim_quiet, "normalize": options.normalize,
        "text_format": options.text_format,
    }


@dataclass(frozen=True, slots=True)
class FrameHeader:
    encoding: str
    sample_rate: int
    sample_offset: int
    sequence: int
    flags: int
    segment: int
    context_id: str
    header_length: int


def encode_audio_frame(context_id: str, payload: bytes, *, encoding: str, sample_rate: int,
                       sample_offset: int, sequence: int, segment: int, flags: int = 0) -> bytes:
    """Header + PCM; the header's length is a multiple of 4 so float32 payloads align."""
    cid = context_id.encode()
    length = (_HEADER.size + len(cid) + 3) & ~3
    header = _HEADER.pack(FRAME_VERSION, ENCODING_IDS[encoding], length, sample_rate,
                          sample_offset, sequence, flags, len(cid), segment)
    return header + cid + b"\0" * (length - _HEADER.size - len(cid)) + payload


def decode_audio_frame(frame: bytes) -> tuple[FrameHeader, bytes]:
    """The header and PCM payload of a binary frame; ValueError when it is not one."""
    if len(frame) < _HEADER.size:
        raise ValueError("frame shorter than its header")
    version, enc, length, rate, offset, seq, flags, cid_len, segment = _HEADER.unpack_from(frame)
    if (version != FRAME_VERSION or enc >= len(ENCODINGS) or length > len(frame)
            or length % 4 or length < _HEADER.size + cid_len or not 1 <= cid_len <= 64):
        raise ValueError("not an orpheus_ws audio frame")
    cid = bytes(frame[_HEADER.size : _HEADER.size + cid_len]).decode()
    header = FrameHeader(ENCODINGS[enc], rate, offset, seq, flags, segment, cid, length)
    return header, bytes(frame[length:])
