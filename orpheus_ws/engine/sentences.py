"""Where sentences end, in text whose end may not have arrived yet (no I/O).

Each segment is a separate generation of the model: a cut inside a sentence is an audible
break, a missed cut only a longer segment. So where the text is ambiguous these rules keep
the sentence whole. ``sentence_ends`` applies them, for English, French, German, Spanish,
Italian, Korean, Hindi and Mandarin (and Japanese):

1. A newline ends a sentence.
2. 。 and ｡, the full-width ! and ? (U+FF01, U+FF1F) and the Devanagari dandas । ॥ end a
   sentence whatever follows, a space or not ("你好。我很好"); closing quotes and brackets
   after a mark stay with its sentence.
3. ``!`` and ``?`` end a sentence at the whitespace after them, or directly before a CJK
   character ("好!我").
4. A period ends a sentence at the whitespace after it, except
   - after an abbreviation that does not end sentences (``ABBREVIATIONS``: Dr., Mr., St.,
     vs., Mme., Nr., bzw., Sr., pág., Sig., Dott., "p. ex.", "p. ej.", Hindi "डॉ.");
   - after a single letter (French "M."), or letters joined by periods: initials
     ("Mr. T. Jones", "J. R. R. Tolkien", "J.R.R."), "z. B.", "e.g.", "U.S." ("the U.S.
     Army" must not cut, so "in the U.S. It was" is a missed cut);
   - after a number of one or two digits: a list item ("1. Buy milk") or a German ordinal
     ("am 3. Mai"); "I counted to 10. Then" is a missed cut, "in 1990. Then" cuts;
   - after an abbreviation that may end a sentence (``CLOSING_ABBREVIATIONS``: etc., a.m.,
     p.m., Jan., usw., ecc., No.) unless the next word is capitalized and not an acronym:
     "at 5 p.m. Then" cuts; "at 5 p.m. on Jan. 5th", "5 p.m. EST" do not.
5. An ellipsis ("...", "…") ends a sentence before a capitalized word, or when it follows
   the first word of a sentence: "Wait... what?" is two, an interjection then the rest.
   Elsewhere it is a pause inside the sentence: "I think... maybe", "제 생각에는... 아마"
   (Hangul has no case).
6. After closing quotes or brackets, a mark before a lowercase word is no end ('"Stop!" he
   said', 'read "Closed." and left'). Inside « », a space and » after a mark stay with its
   sentence ("« Non ! » cria-t-il").

A period, ``!`` or ``?`` with no whitespace after it is no end: "3.5", "v2.0.1",
"example.com/a.b", "jane.doe@example.com". Ends inside quotes in Chinese ("“好。”他说") cut,
as they usually end a sentence there.

Each decision reads at most two words back (within the sentence; the guillemets are counted
as the scan goes) and at most the first two letters of the next word, so the work is linear
in the text; and it is made only on text
that has arrived. "Hello. " and "Why? " are certain at the space, as protocol.md promises;
what rules 4-6 must tell apart waits for the next word's first letter (a closing
abbreviation for two): after closing quotes, inside « », an ellipsis, "p.m.". A text that
ends before then (``final``) is decided as if nothing followed.
"""

from __future__ import annotations

import re

# One newline per match: a greedy "\n+" would cut differently when a run of newlines arrives
# split across pieces (its end, checked against max_chars, depends on what has arrived).
_MARK = re.compile(r"[.!?…。！？｡।॥]+|\n")
_FULL_STOPS = frozenset("。！？｡।॥")
_CLOSERS = frozenset("\"'”’“‘)]}»«›‹」』）】〕〉》〗〙")
_SPACED_CLOSERS = frozenset("»›")
_OPENERS = "\"'“‘„«»‹›([{¿¡"

# A period after these never ends a sentence: the next word belongs with them.
ABBREVIATIONS = frozenset({
    # English
    "mr", "mrs", "ms", "messrs", "dr", "prof", "sr", "st", "mt", "ft", "vs", "cf", "approx",
    "dept", "gen", "gov", "sen", "rev", "capt", "col", "lt", "sgt", "ca", "incl",
    # French
    "mme", "mmes", "mlle", "mlles", "pr", "ste", "env", "c.-à-d", "p. ex",
    # German
    "hr", "fr", "nr", "bzw", "evtl", "ggf", "inkl", "sog", "bspw", "vgl", "str", "dipl",
    # Spanish
    "sra", "srta", "dra", "dña", "ud", "uds", "vd", "pág", "págs", "núm", "aprox", "lic", "avda",
    "p. ej",
    # Italian
    "sig", "sigg", "sig.ra", "sig.na", "dott", "dott.ssa", "prof.ssa", "avv", "ing", "cfr",
    "pag", "ad es",
    # Hindi: Dr., Prof.
    "डॉ", "प्रो",
})
# A period after these ends a sentence only before a capitalized word that is no acronym.
CLOSING_ABBREVIATIONS = frozenset({
    "etc", "usw", "ecc", "a.m", "p.m", "a. m", "p. m", "inc", "ltd", "co", "corp", "jr", "no",
    "nos", "art", "vol", "fig", "figs",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "janv", "févr", "avr", "juil", "déc", "okt", "dez", "ene", "abr", "ago", "dic", "genn",
    "febbr", "ott",
})
# Enough look-back for two words of the longest abbreviation, with quotes before them.
_LOOK_BACK = 24
# The longest first word an ellipsis may follow and still end its sentence ("Wait...").
_INTERJECTION = 24

