"""Other vendors' voice names, answered by Orpheus voices.

OpenAI's clients send OpenAI voice names (pipecat refuses any other before it sends a
request), so each of them maps to an Orpheus voice by default; the operator changes the map
with ``--voice-map alloy=leah,ash=zac`` (``ORPHEUS_WS_VOICE_MAP``). An Orpheus voice name is
always accepted as itself, whatever the vendor. OpenAI's names are a closed set, so another
name is refused there; other vendors' voice ids are opaque, so one that is neither an
Orpheus voice nor mapped speaks with the default voice, except a voice of another Orpheus model
(``tara`` on a French model): that is refused on every route, as it would sound wrong.
"""

from __future__ import annotations

from ..config import Settings
from ..exceptions import ConnectionFault, UnknownVoice

# OpenAI's 13 voices onto the 8 English Orpheus voices, by the voices' character: the
# neutral and bright ones to Orpheus' female voices, the deeper ones to its male voices.
OPENAI_VOICES = {
    "alloy": "tara", "ash": "dan", "ballad": "leo", "cedar": "zac", "coral": "jess",
    "echo": "zac", "fable": "leo", "marin": "mia", "nova": "leah", "onyx": "dan",
    "sage": "zoe", "shimmer": "mia", "verse": "leo",
}


class VoiceMap:
    """Vendor voice names -> the server's Orpheus voices."""

    def __init__(self, settings: Settings) -> None:
        self.lineup = settings.lineup
        self.voices = list(self.lineup.voices)
        self.default = settings.lineup.default
        mapping = dict(OPENAI_VOICES)
        for pair in filter(None, (p.strip() for p in settings.voice_map.split(","))):
            name, _, voice = pair.partition("=")
            mapping[name.strip()] = voice.strip()
        # A voice the server doesn't offer (the multilingual models) answers as the default.
        self.mapping = {name: voice if voice in self.voices else self.default
                        for name, voice in mapping.items()}

    def lenient(self, *names: str) -> str:
        """For vendors whose voice ids are opaque (ElevenLabs, Cartesia, Deepgram models): the
        first of ``names`` that is an Orpheus voice or mapped, else the default voice, so a
        framework's default voice id speaks instead of failing."""
        for name in names:
            if name in self.voices:
                return name
            if self.lineup.lacks(name):  # another model's voice: it would sound wrong
                raise UnknownVoice(name, self.voices)
            mapped = self.mapping.get(name) or self.mapping.get(name.lower())
            if mapped is not None:
                return mapped
        return self.default

    def at_open(self, *names: str) -> str:
        """``lenient`` for a socket's voice named in its URL: a voice of another model
        refuses the socket (its adapter's ``opened``), with the voices there are."""
        try:
            return self.lenient(*names)
        except UnknownVoice as exc:
            raise ConnectionFault("invalid_request", str(exc)) from None

    def deepgram(self, model: str) -> str:
        """The voice of a Deepgram model name: ``aura-2-tara-en``, ``aura-tara-en`` or
        ``tara`` (leniently, as every opaque vendor id), for a socket being opened."""
        return self.at_open(*deepgram_names(model))

    def resolve(self, name: str) -> str:
        """The Orpheus voice for ``name`` (an Orpheus voice, or a mapped vendor name)."""
        if name in self.voices:
            return name
        mapped = self.mapping.get(name) or self.mapping.get(name.lower())
        if mapped is None:
            raise UnknownVoice(name, [*self.voices, *sorted(self.mapping)])
        return mapped


def deepgram_names(model: str) -> tuple[str, ...]:
    """A Deepgram model name and the voice name in it: ``aura-2-tara-en``, ``aura-tara-en``."""
    parts = model.split("-")
    return (model, *(parts[2:3] if parts[:2] == ["aura", "2"] else parts[1:2]))
