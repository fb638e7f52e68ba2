"""Text normalization before generation: the words a speaker would say for written text.

Orpheus reads "$4.50", "3:30 pm" or "Dr." as its language model guesses; ``normalize`` writes
them out first, per language: numbers, ordinals, decimals, money, percentages, dates, times,
years, phone numbers, units, abbreviations, web and e-mail addresses and symbols. Numbers come
from num2words (en, fr, de, es, it, ko), cn2an (zh) and indic-numtowords (hi); the patterns
(``patterns.py``) and the words around numbers (``lexicon.py``) are ours. Pure functions, no
I/O: one pass over the text with one compiled regular expression per language, tried where a
form can start, so linear in the text.

zh and hi get numbers, money, percentages, dates, times, phone numbers, units and addresses;
they have no abbreviations to expand, and their dates are only the numeric kinds (ISO), since
their own date words already carry the numbers (2026年1月5日, 5 जनवरी 2026).

The first call in a language compiles its expression (10-20 ms); zh's first also imports cn2an
(about 0.2 s). After that a sentence of 100 characters takes about 0.1 ms.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from . import patterns as p
from .interpret import READERS
from .lexicon import LEXICONS, Lexicon
from .numerals import before_noun, digits, native, ordinal, year
from .readings import (
    address,
    amount,
    clock,
    currency_code,
    date,
    german_ordinal,
    measure,
    money,
    parse,
    percent,
    phone,
)

LANGUAGES: frozenset[str] = frozenset(LEXICONS)

KO_NATIVE_COUNTERS = ("시간", "시", "개", "명", "살", "마리", "번", "권", "잔", "병", "대", "장",
                      "켤레", "그릇", "곳", "가지")  # 세 시, 두 개; but 삼 개월, 삼 분
ZH_MEASURES = frozenset("个位只本件张条次天年种名人辆双块杯瓶点")  # 两个, 两点
ES_NOT_NOUNS = frozenset({"de", "del", "y", "o", "u", "e", "a", "al", "en", "por", "que", "con"})
# Spanish nouns in -a that are masculine (el día, el problema); other -a, -as nouns are feminine.
ES_MASCULINE_A = frozenset({"día", "días", "mapa", "mapas", "problema", "problemas", "programa",
                            "programas", "sistema", "sistemas", "tema", "temas", "idioma",
                            "idiomas", "planeta", "planetas", "clima", "climas"})
CLOSERS = ".,;:!?)]}'\"»”"
# Where a form can start: a word's first character, a digit, or a sign. Trying the grammar only
# there, rather than at every character as re.sub would, makes plain prose cost a few
# microseconds; every rule starts at such a place (its lookbehinds say so). Devanagari vowel
# signs are not \w to Python, so a Hindi word would otherwise start again after each of them.
CANDIDATES = re.compile(r"(?<![\w\u0900-\u097f])\w|\d|[^\w\s\u0900-\u097f]")


class Hit:
    """One match of one rule: its groups counted from 1, the text around it, the language."""

    __slots__ = ("base", "lex", "match")

    def __init__(self, match: re.Match[str], base: int, lex: Lexicon) -> None:
        self.match, self.base, self.lex = match, base, lex

    def __getitem__(self, group: int) -> str:
        return self.match.group(self.base + group) or ""

    @property
    def written(self) -> str:
        return self.match.group(self.base)

    @property
    def before(self) -> str:
        start = self.match.start()
        return self.match.string[max(0, start - 24):start]

    @property
    def after(self) -> str:
        end = self.match.end()
        return self.match.string[end:end + 24]

    def ends_sentence(self) -> bool:
        """The match swallowed a full stop that also ends the sentence ("... at 3 p.m.")."""
        rest = self.after
        return self.written.endswith(".") and (not rest.strip() or (
            rest[0].isspace() and rest.lstrip()[0].isupper()))


Reader = Callable[[Hit], str]


def _as_is(hit: Hit) -> str:
    return hit.written


def _address(hit: Hit) -> str:
    core = hit.written.rstrip(CLOSERS)
    return address(core, hit.lex) + hit.written[len(core):]


def _phone(hit: Hit) -> str:
    written = hit.written
    if written.startswith("+") and sum(c.isdigit() for c in written) < 7:  # +5, not a phone
        return f"{hit.lex.symbols['+']} {normalize(written[1:], hit.lex.language)}"
    return phone(written, hit.lex)


def _iso_date(hit: Hit) -> str:
    return date(hit.lex, int(hit[2]), int(hit[3]), int(hit[4]))


def _numeric_date(hit: Hit) -> str:
    first, second, y = int(hit[2]), int(hit[3]), int(hit[4])
    day_first = hit.lex.day_first or "." in hit.written
    d, m = (first, second) if day_first else (second, first)
    if m > 12 >= d:
        d, m = m, d
    if m > 12:  # 13/13/2026: not a date
        numbers = re.findall(r"\d+", hit.written)
        return f" {hit.lex.url[2]} ".join(amount(parse(n, "en"), hit.lex) for n in numbers)
    return date(hit.lex, y, m, d, article=hit[1] or None)


def _day_month(hit: Hit) -> str:
    said = date(hit.lex, int(hit[4]) if hit[4] else None, _month(hit.lex, hit[3]), int(hit[2]),
                article=hit[1] or None, day_first=True)
    if [w.lower() for w in hit.before.split()[-1:]] == ["the"]:  # "on the 3rd of May"
        said = said.removeprefix("the ")
    return said + "." * hit.ends_sentence()


def _month_day(hit: Hit) -> str:
    y = hit[3] or hit[5]
    said = date(hit.lex, int(y) if y else None, _month(hit.lex, hit[1]),
                int(hit[2]) if hit[2] else None)
    return said + "." * hit.ends_sentence()


@functools.cache
def _month_table(language: str) -> dict[str, int]:
    return {k.lower(): v for k, v in LEXICONS[language].month_spellings.items()}


def _month(lex: Lexicon, name: str) -> int:
    return _month_table(lex.language)[name.lower()]


def _time(hit: Hit) -> str:
    said = clock(hit.lex, int(hit[1]), int(hit[2] or 0), int(hit[3]) if hit[3] else None,
                 hit[4].lower() or None)
    return said + "." * hit.ends_sentence()


def _money_before(hit: Hit) -> str:  # $4.50, -€5, USD 5, $5 million
    number = parse(hit[1] + hit[3], hit.lex.language)
    return money(number, currency_code(hit[2], hit.lex), hit.lex, hit[4])


def _money_after(hit: Hit) -> str:  # 5,50 €, 100 USD
    return money(parse(hit[1], hit.lex.language), currency_code(hit[2], hit.lex), hit.lex)


def _percent(hit: Hit) -> str:
    return percent(parse(hit[1], hit.lex.language), hit.lex)


def _measure(hit: Hit) -> str:
    return measure(parse(hit[1], hit.lex.language), hit[2], hit.lex)


def _ordinal(hit: Hit) -> str:
    n, suffix, language = int(hit[1]), hit[2], hit.lex.language
    if language == "fr" and suffix.startswith("nd"):
        return "second" + suffix[2:]
    feminine = suffix in ("re", "ère", "ʳᵉ", "ª", "ra", "da", "ta", "ma", "va", "na")
    words = ordinal(n, language, feminine=feminine)
    if language == "es" and not feminine and (suffix == "er" or _next_noun(hit.after)):
        words = re.sub(r"(prim|terc)ero$", r"\1er", words)  # el primer piso, el tercer lugar
    return words


def _german_ordinal(hit: Hit) -> str:  # zum 3. Mal
    return german_ordinal(int(hit[2]), hit[1])


def _title(hit: Hit) -> str:
    return hit.lex.titles[hit.written]


def _abbreviation(hit: Hit) -> str:
    final = hit.written in hit.lex.final and hit.ends_sentence()
    return hit.lex.abbreviations[hit.written] + "." * final


def _numero(hit: Hit) -> str:
    return hit.lex.numero[hit[1]] + " "


def _number_sign(hit: Hit) -> str:  # #5
    return hit.lex.number_sign.format(amount(parse(hit[1], hit.lex.language), hit.lex))


def _hashtag(hit: Hit) -> str:
    return hit.lex.hashtag + " "


def _decade(hit: Hit) -> str:  # the 1990s: "the nineteen nineties"
    said = year(int(hit[1] + hit[2] + "0"), "en") if hit[1] else amount(
        parse(hit[3] + "0", "en"), hit.lex)
    return said[:-1] + "ies" if said.endswith("y") else said + "s"


def _version(hit: Hit) -> str:
    parts = hit.written.split(".")
    if hit.lex.language in ("fr", "de", "es", "it") and len(parts[0]) <= 3 and all(
            len(part) == 3 for part in parts[1:]):  # 1.234.567: thousands
        return amount(parse(hit.written, hit.lex.language), hit.lex)
    return f" {hit.lex.url[1]} ".join(amount(parse(part, "en"), hit.lex) for part in parts)


def _symbol(hit: Hit) -> str:
    word = hit.lex.symbols[hit.written]
    before, after = hit.before, hit.after
    left = " " if before and not before[-1].isspace() else ""
    right = " " if after and not after[0].isspace() and after[0] not in "&+=@~" else ""
    return f"{left}{word}{right}"


def _number(hit: Hit) -> str:
    lex, language, after = hit.lex, hit.lex.language, hit.after
    number = parse(hit.written, language)
    n = number.integer
    if n is not None and n > 0 and number.whole[0] != "0":
        if language == "ko":
            if after.startswith("월") and n in (6, 10):
                return "유" if n == 6 else "시"  # 유월, 시월
            if n <= 99 and after.startswith(KO_NATIVE_COUNTERS) and not after.startswith("개월"):
                return native(n)
        elif language == "zh":
            if after.startswith("年") and len(hit.written) == 4:
                return digits(hit.written, language)  # 二零二六年
            if after[:1] in ZH_MEASURES:
                return before_noun(amount(number, lex), language)
        elif _is_year(hit, n):
            return year(n, language)
    said = amount(number, lex)
    noun = _next_noun(after) if language == "es" else ""
    if noun:  # veintiún años, veintiuna horas
        feminine = noun.endswith(("a", "as")) and noun not in ES_MASCULINE_A
        said = before_noun(said, language, feminine=feminine)
    return said


def _is_year(hit: Hit, n: int) -> bool:
    """A bare 4-digit number read as a year: 1100-1999 always ("fifteen hundred people" is
    said too), 1000-2099 after a cue word (in, since, im Jahr) or before punctuation."""
    if len(hit.written) != 4 or not 1000 <= n <= 2099:
        return False
    if 1100 <= n <= 1999:
        return True
    words = hit.before.split()
    rest = hit.after
    return bool(words and words[-1].lower() in hit.lex.year_cues) or not rest.strip() or (
        rest[0] in CLOSERS)


def _next_noun(after: str) -> str:
    """The Spanish word after a number when it looks like the noun it counts, else ""."""
    if not after.startswith(" "):
        return ""
    word = after[1:].split(" ", 1)[0].rstrip(CLOSERS)
    return word if word.isalpha() and word.islower() and word not in ES_NOT_NOUNS else ""


def _rules(lex: Lexicon) -> list[tuple[str | None, Reader]]:
    """Every form ``lex``'s language recognizes, in the order they are tried at one place."""
    language = lex.language
    number, signed = p.number(language), p.signed(language)
    scale = r"(?:\s(million|billion|trillion|thousand)(?!\w))?" if language == "en" else "()"
    units = p.alternation(lex.units)
    rules: list[tuple[str | None, Reader]] = [
        (p.TAG, _as_is), (p.URL, _address), (p.EMAIL, _address), (p.DOMAIN, _address),
        *((phone_pattern, _phone) for phone_pattern in p.phones(language)),
        (p.numeric_dates(language)[0], _iso_date),
        *((pattern, _numeric_date) for pattern in p.numeric_dates(language)[1:]),
        (p.HYPHENATED_PHONE, _phone),
        (p.day_month(lex), _day_month), (p.month_day(lex), _month_day),
        *((pattern, _time) for pattern in p.TIMES[language]),
        (p.DECADE if language == "en" else None, _decade),
        (rf"((?<![^\s(\[])[-−])?({p.currencies()})\s?({number}){scale}", _money_before),
        (rf"({signed})\s?({p.currencies()}){p.LATIN_AFTER}", _money_after),
        (rf"({signed})\s?%", _percent),
        (rf"({signed})\s?({units})(?![A-Za-zÀ-ÖØ-öø-ÿ\d/'’])", _measure),
        (p.ORDINALS.get(language), _ordinal),
        (p.GERMAN_ORDINAL if language == "de" else None, _german_ordinal),
        (rf"(?<![\w.])(?:{p.alternation(lex.titles)})(?=\s+[A-ZÀ-ÖØ-Þ])" if lex.titles
         else None, _title),
        (rf"(?<![\w.])(?:{p.alternation(lex.abbreviations)})(?!\w)" if lex.abbreviations
         else None, _abbreviation),
        (rf"(?<![\w.])({p.alternation(lex.numero)})\s?(?=\d)" if lex.numero else None,
         _numero),
        (rf"(?<!\w)#({number})(?!\w)", _number_sign),
        (p.HASHTAG, _hashtag),
        (p.VERSION, _version),
        (rf"{signed}{p.LATIN_AFTER}", _number),
        (p.SYMBOLS, _symbol),
    ]
    return rules


