"""SSML into what the server speaks (orpheus_ws/text/ssml.py): markup strings in, items out."""

from __future__ import annotations

import pytest

from orpheus_ws.exceptions import ValidationError
from orpheus_ws.text.ssml import (
    BREAK_STRENGTH_S,
    MAX_BREAK_S,
    Pause,
    SentenceBound,
    Speech,
    SsmlError,
    SsmlItem,
    parse_ssml,
)

EMOTIONS = ("laugh", "sigh", "chuckle")
BOUND = SentenceBound()


def S(text: str, interpret_as: str | None = None, fmt: str | None = None) -> Speech:
    return Speech(text, interpret_as, fmt)


@pytest.mark.parametrize(("markup", "items"), [
    ("<speak>Hello world</speak>", [S("Hello world")]),
    ('<speak version="1.1" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US">'
     "Hello</speak>", [S("Hello")]),
    ('<?xml version="1.0" encoding="UTF-8"?>\n<speak>Hello</speak>', [S("Hello")]),
    ("\ufeff<speak>Hello</speak>", [S("Hello")]),
    ("Hello world", [S("Hello world")]),
    ('Hello <break time="1s"/> world', [S("Hello"), Pause(1.0), S("world")]),
    ("<p>One</p><p>Two</p>", [S("One"), BOUND, S("Two"), BOUND]),
    ("", []),
    ("   \n\t ", []),
    ("<speak/>", []),
])
def test_the_speak_root_is_optional(markup: str, items: list[SsmlItem]) -> None:
    assert parse_ssml(markup) == items


@pytest.mark.parametrize(("attrs", "seconds"), [
    ('time="500ms"', 0.5),
    ('time="1.5s"', 1.5),
    ('time="2 s"', 2.0),
    ('time=" 250 ms "', 0.25),
    ('time="3S"', 3.0),
    ('time=".5s"', 0.5),
    ('time="10s"', 10.0),
    ('time="10000ms"', 10.0),
    ('time="11s"', MAX_BREAK_S),
    ('time="99999999ms"', MAX_BREAK_S),
    ('strength="x-weak"', 0.25),
    ('strength="weak"', 0.5),
    ('strength="medium"', 0.75),
    ('strength="strong"', 1.0),
    ('strength="x-strong"', 1.25),
    ("", 0.75),
    ('strength="weak" time="3s"', 3.0),  # time wins (SSML 1.1 §3.2.3)
])
def test_a_break_is_a_pause(attrs: str, seconds: float) -> None:
    assert parse_ssml(f"a <break {attrs}/> b") == [S("a"), Pause(seconds), S("b")]
    assert parse_ssml(f"a <break {attrs}></break> b") == [S("a"), Pause(seconds), S("b")]


def test_the_strengths_are_azures() -> None:
    assert BREAK_STRENGTH_S == {"none": 0.0, "x-weak": 0.25, "weak": 0.5, "medium": 0.75,
                                "strong": 1.0, "x-strong": 1.25}
    assert MAX_BREAK_S == 10.0


@pytest.mark.parametrize("attrs", ['strength="none"', 'time="0s"', 'time="0ms"'])
def test_a_break_of_nothing_adds_nothing(attrs: str) -> None:
    assert parse_ssml(f"a <break {attrs}/> b") == [S("a b")]


@pytest.mark.parametrize("attrs", [
    'time="-1s"', 'time="-500ms"', 'time="1"', 'time="abc"', 'time=""', 'time="1h"',
    'time="1e3ms"', 'time="1.2.3s"', 'time="2."', 'time="s"', 'strength="loud"', 'strength=""',
    'time="' + "9" * 500 + 'x"',
])
def test_a_bad_break_is_refused(attrs: str) -> None:
    with pytest.raises(SsmlError) as caught:
        parse_ssml(f"a <break {attrs}/> b")
    assert caught.value.code == "invalid_ssml"
    assert len(str(caught.value)) < 200


def test_consecutive_breaks_stay_apart() -> None:
    assert parse_ssml('<break time="1s"/><break time="2s"/>x') == [Pause(1.0), Pause(2.0),
                                                                   S("x")]


@pytest.mark.parametrize(("markup", "items"), [
    ('Call <say-as interpret-as="telephone">555 0100</say-as> now',
     [S("Call"), S("555 0100", "telephone"), S("now")]),
    ('<say-as interpret-as="date" format="mdy">1/2/2024</say-as>',
     [S("1/2/2024", "date", "mdy")]),
    ('<say-as interpret-as="characters"> S  S\nML </say-as>', [S("S S ML", "characters")]),
    ('<say-as interpret-as="characters"><emphasis>ab</emphasis>c</say-as>',
     [S("abc", "characters")]),
    ('a<say-as interpret-as="cardinal"></say-as>b', [S("a b")]),
    ("<say-as>12</say-as> apples", [S("12 apples")]),  # no interpret-as: plain text
    ('<say-as interpret-as="x">1<break time="1s"/>2</say-as>', [S("12", "x")]),
])
def test_say_as(markup: str, items: list[SsmlItem]) -> None:
    assert parse_ssml(markup) == items


