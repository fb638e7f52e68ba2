"""The words text normalization says, per language: month names, abbreviations, symbols, units,
URL and e-mail punctuation. Data only; the numbers themselves come from num2words, cn2an and
indic-numtowords (``numerals.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


class Unit(NamedTuple):
    """How a measure is said: templates with ``{}`` for the number's words."""

    one: str
    many: str
    feminine: bool = False  # the noun is feminine: une heure, una hora, eine Stunde
    native: bool = False  # Korean: counted with native numerals (세 시간)


@dataclass(frozen=True)
class Lexicon:
    """The words ``normalize`` uses for one language."""

    language: str
    months: tuple[str, ...]  # January..December, as said
    month_spellings: Mapping[str, int]  # written names and abbreviations (no dot) -> 1..12
    titles: Mapping[str, str] = field(default_factory=dict)  # expanded before a name: Dr. Smith
    abbreviations: Mapping[str, str] = field(default_factory=dict)  # expanded anywhere
    final: frozenset[str] = frozenset()  # abbreviations that may end a sentence (etc.)
    numero: Mapping[str, str] = field(default_factory=dict)  # said only before a number: No. 5
    symbols: Mapping[str, str] = field(default_factory=dict)  # & + = @ ~
    number_sign: str = "{}"  # "#5", with {} for the number's words
    hashtag: str = "hashtag"
    units: Mapping[str, Unit] = field(default_factory=dict)  # km, kg, °C, ... after a number
    percent: str = "{} %"
    # How an address says @ . / - _: jane dot doe at example dot com.
    url: tuple[str, str, str, str, str] = ("at", "dot", "slash", "dash", "underscore")
    point: str = "."  # the decimal separator's word
    minus: str = "minus"
    year_cues: frozenset[str] = frozenset()  # lower-case words after which 2026 is a year
    currencies: Mapping[str, Unit] = field(default_factory=dict)  # where num2words has none
    day_first: bool = True  # 5/1/2026 is the 5th of January


def _spellings(names: str, extra: str = "") -> dict[str, int]:
    """Month names (12, space-separated) and ``name:month`` abbreviations -> month number."""
    table = {name: i for i, name in enumerate(names.split(), start=1)}
    table.update({k: int(v) for k, v in (pair.split(":") for pair in extra.split())})
    return table


def _units(pairs: Mapping[str, tuple[str, str] | Unit]) -> dict[str, Unit]:
    table = {key: v if isinstance(v, Unit) else Unit(*v) for key, v in pairs.items()}
    table["L"], table["mL"] = table["l"], table["ml"]
    return table


EN_MONTHS = "January February March April May June July August September October November December"
FR_MONTHS = "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
DE_MONTHS = "Januar Februar März April Mai Juni Juli August September Oktober November Dezember"
ES_MONTHS = ("enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
             "diciembre")
IT_MONTHS = ("gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre "
             "novembre dicembre")
HI_MONTHS = "जनवरी फ़रवरी मार्च अप्रैल मई जून जुलाई अगस्त सितंबर अक्टूबर नवंबर दिसंबर"
KO_MONTHS = "일월 이월 삼월 사월 오월 유월 칠월 팔월 구월 시월 십일월 십이월"
ZH_MONTHS = "一月 二月 三月 四月 五月 六月 七月 八月 九月 十月 十一月 十二月"