# The readers of the rules that can start with a letter (Dr., January, www, jane@, USD 5, am
# 3. Mai): the only ones tried at the start of a word, the most common place to try.
WORD_READERS = frozenset({_address, _numeric_date, _day_month, _month_day, _german_ordinal,
                          _money_before, _title, _abbreviation, _numero})


@functools.cache
def _grammar(language: str, *, words: bool = False) -> tuple[re.Pattern[str], dict[int, Reader]]:
    """One regular expression for all of a language's rules (``words``: those that can start
    with a letter), and each rule's reader by the number of its outer group
    (``Match.lastindex``: the outer group closes last)."""
    parts, readers, group = [], {}, 1
    for pattern, reader in _rules(LEXICONS[language]):
        if pattern is None or (words and reader not in WORD_READERS):
            continue
        parts.append(f"({pattern})")
        readers[group] = reader
        group += 1 + re.compile(pattern).groups
    return re.compile("|".join(parts)), readers


def _language(language: str) -> Lexicon | None:
    return LEXICONS.get(language.lower().replace("_", "-").split("-")[0])


def normalize(text: str, language: str = "en") -> str:
    """The words a model should read for ``text``, in ``language``; unknown language: unchanged.

    ``language`` is one of :data:`LANGUAGES` (a tag such as "en-US" counts as its language).
    Emotion tags (``<laugh>``, ``<한숨>``: angle brackets, no spaces) pass through untouched,
    and text with nothing to normalize comes back as the same string.
    """
    lex = _language(language)
    if lex is None or not text:
        return text
    everything, word = _grammar(lex.language), _grammar(lex.language, words=True)
    pieces: list[str] = []
    done = 0
    for candidate in CANDIDATES.finditer(text):
        start = candidate.start()
        if start < done:
            continue
        grammar, readers = word if candidate.group().isalpha() else everything
        match = grammar.match(text, start)
        if match is None:
            continue
        group = match.lastindex or 0
        pieces += (text[done:start], readers[group](Hit(match, group, lex)))
        done = match.end()
    if not pieces:
        return text
    said = "".join(pieces) + text[done:]
    return text if said == text else said


def say_as(text: str, interpret_as: str, language: str = "en", format: str | None = None) -> str:
    """SSML <say-as>: interpret-as cardinal, ordinal, digits, characters/spell-out, telephone,
    date (format e.g. "mdy", "dmy", "ymd"), time, currency, fraction, unit, verbatim; an unknown
    interpret-as: normalize(text, language)."""
    lex = _language(language)
    if lex is None:
        return text
    reader = READERS.get(interpret_as.strip().lower())
    said = reader(text.strip(), lex, format) if reader else None
    return normalize(text, language) if said is None else said
