"""Audio tokens -> SNAC frames, keeping alignment (token layout: ``orpheus_ws.vocabulary``).

``codes.SnacCodes`` lays frames out for SNAC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..exceptions import InvalidAudioToken
from ..vocabulary import (
    AUDIO_TOKEN_BASE,
    BOS,
    CODEBOOK_SIZE,
    CUSTOM_TOKEN_BASE,
    EOT,
    TOKENS_PER_FRAME,
)


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
