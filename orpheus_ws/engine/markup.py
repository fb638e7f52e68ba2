"""SSML into what the engine speaks (no I/O): text, sentence ends and pauses.

Where a client says its text is SSML (native ``text_format: "ssml"``, ElevenLabs'
``enable_ssml_parsing``), ``text/ssml.py`` reads it into items: speech (``<say-as>`` through
the normalizer, ``<sub>``'s alias), sentence bounds (``<p>``, ``<s>``) and pauses
(``<break>``). A whole text becomes a list of segments and :class:`Pause`s; text that
arrives piece by piece goes through :class:`SsmlFeed`, which holds a piece back only until
the elements open in it are closed, then hands the rest to a :class:`TextFeed`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..text.normalize import say_as
from ..text.ssml import Pause as SsmlPause
from ..text.ssml import SentenceBound, Speech, SsmlError, SsmlItem, parse_ssml
from .feed import Pause, TextFeed
from .segmenter import split_text

# An element's start or end tag: its name, and whether it closes itself or another.
_TAG = re.compile(r"<(/?)([A-Za-z_][\w:.-]*)[^<>]*?(/?)>")


def spoken(item: Speech, language: str) -> str:
    """A speech item's words: a ``<say-as>`` read by the normalizer."""
    if item.interpret_as is None:
        return item.text
    words: str = say_as(item.text, item.interpret_as, language, item.format)
    return words


def ssml_segments(markup: str, max_chars: int, *, language: str,
                  keep_tags: Iterable[str] = ()) -> list[str | Pause]:
    """A whole SSML text as segments (sentence bounds cut them) and pauses."""
    out: list[str | Pause] = []
    words: list[str] = []

    def cut() -> None:
        if words:
            out.extend(split_text(" ".join(words), max_chars))
            words.clear()

    for item in parse_ssml(markup, keep_tags=tuple(keep_tags)):
        if isinstance(item, Speech):
            words.append(spoken(item, language))
        elif isinstance(item, SsmlPause):
            cut()
            out.append(Pause(item.seconds))
        else:
            cut()
    cut()
    return out


def _complete(text: str, keep_tags: frozenset[str]) -> int:
    """The length of the longest prefix of ``text`` that parses by itself: no tag cut off,
    no element left open, and ending at a tag or a space (so no word is cut in two)."""
    depth, start, best = 0, 0, 0
    for match in _TAG.finditer(text):
        if "<" in text[start: match.start()]:  # a stray "<": wait for more
            return best if depth == 0 else 0
        if depth == 0:
            space = max(text.rfind(" ", start, match.start()), text.rfind("\n", start,
                                                                           match.start()))
            best = max(best, space + 1)
        closing, name, self_closing = match.group(1), match.group(2), match.group(3)
        if name not in keep_tags and not self_closing:
            depth += -1 if closing else 1
        start = match.end()
        if depth == 0:
            best = start
    if depth == 0 and "<" not in text[start:]:
        space = max(text.rfind(" ", start), text.rfind("\n", start))
        best = max(best, space + 1)
    return best if depth >= 0 else len(text)  # a stray end tag: let the parser say so


class SsmlFeed:
    """SSML pushed piece by piece onto a :class:`TextFeed`. A malformed piece raises
    :class:`SsmlError` (nothing of it is spoken); ``end`` and ``flush`` hand on what is held."""

    def __init__(self, feed: TextFeed, *, language: str, keep_tags: Iterable[str] = (),
                 context_id: str | None = None) -> None:
        self.feed = feed
        self.context_id = context_id  # named in its SsmlErrors
        self.language = language
        self.keep_tags = frozenset(keep_tags)
        self._held = ""

    @property
    def held_chars(self) -> int:
        """Markup held back, and the feed's text not yet spoken."""
        return len(self._held) + self.feed.held_chars

    def push(self, piece: str) -> None:
        text = self._held + piece
        ready = _complete(text, self.keep_tags)
        self._held = text[ready:]
        self._speak(text[:ready])

    def flush(self, mark: str | None = None) -> None:
        try:
            self._release()
        finally:  # what came before malformed markup is still spoken
            self.feed.flush(mark)

    def end(self) -> None:
        try:
            self._release()
        finally:
            self.feed.end()

    def _release(self) -> None:
        held, self._held = self._held, ""
        self._speak(held)

    def _speak(self, markup: str) -> None:
        if not markup.strip():
            return
        try:
            items: list[SsmlItem] = parse_ssml(markup, keep_tags=self.keep_tags)
        except SsmlError as exc:
            exc.context_id = exc.context_id or self.context_id
            raise
        for item in items:
            if isinstance(item, Speech):
                self.feed.push(spoken(item, self.language) + " ")
            elif isinstance(item, SsmlPause):
                self.feed.pause(item.seconds)
            elif isinstance(item, SentenceBound):
                self.feed.cut()


__all__ = ["SsmlError", "SsmlFeed", "spoken", "ssml_segments"]
