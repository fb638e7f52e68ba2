"""Numbers as words, per language, from maintained libraries rather than tables of our own:
num2words (https://github.com/savoirfairelinux/num2words) for en, fr, de, es, it and ko;
cn2an (https://github.com/Ailln/cn2an) for zh; indic-numtowords
(https://github.com/AI4Bharat/indic-numtowords) for hi, which has integers only, so its decimals
and ordinals are put together here."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

from num2words import CONVERTER_CLASSES, num2words

NUM2WORDS = frozenset({"en", "fr", "de", "es", "it", "ko"})
MAX_DIGITS = 15  # a longer run of digits is an identifier, read digit by digit
# The word num2words puts between the currency and its cents, per language (its defaults,
# with English's "and" as a speaker says "four dollars and fifty cents").
CENTS_SEPARATORS = {"en": " and", "fr": " et", "de": " und", "es": " con", "it": " e"}
# Fractional digits read as one number ("trois virgule quatorze") rather than one by one.
FRACTION_AS_NUMBER = frozenset({"fr", "es", "it"})
HI_MINUS = "माइनस"
HI_ORDINALS = {1: "पहला", 2: "दूसरा", 3: "तीसरा", 4: "चौथा", 6: "छठा"}  # else -वाँ
# num2words spends tens of microseconds on a number; the same few (digits, days, years) recur.
remembered = functools.lru_cache(maxsize=4096)


@functools.cache
def _cn2an() -> Any:
    import cn2an  # about 0.3 s to import (its character tables): only once zh is asked for

    return cn2an


@functools.cache
def _indic() -> Any:
    import indic_numtowords

    return indic_numtowords


@remembered
def cardinal(n: int, language: str) -> str:
    """``n`` in words: 1234 -> "one thousand two hundred and thirty-four"."""
    if language == "zh":
        return str(_cn2an().an2cn(str(n)))
    if language == "hi":
        words = str(_indic().num2words(str(abs(n)), lang="hi"))
        return f"{HI_MINUS} {words}" if n < 0 else words
    words = str(num2words(n, lang=language))
    return words.replace(",", "") if language == "en" else words


@remembered
def ordinal(n: int, language: str, *, feminine: bool = False) -> str:
    """The ``n``th in words: 21 -> "twenty-first", "vingt et unième", "einundzwanzigste"."""
    if language == "zh":
        return "第" + cardinal(n, language)
    if language == "hi":
        return HI_ORDINALS.get(n) or cardinal(n, language) + "वाँ"
    if language == "ko" and not 1 <= n <= 99:  # num2words' Korean ordinals are 1..99
        return cardinal(n, language) + " 번째"
    words = str(num2words(n, lang=language, to="ordinal")).replace(",", "")
    if feminine and language == "fr" and n == 1:
        return "première"
    if feminine and language in ("es", "it"):
        return " ".join(w[:-1] + "a" if w.endswith("o") else w for w in words.split())
    return words


@remembered
def digits(text: str, language: str, *, zero: str | None = None) -> str:
    """Each digit of ``text`` said on its own: "4567" -> "four five six seven"."""
    if language == "zh":
        return str(_cn2an().an2cn(text, "direct"))
    words = [zero if d == "0" and zero else cardinal(int(d), language) for d in text]
    return " ".join(words)


@remembered
def decimal(whole: str, fraction: str, language: str, point: str) -> str:
    """``whole``.``fraction`` with ``point`` said between: "three point five"."""
    if language == "zh":
        return str(_cn2an().an2cn(f"{int(whole)}.{fraction}"))
    said = cardinal(int(whole), language)
    significant = fraction.lstrip("0")
    if language in FRACTION_AS_NUMBER and 0 < len(significant) <= 3:
        zeros = [cardinal(0, language)] * (len(fraction) - len(significant))
        tail = " ".join([*zeros, cardinal(int(significant), language)])
    else:
        tail = digits(fraction, language)
    return f"{said} {point} {tail}"


@remembered
def year(n: int, language: str) -> str:
    """``n`` said as a year: 2026 -> "twenty twenty-six", 1999 -> "neunzehnhundert..."."""
    if language == "zh":
        return digits(str(n), language)
    if language == "hi":
        if 1100 <= n < 2000 and n % 100:  # उन्नीस सौ निन्यानवे, as years are said
            return f"{cardinal(n // 100, language)} सौ {cardinal(n % 100, language)}"
        return cardinal(n, language)
    if language == "ko":  # num2words' Korean years carry their own 년
        return cardinal(n, language)
    return str(num2words(n, lang=language, to="year")).replace(",", "")


@remembered
def native(n: int) -> str:
    """Korean native numeral before a counter (1..99): 3 -> 세 (세 시), 20 -> 스무."""
    if n == 1:
        return "한"
    words = str(num2words(n, lang="ko", to="ordinal")).removesuffix(" 번째")
    return words[:-1] + "무" if words.endswith("스물") else words


def before_noun(words: str, language: str, *, feminine: bool = False) -> str:
    """A cardinal's form before a noun: "une heure", "veintiún kilómetros", "ein Grad"."""
    if language == "fr" and feminine and (words == "un" or words.endswith((" un", "-un"))):
        return words + "e"
    if language == "es":
        if feminine:
            words = words.replace("cientos", "cientas")
        if words.endswith("veintiuno"):
            return words[:-3] + ("una" if feminine else "ún")
        if words == "uno" or words.endswith(" uno"):
            return words[:-1] + ("a" if feminine else "")
    if language == "it" and words == "uno":
        return "una" if feminine else "un"
    if language == "de" and words == "eins":
        return "eine" if feminine else "ein"
    if language == "zh" and words == "二":
        return "两"
    return words


@remembered
def currency(amount: Decimal, code: str, language: str) -> str | None:
    """``amount`` of ``code`` with num2words' currency words, or None where it has none."""
    if language not in NUM2WORDS:
        return None
    separator = CENTS_SEPARATORS.get(language, "")
    try:
        words = str(num2words(amount, lang=language, to="currency", currency=code,
                              separator=separator))
    except (NotImplementedError, ValueError):
        return None
    if language == "ko":  # 오달러, not 오달러 영센트
        return words.rsplit(" ", 1)[0] if amount == amount.to_integral_value() else words
    if amount == amount.to_integral_value():  # no "and zero cents"
        words = words.rpartition(separator)[0]
    if language == "en":  # as said in the US and the UK: "five euros", "three pounds"
        words = words.replace(",", "").replace(" sterling", "")
        if code == "EUR" and abs(amount) != 1:
            words = words.replace(" euro", " euros", 1)
    return words


def currency_name(code: str, language: str) -> str | None:
    """num2words' plural name of ``code`` in ``language`` ("dollars"), or None."""
    forms = getattr(CONVERTER_CLASSES.get(language), "CURRENCY_FORMS", {}).get(code)
    if not forms:
        return None
    name = str(forms[0][1] if isinstance(forms[0], tuple) else forms[0])
    return {"pounds sterling": "pounds", "euro": "euros"}.get(name, name) if language == "en" \
        else name
