"""What a Wyoming client asks for, read from ``wyoming``'s own events (no I/O): the ``info``
that answers ``describe``, a request's fields checked, and the voice it picks
(../shared/voice-agent-clients.md, "Home Assistant")."""

from __future__ import annotations

from wyoming.event import Event
from wyoming.info import Attribution, Info, TtsProgram, TtsVoice
from wyoming.tts import SynthesizeVoice

from ..engine import SpeechEngine
from ..exceptions import ProtocolError, UnknownVoice, ValidationError

ORPHEUS = Attribution(name="Canopy Labs", url="https://github.com/canopyai/Orpheus-TTS")


def describe(engine: SpeechEngine, version: str) -> Info:
    """The ``info`` event's content: one TTS program, the engine's voices with the language
    each speaks (Home Assistant lists a voice under each of its languages), streaming."""
    lineup = engine.lineup
    voices = [TtsVoice(name=voice, attribution=ORPHEUS, installed=True, version=version,
                       description=voice, languages=[lineup.language_of(voice)])
              for voice in lineup.voices]
    return Info(tts=[TtsProgram(
        name="orpheus_ws", attribution=ORPHEUS, installed=True, version=version,
        description="Orpheus TTS, streamed as it is generated (orpheus_ws)", voices=voices,
        supports_synthesize_streaming=True)])


def choose_voice(engine: SpeechEngine, voice: SynthesizeVoice | None) -> str:
    """The voice a request names; else the first voice of its ``language`` (``en``,
    ``en-US`` and ``en_US`` alike); else the default. A name the model lacks, or a language
    none of its voices speaks, is ``unknown_voice``. Orpheus voices have no speakers."""
    lineup = engine.lineup
    if voice is not None and voice.name:
        if voice.name not in lineup.voices:
            raise UnknownVoice(voice.name, list(lineup.voices))
        return voice.name
    if voice is not None and voice.language:
        wanted = voice.language.replace("_", "-").split("-")[0].lower()
        for name in lineup.voices:
            if lineup.language_of(name) == wanted:
                return name
        offered = ", ".join(f"{name} ({lineup.language_of(name)})" for name in lineup.voices)
        raise ProtocolError("unknown_voice", f"no voice speaks {voice.language[:40]!r}; "
                            f"available: {offered}", field="voice")
    return lineup.default


def checked(event: Event, *, text: bool = False) -> Event:
    """``event`` with its fields checked, nulls dropped: what wyoming's ``from_event`` reads
    without fault (``text`` a string where the event needs one, ``voice`` an object of
    strings, ``text_format`` text or ssml)."""
    data = {key: value for key, value in event.data.items() if value is not None}
    if text and not isinstance(data.get("text"), str):
        raise ValidationError("text", f"{event.type} needs a text (a string)")
    voice = data.get("voice", {})
    if not isinstance(voice, dict) or not all(
            isinstance(voice.get(key), str | None) for key in ("name", "language", "speaker")):
        raise ValidationError("voice", "must be an object with string name, language, speaker")
    if data.get("text_format") not in (None, "text", "ssml"):
        raise ValidationError("text_format", "must be 'text' or 'ssml'")
    return Event(event.type, data, event.payload)


def is_ssml(event: Event) -> bool:
    # From the event itself: wyoming's Synthesize has text_format only in newer releases.
    return bool(event.data.get("text_format") == "ssml")