EN = Lexicon(
    "en", tuple(EN_MONTHS.split()),
    _spellings(EN_MONTHS, "Jan:1 Feb:2 Mar:3 Apr:4 Jun:6 Jul:7 Aug:8 Sep:9 Sept:9 Oct:10 "
               "Nov:11 Dec:12"),
    titles={"Dr.": "Doctor", "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "St.": "Saint",
            "Prof.": "Professor", "Jr.": "Junior", "Sr.": "Senior", "Mt.": "Mount"},
    abbreviations={"vs.": "versus", "etc.": "et cetera", "e.g.": "for example",
                   "i.e.": "that is", "approx.": "approximately", "St.": "Street",
                   "Ave.": "Avenue", "min.": "minimum", "max.": "maximum"},
    final=frozenset({"etc."}), numero={"No.": "number", "no.": "number"},
    symbols={"&": "and", "+": "plus", "=": "equals", "@": "at", "~": "about"},
    number_sign="number {}",
    units=_units({
        "km": ("{} kilometer", "{} kilometers"), "m": ("{} meter", "{} meters"),
        "cm": ("{} centimeter", "{} centimeters"), "mm": ("{} millimeter", "{} millimeters"),
        "kg": ("{} kilogram", "{} kilograms"), "g": ("{} gram", "{} grams"),
        "l": ("{} liter", "{} liters"), "ml": ("{} milliliter", "{} milliliters"),
        "km/h": ("{} kilometer per hour", "{} kilometers per hour"),
        "mph": ("{} mile per hour", "{} miles per hour"),
        "°C": ("{} degree Celsius", "{} degrees Celsius"),
        "°F": ("{} degree Fahrenheit", "{} degrees Fahrenheit"),
        "°": ("{} degree", "{} degrees"), "h": ("{} hour", "{} hours"),
        "min": ("{} minute", "{} minutes"), "s": ("{} second", "{} seconds")}),
    percent="{} percent", point="point",
    year_cues=frozenset({"in", "since", "by", "from", "until", "till", "of", "year", "before",
                         "after", "around", "circa", "during", "early", "late", "mid"}),
    currencies={"JPY": Unit("{} yen", "{} yen"), "KRW": Unit("{} won", "{} won"),
                "CNY": Unit("{} yuan", "{} yuan")},
    day_first=False,
)

FR = Lexicon(
    "fr", tuple(FR_MONTHS.split()),
    _spellings(FR_MONTHS, "janv:1 févr:2 fév:2 avr:4 juil:7 sept:9 oct:10 nov:11 déc:12"),
    titles={"M.": "Monsieur", "MM.": "Messieurs", "Mme": "Madame", "Mmes": "Mesdames",
            "Mlle": "Mademoiselle", "Mlles": "Mesdemoiselles", "Dr": "Docteur",
            "Dr.": "Docteur", "Pr": "Professeur", "Pr.": "Professeur", "St": "Saint",
            "Ste": "Sainte"},
    abbreviations={"etc.": "et cetera", "p. ex.": "par exemple", "cf.": "confer",
                   "env.": "environ", "c.-à-d.": "c'est-à-dire", "av.": "avenue",
                   "tél.": "téléphone", "Tél.": "Téléphone",
                   "bd": "boulevard"},
    final=frozenset({"etc."}), numero={"n°": "numéro", "nº": "numéro", "No": "numéro"},
    symbols={"&": "et", "+": "plus", "=": "égale", "@": "arobase", "~": "environ"},
    number_sign="numéro {}",
    units=_units({
        "km": ("{} kilomètre", "{} kilomètres"), "m": ("{} mètre", "{} mètres"),
        "cm": ("{} centimètre", "{} centimètres"), "mm": ("{} millimètre", "{} millimètres"),
        "kg": ("{} kilogramme", "{} kilogrammes"), "g": ("{} gramme", "{} grammes"),
        "l": ("{} litre", "{} litres"), "ml": ("{} millilitre", "{} millilitres"),
        "km/h": ("{} kilomètre-heure", "{} kilomètres-heure"),
        "mph": ("{} mile à l'heure", "{} miles à l'heure"),
        "°C": ("{} degré Celsius", "{} degrés Celsius"),
        "°F": ("{} degré Fahrenheit", "{} degrés Fahrenheit"),
        "°": ("{} degré", "{} degrés"), "h": Unit("{} heure", "{} heures", feminine=True),
        "min": Unit("{} minute", "{} minutes", True),
        "s": Unit("{} seconde", "{} secondes", True)}),
    percent="{} pour cent", url=("arobase", "point", "slash", "tiret", "tiret bas"),
    point="virgule", minus="moins",
    currencies={"JPY": Unit("{} yen", "{} yens"), "KRW": Unit("{} won", "{} wons"),
                "INR": Unit("{} roupie", "{} roupies", True)},
)

