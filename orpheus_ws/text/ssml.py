"""SSML as speech clients send it, turned into a flat list of what to say (no I/O).

``parse_ssml(markup)`` reads the subset of SSML that Polly, Google, Azure and ElevenLabs
clients send (W3C SSML 1.1, https://www.w3.org/TR/speech-synthesis11/) and returns items:

| markup                                   | item                                        |
| ---------------------------------------- | ------------------------------------------- |
| text                                     | ``Speech(text)``, whitespace collapsed      |
| ``<break time=... strength=...>``        | ``Pause(seconds)`` (§3.2.3)                 |
| ``<say-as interpret-as= format=>t<...>`` | ``Speech(t, interpret_as, format)`` (§3.1.9)|
| ``<sub alias="a">t</sub>``               | ``a``, spoken as plain text (§3.1.10)       |
| ``<p>``, ``<s>``                         | ``SentenceBound()`` before and after (§3.1.8)|
| ``<desc>``, ``<meta>``, ``<metadata>``,  | nothing: not spoken (§3.3.3, §3.1.5, §3.1.6,|
| ``<lexicon>``                            | §3.1.4)                                     |
| any other element (prosody, emphasis,    | its text, the element dropped (``<audio>``: |
| voice, audio, phoneme, mark, ...)        | its fallback text; ``<mark>``: nothing)     |

The ``<speak>`` root is optional: the markup is always parsed inside a ``<speak>`` of ours, so
a fragment (``Hello <break time="1s"/> world``) is accepted and a client's own ``<speak>`` is
one more element whose attributes (``xml:lang``, ``version``) are ignored.

Safety: the markup is XML parsed by the standard library's expat, with no document type
declaration allowed, so no entity can be declared and none expanded (the "billion laughs"
attack has nothing to start from); only XML's five predefined entities and character
references are decoded. Errors name the parser's reason and a position, never the markup.

Orpheus' emotion tags (``<laugh>``, ``<sigh>``, ...) are not XML: those named in ``keep_tags``
are rewritten to empty elements before parsing (``<laugh>``, ``<laugh/>`` and
``<laugh></laugh>`` alike) and come back literally as ``<laugh>`` in the Speech text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, auto
from xml.parsers import expat

from ..exceptions import ValidationError

__all__ = ["BREAK_STRENGTH_S", "MAX_BREAK_S", "Pause", "SentenceBound", "Speech", "SsmlError",
           "SsmlItem", "parse_ssml"]


@dataclass(frozen=True, slots=True)
class Speech:
    """Words to say, whitespace collapsed; ``interpret_as`` and ``format`` come from
    ``<say-as>`` (SSML 1.1 §3.1.9) and are the caller's to normalize."""

    text: str
    interpret_as: str | None = None
    format: str | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    """A ``<break>`` (SSML 1.1 §3.2.3): silence of exactly ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class SentenceBound:
    """A sentence ends here: the edge of a ``<p>`` or ``<s>`` (SSML 1.1 §3.1.8)."""


SsmlItem = Speech | Pause | SentenceBound


class SsmlError(ValidationError):
    """The SSML in ``field`` can't be read; the message is short and never quotes the markup
    beyond a truncated attribute value."""

    code = "invalid_ssml"

    def __init__(self, message: str, *, field: str = "text",
                 context_id: str | None = None) -> None:
        super().__init__(field, message, context_id=context_id)


# Amazon Polly's <break>: "The maximum duration is 10s" / "10000ms"
# (https://docs.aws.amazon.com/polly/latest/dg/break-tag.html). Longer times are capped here.
MAX_BREAK_S = 10.0

# W3C SSML 1.1 §3.2.3 leaves the length of each strength to the processor; these are Azure
# Speech's ("Add a break", learn.microsoft.com/azure/ai-services/speech-service/
# speech-synthesis-markup-structure#add-a-break): x-weak 250 ms, weak 500 ms, medium 750 ms
# (the default, also for a <break/> without attributes), strong 1000 ms, x-strong 1250 ms.
# "none" is no break at all.
BREAK_STRENGTH_S: dict[str, float] = {
    "none": 0.0,
    "x-weak": 0.25,
    "weak": 0.5,
    "medium": 0.75,
    "strong": 1.0,
    "x-strong": 1.25,
}

# A time designation (§3.2.3, after CSS2): a non-negative number, then "s" or "ms". We also
# take blanks around it and between ("2 s"), a unit in any case, and a sign, to refuse "-1s"
# with a message of its own.
_TIME = re.compile(r"\s*([+-]?)(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)\s*", re.IGNORECASE)
_KEEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# An XML declaration is only legal at the very start of a document, where our <speak> goes.
_XML_DECL = re.compile(r"\A\s*<\?xml\s[^>]*\?>")
_REFUSED = ("<!DOCTYPE", "<!ENTITY")
_OPEN, _CLOSE = "<speak>", "</speak>"
_TAG_MISMATCH = expat.errors.codes[expat.errors.XML_ERROR_TAG_MISMATCH]
# Elements whose content is not spoken: desc (§3.3.3), meta (§3.1.5), metadata (§3.1.6),
# lexicon (§3.1.4).
_SILENT = frozenset({"desc", "meta", "metadata", "lexicon"})


def parse_ssml(markup: str, *, keep_tags: Iterable[str] = ()) -> list[SsmlItem]:
    """Turn SSML (a whole ``<speak>`` document or a fragment) into what the server speaks.

    ``keep_tags`` names Orpheus emotion tags (``["laugh", "sigh"]``) kept literally in the
    text. Raises ``SsmlError`` for malformed markup, a document type declaration, or a bad
    ``<break>``; a break longer than ``MAX_BREAK_S`` is capped. Linear in ``len(markup)``.
    """
    keep = frozenset(keep_tags)
    for name in keep:
        if not _KEEP_NAME.fullmatch(name):
            raise ValueError(f"keep_tags: {name[:40]!r} is not a tag name")
    if any(refused in markup for refused in _REFUSED):
        raise SsmlError("DTDs and entity declarations are not allowed in SSML")
    source = _prepare(markup, keep)
    builder = _Builder(keep)
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.text
    # Unreachable past the checks above (a DTD can't sit inside our <speak>): defence in depth.
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    try:
        parser.Parse(_OPEN + source + _CLOSE, True)
    except expat.ExpatError as exc:
        raise SsmlError(_describe(exc, markup)) from None
    except UnicodeEncodeError:  # a lone surrogate, as JSON's "\ud800" can carry
        raise SsmlError("malformed SSML: not valid Unicode") from None
    return builder.finish()


def _prepare(markup: str, keep: frozenset[str]) -> str:
    """The markup as our ``<speak>`` can hold it: a leading BOM and XML declaration blanked
    (newlines kept, so line numbers hold), emotion tags made empty elements."""
    markup = markup.removeprefix("\ufeff")
    decl = _XML_DECL.match(markup)
    if decl:
        markup = re.sub(r"[^\n]", " ", decl.group()) + markup[decl.end():]
    if not keep:
        return markup
    names = "|".join(re.escape(name) for name in sorted(keep, key=len, reverse=True))
    tag = re.compile(rf"<(/?)({names})\s*/?>")
    # <laugh> and <laugh/> -> <laugh/>; </laugh> dropped, so <laugh></laugh> -> <laugh/>.
    return tag.sub(lambda m: "" if m.group(1) else f"<{m.group(2)}/>", markup)


def _refuse_dtd(*_: object) -> None:
    raise SsmlError("DTDs and entity declarations are not allowed in SSML")


def _describe(exc: expat.ExpatError, markup: str) -> str:
    """The parser's reason and where, in the client's own lines and columns (1-based)."""
    reason = expat.ErrorString(exc.code) or "syntax error"
    line, column = exc.lineno, exc.offset
    if line == 1:
        column -= len(_OPEN)
    lines = markup.count("\n") + 1
    tail = len(markup) - (markup.rfind("\n") + 1)
    if line > lines or (line == lines and column >= tail) or column < 0:
        if exc.code == _TAG_MISMATCH:  # at our </speak>: the client's element is still open
            return "malformed SSML: an element is not closed"
        return f"malformed SSML: {reason} at the end of the input"
    return f"malformed SSML: {reason} at line {line}, column {column + 1}"


def _break_seconds(attrs: dict[str, str]) -> float:
    """A ``<break>``'s length (§3.2.3): ``time`` if given, else ``strength``, else medium."""
    strength = attrs.get("strength")
    if strength is not None and strength.strip().lower() not in BREAK_STRENGTH_S:
        raise SsmlError(f"<break> strength {_short(strength)} is not one of "
                        f"{', '.join(BREAK_STRENGTH_S)}")
    time = attrs.get("time")
    if time is None:
        return BREAK_STRENGTH_S[(strength or "medium").strip().lower()]
    found = _TIME.fullmatch(time)
    if found is None:
        raise SsmlError(f"<break> time {_short(time)} is not a number of s or ms")
    sign, number, unit = found.groups()
    seconds = float(number) / (1000.0 if unit.lower() == "ms" else 1.0)
    if sign == "-" and seconds > 0:
        raise SsmlError("<break> time must not be negative")
    return min(seconds, MAX_BREAK_S)


