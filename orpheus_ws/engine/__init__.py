"""The speech engine's public face: the only names code outside ``engine/`` may import.

Transports (the HTTP API, the WebSocket endpoint, the protocol adapters) code against
``SpeechEngine`` (``interface.py``) and need no more than:

- ``synthesize(segments | TextFeed, voice=, params=, caller=, clock=)`` and ``speak(text,
  ...)``: an async iterator of typed events (``SegmentStarted``, ``AudioChunk``,
  ``SegmentFinished``, ``Flushed``); ``aclose()`` (or cancelling its task) aborts it;
  ``Caller``: who asks (the API key's name, the route);
- ``TextFeed``: text pushed piece by piece as an LLM writes it, flushed and ended;
- ``PlayoutClock``: the listener's jitter buffer, for realtime pacing;
- ``health()`` (``EngineHealth``), ``stats()``, ``voices``, ``ready``, ``drain()``,
  ``idle()``, ``record_first_audio``.

Putting an engine together: ``build_engine(settings)``, or ``Engine(LLMClient(url),
DecoderService(codec))`` with a codec from ``load_codec`` (``SnacCodec``, ``PassThroughCodec``
or any object that meets ``Codec``). ``FrameParser`` and ``SnacCodes`` turn a generation's
tokens into SNAC codes, for the benchmarks that decode outside the engine.
"""

from __future__ import annotations

from .admission import Admission
from .build import build_engine, stream_tuning
from .clock import PlayoutClock
from .codec import SNAC_24KHZ_CONFIG, Codec, PassThroughCodec, SnacCodec, load_codec
from .codes import SnacCodes
from .decoder import DecoderService
from .engine import Engine
from .events import AudioChunk, Flushed, SegmentFinished, SegmentStarted, SynthesisEvent
from .feed import Pause, TextFeed
from .guard import CUT_MESSAGES, RepeatWatch, frame_budget
from .interface import Caller, DecoderHealth, EngineHealth, Segments, SpeechEngine
from .level import first_speech_sample
from .llm import LLMClient, served_models
from .llm_http import Collect
from .markup import SsmlFeed
from .pipeline import StreamTuning
from .tokens import MAX_LOST_IN_A_ROW, Frame, FrameParser

__all__ = [
    "CUT_MESSAGES",
    "MAX_LOST_IN_A_ROW",
    "SNAC_24KHZ_CONFIG",
    "Admission",
    "AudioChunk",
    "Caller",
    "Codec",
    "Collect",
    "DecoderHealth",
    "DecoderService",
    "Engine",
    "EngineHealth",
    "Flushed",
    "Frame",
    "FrameParser",
    "LLMClient",
    "PassThroughCodec",
    "Pause",
    "PlayoutClock",
    "RepeatWatch",
    "SegmentFinished",
    "SegmentStarted",
    "Segments",
    "SnacCodec",
    "SnacCodes",
    "SpeechEngine",
    "SsmlFeed",
    "StreamTuning",
    "SynthesisEvent",
    "TextFeed",
    "build_engine",
    "first_speech_sample",
    "frame_budget",
    "load_codec",
    "served_models",
    "stream_tuning",
]
