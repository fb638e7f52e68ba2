"""How a language says a recognized form: an amount, a measure, money, a date, a time, a phone
number, a web address, a fraction. Pure functions of parsed values; ``normalize.py`` finds the
forms in text and ``say_as`` names them."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import NamedTuple

from .lexicon import CURRENCY_SIGNS, Lexicon, Unit
from .numerals import (
    MAX_DIGITS,
    before_noun,
    cardinal,
    currency,
    currency_name,
    decimal,
    digits,
    native,
    ordinal,
    year,
)

GROUPED = frozenset({"fr", "de", "es", "it"})  # 1.234,5 (and 1 234,5) rather than 1,234.5
PIECES = re.compile(r"(\d++)|([^\W\d_]++)|(.)", re.DOTALL)
SCHEME = re.compile(r"(?i:https?://)")
# Denominators with names of their own (one, several); the others are ordinals (fifths).
FRACTION_NAMES = {
    "en": {2: ("half", "halves"), 4: ("quarter", "quarters")},
    "fr": {2: ("demi", "demis"), 3: ("tiers", "tiers"), 4: ("quart", "quarts")},
    "de": {2: ("halb", "halbe")},
    "es": {2: ("medio", "medios"), 3: ("tercio", "tercios"), 4: ("cuarto", "cuartos")},
    "it": {2: ("mezzo", "mezzi")},
}


class Amount(NamedTuple):
    """A number as written, taken apart: its sign, integer digits, fractional digits."""

    negative: bool
    whole: str
    fraction: str = ""
    separator: str = "."  # the decimal separator as written

    @property
    def value(self) -> Decimal:
        sign = "-" if self.negative else ""
        return Decimal(f"{sign}{self.whole}.{self.fraction or 0}")

    @property
    def is_one(self) -> bool:
        return not self.negative and not self.fraction and self.whole.lstrip("0") == "1"

    @property
    def integer(self) -> int | None:
        """The value when it is a whole number (of at most ``MAX_DIGITS``), else None."""
        if self.fraction or len(self.whole) > MAX_DIGITS:
            return None
        return int(self.whole) * (-1 if self.negative else 1)


def parse(written: str, language: str) -> Amount:
    """``written`` ("-1,234.5"; "1.234,5" or "1 234,5" in fr, de, es, it) taken apart."""
    negative = written[:1] in ("-", "−")
    text = written.lstrip("-−").replace("\u00a0", " ").replace("\u202f", " ")
    if language in GROUPED:
        whole, separator, fraction = text.rpartition(",")
        if not separator:
            head, separator, tail = text.rpartition(".")
            if separator and len(tail) != 3:  # 1.5: a decimal point, not 1.500
                whole, fraction = head, tail
            else:
                whole, fraction, separator = text, "", ","
        return Amount(negative, whole.replace(".", "").replace(" ", ""), fraction, separator)
    whole, _, fraction = text.replace(",", "").partition(".")
    return Amount(negative, whole, fraction, ".")


def amount(number: Amount, lex: Lexicon) -> str:
    """A number in words: "minus three point five", "mille deux cent trente-quatre"."""
    language = lex.language
    if len(number.whole) > MAX_DIGITS or (number.whole[:1] == "0" and len(number.whole) > 1
                                           and not number.fraction):
        said = digits(number.whole, language)  # 007, an account number
    elif number.fraction:
        point = "punto" if language == "es" and number.separator == "." else lex.point
        said = decimal(number.whole, number.fraction, language, point)
    else:
        said = cardinal(int(number.whole), language)
    if not number.negative:
        return said
    return f"{lex.minus}{'' if language == 'zh' else ' '}{said}"


def counted(number: Amount, unit: Unit, lex: Lexicon) -> str:
    """``number`` of ``unit``: "one kilometer", "vingt et une heures", "세 시간"."""
    n = number.integer
    if lex.language == "ko" and unit.native and n is not None and 1 <= n <= 99:
        said = native(n)
    else:
        said = before_noun(amount(number, lex), lex.language, feminine=unit.feminine)
    return (unit.one if number.is_one else unit.many).format(said)


def measure(number: Amount, symbol: str, lex: Lexicon) -> str:
    """A number with a unit symbol: "5 km" -> "five kilometers"."""
    return counted(number, lex.units[symbol], lex)


def percent(number: Amount, lex: Lexicon) -> str:
    return lex.percent.format(amount(number, lex))


def currency_code(sign: str, lex: Lexicon) -> str:
    """The ISO code a currency sign or code stands for; "¥" is the yuan in Chinese."""
    return "CNY" if sign == "¥" and lex.language == "zh" else CURRENCY_SIGNS.get(sign, sign)


def money(number: Amount, code: str, lex: Lexicon, scale: str = "") -> str:
    """An amount of a currency: "$4.50" -> "four dollars and fifty cents"."""
    if number.negative:  # said the same way everywhere (and num2words' it can't)
        spaced = "" if lex.language == "zh" else " "
        return f"{lex.minus}{spaced}{money(number._replace(negative=False), code, lex, scale)}"
    if not scale and len(number.whole) <= MAX_DIGITS:
        said = currency(number.value, code, lex.language)
        if said is not None:
            return said
    name = currency_name(code, lex.language) or code
    unit = lex.currencies.get(code, Unit(f"{{}} {name}", f"{{}} {name}"))
    if scale:  # $5 million: "five million dollars"
        return unit.many.format(f"{amount(number, lex)} {scale}")
    return counted(number._replace(fraction=number.fraction.rstrip("0")), unit, lex)


def date(lex: Lexicon, y: int | None, m: int | None, d: int | None, *,
         article: str | None = None, day_first: bool = False) -> str:
    """A calendar date as said: "January fifth, twenty twenty-six", "am fünften Januar"."""
    language = lex.language
    month = lex.months[m - 1] if m else ""
    said_year = year(y, language) if y is not None else ""
    if language == "zh":
        parts = [f"{said_year}年" if said_year else "", f"{cardinal(m, language)}月" if m else "",
                 f"{cardinal(d, language)}日" if d else ""]
        return "".join(parts)
    if language == "ko":
        return " ".join(p for p in (f"{said_year}년" if said_year else "", month,
                                    f"{cardinal(d, language)}일" if d else "") if p)
    if d is None:
        joint = " de " if language == "es" else " "
        return joint.join(p for p in (month, said_year) if p)
    if language == "en":
        day = ordinal(d, language)
        said = f"the {day} of {month}" if day_first else f"{month} {day}"
        return f"{said}, {said_year}" if said_year else said
    if language == "de":
        day = german_ordinal(d, article) if article else ordinal(d, language) + "r"
        return " ".join(p for p in (day, month, said_year) if p)
    first = {"fr": "premier", "es": "primero", "it": "primo"}.get(language)
    day = first if d == 1 and first else cardinal(d, language)
    if language == "es":
        return f"{day} de {month}" + (f" de {said_year}" if said_year else "")
    return " ".join(p for p in (day, month, said_year) if p)


def german_ordinal(n: int, article: str) -> str:
    """A German ordinal after its article, declined weak: "der dritte", "am dritten"."""
    ending = "" if article.lower() in ("der", "die", "das") else "n"
    return f"{article} {ordinal(n, 'de')}{ending}"


def clock(lex: Lexicon, h: int, m: int, s: int | None = None, meridiem: str | None = None) -> str:
    """A time of day as said: "three thirty PM", "quinze heures trente", "fünfzehn Uhr"."""
    language = lex.language
    hour, minute = cardinal(h, language), cardinal(m, language)
    if language == "en":
        if m == 0:
            said = hour if meridiem else f"{hour} o'clock" if h <= 12 else f"{hour} hundred"
        else:
            said = f"{hour} oh {minute}" if m < 10 else f"{hour} {minute}"
        said += f" {meridiem.upper()}M" if meridiem else ""
    elif language == "fr":
        said = counted(Amount(False, str(h)), Unit("{} heure", "{} heures", True), lex)
        said += f" {before_noun(minute, language, feminine=True)}" if m else ""
    elif language == "de":
        said = f"{before_noun(hour, language)} Uhr" + (f" {minute}" if m else "")
    elif language == "es":
        hour = before_noun(hour, language, feminine=True)
        said = f"{hour} y {minute}" if m else f"{hour} en punto"
        if meridiem:
            said += (" de la mañana" if meridiem == "a" else
                     " de la noche" if 8 <= h < 12 else " de la tarde")
    elif language == "it":
        hour = "una" if h == 1 else hour
        said = f"{hour} e {minute}" if m else hour
    elif language == "ko":
        said = f"{native(h) if 1 <= h <= 99 else hour} 시" + (f" {minute} 분" if m else "")
        said = ({"a": "오전 ", "p": "오후 "}.get(meridiem or "", "")) + said
    elif language == "zh":
        said = f"{before_noun(hour, language)}点" + (f"{'零' * (m < 10)}{minute}分" if m else "")
        said = ({"a": "上午", "p": "下午"}.get(meridiem or "", "")) + said
    else:  # hi
        said = f"{hour} बजकर {minute} मिनट" if m else f"{hour} बजे"
    if s:
        said += f" {measure(Amount(False, str(s)), 's', lex)}"
    return said


def phone(written: str, lex: Lexicon) -> str:
    """A phone number, group by group as written: "plus one, five five five, ..."; French
    pairs as numbers ("zéro six, douze, trente-quatre"), Korean 0 as 공."""
    language = lex.language
    said = []
    for group in re.findall(r"\d+", written):
        if language == "fr" and len(group) == 2:
            pair = cardinal(int(group), language)
            said.append(f"zéro {pair}" if group[0] == "0" else pair)
        else:
            said.append(digits(group, language, zero="공" if language == "ko" else None))
    if language == "ko":  # 공일공 일이삼사
        said = [group.replace(" ", "") for group in said]
    if written.lstrip().startswith("+"):
        said[0] = f"{lex.symbols['+']} {said[0]}"
    return ("，" if language == "zh" else ", ").join(said)


def address(written: str, lex: Lexicon) -> str:
    """A URL or an e-mail address: "example dot com slash docs", "jane dot doe at ..."."""
    at, dot, slash, dash, underscore = lex.url
    names = {"@": at, ".": dot, "/": slash, "-": dash, "_": underscore, ":": "", "?": ""}
    words = []
    for number, letters, other in PIECES.findall(SCHEME.sub("", written, 1).rstrip("/")):
        if number:
            words.append(digits(number, lex.language))
        elif letters:
            words.append(" ".join(letters) if letters.lower() == "www" else letters)
        else:
            words.append(names.get(other, lex.symbols.get(other, other)))
    return " ".join(word for word in words if word)


def fraction(numerator: int, denominator: int, lex: Lexicon) -> str:
    """A fraction: "three quarters", "deux tiers", "fünf Achtel", "cuatro quintos"."""
    language = lex.language
    top = cardinal(numerator, language)
    if language in ("ko", "zh"):
        bottom = cardinal(denominator, language)
        return f"{bottom}분의 {top}" if language == "ko" else f"{bottom}分之{top}"
    if language == "hi":
        return f"{top} बटा {cardinal(denominator, language)}"
    many = numerator != 1
    special = FRACTION_NAMES[language]
    if denominator in special:
        bottom = special[denominator][many]
    elif language == "de":
        bottom = ordinal(denominator, language).capitalize() + "l"  # Drittel, Achtel
    elif language == "es" and denominator > 10:
        bottom = cardinal(denominator, language) + ("avos" if many else "avo")
    else:
        bottom = ordinal(denominator, language)
        if many:
            bottom = bottom[:-1] + "i" if language == "it" else bottom + "s"
    return f"{before_noun(top, language)} {bottom}"