def _short(value: str, limit: int = 24) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _collapse(parts: list[str]) -> str:
    return " ".join("".join(parts).split())


class _Role(Enum):
    """What an open element does when it closes."""

    PLAIN = auto()      # nothing
    BOUND = auto()      # ends a sentence (<p>, <s>)
    SAY_AS = auto()     # emits the text it captured


class _Builder:
    """Expat's callbacks: collects items, one open element at a time."""

    def __init__(self, keep: frozenset[str]) -> None:
        self.items: list[SsmlItem] = []
        self._keep = keep
        self._plain: list[str] = []            # text since the last item
        self._capture: list[str] | None = None  # a <say-as>'s text, while one is open
        self._say_as: tuple[str, str | None] = ("", None)
        self._roles: list[_Role] = []
        self._skip = 0                          # depth inside an element not spoken

    def _sink(self) -> list[str]:
        return self._plain if self._capture is None else self._capture

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if self._skip:
            self._skip += 1
            return
        role = _Role.PLAIN
        if name in self._keep:
            self._sink().append(f"<{name}>")
        elif name in _SILENT:
            self._skip = 1
            return
        elif name == "sub" and "alias" in attrs:
            self._sink().append(attrs["alias"])  # the written form is not spoken
            self._skip = 1
            return
        elif name == "break":
            seconds = _break_seconds(attrs)
            if seconds > 0 and self._capture is None:
                self._flush()
                self.items.append(Pause(seconds))
        elif name in ("p", "s") and self._capture is None:
            self._bound()
            role = _Role.BOUND
        elif name == "say-as" and attrs.get("interpret-as") and self._capture is None:
            self._capture = []
            self._say_as = (attrs["interpret-as"], attrs.get("format"))
            role = _Role.SAY_AS
        self._roles.append(role)

    def end(self, name: str) -> None:
        if self._skip:
            self._skip -= 1
            return
        role = self._roles.pop()
        if role is _Role.BOUND:
            self._bound()
        elif role is _Role.SAY_AS:
            text = _collapse(self._capture or [])
            self._capture = None
            if text:
                self._flush()
                self.items.append(Speech(text, *self._say_as))
            else:
                self._plain.append(" ")  # an empty <say-as> still parts the words around it

    def text(self, data: str) -> None:
        if not self._skip:
            self._sink().append(data)

    def _flush(self) -> None:
        text = _collapse(self._plain)
        self._plain.clear()
        if text:
            self.items.append(Speech(text))

    def _bound(self) -> None:
        # No bound at the very start, none twice in a row.
        self._flush()
        if self.items and not isinstance(self.items[-1], SentenceBound):
            self.items.append(SentenceBound())

    def finish(self) -> list[SsmlItem]:
        self._flush()
        return self.items