DE = Lexicon(
    "de", tuple(DE_MONTHS.split()),
    _spellings(DE_MONTHS, "Jan:1 Feb:2 Mär:3 Apr:4 Jun:6 Jul:7 Aug:8 Sep:9 Sept:9 Okt:10 "
               "Nov:11 Dez:12"),
    titles={"Hr.": "Herr", "Hrn.": "Herrn", "Fr.": "Frau", "Dr.": "Doktor",
            "Prof.": "Professor"},
    abbreviations={"z.B.": "zum Beispiel", "z. B.": "zum Beispiel", "Z.B.": "Zum Beispiel",
                   "usw.": "und so weiter", "ca.": "circa", "bzw.": "beziehungsweise",
                   "d.h.": "das heißt", "d. h.": "das heißt", "u.a.": "unter anderem",
                   "u. a.": "unter anderem", "inkl.": "inklusive", "evtl.": "eventuell",
                   "ggf.": "gegebenenfalls", "vgl.": "vergleiche", "Str.": "Straße",
                   "bzgl.": "bezüglich", "zzgl.": "zuzüglich", "Tel.": "Telefon"},
    final=frozenset({"usw."}), numero={"Nr.": "Nummer"},
    symbols={"&": "und", "+": "plus", "=": "gleich", "@": "at", "~": "etwa"},
    number_sign="Nummer {}", hashtag="Hashtag",
    units=_units({
        "km": ("{} Kilometer", "{} Kilometer"), "m": ("{} Meter", "{} Meter"),
        "cm": ("{} Zentimeter", "{} Zentimeter"), "mm": ("{} Millimeter", "{} Millimeter"),
        "kg": ("{} Kilogramm", "{} Kilogramm"), "g": ("{} Gramm", "{} Gramm"),
        "l": ("{} Liter", "{} Liter"), "ml": ("{} Milliliter", "{} Milliliter"),
        "km/h": ("{} Kilometer pro Stunde", "{} Kilometer pro Stunde"),
        "mph": ("{} Meile pro Stunde", "{} Meilen pro Stunde"),
        "°C": ("{} Grad Celsius", "{} Grad Celsius"),
        "°F": ("{} Grad Fahrenheit", "{} Grad Fahrenheit"), "°": ("{} Grad", "{} Grad"),
        "h": Unit("{} Stunde", "{} Stunden", True), "min": Unit("{} Minute", "{} Minuten", True),
        "s": Unit("{} Sekunde", "{} Sekunden", True)}),
    percent="{} Prozent", url=("at", "Punkt", "Schrägstrich", "Bindestrich", "Unterstrich"),
    point="Komma",
    year_cues=frozenset({"im", "jahr", "jahre", "jahres", "seit", "bis", "von", "ab", "anno",
                         "vor", "nach", "um", "sommer", "winter", "frühjahr", "herbst"}),
    currencies={"JPY": Unit("{} Yen", "{} Yen"), "KRW": Unit("{} Won", "{} Won"),
                "INR": Unit("{} Rupie", "{} Rupien", True)},
)

ES = Lexicon(
    "es", tuple(ES_MONTHS.split()),
    _spellings(ES_MONTHS, "setiembre:9 ene:1 feb:2 mar:3 abr:4 jun:6 jul:7 ago:8 sept:9 "
               "oct:10 nov:11 dic:12"),
    titles={"Sr.": "señor", "Sra.": "señora", "Srta.": "señorita", "Dr.": "doctor",
            "Dra.": "doctora", "Lic.": "licenciado", "Prof.": "profesor", "D.": "don",
            "Dña.": "doña"},
    abbreviations={"etc.": "etcétera", "p. ej.": "por ejemplo", "p.ej.": "por ejemplo",
                   "Ud.": "usted", "Uds.": "ustedes", "aprox.": "aproximadamente",
                   "Avda.": "avenida", "Av.": "avenida", "EE. UU.": "Estados Unidos",
                   "EE.UU.": "Estados Unidos"},
    final=frozenset({"etc."}),
    numero={"n.º": "número", "nº": "número", "núm.": "número", "No.": "número"},
    symbols={"&": "y", "+": "más", "=": "igual a", "@": "arroba", "~": "aproximadamente"},
    number_sign="número {}",
    units=_units({
        "km": ("{} kilómetro", "{} kilómetros"), "m": ("{} metro", "{} metros"),
        "cm": ("{} centímetro", "{} centímetros"), "mm": ("{} milímetro", "{} milímetros"),
        "kg": ("{} kilogramo", "{} kilogramos"), "g": ("{} gramo", "{} gramos"),
        "l": ("{} litro", "{} litros"), "ml": ("{} mililitro", "{} mililitros"),
        "km/h": ("{} kilómetro por hora", "{} kilómetros por hora"),
        "mph": Unit("{} milla por hora", "{} millas por hora", True),
        "°C": ("{} grado Celsius", "{} grados Celsius"),
        "°F": ("{} grado Fahrenheit", "{} grados Fahrenheit"),
        "°": ("{} grado", "{} grados"), "h": Unit("{} hora", "{} horas", True),
        "min": ("{} minuto", "{} minutos"), "s": ("{} segundo", "{} segundos")}),
    percent="{} por ciento", url=("arroba", "punto", "barra", "guion", "guion bajo"),
    point="coma", minus="menos",
)

