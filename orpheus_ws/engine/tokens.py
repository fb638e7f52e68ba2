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


# How much of a stream may be lost to strays in a row, resynchronizing, before it is taken
# for something other than Orpheus audio: three frames (and three frames' worth of tokens).
# ``bench strays`` (BENCHMARKS.md): at one stray in 1000 tokens, 0.3 % of 85 s generations fail
# (2 frames: 2.3 %), and junk is still refused after 21 tokens, a quarter of a second.
MAX_LOST_IN_A_ROW = 3
MAX_STRAY_RUN = MAX_LOST_IN_A_ROW * TOKENS_PER_FRAME


class FrameParser:
    """Turns a generation's token ids into frames, keeping alignment.

    Only audio tokens (id >= 128266) count towards a frame's positions; Orpheus' control tokens
    are passed over. An audio token carries its position in the frame (its id is the base +
    position x 4096 + code). A stray one, in the wrong position (a quantized model at a higher
    temperature writes one now and then), costs the frame it falls in: the frame being built
    is dropped, and the parser resynchronizes on the next token for position 0, as the
    reference decoder drops the window and goes on. More than ``MAX_LOST_IN_A_ROW`` frames lost
    with no whole frame between them, ``MAX_STRAY_RUN`` tokens passed over in a row (one stray
    costs at most one frame's worth),
    a text token (id < 128256), or an id that is no audio code at any position raises
    :class:`InvalidAudioToken`: the stream is not Orpheus audio and must not be guessed at.
    ``dropped_frames`` counts the frames lost to strays.
    """

    def __init__(self, *, max_lost: int = MAX_LOST_IN_A_ROW) -> None:
        self._max_lost = max_lost  # a knob for ``bench strays``, which chose the default
        self._max_run = max_lost * TOKENS_PER_FRAME
        self._count = 0
        self._pending: list[int] = []
        self._resync = False  # a stray was seen: passing over tokens until a position 0
        self._run = 0  # tokens passed over since the last one taken
        self._lost = 0  # frames lost since the last whole one
        self.dropped_frames = 0

    @property
    def audio_tokens(self) -> int:
        """Audio tokens taken into frames (strays and the tokens passed over not counted)."""
        return self._count

    @property
    def awaiting(self) -> int:
        """Tokens the frame being built still needs (0 between frames): until then, none of
        them is of use."""
        return TOKENS_PER_FRAME - len(self._pending) if self._pending else 0

    def feed(self, token_ids: Iterable[int]) -> list[Frame]:
        frames: list[Frame] = []
        for token in token_ids:
            if token < AUDIO_TOKEN_BASE:
                if token < CUSTOM_TOKEN_BASE and token not in (BOS, EOT):
                    raise InvalidAudioToken(f"token {token} is text, not audio")
                continue
            position, code = divmod(token - AUDIO_TOKEN_BASE, CODEBOOK_SIZE)
            if position >= TOKENS_PER_FRAME:
                raise InvalidAudioToken(f"token {token} is not an audio code at any position")
            if self._resync and position != 0:
                self._pass_over(token)
                continue
            if position != len(self._pending):  # a stray: this frame is lost
                if not self._resync:
                    self._lose_frame(token)
                self._pending, self._resync = [], True
                if position != 0:
                    self._pass_over(token)
                    continue
            self._resync, self._run = False, 0
            self._count += 1
            self._pending.append(code)
            if len(self._pending) == TOKENS_PER_FRAME:
                c = self._pending
                frames.append(Frame((c[0], c[1], c[2], c[3], c[4], c[5], c[6])))
                self._pending, self._lost = [], 0
        return frames

    def _lose_frame(self, token: int) -> None:
        self.dropped_frames += 1
        self._lost += 1
        if self._lost > self._max_lost:
            raise InvalidAudioToken(f"{self._lost} frames in a row lost to audio tokens out of "
                                    f"position (the last {token}): not Orpheus audio")

    def _pass_over(self, token: int) -> None:
        self._run += 1
        if self._run >= self._max_run:
            raise InvalidAudioToken(f"{self._run} audio tokens in a row out of position (the "
                                    f"last {token}): not Orpheus audio")
