"""The LLM client: streams Orpheus token ids from llama-server or an OpenAI-compatible server.

``llama`` (the default) posts the exact reference prompt as token ids to llama-server's native
``/completion`` with ``return_tokens``; ``openai`` posts to ``/v1/completions`` (vLLM, SGLang,
LM Studio, llama-server) the same reference prompt as a list of token ids, the text's ids
asked of the server's own ``/tokenize`` (vLLM, SGLang and llama-server have one), with stop
token 128258; a server without ``/tokenize`` gets the text form of the prompt instead. It
reads ``<custom_token_N>`` pieces back. Either way the generation stops at end-of-speech
(128258) whether or not the backend treats it as the end (``llm_events.py``), and a generation
ended early (its sink has what it wants, or it is cancelled) resets its connection so the
backend frees its slot at once (``llm_http.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any, Protocol

import aiohttp
import orjson

from ..params import SamplingParams
from ..vocabulary import END_OF_SPEECH, id_prompt, native_prompt, text_prompt
from .llm_events import LlmApi, TokenEvents
from .llm_http import Collect, StreamingHttp, TokenSink

log = logging.getLogger(__name__)


class TokenSource(Protocol):
    """What a generation reads its tokens from: one backend, or a pool of them."""

    async def generate(self, voice: str, text: str, params: SamplingParams,
                       sink: TokenSink) -> None:
        """Feeds the generation's token ids to ``sink`` as they come, one call per network
        read, until it ends (or ``sink`` returns True); raises ``BackendError``."""
        ...

    def can_fail_over(self) -> bool:
        """Whether a generation that just failed could be retried on another backend."""
        ...


async def stream_tokens(source: TokenSource, voice: str, text: str,
                        params: SamplingParams) -> AsyncGenerator[list[int], None]:
    """The generation's token ids as an iterator, a batch per network read (for callers that
    pull, such as the benchmarks; the engine takes them in place, ``TokenSource.generate``).
    Leaving it early ends the generation as cancelling it does."""
    batches: asyncio.Queue[list[int]] = asyncio.Queue()
    task = asyncio.ensure_future(source.generate(voice, text, params,
                                                 Collect(batches.put_nowait)))
    try:
        while True:
            getter = asyncio.ensure_future(batches.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
                continue
            getter.cancel()
            while not batches.empty():
                yield batches.get_nowait()
            task.result()
            return
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class LLMClient:
    """One backend: generations over kept-alive connections read in place (``llm_http.py``),
    the rest (tokenize, health, models) through a pooled aiohttp session."""

    def __init__(
        self,
        base_url: str,
        api: LlmApi = "llama",
        *,
        model: str = "orpheus",
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        max_connections: int = 256,
    ) -> None:
        if api not in ("llama", "openai"):
            raise ValueError(f"unknown LLM API {api!r} (llama, openai)")
        self.base_url = base_url.rstrip("/")
        self.api = api
        self.model = model
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._max_connections = max_connections
        self._connect_s, self._read_s = connect_timeout_s, read_timeout_s
        self._stream: StreamingHttp | None = None  # generations (llm_http.py)
        self._session: aiohttp.ClientSession | None = None
        self.tokenizes: bool | None = None  # openai: /tokenize answered (None: not asked yet)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, force_close=False)
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._session

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _prompt_ids(self, voice: str, text: str) -> list[int] | None:
        """The reference prompt as ids, from the server's ``/tokenize``; None where it has
        none (then the text prompt is sent)."""
        if self.tokenizes is False:
            return None
        piece = f"{voice}: {text}"
        # vLLM and SGLang read ``prompt``, llama-server ``content``; each ignores the other.
        body = {"model": self.model, "prompt": piece, "content": piece,
                "add_special_tokens": False, "add_special": False}
        try:
            async with self._http().post(self.base_url + "/tokenize", data=orjson.dumps(body),
                                         headers={"Content-Type": "application/json"},
                                         timeout=aiohttp.ClientTimeout(total=5)) as response:
                if response.status != 200:
                    self.tokenizes = False if response.status in (404, 405) else self.tokenizes
                    return None
                tokens = (await response.json(loads=orjson.loads)).get("tokens")
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError, AttributeError):
            return None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            self.tokenizes = False
            return None
        self.tokenizes = True
        return id_prompt(tokens)

    def _request(self, voice: str, text: str, params: SamplingParams,
                 prompt_ids: list[int] | None = None) -> tuple[str, dict[str, Any]]:
        if self.api == "llama":
            return "/completion", {
                "prompt": native_prompt(voice, text),
                "n_predict": params.max_tokens,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "repeat_penalty": params.repetition_penalty,
                "stream": True,
                "return_tokens": True,
                "cache_prompt": True,
                "stop": [],
            }
        return "/v1/completions", {
            "model": self.model,
            "prompt": prompt_ids if prompt_ids is not None else text_prompt(voice, text),
            "stop_token_ids": [END_OF_SPEECH],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "repetition_penalty": params.repetition_penalty,
            "repeat_penalty": params.repetition_penalty,
            "stream": True,
        }

    def can_fail_over(self) -> bool:
        """One backend: there is no other to retry on."""
        return False

    async def generate(self, voice: str, text: str, params: SamplingParams,
                       sink: TokenSink) -> None:
        """Streams the generation's token ids into ``sink`` (``TokenSource.generate``); ends
        after end-of-speech, at the backend's own end, or raises a BackendError."""
        ids = await self._prompt_ids(voice, text) if self.api == "openai" else None
        path, body = self._request(voice, text, params, ids)
        await self._streaming().stream(path, orjson.dumps(body), TokenEvents(self.api), sink)

    def _streaming(self) -> StreamingHttp:
        if self._stream is None:
            self._stream = StreamingHttp(self.base_url, connect_timeout_s=self._connect_s,
                                         read_timeout_s=self._read_s)
        return self._stream

    async def health(self) -> dict[str, Any]:
        """``{"status": "ok"|"unavailable", "slots": ...}``; never raises."""
        result: dict[str, Any] = {"url": self.base_url, "api": self.api}
        try:
            async with self._http().get(
                self.base_url + "/health", timeout=aiohttp.ClientTimeout(total=3)
            ) as response:
                result["status"] = "ok" if response.status == 200 else "unavailable"
                result["http_status"] = response.status
            if self.api == "llama" and result["status"] == "ok":
                async with self._http().get(
                    self.base_url + "/slots", timeout=aiohttp.ClientTimeout(total=3)
                ) as response:
                    if response.status == 200:
                        slots = await response.json(loads=orjson.loads)
                        if isinstance(slots, list):
                            busy = sum(1 for s in slots if s.get("is_processing"))
                            result["slots"] = {"total": len(slots), "busy": busy}
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
            result.setdefault("status", "unavailable")
        return result

    async def served_model(self) -> str | None:
        """The name of the model the backend serves (``GET /v1/models``: llama-server answers
        the GGUF's path or alias, vLLM the model's repo id), or None if it doesn't say."""
        try:
            async with self._http().get(
                self.base_url + "/v1/models", timeout=aiohttp.ClientTimeout(total=3)
            ) as response:
                if response.status != 200:
                    return None
                body = await response.json(loads=orjson.loads, content_type=None)
            model = body["data"][0]["id"]
            return model if isinstance(model, str) and model else None
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError, KeyError, IndexError,
                TypeError):
            return None


async def served_models(urls: list[str]) -> dict[str, str | None]:
    """The model each backend serves, by URL (``LLMClient.served_model``)."""
    clients = [LLMClient(url) for url in urls]
    try:
        names = await asyncio.gather(*(client.served_model() for client in clients))
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    return dict(zip(urls, names, strict=True))
