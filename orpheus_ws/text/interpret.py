"""SSML ``<say-as>`` readers (https://www.w3.org/TR/ssml/#S3.1.9 and the W3C note
"SSML 1.0 say-as attribute values", https://www.w3.org/TR/ssml-sayas/): the content read as
the named ``interpret-as``. Each reader returns None for content it can't read, and
``normalize.say_as`` then normalizes it as ordinary text."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping

from . import patterns as p
from .lexicon import CURRENCY_CODES, Lexicon
from .numerals import cardinal, digits, ordinal
from .readings import amount, clock, currency_code, date, fraction, measure, money, parse, phone

SayAs = Callable[[str, Lexicon, str | None], str | None]
DEFAULT_CURRENCY = {"en": "USD", "ko": "KRW", "zh": "CNY", "hi": "INR"}  # else EUR
TIME = re.compile(r"(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?\s*(?:([AaPp])\.?\s?[Mm]\.?)?")
FRACTION = re.compile(r"(\d{1,9})\s*/\s*(\d{1,9})")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _cardinal(text: str, lex: Lexicon, _: str | None) -> str | None:
    if not _compiled(p.signed(lex.language)).fullmatch(text):
        return None
    return amount(parse(text, lex.language), lex)


def _ordinal(text: str, lex: Lexicon, _: str | None) -> str | None:
    found = re.match(r"\d{1,15}", text)
    return ordinal(int(found.group()), lex.language) if found else None


def _digits(text: str, lex: Lexicon, _: str | None) -> str | None:
    numbers = "".join(c for c in text if "0" <= c <= "9")
    return digits(numbers, lex.language) if numbers else None


def _characters(text: str, lex: Lexicon, _: str | None) -> str | None:
    """Character by character: "A-12" -> "A dash one two"."""
    at, dot, slash, dash, underscore = lex.url
    names = {**lex.symbols, "@": at, ".": dot, "/": slash, "-": dash, "_": underscore}
    said = [cardinal(int(c), lex.language) if "0" <= c <= "9" else names.get(c, c)
            for c in text if not c.isspace()]
    return " ".join(said) or None


def _telephone(text: str, lex: Lexicon, _: str | None) -> str | None:
    return phone(text, lex) if any("0" <= c <= "9" for c in text) else None


def _date(text: str, lex: Lexicon, format: str | None) -> str | None:
    """A numeric date in ``format``'s order of y, m and d ("mdy", "dmy", "ymd", "my", ...)."""
    fields = re.findall(r"\d+", text)
    if not fields or re.search(r"[^\W\d_]", text):
        return None  # month names: normalize reads those
    if format:
        order = format.lower()
    elif len(fields[0]) == 4:
        order = "ymd"
    else:
        order = "dmy" if lex.day_first else "mdy"
    order = order[:len(fields)]
    if len(order) != len(fields) or set(order) - set("ymd"):
        return None
    values = dict(zip(order, map(int, fields), strict=True))
    y, m, d = values.get("y"), values.get("m"), values.get("d")
    if (m is not None and not 1 <= m <= 12) or (d is not None and not 1 <= d <= 31):
        return None
    day_first = "d" in order and "m" in order and order.index("d") < order.index("m")
    return date(lex, y, m, d, day_first=day_first)


def _time(text: str, lex: Lexicon, _: str | None) -> str | None:
    found = TIME.fullmatch(text)
    if not found or int(found[1]) > 24 or int(found[2] or 0) > 59:
        return None
    second = int(found[3]) if found[3] else None
    return clock(lex, int(found[1]), int(found[2] or 0), second, (found[4] or "").lower() or None)


def _currency(text: str, lex: Lexicon, format: str | None) -> str | None:
    pattern = rf"({p.currencies()})?\s?({p.signed(lex.language)})\s?({p.currencies()})?"
    found = _compiled(pattern).fullmatch(text)
    if not found:
        return None
    sign = found[1] or found[3] or (format or "").upper()
    if sign not in CURRENCY_CODES and not found[1] and not found[3]:
        sign = DEFAULT_CURRENCY.get(lex.language, "EUR")
    return money(parse(found[2], lex.language), currency_code(sign, lex), lex)


def _fraction(text: str, lex: Lexicon, _: str | None) -> str | None:
    found = FRACTION.fullmatch(text)
    if not found or int(found[2]) == 0:
        return None
    return fraction(int(found[1]), int(found[2]), lex)


def _unit(text: str, lex: Lexicon, format: str | None) -> str | None:
    units = p.alternation(lex.units)
    found = _compiled(rf"({p.signed(lex.language)})\s?({units})?").fullmatch(text)
    if not found:
        return None
    symbol = found[2] or format or ""
    if symbol not in lex.units:
        return None
    return measure(parse(found[1], lex.language), symbol, lex)


READERS: Mapping[str, SayAs] = {
    "cardinal": _cardinal, "number": _cardinal, "ordinal": _ordinal, "digits": _digits,
    "characters": _characters, "spell-out": _characters, "verbatim": _characters,
    "telephone": _telephone, "date": _date, "time": _time, "currency": _currency,
    "fraction": _fraction, "unit": _unit,
}
