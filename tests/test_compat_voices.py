"""Vendors' voice names onto Orpheus voices: OpenAI's 13 by default, the operator's map, and
Orpheus names as themselves."""

from __future__ import annotations

import pytest

from orpheus_ws.compat.voices import OPENAI_VOICES, VoiceMap
from orpheus_ws.config import Settings
from orpheus_ws.exceptions import UnknownVoice


def test_every_openai_voice_answers_as_an_orpheus_voice() -> None:
    voices = VoiceMap(Settings())
    assert set(OPENAI_VOICES) == {"alloy", "ash", "ballad", "cedar", "coral", "echo", "fable",
                                  "marin", "nova", "onyx", "sage", "shimmer", "verse"}
    for name in OPENAI_VOICES:
        assert voices.resolve(name) in Settings().voice_list
    assert voices.resolve("Nova") == "leah"  # as OpenAI, case-insensitively
    assert voices.resolve("zac") == "zac"  # an Orpheus voice is itself
    with pytest.raises(UnknownVoice):
        voices.resolve("nobody")


def test_the_operator_changes_the_map() -> None:
    voices = VoiceMap(Settings(voice_map="alloy=zoe, 21m00Tcm4TlvDq8ikWAM=mia"))
    assert voices.resolve("alloy") == "zoe"
    assert voices.resolve("ash") == "dan"  # the rest as by default
    assert voices.lenient("21m00Tcm4TlvDq8ikWAM") == "mia"
    assert voices.lenient("a0e99841-438c-4a64-b679-ae501e7d6091") == "tara"  # the default


def test_a_mapped_voice_the_server_lacks_answers_as_the_default() -> None:
    voices = VoiceMap(Settings(voices="leo,zac", default_voice="zac"))
    assert voices.resolve("alloy") == "zac"  # tara is not offered here
    assert voices.resolve("ballad") == "leo"


def test_a_malformed_map_is_refused() -> None:
    with pytest.raises(ValueError):
        Settings.from_env({}, voice_map="alloy:leah")
