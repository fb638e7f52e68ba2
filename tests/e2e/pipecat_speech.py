"""pipecat's TTS services as a pipeline drives them: utterances through ``run_test``, and what
came down, summed up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame, TTSStoppedFrame, TTSTextFrame
from pipecat.tests.utils import SleepFrame, run_test


@dataclass(frozen=True)
class Spoken:
    rates: set[int]
    audio_bytes: int
    stopped: int  # TTSStoppedFrame: utterances ended
    words: list[str]  # the transcript pipecat rebuilt (TTSTextFrame), word by word


async def speak_each(tts: Any, texts: tuple[str, ...], pause_s: float = 1.5) -> Spoken:
    """Each text as a TTSSpeakFrame, ``pause_s`` after each."""
    frames: list[Any] = []
    for text in texts:
        frames += [TTSSpeakFrame(text), SleepFrame(pause_s)]
    down, _ = await run_test(tts, frames_to_send=frames)
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    return Spoken({f.sample_rate for f in audio}, sum(len(f.audio) for f in audio),
                  sum(isinstance(f, TTSStoppedFrame) for f in down),
                  [f.text for f in down if isinstance(f, TTSTextFrame)])
