"""The state of one WebSocket session and its contexts (protocol.md, "Contexts"), no I/O.

A context goes ``OPEN`` (text accepted) -> ``ENDING`` (after ``end``) -> ``DONE``; from OPEN
or ENDING it may go to ``CANCELLED`` (``cancel``) or ``FAILED`` (its backend failed). Only OPEN
and ENDING contexts are live; an id may be used again once its context is no longer live.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass, field

from .segmenter import IncrementalSegmenter, SegmenterConfig, chars_for_tokens
from .ws_protocol import Options, ProtocolError, apply_options


class ContextState(enum.Enum):
    OPEN = "open"
    ENDING = "ending"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


LIVE = (ContextState.OPEN, ContextState.ENDING)
TRANSITIONS = {
    ContextState.OPEN: {ContextState.ENDING, ContextState.CANCELLED, ContextState.FAILED},
    ContextState.ENDING: {ContextState.DONE, ContextState.CANCELLED, ContextState.FAILED},
}


class TooManyContexts(Exception):
    """Opening one more context would pass the session's cap: a connection fault."""


@dataclass(eq=False)
class Context:
    id: str
    options: Options
    segmenter: IncrementalSegmenter
    state: ContextState = ContextState.OPEN
    created_at: float = field(default_factory=time.monotonic)
    first_audio_at: float | None = None
    released: int = 0
    finished: int = 0
    flushes: deque[tuple[int, str | None]] = field(default_factory=deque)
    samples_queued: int = 0
    samples_sent: int = 0
    source_samples: int = 0
    frames: int = 0
    sequence: int = 0

    @property
    def live(self) -> bool:
        return self.state in LIVE

    @property
    def idle(self) -> bool:
        """Every released segment has been delivered."""
        return self.finished == self.released

    def move(self, state: ContextState) -> None:
        if state not in TRANSITIONS.get(self.state, set()):
            raise ProtocolError("invalid_state", f"context {self.id!r} can't go from "
                                f"{self.state.value} to {state.value}", context_id=self.id)
        self.state = state

    def due_flushes(self) -> list[str | None]:
        """Flush ids whose text has been delivered in full."""
        due: list[str | None] = []
        while self.flushes and self.flushes[0][0] <= self.finished:
            due.append(self.flushes.popleft()[1])
        return due


class Session:
    """The contexts of one socket, with the session's default options."""

    def __init__(self, defaults: Options, voices: list[str], *, max_contexts: int,
                 first_segment_min_chars: int = 40) -> None:
        self.defaults = defaults
        self.voices = voices
        self.max_contexts = max_contexts
        self.first_segment_min_chars = first_segment_min_chars
        self.contexts: dict[str, Context] = {}

    @property
    def live(self) -> list[Context]:
        return [c for c in self.contexts.values() if c.live]

    def configure(self, overrides: dict[str, object]) -> Options:
        self.defaults = apply_options(self.defaults, overrides, self.voices)
        return self.defaults

    def get(self, context_id: str) -> Context:
        context = self.contexts.get(context_id)
        if context is None or not context.live:
            raise ProtocolError("unknown_context", f"no open context {context_id!r}",
                                context_id=context_id)
        return context

    def open(self, context_id: str, overrides: dict[str, object]) -> Context:
        if len(self.live) >= self.max_contexts:
            raise TooManyContexts(f"more than {self.max_contexts} open contexts")
        options = apply_options(self.defaults, overrides, self.voices, context_id=context_id)
        segmenter = IncrementalSegmenter(SegmenterConfig(
            mode=options.buffering,
            max_chars=chars_for_tokens(options.params.max_tokens),
            first_segment_min_chars=self.first_segment_min_chars,
        ))
        context = Context(context_id, options, segmenter)
        self.contexts[context_id] = context
        return context

    def text(self, context_id: str, text: str, overrides: dict[str, object]
             ) -> tuple[Context, bool, list[str]]:
        """(context, whether it was opened now, segments ready to speak)."""
        existing = self.contexts.get(context_id)
        if existing is not None and existing.live:
            if existing.state is ContextState.ENDING:
                raise ProtocolError("context_ended", f"context {context_id!r} has ended its "
                                    "input", context_id=context_id)
            if overrides:
                raise ProtocolError("invalid_state", "options can only be set by a context's "
                                    "first message", context_id=context_id)
            return existing, False, self.release(existing, existing.segmenter.push(text))
        context = self.open(context_id, overrides)
        return context, True, self.release(context, context.segmenter.push(text))

    def flush(self, context: Context, flush_id: str | None) -> list[str]:
        segments = self.release(context, context.segmenter.flush())
        context.flushes.append((context.released, flush_id))
        return segments

    def end(self, context: Context) -> list[str]:
        segments = self.release(context, context.segmenter.flush())
        context.move(ContextState.ENDING)
        return segments

    def cancel(self, context_id: str | None) -> list[Context]:
        targets = self.live if context_id is None else [self.get(context_id)]
        for context in targets:
            context.move(ContextState.CANCELLED)
        return targets

    def forget(self, context: Context) -> None:
        if self.contexts.get(context.id) is context and not context.live:
            del self.contexts[context.id]

    @staticmethod
    def release(context: Context, segments: list[str]) -> list[str]:
        context.released += len(segments)
        return segments
