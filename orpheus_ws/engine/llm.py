"""The LLM client: streams Orpheus token ids from llama-server or an OpenAI-compatible server.

``llama`` (the default) posts the exact reference prompt as token ids to llama-server's native
``/completion`` with ``return_tokens``; ``openai`` posts to ``/v1/completions`` (vLLM, SGLang,
LM Studio, llama-server) the same reference prompt as a list of token ids, the text's ids
asked of the server's own ``/tokenize`` (vLLM, SGLang and llama-server have one), with stop
token 128258; a server without ``/tokenize`` gets the text form of the prompt instead. It
reads ``<custom_token_N>`` pieces back. Either way
the stream stops at end-of-speech (128258) whether or not the backend treats it as the end, and
leaving the iterator early closes the HTTP response so the backend frees its slot at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Literal, Protocol

import aiohttp
import orjson

from ..exceptions import BackendError, BackendProtocolError, BackendUnavailable
from ..params import SamplingParams
from ..vocabulary import (
    END_OF_SPEECH,
    EOT,
    id_prompt,
    native_prompt,
    parse_custom_token,
    text_prompt,
)

log = logging.getLogger(__name__)

LlmApi = Literal["llama", "openai"]


class TokenSource(Protocol):
    """What a generation reads its tokens from: one backend, or a pool of them."""

    def stream_tokens(self, voice: str, text: str,
                      params: SamplingParams) -> AsyncGenerator[list[int], None]: ...

    def can_fail_over(self) -> bool:
        """Whether a generation that just failed could be retried on another backend."""
        ...


def abort(response: aiohttp.ClientResponse) -> None:
    """Drops an unfinished stream's connection with a TCP reset (SO_LINGER 0), not a FIN: the
    backend's next write fails at once, so it stops generating and frees its slot a token
    sooner than after a graceful close."""
    connection = response.connection
    transport = connection.transport if connection is not None else None
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    response.close()


class LLMClient:
    """A pooled aiohttp session to one backend."""

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
        self._session: aiohttp.ClientSession | None = None
        self.tokenizes: bool | None = None  # openai: /tokenize answered (None: not asked yet)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, force_close=False)
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._session

    async def close(self) -> None:
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

    async def stream_tokens(
        self, voice: str, text: str, params: SamplingParams
    ) -> AsyncGenerator[list[int], None]:
        """Token ids in the order generated, in batches as they arrive from the network.

        Ends after end-of-speech, at the backend's own end, or raises a BackendError.
        """
        ids = await self._prompt_ids(voice, text) if self.api == "openai" else None
        path, body = self._request(voice, text, params, ids)
        try:
            response = await self._http().post(self.base_url + path, data=orjson.dumps(body),
                                               headers={"Content-Type": "application/json"})
        except aiohttp.ConnectionTimeoutError as exc:
            raise BackendUnavailable("the LLM backend can't be reached") from exc
        except TimeoutError as exc:  # connected, but no answer within the timeout
            raise BackendError("the LLM backend did not answer in time") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise BackendUnavailable("the LLM backend can't be reached") from exc
        finished = False
        try:
            if response.status != 200:
                raise BackendUnavailable(f"the LLM backend answered HTTP {response.status}")
            async for ids in self._read_events(response):
                if END_OF_SPEECH in ids or EOT in ids:
                    stop = min(i for i, t in enumerate(ids) if t in (END_OF_SPEECH, EOT))
                    if stop:
                        yield ids[:stop]
                    return
                if ids:
                    yield ids
            finished = True
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise BackendError("the LLM backend stream broke off") from exc
        finally:
            if finished:
                response.release()  # the backend ended: the connection can be reused
            else:
                abort(response)

    async def _read_events(self, response: aiohttp.ClientResponse) -> AsyncIterator[list[int]]:
        """Batches of token ids, one batch per network read; ends at the backend's stop."""
        buffer = b""
        finished = False
        async for chunk in response.content.iter_any():
            buffer += chunk
            lines = buffer.split(b"\n")
            buffer = lines.pop()
            ids: list[int] = []
            for line in lines:
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    finished = True
                    break
                try:
                    event = orjson.loads(payload)
                except orjson.JSONDecodeError as exc:
                    raise BackendProtocolError("the LLM backend sent malformed JSON") from exc
                done = self._event_tokens(event, ids)
                if done:
                    finished = True
                    break
            if ids:
                yield ids
            if finished:
                return
        raise BackendError("the LLM backend stream ended without a stop")

    def _event_tokens(self, event: Any, ids: list[int]) -> bool:
        """Appends the event's token ids; True when the event ends the generation."""
        if not isinstance(event, dict):
            raise BackendProtocolError("the LLM backend sent an unexpected event")
        if "error" in event:
            raise BackendUnavailable("the LLM backend reported an error")
        if self.api == "llama":
            tokens = event.get("tokens")
            if isinstance(tokens, list) and tokens:
                ids.extend(int(t) for t in tokens)
            else:
                content = event.get("content") or ""
                found = parse_custom_token(content)
                if content.strip() and not found:
                    raise BackendProtocolError("the LLM backend streamed text, not audio tokens")
                ids.extend(found)
            return bool(event.get("stop"))
        choices = event.get("choices") or []
        if not choices:
            return False
        choice = choices[0]
        text = choice.get("text") or ""
        found = parse_custom_token(text)
        if text.strip() and not found:
            raise BackendProtocolError("the LLM backend streamed text, not audio tokens")
        ids.extend(found)
        return choice.get("finish_reason") is not None

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
