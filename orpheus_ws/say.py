"""``orpheus-ws say "text" -o out.wav``: the quickest way to hear it work.

In-process by default: the engine (and, with no ``--llm-url``, a managed llama-server) is
started, speaks the text, and stops. With ``--url`` a running server speaks it instead
(``POST /api/tts/wav``). ``-o -`` writes the WAV to standard output (``| ffplay -``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from typing import Any

import numpy as np

from . import params as fields
from .config import Settings
from .exceptions import OrpheusError
from .params import SamplingParams

SAMPLING_FLAGS = ("temperature", "top_p", "repetition_penalty", "max_tokens")


def add_say_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="what to say")
    parser.add_argument("-o", "--output", default="speech.wav",
                        help="the WAV file to write; - for standard output")
    parser.add_argument("--url", default=None,
                        help="a running orpheus-ws server (http://HOST:PORT) to speak it")
    parser.add_argument("--voice", default=None, help="the voice (default: the server's)")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--top-p", dest="top_p", type=float, default=None)
    parser.add_argument("--repetition-penalty", dest="repetition_penalty", type=float,
                        default=None)
    parser.add_argument("--max-tokens", dest="max_tokens", type=int, default=None,
                        help="per segment, as in the API")


def _request(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    body: dict[str, Any] = {"text": args.text, "voice": args.voice or settings.lineup.default}
    body.update({k: getattr(args, k) for k in SAMPLING_FLAGS if getattr(args, k) is not None})
    return body


async def _speak_in_process(settings: Settings, text: str, voice: str,
                            params: SamplingParams) -> np.ndarray:
    from .engine import AudioChunk, build_engine
    from .managed.backend import ManagedBackend, start_managed, torch_threads_for

    managed: ManagedBackend | None = None
    if not settings.llm_url:
        managed = await asyncio.to_thread(start_managed, settings)
    try:
        engine = build_engine(settings, llm_url=managed.url if managed else None,
                              torch_threads=torch_threads_for(settings) if managed else None)
        await engine.start()
        try:
            parts = [event.pcm async for event in engine.speak(text, voice=voice, params=params)
                     if isinstance(event, AudioChunk)]
        finally:
            await engine.close()
    finally:
        if managed is not None:
            await asyncio.to_thread(managed.stop)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


async def _speak_remotely(url: str, body: dict[str, Any]) -> bytes:
    import aiohttp

    try:
        async with aiohttp.ClientSession() as http, http.post(
                url.rstrip("/") + "/api/tts/wav", json=body) as response:
            if response.status != 200:
                error = await response.json(content_type=None)
                message = error.get("error", {}).get("message", f"HTTP {response.status}")
                raise RemoteError(f"the server answered {response.status}: {message}")
            return await response.read()
    except (aiohttp.ClientError, OSError) as exc:
        raise RemoteError(f"cannot reach {url}: {exc.__class__.__name__}") from None


class RemoteError(Exception):
    """The running server could not be reached or refused the request."""


def run_say(args: argparse.Namespace, settings: Settings) -> int:
    """Writes the WAV; 0 on success, 1 with one line on standard error otherwise."""
    from .audio import wav_bytes
    from .managed.plan import LlamaServerMissing
    from .managed.supervisor import LlamaServerFailed
    from .models import ModelError, resolve_snac

    body = _request(args, settings)
    try:
        if args.url:
            wav = asyncio.run(_speak_remotely(args.url, body))
        else:
            text = fields.text(body)
            voice = fields.voice(body, settings.voice_list, settings.lineup.default)
            params = fields.sampling(body)
            if settings.codec == "snac":
                settings = replace(settings, snac_model=resolve_snac(settings.snac_model))
            wav = wav_bytes(asyncio.run(_speak_in_process(settings, text, voice, params)))
    except (OrpheusError, RemoteError, ModelError, LlamaServerMissing,
            LlamaServerFailed) as exc:
        print(f"orpheus-ws say: {exc}", file=sys.stderr)
        return 1
    if args.output == "-":
        sys.stdout.buffer.write(wav)
        sys.stdout.buffer.flush()
    else:
        with open(args.output, "wb") as out:
            out.write(wav)
        print(f"{args.output}: {(len(wav) - 44) / 2 / 24000:.2f} s of speech", file=sys.stderr)
    return 0
