"""Measurement 2: streamed decoding against one decode of the same frames, process CPU time.

The utterance streams from a stand-in LLM process at a real rate through the same segment
stream the server uses (adaptive schedule, playout clock); the same frames are then decoded in
one call. Both are timed as this process's CPU time (torch's worker threads included).
"""

from __future__ import annotations

import time
from typing import Any

from ..codec import SnacCodec
from ..config import Settings
from ..decoder import DecoderService
from ..llm import LLMClient, SamplingParams
from ..segment_stream import PlayoutClock, stream_segment
from ..tokens import FrameParser, frames_to_codes


async def measure_efficiency(llm_url: str, snac_model: str, *, repeats: int = 2,
                             max_tokens: int = 2048) -> dict[str, Any]:
    """CPU of the streamed decode per frame over that of one call, per frame. A stand-in
    gives the same frames twice for one prompt; a sampling llama-server may not, hence per
    frame."""
    codec = SnacCodec(snac_model, "cpu")
    settings = Settings()  # the server's defaults for this device
    tuning = settings.stream_tuning(codec.device)
    decoder = DecoderService(codec)
    llm = LLMClient(llm_url)
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
            async for chunk in stream_segment(llm, decoder, voice="tara", text=text,
                                              params=params, clock=PlayoutClock(),
                                              tuning=tuning):
                frames += chunk.frames
            streamed.append(time.process_time() - cpu0)
            windows.append(decoder.stats.calls - calls_before)
            parser = FrameParser()
            got = []
            async for ids in llm.stream_tokens("tara", text, params):
                got.extend(parser.feed(ids))
            c0, c1, c2 = frames_to_codes(got)
            cpu0 = time.process_time()
            codec.decode(c0[None, :], c1[None, :], c2[None, :])
            oneshot.append(time.process_time() - cpu0)
            counts.append((frames, len(got)))
    finally:
        await llm.close()
        await decoder.close()
    ratio = (sum(streamed) / sum(n for n, _ in counts)) / (sum(oneshot) / sum(n for _, n in counts))
    return {"ratio": round(ratio, 3), "frames": counts, "streamed_cpu_s": streamed,
            "oneshot_cpu_s": oneshot, "windows_per_utterance": windows}