@pytest.mark.parametrize(("markup", "items"), [
    ('the <sub alias="World Wide Web Consortium">W3C</sub>.',
     [S("the World Wide Web Consortium.")]),
    ('<sub alias="aluminium"><emphasis>Al</emphasis><break time="1s"/></sub>',
     [S("aluminium")]),
    ("<sub>W3C</sub> rocks", [S("W3C rocks")]),  # no alias: the written form is spoken
    ('<say-as interpret-as="spell-out">a<sub alias="b">x</sub>c</say-as>',
     [S("abc", "spell-out")]),
])
def test_sub_speaks_its_alias(markup: str, items: list[SsmlItem]) -> None:
    assert parse_ssml(markup) == items


@pytest.mark.parametrize(("markup", "items"), [
    ("<p>One. Two.</p>", [S("One. Two."), BOUND]),
    ("Intro <p><s>One.</s><s>Two.</s></p> Outro",
     [S("Intro"), BOUND, S("One."), BOUND, S("Two."), BOUND, S("Outro")]),
    ("<p><s>One.</s></p><p><s>Two.</s></p>", [S("One."), BOUND, S("Two."), BOUND]),
    ("<p></p><s> </s>x", [S("x")]),
    ('<break time="1s"/><p>x</p>', [Pause(1.0), BOUND, S("x"), BOUND]),
    ("<p><prosody rate='slow'>a</prosody></p><p>b</p>", [S("a"), BOUND, S("b"), BOUND]),
])
def test_p_and_s_bound_sentences(markup: str, items: list[SsmlItem]) -> None:
    assert parse_ssml(markup) == items


@pytest.mark.parametrize(("markup", "text"), [
    ('<prosody rate="slow" pitch="+2st">slowly</prosody> now', "slowly now"),
    ('<emphasis level="strong">really</emphasis> good', "really good"),
    ('<voice name="tara"><lang xml:lang="fr-FR">bonjour</lang></voice>', "bonjour"),
    ('<audio src="https://example.com/a.mp3">no audio<desc>a bell</desc></audio>', "no audio"),
    ('<phoneme alphabet="ipa" ph="təmeɪtoʊ">tomato</phoneme>', "tomato"),
    ('a <mark name="here"/>b', "a b"),
    ('<amazon:effect name="whispered">psst</amazon:effect>', "psst"),
    ('<amazon:domain name="news">headline</amazon:domain>', "headline"),
    ('<mstts:express-as style="cheerful">yay</mstts:express-as>', "yay"),
    ("<w>word</w> <token>two</token>", "word two"),
    ("<metadata><dc:title>t</dc:title></metadata>spoken", "spoken"),
    ("<lexicon uri='x'/>a <!-- a comment --> b <?pi data?>", "a b"),
    ("<![CDATA[1 < 2]]>", "1 < 2"),
    ("<speak><speak>nested</speak></speak>", "nested"),
])
def test_other_elements_keep_their_text(markup: str, text: str) -> None:
    assert parse_ssml(markup) == [S(text)]


@pytest.mark.parametrize(("markup", "text"), [
    ("fish &amp; chips", "fish & chips"),
    ("&lt;b&gt; &quot;q&quot; &apos;a&apos;", "<b> \"q\" 'a'"),
    ("caf&#233; &#xE9;", "café é"),
    ("<sub alias='R&amp;D'>RD</sub>", "R&D"),
])
def test_entities_are_decoded(markup: str, text: str) -> None:
    assert parse_ssml(markup) == [S(text)]


@pytest.mark.parametrize(("markup", "items"), [
    ("Ha <laugh> that was good", [S("Ha <laugh> that was good")]),
    ("Ha <laugh/> ok <laugh /> done", [S("Ha <laugh> ok <laugh> done")]),
    ("Ha <laugh></laugh> ok", [S("Ha <laugh> ok")]),
    ("<sigh>", [S("<sigh>")]),
    ("<speak><prosody rate='slow'>well <sigh> fine</prosody></speak>",
     [S("well <sigh> fine")]),
    ("<p>Oh <chuckle></p>", [S("Oh <chuckle>"), BOUND]),
    ('<say-as interpret-as="x"><laugh>1</say-as>', [S("<laugh>1", "x")]),
    ('<sub alias="x"><laugh></sub>', [S("x")]),  # the written form, tags and all, is not said
    ("&lt;laugh&gt;", [S("<laugh>")]),
    ("<laughing/>", []),  # not a kept tag: an ordinary empty element
])
def test_emotion_tags_are_kept(markup: str, items: list[SsmlItem]) -> None:
    assert parse_ssml(markup, keep_tags=EMOTIONS) == items


