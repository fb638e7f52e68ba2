"""Text normalization (orpheus_ws/text/normalize.py): written text in, the words a native
speaker would read out, per language; and SSML <say-as> for each interpret-as."""

from __future__ import annotations

import random

import pytest

from orpheus_ws.text.interpret import READERS
from orpheus_ws.text.normalize import LANGUAGES, normalize, say_as

ENGLISH = [
    ("I have 3 cats.", "I have three cats."),
    ("1,234 people", "one thousand two hundred and thirty-four people"),
    ("It fell to -5 today.", "It fell to minus five today."),
    ("Pi is about 3.14", "Pi is about three point one four"),
    ("the 1st, 2nd, 3rd and 21st", "the first, second, third and twenty-first"),
    ("It costs $4.50", "It costs four dollars and fifty cents"),
    ("$5 million", "five million dollars"),
    ("€5 or 5 €", "five euros or five euros"),
    ("£3.50 and ¥100", "three pounds and fifty pence and one hundred yen"),
    ("50% off, 100 %", "fifty percent off, one hundred percent"),
    ("See you Jan. 5th!", "See you January fifth!"),
    ("January 5, 2026", "January fifth, twenty twenty-six"),
    ("on 2026-01-05", "on January fifth, twenty twenty-six"),
    ("on 5 January 2026", "on the fifth of January, twenty twenty-six"),
    ("Due 1/5/2026.", "Due January fifth, twenty twenty-six."),
    ("at 3:30 pm", "at three thirty PM"),
    ("Meet at 3:30 p.m. Then we eat.", "Meet at three thirty PM. Then we eat."),
    ("from 15:30 to 2:05", "from fifteen thirty to two oh five"),
    ("at 7 am and at 12:00", "at seven AM and at twelve o'clock"),
    ("In 2026, prices rose.", "In twenty twenty-six, prices rose."),
    ("She was born in 1999.", "She was born in nineteen ninety-nine."),
    ("2026 people came", "two thousand and twenty-six people came"),
    ("the 1990s and the '80s", "the nineteen nineties and the eighties"),
    ("Call +1 555-123-4567 now.",
     "Call plus one, five five five, one two three, four five six seven now."),
    ("or (555) 123-4567", "or five five five, one two three, four five six seven"),
    ("5 km, 3.5 kg and 1 m", "five kilometers, three point five kilograms and one meter"),
    ("It is 25°C (77 °F).",
     "It is twenty-five degrees Celsius (seventy-seven degrees Fahrenheit)."),
    ("60 mph is 100 km/h", "sixty miles per hour is one hundred kilometers per hour"),
    ("in 2 h 10 min 5 s", "in two hours ten minutes five seconds"),
    ("Dr. Smith and Mrs. Jones", "Doctor Smith and Missus Jones"),
    ("Mr. Lee vs. Ms. Kim", "Mister Lee versus Miz Kim"),
    ("St. Louis is on Main St.", "Saint Louis is on Main Street"),
    ("fruit, e.g. apples, i.e. food, etc.",
     "fruit, for example apples, that is food, et cetera."),
    ("approx. 10 km", "approximately ten kilometers"),
    ("No. 5 and #1", "number five and number one"),
    ("Read https://example.com/docs.", "Read example dot com slash docs."),
    ("Visit www.example.org today", "Visit w w w dot example dot org today"),
    ("or example.com/help", "or example dot com slash help"),
    ("Mail jane.doe@example.com!", "Mail jane dot doe at example dot com!"),
    ("R&D, A + B = C", "R and D, A plus B equals C"),
    ("C++ and @jane, #python", "C plus plus and at jane, hashtag python"),
    ("~5 min", "about five minutes"),
    ("version 1.2.3", "version one dot two dot three"),
    ("007", "zero zero seven"),
]