IT = Lexicon(
    "it", tuple(IT_MONTHS.split()),
    _spellings(IT_MONTHS, "gen:1 feb:2 mar:3 apr:4 mag:5 giu:6 lug:7 ago:8 set:9 sett:9 "
               "ott:10 nov:11 dic:12"),
    titles={"Sig.": "signor", "Sig.ra": "signora", "Sig.na": "signorina", "Sigg.": "signori",
            "Dott.": "dottor", "Dott.ssa": "dottoressa", "Prof.": "professor",
            "Prof.ssa": "professoressa", "Ing.": "ingegner", "Avv.": "avvocato"},
    abbreviations={"ecc.": "eccetera", "es.": "ad esempio", "ca.": "circa", "pag.": "pagina",
                   "p.es.": "per esempio"},
    final=frozenset({"ecc."}), numero={"n.": "numero", "nr.": "numero"},
    symbols={"&": "e", "+": "più", "=": "uguale a", "@": "chiocciola", "~": "circa"},
    number_sign="numero {}",
    units=_units({
        "km": ("{} chilometro", "{} chilometri"), "m": ("{} metro", "{} metri"),
        "cm": ("{} centimetro", "{} centimetri"), "mm": ("{} millimetro", "{} millimetri"),
        "kg": ("{} chilo", "{} chili"), "g": ("{} grammo", "{} grammi"),
        "l": ("{} litro", "{} litri"), "ml": ("{} millilitro", "{} millilitri"),
        "km/h": ("{} chilometro orario", "{} chilometri orari"),
        "mph": Unit("{} miglio orario", "{} miglia orarie"),
        "°C": ("{} grado Celsius", "{} gradi Celsius"),
        "°F": ("{} grado Fahrenheit", "{} gradi Fahrenheit"),
        "°": ("{} grado", "{} gradi"), "h": Unit("un'ora", "{} ore", True),
        "min": ("{} minuto", "{} minuti"), "s": ("{} secondo", "{} secondi")}),
    percent="{} per cento", url=("chiocciola", "punto", "slash", "trattino", "trattino basso"),
    point="virgola", minus="meno",
    currencies={"JPY": Unit("{} yen", "{} yen"), "KRW": Unit("{} won", "{} won"),
                "INR": Unit("{} rupia", "{} rupie", True)},
)

KO = Lexicon(
    "ko", tuple(KO_MONTHS.split()), {},
    symbols={"&": "앤드", "+": "더하기", "=": "이퀄", "@": "앳", "~": "약"},
    number_sign="{}번", hashtag="해시태그",
    units=_units({
        "km": ("{} 킬로미터", "{} 킬로미터"), "m": ("{} 미터", "{} 미터"),
        "cm": ("{} 센티미터", "{} 센티미터"), "mm": ("{} 밀리미터", "{} 밀리미터"),
        "kg": ("{} 킬로그램", "{} 킬로그램"), "g": ("{} 그램", "{} 그램"),
        "l": ("{} 리터", "{} 리터"), "ml": ("{} 밀리리터", "{} 밀리리터"),
        "km/h": ("시속 {} 킬로미터", "시속 {} 킬로미터"), "mph": ("시속 {} 마일", "시속 {} 마일"),
        "°C": ("섭씨 {} 도", "섭씨 {} 도"), "°F": ("화씨 {} 도", "화씨 {} 도"),
        "°": ("{} 도", "{} 도"), "h": Unit("{} 시간", "{} 시간", native=True),
        "min": ("{} 분", "{} 분"), "s": ("{} 초", "{} 초")}),
    percent="{} 퍼센트", url=("앳", "닷", "슬래시", "대시", "언더바"), point="점",
    minus="마이너스",
    currencies={"EUR": Unit("{} 유로", "{} 유로"), "GBP": Unit("{} 파운드", "{} 파운드"),
                "CNY": Unit("{} 위안", "{} 위안"), "INR": Unit("{} 루피", "{} 루피")},
)