def test_emotion_tags_not_named_are_xml() -> None:
    assert parse_ssml("a <laugh/> b") == [S("a b")]
    with pytest.raises(SsmlError):
        parse_ssml("a <laugh> b")
    with pytest.raises(SsmlError):
        parse_ssml("a <giggle> b", keep_tags=EMOTIONS)


@pytest.mark.parametrize("name", ["", "<laugh>", "la ugh", "9lives"])
def test_a_keep_tag_must_be_a_name(name: str) -> None:
    with pytest.raises(ValueError, match="keep_tags"):
        parse_ssml("x", keep_tags=[name])


SECRET = "TOPSECRETMARKER"


@pytest.mark.parametrize("markup", [
    f"<prosody rate='slow'>{SECRET}",
    f"{SECRET} < {SECRET}",
    f"<p>{SECRET}</s>",
    f"<speak>{SECRET}</speak><speak",
    f"{SECRET} &nbsp; {SECRET}",
    f"{SECRET} &custom;",
    f"<b a={SECRET}>x</b>",
    f"<b a='1' a='2'>{SECRET}</b>",
    f'<!DOCTYPE speak [<!ENTITY lol "{SECRET}">]><speak>&lol;</speak>',
    f'<!DOCTYPE speak SYSTEM "http://example.com/{SECRET}.dtd"><speak/>',
    f'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "{SECRET}"><!ENTITY b "&a;&a;">]><s>&b;</s>',
    f"{SECRET}\x00",
    f"{SECRET}\ud800",
    f"</speak>{SECRET}",
])
def test_malformed_markup_is_refused_without_echo(markup: str) -> None:
    with pytest.raises(SsmlError) as caught:
        parse_ssml(markup * 3)
    error = caught.value
    assert isinstance(error, ValidationError)
    assert error.code == "invalid_ssml"
    assert error.field == "text"
    assert SECRET not in str(error)
    assert SECRET not in error.message
    assert len(str(error)) < 200


@pytest.mark.parametrize(("markup", "where"), [
    ("ok\nand a < b", "line 2, column 8"),  # expat points just past the stray "<"
    ("ok\néé < b", "line 2, column 5"),  # columns count characters, not UTF-8 bytes
    ("<p>x</q>", "line 1, column"),
    ("<prosody>hi", "not closed"),
    ("DOCTYPE is fine", None),
    ('<!DOCTYPE speak [<!ENTITY a "x">]>', "DTD"),
])
def test_errors_say_where(markup: str, where: str | None) -> None:
    if where is None:
        assert parse_ssml(markup) == [S(markup)]
        return
    with pytest.raises(SsmlError, match=where):
        parse_ssml(markup)


@pytest.mark.parametrize(("markup", "items"), [
    ("Hello <emphasis>big</emphasis> world", [S("Hello big world")]),
    ("one\n\n  two\tthree", [S("one two three")]),
    ("a<mark name='m'/>b", [S("ab")]),
    ('a <sub alias="b">x</sub> c <prosody>d</prosody>', [S("a b c d")]),
    ('a <say-as interpret-as="ordinal">1</say-as> b <break/> c',
     [S("a"), S("1", "ordinal"), S("b"), Pause(0.75), S("c")]),
    ('a <break strength="none"/> b <break time="0ms"/> c', [S("a b c")]),
    ("<prosody> </prosody> <emphasis/> ", []),
])
def test_adjacent_text_merges(markup: str, items: list[SsmlItem]) -> None:
    assert parse_ssml(markup) == items


def test_items_are_frozen_values() -> None:
    item = S("x")
    with pytest.raises(AttributeError):
        item.text = "y"  # type: ignore[misc]
    assert Pause(1.0) == Pause(1.0)
    assert SentenceBound() == SentenceBound()


def test_a_long_input_parses() -> None:
    unit = ('<s>Word &amp; <emphasis>more</emphasis> <laugh> text <break time="200ms"/>'
            '<say-as interpret-as="cardinal">42</say-as> <sub alias="also">aka</sub>.</s>\n')
    markup = "<speak>" + unit * (100_000 // len(unit)) + "</speak>"
    assert 90_000 < len(markup) <= 100_000
    items = parse_ssml(markup, keep_tags=EMOTIONS)
    count = 100_000 // len(unit)
    assert sum(isinstance(item, Pause) for item in items) == count
    assert sum(isinstance(item, SentenceBound) for item in items) == count
    assert items[:5] == [S("Word & more <laugh> text"), Pause(0.2), S("42", "cardinal"),
                         S("also."), BOUND]


def test_a_long_plain_text_parses() -> None:
    words = "lorem ipsum " * (100_000 // 12)
    assert parse_ssml(words) == [S(words.strip())]
