"""The contexts of a session and their state machine (protocol.md, "Contexts"), with plain
calls: no socket, no engine."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from orpheus_ws.exceptions import ProtocolError, RequestError, TooManyContexts, ValidationError
from orpheus_ws.formats import AudioFormat
from orpheus_ws.params import DEFAULTS, SamplingParams
from orpheus_ws.policy import close_code
from orpheus_ws.ws.protocol import Options
from orpheus_ws.ws.session import Context, ContextState, Session

VOICES = ["tara", "leo", "mia"]
DEFAULT_OPTIONS = Options("tara", DEFAULTS, AudioFormat())
S = ContextState
# protocol.md's diagram, written out: every legal move.
LEGAL = {(S.OPEN, S.ENDING), (S.OPEN, S.CANCELLED), (S.OPEN, S.FAILED),
         (S.ENDING, S.DONE), (S.ENDING, S.CANCELLED), (S.ENDING, S.FAILED)}
FINAL = [S.DONE, S.CANCELLED, S.FAILED]


def new_session(max_contexts: int = 8) -> Session[str]:
    return Session(DEFAULT_OPTIONS, VOICES, max_contexts=max_contexts)


def open_context(session: Session[str], context_id: str) -> Context[str]:
    context, opened = session.text(context_id, {})
    assert opened
    return context


def finish(context: Context[str], state: ContextState) -> None:
    """Takes a live context to a final state along legal moves."""
    if state is S.DONE:
        context.move(S.ENDING)
    context.move(state)


def refusal(call: Callable[[], object], code: str, context_id: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        call()
    assert (info.value.code, info.value.context_id) == (code, context_id)
    return info.value


# -- opening and text --------------------------------------------------------------------


def test_the_first_text_opens_a_context_with_the_defaults() -> None:
    session = new_session()
    context, opened = session.text("r1", {})
    assert opened is True
    assert (context.id, context.state, context.options, context.handle) == \
        ("r1", S.OPEN, DEFAULT_OPTIONS, None)
    assert context.live
    assert session.contexts == [context]
    assert session.live == [context]
    assert session.get("r1") is context


def test_the_first_text_may_carry_options() -> None:
    session = new_session()
    context, _ = session.text("r1", {"voice": "leo", "temperature": 0.7,
                                     "format": {"encoding": "mulaw", "sample_rate": 8000}})
    assert context.options.voice == "leo"
    assert context.options.params.temperature == 0.7
    assert context.options.format == AudioFormat("mulaw", 8000)
    assert session.defaults == DEFAULT_OPTIONS  # for this context only


def test_later_text_goes_to_the_same_context() -> None:
    session = new_session()
    first = open_context(session, "r1")
    context, opened = session.text("r1", {})
    assert opened is False
    assert context is first
    assert len(session.contexts) == 1


def test_options_on_a_later_message_are_invalid_state() -> None:
    session = new_session()
    context = open_context(session, "r1")
    refusal(lambda: session.text("r1", {"voice": "leo"}), "invalid_state", "r1")
    assert context.options.voice == "tara"
    assert context.state is S.OPEN


def test_text_after_end_is_context_ended() -> None:
    session = new_session()
    context = open_context(session, "r1")
    assert session.end("r1") is context
    assert context.state is S.ENDING
    assert context.live
    refusal(lambda: session.text("r1", {}), "context_ended", "r1")
    refusal(lambda: session.text("r1", {"voice": "leo"}), "context_ended", "r1")


@pytest.mark.parametrize("overrides,code", [({"temperature": 9}, "invalid_parameter"),
                                            ({"voice": "bob"}, "unknown_voice")])
def test_a_refused_first_message_opens_nothing(overrides: dict[str, object], code: str) -> None:
    session = new_session()
    with pytest.raises(ValidationError) as info:
        session.text("r1", dict(overrides))
    assert (info.value.code, info.value.context_id) == (code, "r1")
    assert session.contexts == []
    _, opened = session.text("r1", {})  # the id is free
    assert opened


# -- unknown contexts --------------------------------------------------------------------


def test_flush_end_and_cancel_of_an_unknown_id() -> None:
    session = new_session()
    open_context(session, "r1")
    refusal(lambda: session.get("nope"), "unknown_context", "nope")  # flush looks it up
    refusal(lambda: session.end("nope"), "unknown_context", "nope")
    refusal(lambda: session.cancel("nope"), "unknown_context", "nope")
    assert [c.state for c in session.contexts] == [S.OPEN]


@pytest.mark.parametrize("state", FINAL)
def test_a_finished_context_is_unknown(state: ContextState) -> None:
    session = new_session()
    context = open_context(session, "r1")
    finish(context, state)
    refusal(lambda: session.get("r1"), "unknown_context", "r1")
    refusal(lambda: session.end("r1"), "unknown_context", "r1")
    refusal(lambda: session.cancel("r1"), "unknown_context", "r1")
    assert context.state is state


def test_a_second_end_is_refused() -> None:
    session = new_session()
    context = open_context(session, "r1")
    session.end("r1")
    with pytest.raises(RequestError) as info:
        session.end("r1")
    assert info.value.context_id == "r1"
    assert context.state is S.ENDING


# -- the state machine -------------------------------------------------------------------


@pytest.mark.parametrize("source,target", sorted(LEGAL, key=str))
def test_legal_moves(source: ContextState, target: ContextState) -> None:
    context: Context[str] = Context("r1", DEFAULT_OPTIONS, state=source)
    context.move(target)
    assert context.state is target
    assert context.live == (target in (S.OPEN, S.ENDING))


@pytest.mark.parametrize("source,target", [
    pair for pair in itertools.product(ContextState, repeat=2) if pair not in LEGAL])
def test_illegal_moves(source: ContextState, target: ContextState) -> None:
    context: Context[str] = Context("r1", DEFAULT_OPTIONS, state=source)
    refusal(lambda: context.move(target), "invalid_state", "r1")
    assert context.state is source


def test_only_open_and_ending_are_live() -> None:
    live = {state for state in ContextState if Context("r", DEFAULT_OPTIONS, state=state).live}
    assert live == {S.OPEN, S.ENDING}


# -- reuse of ids and the cap ------------------------------------------------------------


@pytest.mark.parametrize("state", FINAL)
def test_an_id_is_free_again_after_a_final_state(state: ContextState) -> None:
    session = new_session()
    old = open_context(session, "r1")
    old.handle = "old delivery"
    finish(old, state)
    new, opened = session.text("r1", {"voice": "mia"})
    assert opened is True
    assert new is not old
    assert (new.state, new.handle, new.options.voice) == (S.OPEN, None, "mia")
    assert old.state is state
    assert session.get("r1") is new
    assert session.contexts == [new]


@pytest.mark.parametrize("ending", [False, True])
def test_a_live_id_is_not_reopened(ending: bool) -> None:
    session = new_session()
    context = open_context(session, "r1")
    if ending:
        session.end("r1")
    with pytest.raises(ProtocolError):
        session.text("r1", {"voice": "leo"})
    assert session.contexts == [context]


def test_max_contexts_counts_only_live_ones() -> None:
    session = new_session(max_contexts=2)
    a = open_context(session, "a")
    b = open_context(session, "b")
    session.end("b")  # ENDING is still live
    with pytest.raises(TooManyContexts) as info:
        session.text("c", {})
    assert info.value.code == "too_many_contexts"
    assert close_code(info.value) == 4001
    assert session.contexts == [a, b]
    session.cancel("a")  # finished, not yet forgotten: no longer counted
    c = open_context(session, "c")
    assert session.live == [b, c]
    assert len(session.contexts) == 3
    with pytest.raises(TooManyContexts):
        session.text("d", {})
    # later text for a live context is never refused by the cap
    assert session.text("c", {}) == (c, False)


def test_cancel_all_cancels_every_live_context() -> None:
    session = new_session()
    a = open_context(session, "a")
    b = open_context(session, "b")
    session.end("b")
    done = open_context(session, "done")
    finish(done, S.DONE)
    failed = open_context(session, "failed")
    finish(failed, S.FAILED)
    cancelled = session.cancel(None)
    assert cancelled == [a, b]
    assert (a.state, b.state, done.state, failed.state) == \
        (S.CANCELLED, S.CANCELLED, S.DONE, S.FAILED)
    assert session.live == []
    assert session.cancel(None) == []


def test_cancel_one_leaves_the_others() -> None:
    session = new_session()
    a = open_context(session, "a")
    b = open_context(session, "b")
    assert session.cancel("a") == [a]
    assert (a.state, b.state) == (S.CANCELLED, S.OPEN)


# -- forgetting --------------------------------------------------------------------------


def test_forget_drops_a_finished_context() -> None:
    session = new_session()
    context = open_context(session, "r1")
    other = open_context(session, "r2")
    finish(context, S.DONE)
    session.forget(context)
    assert session.contexts == [other]


def test_forget_keeps_a_live_context() -> None:
    session = new_session()
    context = open_context(session, "r1")
    session.forget(context)
    assert session.contexts == [context]
    assert session.get("r1") is context


def test_forget_keeps_a_newer_context_of_the_same_id() -> None:
    session = new_session()
    old = open_context(session, "r1")
    finish(old, S.CANCELLED)
    new = open_context(session, "r1")
    session.forget(old)
    assert session.contexts == [new]
    assert session.get("r1") is new
    finish(new, S.FAILED)
    session.forget(new)
    assert session.contexts == []


# -- configure ---------------------------------------------------------------------------


def test_configure_changes_the_defaults_of_later_contexts() -> None:
    session = new_session()
    before = open_context(session, "before")
    result = session.configure({"voice": "leo", "max_tokens": 256,
                                "format": {"encoding": "pcm_f32le", "sample_rate": 16000}})
    assert result == session.defaults
    assert session.defaults == Options("leo", SamplingParams(0.3, 0.9, 1.1, 256),
                                       AudioFormat("pcm_f32le", 16000))
    after = open_context(session, "after")
    assert after.options == session.defaults
    assert before.options == DEFAULT_OPTIONS
    # a later config builds on the current defaults
    session.configure({"temperature": 0.5})
    assert session.defaults.voice == "leo"
    assert session.defaults.params.temperature == 0.5
    overridden, _ = session.text("third", {"voice": "mia"})
    assert (overridden.options.voice, overridden.options.params.max_tokens) == ("mia", 256)


def test_an_invalid_config_changes_nothing() -> None:
    session = new_session()
    with pytest.raises(ValidationError) as info:
        session.configure({"voice": "leo", "top_p": 0})
    assert (info.value.field, info.value.context_id) == ("top_p", None)
    assert session.defaults == DEFAULT_OPTIONS
