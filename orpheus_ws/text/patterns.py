"""The written forms ``normalize`` recognizes, as regular expressions per language.

Every pattern is linear in the text: a quantified run is possessive (``++``) or bounded, or its
separators are disjoint from what it repeats, and most start behind a lookbehind that fails
inside a word, so each character is looked at a bounded number of times (no catastrophic
backtracking, https://www.regular-expressions.info/catastrophic.html). Each kind of pattern has
a fixed layout of groups, named in its docstring, that its reader in ``normalize.py`` relies on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .lexicon import CURRENCY_CODES, CURRENCY_SIGNS, Lexicon

TAG = r"<[^\s<>]++>"  # an emotion tag, <laugh>, <한숨>: left as it is
URL = r"(?<![\w@])(?i:https?://|www\.)[^\s<>]++"
EMAIL = r"(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)++"
TLDS = "com|org|net|edu|gov|info|io|ai|dev|app|co|uk|eu|de|fr|es|it|kr|cn|in|ch|nl"
DOMAIN = rf"(?<![\w.@/-])(?:[A-Za-z0-9-]++\.)++(?:{TLDS})(?:/[^\s<>]*+)?(?![\w-])"
LATIN_AFTER = r"(?![A-Za-zÀ-ÖØ-öø-ÿ])"  # a number glued to Latin letters (5G, A4) is left alone
# Not inside a Latin word or a number; CJK text runs into numbers (2026年1月5日, 共有3人).
BOUNDARY = r"(?<![A-Za-zÀ-ÖØ-öø-ÿ\d_])"
START = rf"(?:(?<![^\s(\[])[-−]|{BOUNDARY})"  # a minus sign after a space, or no word before

# Numbers as each language groups thousands and marks decimals (1,234.5; 1.234,5; 1 234,5).
# Each group checks its own end, so a run of groups is never scanned twice (linear).
_GROUPED = r"\d{1,3}(?:\.\d{3}(?!\d))++"
NUMBERS = {
    "en": r"(?:\d{1,3}(?:,\d{3}(?!\d))++|\d++)(?:\.\d++)?",
    "fr": rf"(?:\d{{1,3}}(?:[ \u00a0\u202f]\d{{3}}(?!\d))++|{_GROUPED}|\d++)(?:[,.]\d++)?",
    "de": rf"(?:{_GROUPED}|\d++)(?:[,.]\d++)?",
    # Indian grouping: 1,23,456 (lakh), 1,23,45,678 (crore).
    "hi": r"(?:\d{1,3}(?:,\d{3}(?!\d))++|\d{1,2}(?:,\d{2}){0,6},\d{3}(?!\d)|\d++)(?:\.\d++)?",
}
NUMBERS.update(es=NUMBERS["de"], it=NUMBERS["de"], ko=NUMBERS["en"], zh=NUMBERS["en"])

# Phone numbers, read group by group: international, then as each country writes them.
_PHONES = {
    "en": [r"(?<![\w(])\(\d{3}\)\s?\d{3}[-.\s]\d{4}(?!\d)",
           r"(?<![\w.-])\d{3}[-.]\d{3}[-.]\d{4}(?![\w-])"],
    "fr": [r"(?<![\w.])0\d(?:[ .]\d{2}){4}(?!\d)"],
    "de": [r"(?<![\w/])0\d{2,4}[ /-]\d{4,8}(?![\w/])"],
    "es": [r"(?<!\w)[6-9]\d{2}(?:\s\d{2}){3}(?!\d)", r"(?<!\w)[6-9]\d{2}\s\d{3}\s\d{3}(?!\d)"],
    "it": [r"(?<!\w)3\d{2}[ .]\d{3}[ .]?\d{3,4}(?!\d)",
           r"(?<!\w)0\d{1,3}[ .]\d{3,4}[ .]?\d{3,4}(?!\d)"],
    "ko": [r"(?<!\w)01\d[ -]?\d{3,4}[ -]?\d{4}(?!\d)"],
    "zh": [r"(?<!\w)1\d{2}[ -]?\d{4}[ -]?\d{4}(?!\d)"],
    "hi": [r"(?<!\w)[6-9]\d{4}[ -]?\d{5}(?!\d)"],
}
INTERNATIONAL_PHONE = r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d++)++"
HYPHENATED_PHONE = r"(?<![\w-])\d{1,5}(?:-\d{2,5}){2,}+(?![\w-])"  # 1-800-555-1234, 02-123-4567

# Dates written with numbers; groups: (article, first, second, year).
ISO_DATE = rf"{BOUNDARY}(?<!-)()(\d{{4}})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?![A-Za-z\d-])"
_DAY, _MONTH = r"(0?[1-9]|[12]\d|3[01])", r"(0?[1-9]|1[0-2])"
SLASH_DATE = rf"(?<![\w/])(){_DAY}/{_DAY}/(\d{{4}})(?![\w/])"
GERMAN_ARTICLES = "am|vom|zum|im|beim|bis zum|seit dem|ab dem|der|die|das|den|dem|des"
ARTICLE = {"de": rf"(?:(?i:({GERMAN_ARTICLES}))\s)?"}

# Times; groups: (hour, minute, second, a|p).
_HOUR, _MINUTE = r"([01]?\d|2[0-4])", r"([0-5]\d)"
_MERIDIEM = r"(?:\s?([AaPp])\.?\s?[Mm](?!\w)\.?)"
_COLON_TIME = rf"{BOUNDARY}(?<![:.]){_HOUR}:{_MINUTE}(?::{_MINUTE})?"
TIMES = {
    "en": [rf"{_COLON_TIME}{_MERIDIEM}?(?![A-Za-zÀ-ÖØ-öø-ÿ\d:])",
           rf"(?<![\w:.])(1[0-2]|0?[1-9])()(){_MERIDIEM}"],
    "fr": [rf"{_COLON_TIME}()(?![A-Za-zÀ-ÖØ-öø-ÿ\d:])",
           rf"(?<![\w:.])([01]?\d|2[0-3])\s?h\s?{_MINUTE}?()()(?!\w)"],
    "de": [rf"{_COLON_TIME}()(?:\s?Uhr)?(?![A-Za-zÀ-ÖØ-öø-ÿ\d:])",
           rf"(?<![\w:.]){_HOUR}(?:\.{_MINUTE})?()()\s?Uhr(?!\w)"],
}
TIMES["es"] = TIMES["en"][:1]
for _language in ("it", "ko", "zh", "hi"):
    TIMES[_language] = [rf"{_COLON_TIME}()(?![A-Za-zÀ-ÖØ-öø-ÿ\d:])"]

# Ordinals; groups: (number, suffix).
ORDINALS = {
    "en": r"(?<!\w)(\d{1,15})(st|nd|rd|th)(?!\w)",
    "fr": r"(?<!\w)(\d{1,15})(er|re|ère|ème|eme|e|è|nde|nd|ᵉʳ|ʳᵉ|ᵉ)(?!\w)",
    "es": r"(?<!\w)(\d{1,15})\.?(º|ª|er|ra|ro|do|da|to|ta|mo|ma|vo|va|no|na)(?!\w)",
    "it": r"(?<!\w)(\d{1,15})(º|ª)(?!\w)",
}
# German: "3." is an ordinal only after an article and before a noun; groups: (article, number).
GERMAN_ORDINAL = rf"(?<!\w)(?i:({GERMAN_ARTICLES}))\s(\d{{1,3}})\.(?=\s[A-ZÄÖÜ])"
DECADE = r"(?<![\w'’])(?:(1\d|20)(\d)0s|['’](\d)0s)(?!\w)"  # the 1990s, the '90s
VERSION = r"(?<![\w.])\d++(?:\.\d++){2,}+(?![\w]|\.\d)"  # 1.2.3, 192.168.0.1
SYMBOLS = r"[&+=@]|~(?=\s?\d)"
HASHTAG = r"(?<!\w)#(?=[^\W\d_])"


def alternation(words: Iterable[str]) -> str:
    """``words`` as a regex alternation, longest first so "Sig.ra" wins over "Sig."."""
    return "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))


def number(language: str) -> str:
    """An unsigned number as ``language`` writes it."""
    return NUMBERS[language]


def signed(language: str) -> str:
    """A number with an optional minus sign, starting a word."""
    return rf"{START}(?:{NUMBERS[language]})"


def phones(language: str) -> list[str]:
    return [INTERNATIONAL_PHONE, *_PHONES[language]]


def numeric_dates(language: str) -> list[str]:
    """ISO, slashed and (fr, de, es, it) dotted dates; groups: (article, first, second, year)."""
    dates = [ISO_DATE, SLASH_DATE]
    if language in ("fr", "de", "es", "it"):
        article = ARTICLE.get(language, "()")
        dates.append(rf"(?<![\w.]){article}{_DAY}\.{_MONTH}\.(\d{{4}})(?!\d)")
    return dates


def day_month(lex: Lexicon) -> str | None:
    """A day then a month name: 5 janvier 2026; groups: (article, day, month, year)."""
    months = _months(lex)
    return {
        "en": rf"(?<!\w)()(\d{{1,2}})(?:st|nd|rd|th)?\s(?:of\s)?({months})\.?(?:,?\s(\d{{4}}))?"
              r"(?!\w)",
        "fr": rf"(?<!\w)()(\d{{1,2}})(?:er|ᵉʳ)?\s({months})\.?(?:\s(\d{{4}}))?(?!\w)",
        "de": rf"(?<!\w){ARTICLE['de']}(\d{{1,2}})\.\s?({months})\.?(?:\s(\d{{4}}))?(?!\w)",
        "es": rf"(?<!\w)()(\d{{1,2}})(?:\.?[º°])?\sde\s({months})(?:\sde[l]?\s(\d{{4}}))?(?!\w)",
        "it": rf"(?<!\w)()(\d{{1,2}})[º°]?\s({months})(?:\s(\d{{4}}))?(?!\w)",
    }.get(lex.language)


def month_day(lex: Lexicon) -> str | None:
    """A month name then a day or a year: January 5th, 2026; mai 2026; groups: (month, day,
    year, -, year)."""
    if lex.language == "en":
        return (rf"(?<!\w)({_months(lex)})\.?\s(?:(\d{{1,2}})(?:st|nd|rd|th)?(?!\d)"
                r"(?:,?\s(\d{4}))?|()(\d{4}))(?!\w)")
    if lex.language in ("fr", "de", "es", "it"):
        joint = r"\sde" if lex.language == "es" else ""
        return rf"(?<!\w)({_months(lex)}){joint}\s()(\d{{4}})()()(?!\w)"
    return None


def _months(lex: Lexicon) -> str:
    names = alternation(lex.month_spellings)
    return names if lex.language == "en" else f"(?i:{names})"  # "may" and "march" are words


def currencies() -> str:
    return alternation([*CURRENCY_SIGNS, *CURRENCY_CODES])
