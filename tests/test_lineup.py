"""Voices follow the model (lineup.py): the known Orpheus models by their names, ``--voices``
for any other fine-tune, and the check that the backends serve the lineup's model."""

from __future__ import annotations

import pytest

from orpheus_ws.config import Settings
from orpheus_ws.lineup import (
    ENGLISH,
    KNOWN_VOICES,
    Lineup,
    LineupMismatch,
    check_served,
    family_of,
)


@pytest.mark.parametrize("model,family", [
    ("lex-au/Orpheus-3b-French-FT-Q8_0.gguf", "french"),
    ("canopylabs/3b-fr-ft-research_release", "french"),
    ("/models/Orpheus-3b-German-FT-Q8_0.gguf", "german"),
    ("canopylabs/3b-ko-ft-research_release", "korean"),
    ("lex-au/Orpheus-3b-Hindi-FT-Q8_0.gguf", "hindi"),
    ("lex-au/Orpheus-3b-Chinese-FT-Q8_0.gguf", "mandarin"),
    ("canopylabs/3b-es_it-ft-research_release", "spanish-italian"),
    ("lex-au/Orpheus-3b-Italian_Spanish-FT-Q8_0.gguf", "spanish-italian"),
    ("isaiahbjork/orpheus-3b-0.1-ft-Q4_K_M-GGUF", "english"),
    ("canopylabs/orpheus-tts-0.1-finetune-prod", "english"),
    ("lex-au/Orpheus-3b-FT-Q8_0.gguf", "english"),
])
def test_a_published_model_is_known_by_its_name(model: str, family: str) -> None:
    found = family_of(model)
    assert found is not None and found.name == family
    assert Lineup.of(model).family == family


def test_the_lineup_of_a_model_is_its_voices_tags_and_languages() -> None:
    french = Lineup.of("lex-au/Orpheus-3b-French-FT-Q8_0.gguf")
    assert french.voices == ("pierre", "amelie", "marie") and french.default == "pierre"
    assert "<whimper>" in french.tags and french.language_of("marie") == "fr"
    assert french.lacks("tara") and not french.lacks("pierre")
    assert not french.lacks("21m00Tcm4TlvDq8ikWAM")  # an opaque vendor id: not a voice
    both = Lineup.of("canopylabs/3b-es_it-ft-research_release")
    assert (both.language_of("javi"), both.language_of("giulia")) == ("es", "it")
    korean = Lineup.of("canopylabs/3b-ko-ft-research_release")
    assert korean.voices == ("유나", "준서") and "<작은 웃음>" in korean.tags
    assert {"유나", "ऋतिका", "长乐", "tara"} <= KNOWN_VOICES


def test_an_unknown_model_is_the_english_fine_tune_and_voices_name_a_custom_one() -> None:
    assert Lineup.of("my-finetune.gguf").voices == tuple(ENGLISH.voices)
    custom = Lineup.of("my-finetune.gguf", voices="ana, bo", default="bo",
                       emotion_tags="<giggle>,hum", language="es")
    assert custom.voices == ("ana", "bo") and custom.default == "bo"
    assert custom.tags == ["<giggle>", "<hum>"] and custom.family == "custom"
    assert custom.language_of("ana") == "es"
    subset = Lineup.of("lex-au/Orpheus-3b-French-FT-Q8_0.gguf", voices="marie")
    assert subset.family == "french" and subset.language_of("marie") == "fr"


def test_every_language_a_model_speaks_is_one_the_normalizer_reads() -> None:
    from orpheus_ws.lineup import LANGUAGES
    from orpheus_ws.text.normalize import LANGUAGES as READ

    assert LANGUAGES == READ


def test_settings_follow_the_model_and_refuse_a_default_voice_it_lacks() -> None:
    settings = Settings(model="lex-au/Orpheus-3b-French-FT-Q8_0.gguf")
    assert settings.voice_list == ["pierre", "amelie", "marie"]
    assert settings.lineup.default == "pierre"
    with pytest.raises(ValueError, match="tara"):
        Settings(model="lex-au/Orpheus-3b-French-FT-Q8_0.gguf", default_voice="tara").validate()
    with pytest.raises(ValueError, match="language must be one of"):
        Settings(language="xx").validate()
    Settings(language="de").validate()


def test_the_backends_must_serve_the_lineups_model() -> None:
    french = Lineup.of("lex-au/Orpheus-3b-French-FT-Q8_0.gguf")
    check_served(french, {"http://a": "/cache/Orpheus-3b-French-FT-Q8_0.gguf",
                          "http://b": None, "http://c": "orpheus-standin"})
    with pytest.raises(LineupMismatch, match="--model") as info:
        check_served(Lineup.of("anything"), {"http://a": "Orpheus-3b-French-FT-Q8_0.gguf"})
    assert "pierre" in str(info.value)
    with pytest.raises(LineupMismatch, match="different models"):
        check_served(french, {"http://a": "Orpheus-3b-French-FT-Q8_0.gguf",
                              "http://b": "Orpheus-3b-German-FT-Q8_0.gguf"})
    check_served(Lineup.of("x", voices="ana"), {"http://a": "Orpheus-3b-German-FT-Q8_0.gguf"})
