"""The protocol state of one WebSocket session and its contexts (protocol.md, "Contexts"),
without I/O.

A context goes ``OPEN`` (text accepted) -> ``ENDING`` (after ``end``) -> ``DONE``; from OPEN
or ENDING it may go to ``CANCELLED`` (``cancel``) or ``FAILED`` (its backend failed). Only OPEN
and ENDING contexts are live; an id may be used again once its context is no longer live.

The session is the connection's one registry of contexts. Each context carries an opaque
``handle``: what the transport attached to deliver it (its delivery runner); the session
never looks inside it.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..exceptions import ProtocolError, TooManyContexts
from .protocol import Options, apply_options

H = TypeVar("H")


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


@dataclass(eq=False)
class Context(Generic[H]):
    """One utterance's protocol state: its id, options and place in the state machine."""

    id: str
    options: Options
    state: ContextState = ContextState.OPEN
    created_at: float = field(default_factory=time.monotonic)
    handle: H | None = None

    @property
    def live(self) -> bool:
        return self.state in LIVE

    def move(self, state: ContextState) -> None:
        """Moves along the state machine; an illegal transition is a ProtocolError."""
        if state not in TRANSITIONS.get(self.state, set()):
            raise ProtocolError("invalid_state", f"context {self.id!r} can't go from "
                                f"{self.state.value} to {state.value}", context_id=self.id)
        self.state = state


class Session(Generic[H]):
    """The contexts of one socket, with the session's default options."""

    def __init__(self, defaults: Options, voices: list[str], *, max_contexts: int) -> None:
        self.defaults = defaults
        self.voices = voices
        self.max_contexts = max_contexts
        self._contexts: dict[str, Context[H]] = {}

    @property
    def contexts(self) -> list[Context[H]]:
        """Every context still registered: live ones and finished ones not yet forgotten."""
        return list(self._contexts.values())

    @property
    def live(self) -> list[Context[H]]:
        return [c for c in self._contexts.values() if c.live]

    def configure(self, overrides: dict[str, Any]) -> Options:
        self.defaults = apply_options(self.defaults, overrides, self.voices)
        return self.defaults

    def get(self, context_id: str) -> Context[H]:
        """The live context of that id (``unknown_context`` otherwise)."""
        context = self._contexts.get(context_id)
        if context is None or not context.live:
            raise ProtocolError("unknown_context", f"no open context {context_id!r}",
                                context_id=context_id)
        return context

    def text(self, context_id: str, overrides: dict[str, Any]) -> tuple[Context[H], bool]:
        """The context a ``text`` message goes to, and whether it was opened by it."""
        existing = self._contexts.get(context_id)
        if existing is None or not existing.live:
            return self._open(context_id, overrides), True
        if existing.state is ContextState.ENDING:
            raise ProtocolError("context_ended", f"context {context_id!r} has ended its input",
                                context_id=context_id)
        if overrides:
            raise ProtocolError("invalid_state", "options can only be set by a context's "
                                "first message", context_id=context_id)
        return existing, False

    def _open(self, context_id: str, overrides: dict[str, Any]) -> Context[H]:
        if len(self.live) >= self.max_contexts:
            raise TooManyContexts(self.max_contexts)
        options = apply_options(self.defaults, overrides, self.voices, context_id=context_id)
        context: Context[H] = Context(context_id, options)
        self._contexts[context_id] = context
        return context

    def end(self, context_id: str) -> Context[H]:
        context = self.get(context_id)
        context.move(ContextState.ENDING)
        return context

    def cancel(self, context_id: str | None) -> list[Context[H]]:
        """Cancels one live context, or every one (``None``)."""
        targets = self.live if context_id is None else [self.get(context_id)]
        for context in targets:
            context.move(ContextState.CANCELLED)
        return targets

    def forget(self, context: Context[H]) -> None:
        """Drops a context that is over, unless its id already names a newer one."""
        if self._contexts.get(context.id) is context and not context.live:
            del self._contexts[context.id]
