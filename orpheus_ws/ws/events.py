"""The server's events (protocol.md, "Server events"): one ``TypedDict`` per event, keyed by
its ``Literal`` type, and one builder each. No I/O; ``dumps`` makes the JSON text sent.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

import orjson

from ..exceptions import RequestError
from ..vocabulary import CUT_MESSAGES


class FormatDict(TypedDict):
    encoding: str
    sample_rate: int


class OptionsDict(TypedDict):
    """A context's options, or the session's defaults (protocol.md, ``config``)."""

    voice: str
    temperature: float
    top_p: float
    repetition_penalty: float
    max_tokens: int
    format: FormatDict
    buffering: str
    buffer_delay_ms: float
    client_buffer_ms: float
    timestamps: bool
    trim_quiet: bool
    normalize: bool
    text_format: str


class LimitsDict(TypedDict):
    max_contexts: int
    max_message_bytes: int
    max_text_chars: int
    idle_timeout_s: float
    max_buffered_bytes: int
    send_timeout_s: float


class Ready(TypedDict):
    type: Literal["ready"]
    protocol: int
    session_id: str
    sample_rate: int
    encodings: list[str]
    sample_rates: list[int]
    voices: list[str]
    emotion_tags: list[str]
    defaults: OptionsDict
    limits: LimitsDict


class Configured(TypedDict):
    type: Literal["configured"]
    defaults: OptionsDict


class ContextStarted(TypedDict):
    type: Literal["context_started"]
    context_id: str
    options: OptionsDict


class SegmentStarted(TypedDict):
    type: Literal["segment_started"]
    context_id: str
    segment: int
    text: str


class SegmentFinished(TypedDict):
    type: Literal["segment_finished"]
    context_id: str
    segment: int
    text: str
    samples: int
    source_samples: int
    frames: int
    duration_ms: float
    trimmed_samples: int
    ttfa_ms: float
    ttfs_ms: float | None
    generation_ms: float


class WordTiming(TypedDict):
    text: str
    start_ms: float
    end_ms: float


class Timestamps(TypedDict):
    type: Literal["timestamps"]
    context_id: str
    segment: int
    words: list[WordTiming]


class Flushed(TypedDict):
    type: Literal["flushed"]
    context_id: str
    flush_id: str | None
    samples: int


class Done(TypedDict):
    type: Literal["done"]
    context_id: str
    samples: int
    duration_ms: float
    frames: int
    source_samples: int
    trimmed_samples: int
    segments: int
    ttfa_ms: float | None
    ttfs_ms: float | None


class Cancelled(TypedDict):
    type: Literal["cancelled"]
    context_id: str
    samples_sent: int
    duration_ms: float


class Error(TypedDict):
    type: Literal["error"]
    code: str
    message: str
    context_id: NotRequired[str]
    field: NotRequired[str]


class Pong(TypedDict):
    type: Literal["pong"]
    id: Any
    server_time: float


class SegmentWarning(TypedDict):
    type: Literal["warning"]
    code: str
    message: str
    context_id: str
    segment: int


ServerEvent = (Ready | Configured | ContextStarted | SegmentStarted | SegmentFinished
               | Timestamps | Flushed | Done | Cancelled | Error | Pong | SegmentWarning)



def dumps(event: ServerEvent) -> str:
    """The JSON text of an event, as sent."""
    return orjson.dumps(event).decode()


def ms(samples: int, sample_rate: int) -> float:
    """Samples as milliseconds, to 0.1 ms (every ``duration_ms`` of protocol.md)."""
    return round(samples * 1000 / sample_rate, 1)


def ready(*, protocol: int, session_id: str, sample_rate: int, encodings: list[str],
          sample_rates: list[int], voices: list[str], emotion_tags: list[str],
          defaults: OptionsDict, limits: LimitsDict) -> Ready:
    return {"type": "ready", "protocol": protocol, "session_id": session_id,
            "sample_rate": sample_rate, "encodings": encodings, "sample_rates": sample_rates,
            "voices": voices, "emotion_tags": emotion_tags, "defaults": defaults,
            "limits": limits}


def configured(defaults: OptionsDict) -> Configured:
    return {"type": "configured", "defaults": defaults}


def context_started(context_id: str, options: OptionsDict) -> ContextStarted:
    return {"type": "context_started", "context_id": context_id, "options": options}


def segment_started(context_id: str, segment: int, text: str) -> SegmentStarted:
    return {"type": "segment_started", "context_id": context_id, "segment": segment,
            "text": text}


def segment_finished(context_id: str, segment: int, text: str, *, samples: int,
                     source_samples: int, frames: int, sample_rate: int, ttfa_ms: float,
                     ttfs_ms: float | None, generation_ms: float,
                     trimmed_samples: int = 0) -> SegmentFinished:
    return {"type": "segment_finished", "context_id": context_id, "segment": segment,
            "text": text, "samples": samples, "source_samples": source_samples,
            "frames": frames, "duration_ms": ms(samples, sample_rate),
            "trimmed_samples": trimmed_samples, "ttfa_ms": ttfa_ms, "ttfs_ms": ttfs_ms,
            "generation_ms": generation_ms}


def timestamps(context_id: str, segment: int, words: list[str], starts_s: list[float],
               ends_s: list[float]) -> Timestamps:
    """A segment's estimated word timings, from the context's first sample."""
    return {"type": "timestamps", "context_id": context_id, "segment": segment,
            "words": [{"text": word, "start_ms": round(start * 1000, 1),
                       "end_ms": round(end * 1000, 1)}
                      for word, start, end in zip(words, starts_s, ends_s, strict=True)]}


def flushed(context_id: str, flush_id: str | None, samples: int) -> Flushed:
    return {"type": "flushed", "context_id": context_id, "flush_id": flush_id,
            "samples": samples}


def done(context_id: str, *, samples: int, sample_rate: int, frames: int, source_samples: int,
         segments: int, ttfa_ms: float | None, ttfs_ms: float | None,
         trimmed_samples: int = 0) -> Done:
    return {"type": "done", "context_id": context_id, "samples": samples,
            "duration_ms": ms(samples, sample_rate), "frames": frames,
            "source_samples": source_samples, "trimmed_samples": trimmed_samples,
            "segments": segments, "ttfa_ms": ttfa_ms, "ttfs_ms": ttfs_ms}


def cancelled(context_id: str, samples_sent: int, sample_rate: int) -> Cancelled:
    return {"type": "cancelled", "context_id": context_id, "samples_sent": samples_sent,
            "duration_ms": ms(samples_sent, sample_rate)}


def error(code: str, message: str, *, context_id: str | None = None,
          field: str | None = None) -> Error:
    event: Error = {"type": "error", "code": code, "message": message}
    if context_id is not None:
        event["context_id"] = context_id
    if field is not None:
        event["field"] = field
    return event


def request_error(exc: RequestError) -> Error:
    """The error event of a message the server can't act on (the socket stays usable)."""
    return error(exc.code, str(exc), context_id=exc.context_id, field=exc.field)


def warning(context_id: str, segment: int, code: str) -> SegmentWarning:
    """A fault the context survives (the runaway guard cut a segment's generation)."""
    return {"type": "warning", "code": code, "message": CUT_MESSAGES.get(code, code),
            "context_id": context_id, "segment": segment}


def pong(ping_id: Any, server_time: float) -> Pong:
    return {"type": "pong", "id": ping_id, "server_time": server_time}
