"""The stand-in LLM server's configuration and token streams (no I/O).

Codes are deterministic: they come from the seed and the prompt's text (special markers such as
``<|audio|>`` removed), so the native and the OpenAI form of one prompt give the same frames.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from orpheus_ws.vocabulary import (
    CODEBOOK_SIZE,
    CUSTOM_TOKEN_BASE,
    END_OF_SPEECH,
    EOT,
    TOKENS_PER_FRAME,
    audio_token_id,
)

Fault = Literal["none", "garbage", "strays", "loop", "fail_midway", "refuse", "text", "hang",
                "stall"]
FAULTS: tuple[str, ...] = ("none", "garbage", "strays", "loop", "fail_midway", "refuse", "text",
                           "hang", "stall")
LOOP_FRAMES = 10
"""The "loop" fault: the first LOOP_FRAMES frames, then the same frames again and again."""

HOST = "127.0.0.1"
MODEL_NAME = "orpheus-standin"
N_CTX = 8192
"""Per-slot context; also the token limit of a request without n_predict / max_tokens."""
FAULT_AFTER_TOKENS = 2 * TOKENS_PER_FRAME
"""Valid audio tokens sent before "garbage", "strays", "fail_midway" and "stall" strike:
"garbage" is one audio token out of position (it costs its frame), "strays" every token from
there on (not Orpheus audio)."""
MAX_BATCH = 64
"""Most token events written at once (when behind schedule, or unpaced)."""

_TEXT_WORDS = ("Hello", ",", " I", " am", " a", " language", " model", ".", " How", " can",
               " I", " help", " you", " today", "?", "\n")
_TEXT_ID_BASE = 1000
_SPECIAL_MARKER = re.compile(r"<\|[^|<>]*\|>")


@dataclass
class StandinConfig:
    """How the stand-in behaves; read at the start of each request, so it can change at runtime.

    ``tokens_per_second`` is per stream (0 or inf: as fast as possible). ``slots`` is the number
    of parallel generations; further requests queue. With ``frames`` set, each generation sends
    that many frames, then token 128258, then stops (``stop_type`` "eos"); otherwise it runs to
    ``n_predict`` / ``max_tokens`` ("limit"). With ``emit_eos_as_stop`` False, 128258 is sent as
    an ordinary token and audio continues to the limit. ``fault`` injects one failure mode.
    """

    tokens_per_second: float = 100.0
    slots: int = 4
    frames: int | None = None
    fault: Fault = "none"
    seed: int = 0
    emit_eos_as_stop: bool = True
    # The first ``quiet_frames`` frames quiet and the rest loud, through a codec whose level
    # follows a frame's first code (tests/fakes.ConstantCodec): code 0, then codes of 2048 up.
    quiet_frames: int = 0
    model: str = MODEL_NAME  # the name /v1/models answers (a published model's, to test them)


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as received: its path and its JSON body ({} when it had none)."""

    path: str
    body: dict[str, Any] = field(default_factory=dict)


BYTE_ID_BASE = 1000  # the stand-in tokenizer: one id per UTF-8 byte (``/tokenize``)


def prompt_text(prompt: Any) -> str:
    """The text part of a prompt (a string, or a list mixing ids and strings), markers removed."""
    if isinstance(prompt, str):
        parts = [prompt]
    elif isinstance(prompt, list):  # strings, and ids: the stand-in tokenizer's byte ids
        raw = b"".join(p.encode() if isinstance(p, str) else bytes([p - BYTE_ID_BASE])
                       for p in prompt
                       if isinstance(p, str) or BYTE_ID_BASE <= p < BYTE_ID_BASE + 256)
        parts = [raw.decode(errors="replace")]
    else:
        parts = []
    return _SPECIAL_MARKER.sub("", "".join(parts)).strip()


def token_content(token: int) -> str:
    """The text llama-server sends for a token: ``<custom_token_N>`` for Orpheus' added ids."""
    if token >= CUSTOM_TOKEN_BASE:
        return f"<custom_token_{token - CUSTOM_TOKEN_BASE}>"
    if 0 <= token - _TEXT_ID_BASE < len(_TEXT_WORDS):
        return _TEXT_WORDS[token - _TEXT_ID_BASE]
    return ""


def generate_tokens(config: StandinConfig, text: str) -> Iterator[int]:
    """The endless token sequence a generation would produce for ``text`` under ``config``."""
    digest = hashlib.sha256(f"{config.seed}\0{text}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    eos_at = None if config.frames is None else config.frames * TOKENS_PER_FRAME
    k = 0
    loop: list[int] = []  # the "loop" fault's codes, repeated
    while True:
        if k == eos_at:
            eos_at = None
            yield EOT if config.fault == "text" else END_OF_SPEECH
            continue
        position = k % TOKENS_PER_FRAME
        code = rng.randrange(CODEBOOK_SIZE)
        if config.quiet_frames and position == 0:
            code = 0 if k // TOKENS_PER_FRAME < config.quiet_frames else 2048 + code % 2048
        if config.fault == "loop":
            if k < LOOP_FRAMES * TOKENS_PER_FRAME:
                loop.append(code)
            else:
                code = loop[k % len(loop)]
        if config.fault == "text":
            yield _TEXT_ID_BASE + k % len(_TEXT_WORDS)
        elif config.fault == "garbage" and k == FAULT_AFTER_TOKENS:
            yield audio_token_id((position + 3) % TOKENS_PER_FRAME, code)
        elif config.fault == "strays" and k >= FAULT_AFTER_TOKENS:
            yield audio_token_id(3, code)  # never a frame again: nothing to resynchronize on
        else:
            yield audio_token_id(position, code)
        k += 1