_NOT_AN_END = 0


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF
            or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2FFFF)


def _cased(word: str) -> bool:
    return all(char.isalpha() and char.lower() != char.upper() for char in word)


def _initials(word: str) -> bool:
    """One letter ("T", "z") or letters joined by periods ("U.S", "e.g", "J.R.R")."""
    return len(word) % 2 == 1 and _cased(word[::2]) and set(word[1::2]) <= {"."}


def _words_before(text: str, lo: int, pos: int) -> list[str]:
    """Up to the last two words before ``pos`` (none before ``lo``), without opening quotes,
    lowercased; none if whitespace comes right before ``pos``."""
    if pos <= lo or text[pos - 1].isspace():
        return []
    begin = max(lo, pos - _LOOK_BACK)
    words = text[begin:pos].split()
    if begin > lo and not text[begin - 1].isspace() and not text[begin].isspace():
        words = words[1:]  # cut off by the look-back: not a whole word
    return [word.lstrip(_OPENERS).lower() for word in words[-2:]]


def _period_kind(text: str, lo: int, pos: int) -> str:
    """``never``, ``closing`` or ``plain``: how the period at ``pos`` may end a sentence."""
    words = _words_before(text, lo, pos)
    if not words:
        return "plain"
    pair = " ".join(words)
    word = words[-1]
    for key in (pair, word) if len(words) == 2 else (word,):
        if key in CLOSING_ABBREVIATIONS:
            return "closing"
        if key in ABBREVIATIONS:
            return "never"
    if (word.isdecimal() and len(word) <= 2) or _initials(word):
        return "never"
    return "plain"


def _first_word(text: str, lo: int, pos: int) -> bool:
    """Whether the sentence from ``lo`` to ``pos`` is one short word ("Wait")."""
    if pos - lo > _INTERJECTION:
        return False
    head = text[lo:pos].strip()
    return bool(head) and not any(char.isspace() for char in head)


def _skip_space(text: str, i: int) -> tuple[int, bool]:
    """The first non-space at or after ``i`` (or the end), and whether a newline came first."""
    while i < len(text) and text[i].isspace():
        if text[i] == "\n":
            return i, True
        i += 1
    return i, False


def _verdict(text: str, match: re.Match[str], lo: int, final: bool,
             quoted: bool) -> int | None:
    """Where the sentence ending with ``match`` ends, ``_NOT_AN_END``, or None: undecided
    until more text arrives (``final``: no more will). ``quoted``: a « is open."""
    mark, n = match.group(), len(text)
    if mark == "\n":
        return match.end()
    i = match.end()
    while i < n and text[i] in _CLOSERS:
        i += 1
    if i == n:
        return i if final else None
    closed = i > match.end()
    if any(char in _FULL_STOPS for char in mark):
        return i
    strong = "!" in mark or "?" in mark
    if not text[i].isspace():
        return i if strong and _is_cjk(text[i]) else _NOT_AN_END
    kind = ("strong" if strong else "ellipsis" if mark != "."
            else _period_kind(text, lo, match.start()))
    if kind == "never":
        return _NOT_AN_END
    if kind in ("strong", "plain") and not closed and not quoted:
        return i  # certain at the whitespace ("Hello. ")
    j, newline = _skip_space(text, i)
    if quoted and not newline and j < n and text[j] in _SPACED_CLOSERS:
        k = j
        while k < n and text[k] in _CLOSERS:
            k += 1
        if k == n:
            return k if final else None
        if text[k].isspace():  # closes the quote ("« Non. » Puis"), else opens one
            i, closed = k, True
            j, newline = _skip_space(text, k)
    if newline:
        return i
    if j == n:
        return i if final else None
    if closed and text[j].islower():
        return _NOT_AN_END
    if kind in ("strong", "plain"):
        return i
    if kind == "ellipsis":
        return i if text[j].isupper() or _first_word(text, lo, match.start()) else _NOT_AN_END
    if not text[j].isupper():  # a closing abbreviation: "p.m. Then", not "p.m. on", "Jan. 5"
        return _NOT_AN_END
    if j + 1 == n:
        return i if final else None
    return _NOT_AN_END if text[j + 1].isupper() else i  # not before an acronym ("p.m. EST")


def sentence_ends(text: str, *, final: bool) -> tuple[list[int], int]:
    """Ends of the sentences in ``text`` (after their marks and closing quotes), and how far
    the text is decided: the start of the first mark that needs text not yet arrived, else
    ``len(text)``; no end is reported past it. ``final``: the text is whole, its end is the
    end of the text (an undecided mark is decided as if the text ended there)."""
    ends: list[int] = []
    lo = 0  # where the current sentence starts
    counted, opened = 0, 0  # guillemets « less » in the sentence, counted up to ``counted``
    for match in _MARK.finditer(text):
        opened += text.count("«", counted, match.start()) - text.count("»", counted,
                                                                       match.start())
        counted = match.start()
        end = _verdict(text, match, lo, final, opened > 0)
        if end is None:
            return ends, match.start()
        if end != _NOT_AN_END:
            ends.append(end)
            lo = counted = end
            opened = 0
    return ends, len(text)
