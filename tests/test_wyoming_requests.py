"""What a Wyoming client asks for (compat/wyoming_requests.py), with no socket: the ``info``
event, a request's fields checked before wyoming's ``from_event`` reads them, and the voice
it picks: its name, else the first voice of its language, else the default."""

from __future__ import annotations

import pytest
from wyoming.event import Event
from wyoming.info import Info
from wyoming.tts import Synthesize, SynthesizeVoice

from orpheus_ws.compat.wyoming_requests import checked, choose_voice, describe, is_ssml
from orpheus_ws.exceptions import OrpheusError, ValidationError
from orpheus_ws.lineup import Lineup

from .fakes import EngineBase, speech_engine


class SpanishItalian(EngineBase):
    lineup = Lineup.of("canopylabs/3b-es_it-ft-research_release")


def test_info_lists_each_voice_with_its_language() -> None:
    info = Info.from_event(describe(speech_engine(SpanishItalian()), "9.9").event())
    [program] = info.tts
    assert program.supports_synthesize_streaming and program.version == "9.9"
    assert [(v.name, v.languages) for v in program.voices] == [
        ("javi", ["es"]), ("sergio", ["es"]), ("maria", ["es"]), ("pietro", ["it"]),
        ("giulia", ["it"]), ("carlo", ["it"])]


@pytest.mark.parametrize("voice,chosen", [
    (None, "javi"),
    (SynthesizeVoice(), "javi"),
    (SynthesizeVoice(name="giulia"), "giulia"),
    (SynthesizeVoice(name="giulia", language="es"), "giulia"),  # the name wins
    (SynthesizeVoice(language="it"), "pietro"),
    (SynthesizeVoice(language="it_IT"), "pietro"),
    (SynthesizeVoice(language="IT-ch"), "pietro"),
    (SynthesizeVoice(speaker="any"), "javi"),  # Orpheus voices have no speakers
])
def test_the_voice_a_request_picks(voice: SynthesizeVoice | None, chosen: str) -> None:
    assert choose_voice(speech_engine(SpanishItalian()), voice) == chosen


@pytest.mark.parametrize("voice,says", [
    (SynthesizeVoice(name="tara"), "available: javi, sergio"),
    (SynthesizeVoice(language="fr"), "javi (es)"),
])
def test_a_voice_the_model_lacks_is_unknown_voice(voice: SynthesizeVoice, says: str) -> None:
    with pytest.raises(OrpheusError) as refused:
        choose_voice(speech_engine(SpanishItalian()), voice)
    assert refused.value.code == "unknown_voice" and says in str(refused.value)


@pytest.mark.parametrize("data,field", [
    ({}, "text"),
    ({"text": 1}, "text"),
    ({"text": "Hi.", "voice": "tara"}, "voice"),
    ({"text": "Hi.", "voice": {"name": 3}}, "voice"),
    ({"text": "Hi.", "text_format": "html"}, "text_format"),
])
def test_fields_of_the_wrong_shape_are_invalid_parameter(data: dict[str, object],
                                                         field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        checked(Event("synthesize", data), text=True)
    assert refused.value.field == field and refused.value.code == "invalid_parameter"


def test_nulls_read_as_absent_and_ssml_is_read_from_the_event() -> None:
    fields = checked(Event("synthesize", {"text": "Hi.", "voice": None,
                                          "text_format": "ssml"}), text=True)
    request = Synthesize.from_event(fields)
    assert request.voice is None and is_ssml(fields)
    assert not is_ssml(checked(Event("synthesize", {"text": "Hi."}), text=True))
