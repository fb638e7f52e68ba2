"""The engine as the transports see it: what they call, and nothing of how it works.

vLLM's ``EngineClient`` is the model: every transport (the seed API, the native socket, each
vendor's adapter, ``say``) codes against :class:`SpeechEngine`, and the fakes in the tests
implement it. A request carries its caller explicitly (:class:`Caller`: the API key's name for
the per-key cap, the route for the metrics); nothing reaches admission by ambient state.

- ``synthesize(segments, voice=, params=, caller=)`` (segments a list, an async iterator or a
  ``TextFeed`` fed while text arrives) and ``speak(text, ...)``: ordered typed events;
  closing the iterator (``aclose()``, or cancelling the task that drives it) is the abort: it
  stops every generation the request started, at once;
- ``health()``: typed (:class:`EngineHealth`); ``ready``: the decoder runs;
- ``drain()``: nothing new is admitted (utterances admitted before may finish);
  ``await idle()``: until no utterance is generating.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict

from ..lineup import Lineup
from ..params import SamplingParams
from .clock import PlayoutClock
from .events import AudioChunk, SynthesisEvent
from .feed import Pause, TextFeed

Segments = AsyncIterable[str | Pause] | Iterable[str | Pause] | TextFeed


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: the name of the API key presented (None without keys), for the per-key cap,
    and the kind of route, for the metrics."""

    key: str | None = None
    route: str = "other"


class DecoderHealth(TypedDict):
    codec: str
    device: str
    weights: str | None
    batching: bool
    max_batch: int
    stats: dict[str, Any]


class EngineHealth(TypedDict):
    backend: dict[str, Any]  # the LLM backends: reachable, slots, each backend's rate
    decoder: DecoderHealth
    generations_in_flight: int  # segments generating now
    utterances: int  # utterances holding a generation slot now
    draining: bool


class SpeechEngine(Protocol):
    """What a transport may ask of the engine."""

    @property
    def voices(self) -> list[str]:
        """The voices the model speaks."""

    @property
    def lineup(self) -> Lineup:
        """Its voices with their languages, the default voice, the model's emotion tags."""

    @property
    def ready(self) -> bool:
        """The decoder runs: the engine can take work (an LLM backend permitting)."""

    @property
    def draining(self) -> bool:
        """``drain()`` was called."""

    @property
    def utterances(self) -> int:
        """Utterances holding a generation slot now (generating or delivering)."""

    def check_voice(self, voice: str) -> None:
        """Raises ``UnknownVoice`` for a voice the model lacks."""

    def synthesize(self, segments: Segments, *, voice: str, params: SamplingParams,
                   caller: Caller = ..., clock: PlayoutClock | None = None,
                   first_index: int = 0,
                   trim_quiet: bool | None = None, normalize: bool | None = None
                   ) -> AsyncGenerator[SynthesisEvent, None]:
        """The events of the segments' speech, strictly in order (``trim_quiet``: the leading
        quiet left out, engine/trim.py; None: the server's setting)."""

    def speak(self, text: str, *, voice: str, params: SamplingParams, caller: Caller = ...,
              clock: PlayoutClock | None = None,
              trim_quiet: bool | None = None, normalize: bool | None = None,
              ssml: bool = False) -> AsyncGenerator[SynthesisEvent, None]:
        """A whole text, cut at sentence ends into segments."""

    async def health(self) -> EngineHealth:
        """The backends' and the decoder's state."""

    def stats(self) -> dict[str, Any]:
        """Counters for benchmarks."""

    def record_first_audio(self, chunk: AudioChunk, sent_at: float) -> None:
        """A context's first audio left the server at ``sent_at`` (for the latency stats)."""

    def drain(self) -> None:
        """Admits nothing new from now on."""

    async def idle(self) -> None:
        """Returns once no utterance holds a generation slot."""
