"""Orpheus token ids, the reference prompt, and audio tokens -> SNAC frames.

Token layout (../shared/orpheus-facts.md): ``<custom_token_N>`` has id ``128256 + N``;
audio tokens start at ``<custom_token_10>`` (id 128266). The k-th audio token of a generation
carries ``code = N - 10 - (k % 7) * 4096``, valid in 0..4095. Seven audio tokens make a frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

CUSTOM_TOKEN_BASE = 128256
START_OF_SPEECH = 128257
END_OF_SPEECH = 128258
START_OF_HUMAN = 128259
END_OF_HUMAN = 128260
START_OF_AI = 128261
PAD = 128263
BOS = 128000
EOT = 128009
AUDIO_TOKEN_BASE = 128266
CODEBOOK_SIZE = 4096
TOKENS_PER_FRAME = 7
SAMPLES_PER_FRAME = 2048
SAMPLE_RATE = 24000
VOCAB_SIZE = 156940
# Emotion tags the English fine-tune knows; other tags are read aloud as words.
EMOTION_TAGS = ["<laugh>", "<chuckle>", "<sigh>", "<cough>", "<sniffle>", "<groan>", "<yawn>",
                "<gasp>"]


def audio_token_id(position: int, code: int) -> int:
    """The token id that carries ``code`` at ``position`` (0..6) within a frame."""
    return AUDIO_TOKEN_BASE + position * CODEBOOK_SIZE + code


def native_prompt(voice: str, text: str) -> list[int | str]:
    """The reference prompt for llama-server's /completion: ids mixed with one string."""
    return [START_OF_HUMAN, BOS, f"{voice}: {text}", EOT, END_OF_HUMAN, START_OF_AI,
            START_OF_SPEECH]


def text_prompt(voice: str, text: str) -> str:
    """The text form that OpenAI-compatible servers with an Orpheus GGUF expect."""
    return f"<|audio|>{voice}: {text}<|eot_id|>"


def parse_custom_token(text: str) -> list[int]:
    """Token ids named in a text of ``<custom_token_N>`` pieces (the OpenAI text form)."""
    ids: list[int] = []
    start = text.find("<custom_token_")
    while start >= 0:
        end = text.find(">", start)
        if end < 0:
            break
        number = text[start + 14 : end]
        if number.isdigit():
            ids.append(CUSTOM_TOKEN_BASE + int(number))
        start = text.find("<custom_token_", end)
    return ids


class InvalidAudioToken(ValueError):
    """A token in the audio stream does not carry a valid code for its position."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One SNAC frame: seven codes, each in 0..4095."""

    codes: tuple[int, int, int, int, int, int, int]


class FrameParser:
    """Turns a generation's token ids into frames, keeping alignment.

    Only audio tokens (id >= 128266) count towards a frame's positions; Orpheus' control tokens
    are passed over. A text token (id < 128256), or a token whose code is outside 0..4095 for
    its position, raises :class:`InvalidAudioToken`: the stream is not Orpheus audio and must
    not be guessed at.
    """

    def __init__(self) -> None:
        self._count = 0
        self._pending: list[int] = []

    @property
    def audio_tokens(self) -> int:
        return self._count

    def feed(self, token_ids: Iterable[int]) -> list[Frame]:
        frames: list[Frame] = []
        for token in token_ids:
            if token < AUDIO_TOKEN_BASE:
                if token < CUSTOM_TOKEN_BASE and token not in (BOS, EOT):
                    raise InvalidAudioToken(f"token {token} is text, not audio")
                continue
            position = self._count % TOKENS_PER_FRAME
            code = token - AUDIO_TOKEN_BASE - position * CODEBOOK_SIZE
            if not 0 <= code < CODEBOOK_SIZE:
                raise InvalidAudioToken(
                    f"token {token} at frame position {position} is not an audio code"
                )
            self._count += 1
            self._pending.append(code)
            if len(self._pending) == TOKENS_PER_FRAME:
                c = self._pending
                frames.append(Frame((c[0], c[1], c[2], c[3], c[4], c[5], c[6])))
                self._pending = []
        return frames


def frames_to_codes(frames: list[Frame]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SNAC's three codebooks for consecutive frames: shapes (F,), (2F,), (4F,).

    Codebook 0 gets f[0]; codebook 1 gets f[1], f[4]; codebook 2 gets f[2], f[3], f[5], f[6].
    """
    arr = np.asarray([f.codes for f in frames], dtype=np.int64).reshape(-1, TOKENS_PER_FRAME)
    c0 = arr[:, 0]
    c1 = arr[:, [1, 4]].reshape(-1)
    c2 = arr[:, [2, 3, 5, 6]].reshape(-1)
    return c0, c1, c2
