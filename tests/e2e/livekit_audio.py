"""LiveKit's TTS plugins as an agent drives them: the audio of one turn, streamed word by
word or synthesized whole, as (samples, the sample rates its frames had)."""

from __future__ import annotations

from typing import Any


async def streamed(tts: Any, text: str) -> tuple[int, set[int]]:
    """One turn through ``tts.stream()``: the text pushed a word at a time, as an LLM writes."""
    stream = tts.stream()
    for word in text.split():
        stream.push_text(word + " ")
    stream.end_input()
    samples, rates = 0, set()
    async for event in stream:
        samples += event.frame.samples_per_channel
        rates.add(event.frame.sample_rate)
    await stream.aclose()
    return samples, rates


async def synthesized(tts: Any, text: str) -> tuple[int, set[int]]:
    """One turn through ``tts.synthesize()`` (the plugins' HTTP paths)."""
    samples, rates = 0, set()
    async with tts.synthesize(text) as stream:
        async for event in stream:
            samples += event.frame.samples_per_channel
            rates.add(event.frame.sample_rate)
    return samples, rates
