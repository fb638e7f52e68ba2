"""Which voices, emotion tags and language a model has: the known Orpheus models, and the
lineup a server offers (no I/O).

canopylabs published an English fine-tune and research fine-tunes in six more languages, same
prompt format, different voices and emotion tags per model (../shared/orpheus-facts.md,
"Multilingual Orpheus"). A voice used with a model that doesn't have it gives a voice that
sounds wrong, not an error (canopyai/Orpheus-TTS #263), so the server offers the voices of the
model it serves and refuses the others. A model is known by its name: a Hub repo id, a GGUF
file's name or path, or the id a backend's ``/v1/models`` answers, matched case-insensitively
against each family's marks (``lex-au/Orpheus-3b-French-FT-Q8_0.gguf`` and
``canopylabs/3b-fr-ft-research_release`` are both French). A name no family claims is taken
for the English fine-tune. ``--voices`` (with ``--emotion-tags`` and ``--language``) names the
voices of any other fine-tune.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelFamily:
    """One published model, its quantizations and re-uploads."""

    name: str
    voices: dict[str, str]  # voice -> the language it speaks (normalize.py's codes), in order
    emotion_tags: tuple[str, ...]  # without brackets
    marks: tuple[str, ...]  # name fragments that identify it (lowercase regexes)
    repos: tuple[str, ...]  # published names, for the README's table

    def claims(self, model: str) -> bool:
        name = model.lower()
        return any(re.search(mark, name) for mark in self.marks)


ENGLISH = ModelFamily(
    "english",
    dict.fromkeys(("tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe"), "en"),
    ("laugh", "chuckle", "sigh", "cough", "sniffle", "groan", "yawn", "gasp"),
    (r"0\.1-ft", r"finetune-prod", r"orpheus-3b-ft"),
    ("canopylabs/orpheus-3b-0.1-ft", "canopylabs/orpheus-tts-0.1-finetune-prod",
     "isaiahbjork/orpheus-3b-0.1-ft-Q4_K_M-GGUF", "lex-au/Orpheus-3b-FT-Q8_0.gguf"))

# The research releases: canopylabs/3b-{fr,de,ko,hi,zh,es_it}-ft-research_release, and the
# GGUFs lex-au/Orpheus-3b-{French,German,Korean,Hindi,Chinese,Italian_Spanish}-FT-Q8_0.gguf.
MULTILINGUAL = (
    ModelFamily(
        "french", dict.fromkeys(("pierre", "amelie", "marie"), "fr"),
        ("chuckle", "cough", "gasp", "groan", "laugh", "sigh", "sniffle", "whimper", "yawn"),
        (r"french", r"\b3b-fr-"),
        ("canopylabs/3b-fr-ft-research_release", "lex-au/Orpheus-3b-French-FT-Q8_0.gguf")),
    ModelFamily(
        "german", dict.fromkeys(("jana", "thomas", "max"), "de"),
        ("chuckle", "cough", "gasp", "groan", "laugh", "sigh", "sniffle", "yawn"),
        (r"german", r"\b3b-de-"),
        ("canopylabs/3b-de-ft-research_release", "lex-au/Orpheus-3b-German-FT-Q8_0.gguf")),
    ModelFamily(
        "korean", dict.fromkeys(("유나", "준서"), "ko"),
        ("한숨", "헐", "헛기침", "훌쩍", "하품", "낄낄", "신음", "작은 웃음", "기침", "으르렁"),
        (r"korean", r"\b3b-ko-"),
        ("canopylabs/3b-ko-ft-research_release", "lex-au/Orpheus-3b-Korean-FT-Q8_0.gguf")),
    ModelFamily(
        "hindi", {"ऋतिका": "hi"}, (),
        (r"hindi", r"\b3b-hi-"),
        ("canopylabs/3b-hi-ft-research_release", "lex-au/Orpheus-3b-Hindi-FT-Q8_0.gguf")),
    ModelFamily(
        "mandarin", dict.fromkeys(("长乐", "白芷"), "zh"),
        ("嬉笑", "轻笑", "呻吟", "大笑", "咳嗽", "抽鼻子", "咳"),
        (r"chinese", r"mandarin", r"\b3b-zh-"),
        ("canopylabs/3b-zh-ft-research_release", "lex-au/Orpheus-3b-Chinese-FT-Q8_0.gguf")),
    ModelFamily(
        "spanish-italian",
        {"javi": "es", "sergio": "es", "maria": "es", "pietro": "it", "giulia": "it",
         "carlo": "it"},
        ("groan", "chuckle", "gasp", "resoplido", "laugh", "yawn", "cough", "sigh", "sniffle",
         "gemito"),
        (r"italian", r"spanish", r"\b3b-es_it-"),
        ("canopylabs/3b-es_it-ft-research_release",
         "lex-au/Orpheus-3b-Italian_Spanish-FT-Q8_0.gguf")),
)
FAMILIES = (*MULTILINGUAL, ENGLISH)
# The languages the published models speak (and text/normalize.py reads: tests/test_lineup.py).
LANGUAGES = frozenset(language for family in FAMILIES for language in family.voices.values())
# Every voice of a published model: one the served model lacks is refused on every route,
# even where other vendors' opaque voice ids speak with the default voice.
KNOWN_VOICES = frozenset(voice for family in FAMILIES for voice in family.voices)


def family_of(model: str) -> ModelFamily | None:
    """The published model ``model`` names, or None if no family claims it."""
    return next((family for family in FAMILIES if family.claims(model)), None)


@dataclass(frozen=True, slots=True)
class Lineup:
    """What a server offers: its voices (the first is the default unless one is named), their
    languages, the emotion tags its model knows, and the family they came from."""

    voices: tuple[str, ...]
    default: str
    emotion_tags: tuple[str, ...]
    languages: dict[str, str]
    family: str  # a family's name, or "custom" (--voices)

    @classmethod
    def of(cls, model: str, *, voices: str = "", default: str = "", emotion_tags: str = "",
           language: str = "") -> Lineup:
        """The lineup of ``model``, or the ``voices`` given (comma-separated) for another
        fine-tune; ``emotion_tags`` and ``language`` replace the model's."""
        family = family_of(model) or ENGLISH
        named = tuple(v.strip() for v in voices.split(",") if v.strip())
        offered = named or tuple(family.voices)
        tags = tuple(t.strip().strip("<>") for t in emotion_tags.split(",") if t.strip()) \
            or family.emotion_tags
        spoken = next(iter(family.voices.values()))  # a custom voice: the model's language
        languages = {voice: language or family.voices.get(voice, spoken) for voice in offered}
        custom = any(voice not in family.voices for voice in offered)
        return cls(offered, default or (offered[0] if offered else ""), tags, languages,
                   "custom" if custom else family.name)

    @property
    def tags(self) -> list[str]:
        """The emotion tags as written in text: ``<laugh>``."""
        return [f"<{tag}>" for tag in self.emotion_tags]

    def language_of(self, voice: str) -> str:
        return self.languages.get(voice, "en")

    def lacks(self, voice: str) -> bool:
        """``voice`` is a published model's voice that this server doesn't offer."""
        return voice in KNOWN_VOICES and voice not in self.voices


class LineupMismatch(ValueError):
    """The backends serve a model whose voices are not the ones the server offers."""


def check_served(lineup: Lineup, served: dict[str, str | None]) -> None:
    """Raises :class:`LineupMismatch` if a backend (URL -> the model it names) serves a
    published model other than the lineup's, or the backends serve different ones; a name no
    family claims (a custom fine-tune, a stand-in) can't be checked and passes."""
    families = {url: family_of(name) for url, name in served.items() if name}
    known = {url: family for url, family in families.items() if family is not None}
    if len({family.name for family in known.values()}) > 1:
        named = ", ".join(f"{url} serves {served[url]}" for url in known)
        raise LineupMismatch(f"the LLM backends serve different models ({named}); each must "
                             "serve the same one")
    for url, family in known.items():
        if lineup.family not in ("custom", family.name):
            raise LineupMismatch(
                f"the LLM backend at {url} serves {served[url]} ({family.name}: "
                f"{', '.join(family.voices)}), but the server offers the {lineup.family} "
                f"voices ({', '.join(lineup.voices)}): name its model with --model, or its "
                "voices with --voices")