FRENCH = [
    ("J'ai 3 chats.", "J'ai trois chats."),
    ("1 234 personnes", "mille deux cent trente-quatre personnes"),
    ("1.234 personnes", "mille deux cent trente-quatre personnes"),
    ("Il fait -3,5 degrés", "Il fait moins trois virgule cinq degrés"),
    ("le 1er, la 1re, le 2e, le 3ème", "le premier, la première, le deuxième, le troisième"),
    ("le 21e siècle", "le vingt et unième siècle"),
    ("Ça coûte 4,50 €.", "Ça coûte quatre euros et cinquante centimes."),
    ("5 € ou $5", "cinq euros ou cinq dollars"),
    ("50 % des gens", "cinquante pour cent des gens"),
    ("le 5 janvier 2026", "le cinq janvier deux mille vingt-six"),
    ("le 1er mai 2026", "le premier mai deux mille vingt-six"),
    ("le 05/01/2026", "le cinq janvier deux mille vingt-six"),
    ("à 15h30 ou 9 h", "à quinze heures trente ou neuf heures"),
    ("à 21h, à 15:30", "à vingt et une heures, à quinze heures trente"),
    ("en 2026", "en deux mille vingt-six"),
    ("Appelez le 06 12 34 56 78.",
     "Appelez le zéro six, douze, trente-quatre, cinquante-six, soixante-dix-huit."),
    ("+33 6 12 34 56 78",
     "plus trente-trois, six, douze, trente-quatre, cinquante-six, soixante-dix-huit"),
    ("3,5 km et 1 h", "trois virgule cinq kilomètres et une heure"),
    ("Il fait 25 °C.", "Il fait vingt-cinq degrés Celsius."),
    ("M. Dupont et Mme Durand", "Monsieur Dupont et Madame Durand"),
    ("Mlle Martin et Dr Leroy", "Mademoiselle Martin et Docteur Leroy"),
    ("des fruits, p. ex. des pommes, etc.", "des fruits, par exemple des pommes, et cetera."),
    ("n° 5", "numéro cinq"),
    ("https://example.com/docs", "example point com slash docs"),
    ("jane.doe@example.com", "jane point doe arobase example point com"),
    ("A & B, A = B", "A et B, A égale B"),
    ("~5 km", "environ cinq kilomètres"),
]

GERMAN = [
    ("Ich habe 3 Katzen.", "Ich habe drei Katzen."),
    ("1.234 Leute", "eintausendzweihundertvierunddreißig Leute"),
    ("Es sind -3,5 Grad", "Es sind minus drei Komma fünf Grad"),
    ("am 3. Mai", "am dritten Mai"),
    ("Heute ist der 5. Januar 2026.", "Heute ist der fünfte Januar zweitausendsechsundzwanzig."),
    ("Berlin, 5. Januar 2026", "Berlin, fünfter Januar zweitausendsechsundzwanzig"),
    ("am 31.12.2026", "am einunddreißigsten Dezember zweitausendsechsundzwanzig"),
    ("zum 3. Mal", "zum dritten Mal"),
    ("Er wurde 3. in der Wertung", "Er wurde drei. in der Wertung"),
    ("Es kostet 1.234,50 €.",
     "Es kostet eintausendzweihundertvierunddreißig Euro und fünfzig Cent."),
    ("Das kostet 1 € oder $5", "Das kostet ein Euro oder fünf Dollar"),
    ("3,5 % mehr", "drei Komma fünf Prozent mehr"),
    ("um 15:30 Uhr", "um fünfzehn Uhr dreißig"),
    ("um 1 Uhr und um 9:05", "um ein Uhr und um neun Uhr fünf"),
    ("im Jahr 1999", "im Jahr neunzehnhundertneunundneunzig"),
    ("seit 2026", "seit zweitausendsechsundzwanzig"),
    ("Tel. 030 12345678",
     "Telefon null drei null, eins zwei drei vier fünf sechs sieben acht"),
    ("1 kg, 1 h und 20 min", "ein Kilogramm, eine Stunde und zwanzig Minuten"),
    ("100 km/h bei 25 °C", "einhundert Kilometer pro Stunde bei fünfundzwanzig Grad Celsius"),
    ("Hr. Müller und Fr. Schmidt", "Herr Müller und Frau Schmidt"),
    ("Dr. Meier", "Doktor Meier"),
    ("z.B. Äpfel, Birnen usw.", "zum Beispiel Äpfel, Birnen und so weiter."),
    ("ca. 5 km bzw. 6 km", "circa fünf Kilometer beziehungsweise sechs Kilometer"),
    ("Nr. 5", "Nummer fünf"),
    ("www.example.de/hilfe", "w w w Punkt example Punkt de Schrägstrich hilfe"),
    ("max.mustermann@example.de", "max Punkt mustermann at example Punkt de"),
    ("A & B = C", "A und B gleich C"),
]

