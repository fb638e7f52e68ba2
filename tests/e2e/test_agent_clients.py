"""The voice-agent frameworks' own TTS services, unchanged but for a base URL, against the real
server process (real SNAC, stand-in LLM): pipecat through its `run_test`, LiveKit Agents'
plugins through `synthesize()` (their HTTP paths). Each speaks twice on one service object."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
from livekit.plugins import cartesia, deepgram, elevenlabs
from livekit.plugins import openai as livekit_openai
from pipecat.frames.frames import Frame, TTSAudioRawFrame, TTSSpeakFrame, TTSStoppedFrame
from pipecat.services.deepgram.tts import DeepgramHttpTTSService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.tests.utils import SleepFrame, run_test

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from .harness import SAMPLES_PER_FRAME, ServerProcess, completions
from .livekit_audio import synthesized

FRAMES = 6


def within_a_frame(samples: int, rate: int, utterances: int = 1) -> bool:
    """``samples`` at ``rate`` is ``utterances x FRAMES`` frames of audio, give or take one
    frame (encoder padding, the clients' 10 ms framing)."""
    seconds = samples / rate
    want = utterances * FRAMES * SAMPLES_PER_FRAME / 24000
    return abs(seconds - want) <= utterances * SAMPLES_PER_FRAME / 24000


def pipecat_audio(frames: Sequence[Frame]) -> tuple[int, set[int]]:
    audio = [f for f in frames if isinstance(f, TTSAudioRawFrame)]
    return sum(len(f.audio) for f in audio) // 2, {f.sample_rate for f in audio}


async def test_pipecat_openai_tts_service(standin_server: ServerProcess,
                                          fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    tts = OpenAITTSService(api_key="unused", base_url=standin_server.url + "/v1",
                           settings=OpenAITTSService.Settings(voice="nova"))
    down, _ = await run_test(tts, frames_to_send=[
        TTSSpeakFrame("Hello there."), SleepFrame(0.5), TTSSpeakFrame("And again.")])
    samples, rates = pipecat_audio(down)
    assert rates == {24000}
    assert samples == 2 * FRAMES * SAMPLES_PER_FRAME  # pcm: exact
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    assert completions(fake_llm)[-2:] == ["leah: Hello there.", "leah: And again."]


async def test_pipecat_deepgram_http_tts_service(standin_server: ServerProcess,
                                                 fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    async with aiohttp.ClientSession() as http:
        tts = DeepgramHttpTTSService(api_key="unused", aiohttp_session=http,
                                     base_url=standin_server.url, sample_rate=16000)
        down, _ = await run_test(tts, frames_to_send=[
            TTSSpeakFrame("Hello there."), SleepFrame(0.5), TTSSpeakFrame("And again.")])
    samples, rates = pipecat_audio(down)
    assert rates == {16000}
    assert samples == 2 * FRAMES * SAMPLES_PER_FRAME * 16000 // 24000


async def test_livekit_openai_tts_with_its_defaults(standin_server: ServerProcess,
                                                    fake_llm: StandinLLMServer) -> None:
    """mp3 over SSE, voice ash: LiveKit picks its parser from the Content-Type."""
    fake_llm.config.frames = FRAMES
    tts = livekit_openai.TTS(base_url=standin_server.url + "/v1", api_key="unused")
    for text in ("Hello there.", "And again."):
        samples, rates = await synthesized(tts, text)
        assert rates == {24000} and within_a_frame(samples, 24000)
    assert completions(fake_llm)[-1] == "dan: And again."  # ash answers as dan


async def test_livekit_vendor_plugins_over_http(standin_server: ServerProcess,
                                                fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = FRAMES
    async with aiohttp.ClientSession() as http:
        services: list[tuple[Any, int]] = [
            (deepgram.TTS(base_url=standin_server.url + "/v1/speak", api_key="unused",
                          http_session=http, sample_rate=16000), 16000),
            (deepgram.TTS(base_url=standin_server.url + "/v1/speak", api_key="unused",
                          http_session=http, sample_rate=8000), 8000),  # it reads linear16 only
            (elevenlabs.TTS(base_url=standin_server.url + "/v1", api_key="unused",
                            http_session=http), 22050),  # mp3_22050_32, its default
            (cartesia.TTS(base_url=standin_server.url, api_key="unused",
                          http_session=http), 24000),
        ]
        for tts, rate in services:
            for text in ("Hello there.", "And again."):
                samples, rates = await synthesized(tts, text)
                assert rates == {rate}, (type(tts), rates)
                assert within_a_frame(samples, rate), (type(tts), samples)
