"""Measurement 2: streamed decoding against one decode of the same frames, process CPU time.

The utterance streams from a stand-in LLM process at a real rate through the same engine the
server uses (adaptive schedule, playout clock); the same frames are then decoded in
one call. Both are timed as this process's CPU time (torch's worker threads included).
"""

from __future__ import annotations

import time
from typing import Any

from ..config import Settings
from ..engine import (
    AudioChunk,
    Collect,
    DecoderService,
    Engine,
    FrameParser,
    LLMClient,
    PlayoutClock,
    SnacCodec,
    SnacCodes,
    stream_tuning,
)
from ..params import SamplingParams


async def measure_efficiency(llm_url: str, snac_model: str, *, repeats: int = 2,
                             max_tokens: int = 2048) -> dict[str, Any]:
    """CPU of the streamed decode per frame over that of one call, per frame. A stand-in
    gives the same frames twice for one prompt; a sampling llama-server may not, hence per
    frame."""
    codec = SnacCodec(snac_model, "cpu")
    settings = Settings()  # the server's defaults for this device
    decoder = DecoderService(codec)
    llm = LLMClient(llm_url)
    engine = Engine(llm, decoder, voices=["tara"], tuning=stream_tuning(settings, codec.device))
    params = SamplingParams(max_tokens=max_tokens)
    streamed: list[float] = []
    oneshot: list[float] = []
    counts: list[tuple[int, int]] = []  # frames (streamed, one call)
    windows: list[int] = []
    try:
        for k in range(repeats):
            text = f"Utterance number {k} for the efficiency measurement."
            calls_before = decoder.stats.calls
            cpu0 = time.process_time()
            frames = 0
            async for event in engine.synthesize([text], voice="tara", params=params,
                                                 clock=PlayoutClock()):
                if isinstance(event, AudioChunk):
                    frames += event.frames
            streamed.append(time.process_time() - cpu0)
            windows.append(decoder.stats.calls - calls_before)
            tokens = Collect()
            await llm.generate("tara", text, params, tokens)
            got = FrameParser().feed(tokens.ids)
            codes = SnacCodes.batch([SnacCodes.from_frames(got)])
            cpu0 = time.process_time()
            codec.decode(*codes)
            oneshot.append(time.process_time() - cpu0)
            counts.append((frames, len(got)))
    finally:
        await engine.close()
    ratio = (sum(streamed) / sum(n for n, _ in counts)) / (sum(oneshot) / sum(n for _, n in counts))
    return {"ratio": round(ratio, 3), "frames": counts, "streamed_cpu_s": streamed,
            "oneshot_cpu_s": oneshot, "windows_per_utterance": windows}