SPANISH = [
    ("Tengo 3 gatos.", "Tengo tres gatos."),
    ("1.234 personas", "mil doscientas treinta y cuatro personas"),
    ("Hace -2,5 grados", "Hace menos dos coma cinco grados"),
    ("21 años y 21 horas", "veintiún años y veintiuna horas"),
    ("Tengo 1 hermano", "Tengo un hermano"),
    ("el 1º de mayo", "el primero de mayo"),
    ("el 1.er piso, la 3ª vez", "el primer piso, la tercera vez"),
    ("Cuesta 4,50 €.", "Cuesta cuatro euros con cincuenta céntimos."),
    ("$4.50", "cuatro dólares con cincuenta centavos"),
    ("50 % de descuento", "cincuenta por ciento de descuento"),
    ("el 5 de enero de 2026", "el cinco de enero de dos mil veintiséis"),
    ("el 2026-01-05", "el cinco de enero de dos mil veintiséis"),
    ("a las 15:30", "a las quince y treinta"),
    ("a la 1:00", "a la una en punto"),
    ("a las 3:30 p. m.", "a las tres y treinta de la tarde."),
    ("en 2026", "en dos mil veintiséis"),
    ("Llama al 612 34 56 78",
     "Llama al seis uno dos, tres cuatro, cinco seis, siete ocho"),
    ("1 km y 1 h", "un kilómetro y una hora"),
    ("100 km/h a 25 °C", "cien kilómetros por hora a veinticinco grados Celsius"),
    ("Sr. García y Sra. López", "señor García y señora López"),
    ("Dr. Pérez y Dra. Ruiz", "doctor Pérez y doctora Ruiz"),
    ("frutas, p. ej. peras, etc.", "frutas, por ejemplo peras, etcétera."),
    ("ana.garcia@example.es", "ana punto garcia arroba example punto es"),
    ("https://example.es/ayuda", "example punto es barra ayuda"),
    ("A & B = C", "A y B igual a C"),
    ("~5 km", "aproximadamente cinco kilómetros"),
]

ITALIAN = [
    ("Ho 3 gatti.", "Ho tre gatti."),
    ("1.234,5", "milleduecentotrentaquattro virgola cinque"),
    ("il 1º maggio e la 3ª volta", "il primo maggio e la terza volta"),
    ("il 5 gennaio 2026", "il cinque gennaio duemilaventisei"),
    ("Costa 4,50 €.", "Costa quattro euro e cinquanta centesimi."),
    ("50 % in più", "cinquanta per cento in più"),
    ("alle 15:30", "alle quindici e trenta"),
    ("chiama il 347 123 4567",
     "chiama il tre quattro sette, uno due tre, quattro cinque sei sette"),
    ("1 h e 3,5 km", "un'ora e tre virgola cinque chilometri"),
    ("Sig. Rossi e Sig.ra Bianchi", "signor Rossi e signora Bianchi"),
    ("Dott.ssa Neri, mele ecc.", "dottoressa Neri, mele eccetera."),
    ("mario.rossi@example.it", "mario punto rossi chiocciola example punto it"),
]

KOREAN = [
    ("사과 3개", "사과 세개"),
    ("3시 30분", "세시 삼십분"),
    ("15:30에 만나요", "열다섯 시 삼십 분에 만나요"),
    ("2026년 1월 5일", "이천이십육년 일월 오일"),
    ("6월과 10월", "유월과 시월"),
    ("2026-01-05", "이천이십육년 일월 오일"),
    ("5,000원", "오천원"),
    ("₩5,000 또는 $5", "오천원 또는 오달러"),
    ("50%", "오십 퍼센트"),
    ("-3.5", "마이너스 삼 점 오"),
    ("010-1234-5678", "공일공, 일이삼사, 오육칠팔"),
    ("100km/h", "시속 백 킬로미터"),
    ("jane.doe@example.com", "jane 닷 doe 앳 example 닷 com"),
]