ZH = Lexicon(
    "zh", tuple(ZH_MONTHS.split()), {},
    symbols={"&": "和", "+": "加", "=": "等于", "@": "艾特", "~": "大约"},
    number_sign="{}号", hashtag="话题",
    units=_units({
        "km": ("{}公里", "{}公里"), "m": ("{}米", "{}米"), "cm": ("{}厘米", "{}厘米"),
        "mm": ("{}毫米", "{}毫米"), "kg": ("{}公斤", "{}公斤"), "g": ("{}克", "{}克"),
        "l": ("{}升", "{}升"), "ml": ("{}毫升", "{}毫升"),
        "km/h": ("每小时{}公里", "每小时{}公里"), "mph": ("每小时{}英里", "每小时{}英里"),
        "°C": ("{}摄氏度", "{}摄氏度"), "°F": ("{}华氏度", "{}华氏度"), "°": ("{}度", "{}度"),
        "h": ("{}小时", "{}小时"), "min": ("{}分钟", "{}分钟"), "s": ("{}秒", "{}秒")}),
    percent="百分之{}", url=("艾特", "点", "斜杠", "横杠", "下划线"), point="点",
    minus="负",
    currencies={"CNY": Unit("{}元", "{}元"), "USD": Unit("{}美元", "{}美元"),
                "EUR": Unit("{}欧元", "{}欧元"), "GBP": Unit("{}英镑", "{}英镑"),
                "JPY": Unit("{}日元", "{}日元"), "KRW": Unit("{}韩元", "{}韩元"),
                "INR": Unit("{}卢比", "{}卢比")},
)

HI = Lexicon(
    "hi", tuple(HI_MONTHS.split()), _spellings(HI_MONTHS),
    symbols={"&": "और", "+": "प्लस", "=": "बराबर", "@": "ऐट", "~": "लगभग"},
    number_sign="नंबर {}", hashtag="हैशटैग",
    units=_units({
        "km": ("{} किलोमीटर", "{} किलोमीटर"), "m": ("{} मीटर", "{} मीटर"),
        "cm": ("{} सेंटीमीटर", "{} सेंटीमीटर"), "mm": ("{} मिलीमीटर", "{} मिलीमीटर"),
        "kg": ("{} किलोग्राम", "{} किलोग्राम"), "g": ("{} ग्राम", "{} ग्राम"),
        "l": ("{} लीटर", "{} लीटर"), "ml": ("{} मिलीलीटर", "{} मिलीलीटर"),
        "km/h": ("{} किलोमीटर प्रति घंटा", "{} किलोमीटर प्रति घंटा"),
        "mph": ("{} मील प्रति घंटा", "{} मील प्रति घंटा"),
        "°C": ("{} डिग्री सेल्सियस", "{} डिग्री सेल्सियस"),
        "°F": ("{} डिग्री फ़ारेनहाइट", "{} डिग्री फ़ारेनहाइट"), "°": ("{} डिग्री", "{} डिग्री"),
        "h": ("{} घंटा", "{} घंटे"), "min": ("{} मिनट", "{} मिनट"), "s": ("{} सेकंड", "{} सेकंड")}),
    percent="{} प्रतिशत", url=("ऐट", "डॉट", "स्लैश", "डैश", "अंडरस्कोर"), point="दशमलव",
    minus="माइनस",
    currencies={"INR": Unit("{} रुपया", "{} रुपये"), "USD": Unit("{} डॉलर", "{} डॉलर"),
                "EUR": Unit("{} यूरो", "{} यूरो"), "GBP": Unit("{} पाउंड", "{} पाउंड"),
                "JPY": Unit("{} येन", "{} येन"), "KRW": Unit("{} वॉन", "{} वॉन"),
                "CNY": Unit("{} युआन", "{} युआन")},
)

LEXICONS: Mapping[str, Lexicon] = {lex.language: lex for lex in (EN, FR, DE, ES, IT, KO, ZH, HI)}

# Written currency signs and codes -> ISO 4217 codes; "¥" is the yuan in Chinese text.
CURRENCY_SIGNS: Mapping[str, str] = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY",
                                     "₩": "KRW", "₹": "INR"}
CURRENCY_CODES = ("USD", "EUR", "GBP", "JPY", "KRW", "INR", "CNY")