CHINESE = [  # cn2an: digits become Chinese numerals; the words around them stay as written
    ("2026年1月5日", "二零二六年一月五日"),
    ("共有2026人", "共有二千零二十六人"),
    ("2个苹果", "两个苹果"),
    ("3.5", "三点五"),
    ("-12", "负十二"),
    ("50%", "百分之五十"),
    ("¥100", "一百元"),
    ("15:30", "十五点三十分"),
    ("138-1234-5678", "一三八，一二三四，五六七八"),
    ("5km", "五公里"),
]

HINDI = [  # indic-numtowords: integers; decimals, years and times put together around them
    ("2026", "दो हज़ार छब्बीस"),
    ("1999 में", "उन्नीस सौ निन्यानवे में"),
    ("1,23,456", "एक लाख तेईस हज़ार चार सौ छप्पन"),
    ("3.5", "तीन दशमलव पाँच"),
    ("50%", "पचास प्रतिशत"),
    ("₹500", "पाँच सौ रुपये"),
    ("15:30", "पंद्रह बजकर तीस मिनट"),
    ("98765 43210", "नौ आठ सात छः पाँच, चार तीन दो एक शून्य"),
]


def cases(language: str, table: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    return [(language, written, said) for written, said in table]


@pytest.mark.parametrize(("language", "written", "said"), [
    *cases("en", ENGLISH), *cases("fr", FRENCH), *cases("de", GERMAN), *cases("es", SPANISH),
    *cases("it", ITALIAN), *cases("ko", KOREAN), *cases("zh", CHINESE), *cases("hi", HINDI),
])
def test_normalize_says_what_a_native_speaker_reads(language: str, written: str,
                                                     said: str) -> None:
    assert normalize(written, language) == said


def test_the_languages() -> None:
    assert frozenset({"en", "fr", "de", "es", "it", "ko", "zh", "hi"}) == LANGUAGES


@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.parametrize("tag", ["<laugh>", "<chuckle>", "<sigh>", "<한숨>", "<笑>"])
def test_emotion_tags_pass_through(language: str, tag: str) -> None:
    assert normalize(f"{tag} 3", language).startswith(f"{tag} ")
    assert normalize(f"Oh{tag}", language) == f"Oh{tag}"


@pytest.mark.parametrize(("language", "text"), [
    ("en", "Nothing to change here, really!"), ("fr", "Rien à changer ici."),
    ("de", "Hier gibt es nichts zu tun."), ("es", "¿Nada que cambiar aquí?"),
    ("it", "Niente da cambiare."), ("ko", "바꿀 것이 없어요."), ("zh", "这里没有什么要改的。"),
    ("hi", "यहाँ कुछ नहीं बदलना है।"), ("en", ""), ("en", "a < b and c > d"),
])
def test_plain_text_comes_back_as_the_same_string(language: str, text: str) -> None:
    assert normalize(text, language) is text


@pytest.mark.parametrize("language", ["xx", "ja", "pt"])
def test_an_unknown_language_is_left_unchanged(language: str) -> None:
    text = "Dr. Smith paid $4.50"
    assert normalize(text, language) is text
    assert say_as("5", "cardinal", language) == "5"


def test_a_language_tag_counts_as_its_language() -> None:
    assert normalize("3 cats", "en-US") == normalize("3 cats", "EN_gb") == "three cats"


@pytest.mark.parametrize("text", ["1" * 5000, "1," * 3000, "a." * 3000, "+1" * 3000,
                                  "www." * 1000, "<a" * 3000, "a@" * 3000, "1.1" * 2000])
def test_long_odd_input_is_read_without_error(text: str) -> None:
    assert normalize(text, "en")


PIECES = [*"0123456789 .,:;-/+()$€£¥₩₹%°#@&=~<>'ºª", "am ", "p.m.", "Jan", "mai", "Uhr",
          "de ", "km", "Dr.", "etc.", "www.", "https://", "a", "B", "年", "시", "में", "st", "1er",
          "der ", "USD", "million", "\u00a0"]


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_any_mix_of_forms_is_read_without_error(language: str) -> None:
    draw = random.Random(language)
    for _ in range(300):
        text = "".join(draw.choice(PIECES) for _ in range(draw.randint(1, 30)))
        assert isinstance(normalize(text, language), str)
        assert isinstance(say_as(text, draw.choice(sorted(READERS)), language), str)


SAY_AS = [
    ("en", "123", "cardinal", None, "one hundred and twenty-three"),
    ("en", "-1,234.5", "cardinal", None,
     "minus one thousand two hundred and thirty-four point five"),
    ("de", "1.234", "cardinal", None, "eintausendzweihundertvierunddreißig"),
    ("en", "3", "ordinal", None, "third"),
    ("fr", "1", "ordinal", None, "premier"),
    ("en", "21st", "ordinal", None, "twenty-first"),
    ("en", "2026", "digits", None, "two zero two six"),
    ("de", "42", "digits", None, "vier zwei"),
    ("en", "AB-12", "characters", None, "A B dash one two"),
    ("en", "NASA", "spell-out", None, "N A S A"),
    ("en", "a.b", "verbatim", None, "a dot b"),
    ("en", "555-1234", "telephone", None, "five five five, one two three four"),
    ("fr", "06 12 34 56 78", "telephone", None,
     "zéro six, douze, trente-quatre, cinquante-six, soixante-dix-huit"),
    ("en", "01/05/2026", "date", "mdy", "January fifth, twenty twenty-six"),
    ("en", "05/01/2026", "date", "dmy", "the fifth of January, twenty twenty-six"),
    ("en", "2026-01-05", "date", "ymd", "January fifth, twenty twenty-six"),
    ("en", "2026-01-05", "date", None, "January fifth, twenty twenty-six"),
    ("fr", "05/01/2026", "date", None, "cinq janvier deux mille vingt-six"),
    ("de", "05.01.2026", "date", "dmy", "fünfter Januar zweitausendsechsundzwanzig"),
    ("en", "12/2026", "date", "my", "December twenty twenty-six"),
    ("en", "3:30pm", "time", None, "three thirty PM"),
    ("fr", "15:30", "time", None, "quinze heures trente"),
    ("de", "15:30", "time", None, "fünfzehn Uhr dreißig"),
    ("en", "$4.50", "currency", None, "four dollars and fifty cents"),
    ("de", "5,50 €", "currency", None, "fünf Euro und fünfzig Cent"),
    ("en", "12", "currency", "EUR", "twelve euros"),
    ("en", "1/2", "fraction", None, "one half"),
    ("en", "3/4", "fraction", None, "three quarters"),
    ("en", "5/8", "fraction", None, "five eighths"),
    ("fr", "2/3", "fraction", None, "deux tiers"),
    ("de", "3/8", "fraction", None, "drei Achtel"),
    ("es", "4/5", "fraction", None, "cuatro quintos"),
    ("it", "3/4", "fraction", None, "tre quarti"),
    ("ko", "3/4", "fraction", None, "사분의 삼"),
    ("en", "5 km", "unit", None, "five kilometers"),
    ("de", "1 h", "unit", None, "eine Stunde"),
    ("en", "3", "unit", "kg", "three kilograms"),
    ("en", "Dr. Who at 3:30 pm", "expletive", None, "Doctor Who at three thirty PM"),
    ("en", "not a number", "cardinal", None, "not a number"),
    ("en", "13/13/2026", "date", "mdy",
     "thirteen slash thirteen slash two thousand and twenty-six"),
]


@pytest.mark.parametrize(("language", "text", "interpret_as", "format", "said"), SAY_AS)
def test_say_as(language: str, text: str, interpret_as: str, format: str | None,
                said: str) -> None:
    assert say_as(text, interpret_as, language, format) == said
