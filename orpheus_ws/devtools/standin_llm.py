"""A fast stand-in for llama-server that streams Orpheus audio tokens.

Tests use it for faults a real server cannot produce on demand; the benchmark uses it as a
server with a set speed per stream and a set number of slots. It speaks llama-server's native
``POST /completion`` (SSE ``data: {...}`` lines, one token per event, a final ``"stop": true``
line) and OpenAI's ``POST /v1/completions`` (``choices[0].text`` chunks, then ``data: [DONE]``),
plus ``GET /health``, ``GET /slots`` and ``GET /v1/models``.

Codes are deterministic: they come from the seed and the prompt's text (special markers such as
``<|audio|>`` removed), so the native and the OpenAI form of one prompt give the same frames.

Run as a process: ``python -m orpheus_ws.devtools.standin_llm --port 8090 --slots 8``
(the command line lives in :mod:`orpheus_ws.devtools.standin_cli`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from dataclasses import replace
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

from orpheus_ws.vocabulary import (
    END_OF_SPEECH,
    EOT,
)

from .standin_tokens import (
    BYTE_ID_BASE,
    FAULT_AFTER_TOKENS,
    FAULTS,
    HOST,
    MAX_BATCH,
    MODEL_NAME,
    N_CTX,
    Fault,
    ReceivedRequest,
    StandinConfig,
    generate_tokens,
    prompt_text,
    token_content,
)

__all__ = ["FAULTS", "FAULT_AFTER_TOKENS", "MAX_BATCH", "N_CTX", "Fault", "ReceivedRequest",
           "StandinConfig", "StandinLLMServer", "generate_tokens", "prompt_text",
           "token_content"]


class _Wire:
    """Formats one generation's events and answers for the native or the OpenAI route."""

    def __init__(self, openai: bool) -> None:
        self.openai = openai
        self.cmpl_id = f"cmpl-{random.getrandbits(64):016x}"
        self.created = int(time.time())

    def event(self, token: int, n: int, prompt_n: int) -> bytes:
        """One token's SSE event; ``n`` tokens decoded so far."""
        content = token_content(token)
        if self.openai:
            return _sse(self._openai(content, None))
        return _sse({"index": 0, "content": content, "tokens": [token], "stop": False,
                     "id_slot": -1, "tokens_predicted": n, "tokens_evaluated": prompt_n})

    def final(self, tokens: list[int], stop_type: str, word: str, stream: bool,
              prompt_n: int, started: float, return_tokens: bool) -> bytes:
        """The closing SSE line(s) (stream) or the whole JSON answer (no stream)."""
        elapsed_ms = max((time.perf_counter() - started) * 1000.0, 1e-3)
        n = len(tokens)
        timings = {
            "prompt_n": prompt_n, "prompt_ms": 0.0, "prompt_per_token_ms": 0.0,
            "prompt_per_second": 0.0, "predicted_n": n, "predicted_ms": elapsed_ms,
            "predicted_per_token_ms": elapsed_ms / n if n else 0.0,
            "predicted_per_second": n * 1000.0 / elapsed_ms,
        }
        text = "" if stream else "".join(token_content(t) for t in tokens)
        if self.openai:
            body = self._openai(text, "length" if stop_type == "limit" else "stop")
            body["usage"] = {"prompt_tokens": prompt_n, "completion_tokens": n,
                             "total_tokens": prompt_n + n}
            body["timings"] = timings
        else:
            body = {"index": 0, "content": text, "id_slot": -1, "stop": True,
                    "tokens": [] if stream or not return_tokens else tokens,
                    "model": MODEL_NAME, "tokens_predicted": n, "tokens_evaluated": prompt_n,
                    "stop_type": stop_type, "stopping_word": word, "truncated": False,
                    "timings": timings}
        if not stream:
            return orjson.dumps(body)
        return _sse(body) + (b"data: [DONE]\n\n" if self.openai else b"")

    def _openai(self, text: str, finish_reason: str | None) -> dict[str, Any]:
        return {
            "choices": [{"text": text, "index": 0, "logprobs": None,
                         "finish_reason": finish_reason}],
            "created": self.created, "model": MODEL_NAME, "system_fingerprint": "standin",
            "object": "text_completion", "id": self.cmpl_id,
        }


def _sse(body: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(body) + b"\n\n"


class StandinLLMServer:
    """The stand-in server on 127.0.0.1; ``async with StandinLLMServer(config) as server``.

    Bookkeeping for tests: ``active`` (generations holding a slot now), ``queued`` (requests
    waiting for a slot), ``requests`` (every :class:`ReceivedRequest`), ``completed`` (ended with
    a stop line), ``aborted`` (ended because the client went away; the slot is freed at once),
    ``faulted`` (ended by an injected fault: "fail_midway"). ``config`` may be changed between
    requests; ``slots`` takes effect at once.
    """

    def __init__(self, config: StandinConfig | None = None, *, port: int = 0) -> None:
        self.config = config if config is not None else StandinConfig()
        self.port = port
        self.requests: list[ReceivedRequest] = []
        self.completed = 0
        self.aborted = 0
        self.faulted = 0
        self.queued = 0
        self._busy: set[int] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the bound port once started)."""
        return f"http://{HOST}:{self.port}"

    @property
    def active(self) -> int:
        """Number of generations running now (each holds a slot)."""
        return len(self._busy)

    async def start(self) -> None:
        """Bind 127.0.0.1 (port 0 picks a free port) and start serving."""
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/completion", self._completion)
        app.router.add_post("/completions", self._completion)
        app.router.add_post("/v1/completions", self._completion)
        app.router.add_get("/health", self._health)
        app.router.add_get("/slots", self._slots)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/tokenize", self._tokenize)
        self._stopping = False
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Cancel every request in progress and close the listening socket."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> StandinLLMServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- slots ---------------------------------------------------------------------------------

    async def _acquire(self) -> int:
        loop = asyncio.get_running_loop()
        self.queued += 1
        try:
            while True:
                free = [i for i in range(max(self.config.slots, 1)) if i not in self._busy]
                if free:
                    self._busy.add(free[0])
                    return free[0]
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
        finally:
            self.queued -= 1

    def _release(self, slot: int) -> None:
        self._busy.discard(slot)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- routes --------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        self.requests.append(ReceivedRequest(request.path))
        if self.config.fault == "refuse":
            return _error(503, "Loading model", "unavailable_error")
        return web.json_response({"status": "ok"})

    async def _slots(self, request: web.Request) -> web.Response:
        self.requests.append(ReceivedRequest(request.path))
        return web.json_response([
            {"id": i, "n_ctx": N_CTX, "is_processing": i in self._busy}
            for i in range(max(self.config.slots, 1))
        ])

    async def _tokenize(self, request: web.Request) -> web.Response:
        """vLLM's (and SGLang's) /tokenize: ``prompt`` in, ``tokens`` out; a stand-in
        tokenizer (one id per UTF-8 byte, below the special tokens)."""
        body = await request.json(loads=orjson.loads)
        self.requests.append(ReceivedRequest(request.path, body))
        text = str(body.get("prompt", ""))
        tokens = [BYTE_ID_BASE + b for b in text.encode()]
        return web.json_response({"tokens": tokens, "count": len(tokens), "max_model_len": N_CTX})

    async def _models(self, request: web.Request) -> web.Response:
        self.requests.append(ReceivedRequest(request.path))
        return web.json_response({"object": "list", "data": [
            {"id": self.config.model, "object": "model", "owned_by": "llamacpp"}]})

    async def _completion(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json(loads=orjson.loads)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.requests.append(ReceivedRequest(request.path))
            return _error(400, "request body is not a JSON object", "invalid_request_error")
        self.requests.append(ReceivedRequest(request.path, body))
        config = replace(self.config)
        if config.fault == "refuse":
            return _error(503, "Loading model", "unavailable_error")
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        slot: int | None = None
        try:
            slot = await self._acquire()
            if config.fault == "hang":
                await asyncio.Event().wait()
            resp = await self._generate(request, body, config)
        except (asyncio.CancelledError, ConnectionError):
            if not self._stopping:
                self.aborted += 1
            raise
        finally:
            self._tasks.discard(task)
            if slot is not None:
                self._release(slot)
        if resp is None:  # an injected fault dropped the connection
            self.faulted += 1
            return web.Response(status=500)
        return resp

    async def _generate(
        self, request: web.Request, body: dict[str, Any], config: StandinConfig
    ) -> web.StreamResponse | None:
        """Run one generation; None when an injected fault dropped the connection."""
        openai = request.path.startswith("/v1/")
        wire = _Wire(openai)
        stream = bool(body.get("stream", False))
        limit = _limit(body, openai)
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else [s for s in stops if isinstance(s, str)]
        prompt = body.get("prompt", "")
        text = prompt_text(prompt)
        prompt_n = len(text) // 4 + (sum(1 for p in prompt if isinstance(p, int))
                                     if isinstance(prompt, list) else 0)
        cut = FAULT_AFTER_TOKENS if config.fault in ("fail_midway", "stall") else None
        rate = config.tokens_per_second
        paced = 0.0 < rate < math.inf
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        t0 = loop.time()
        resp: web.StreamResponse | None = None
        if stream:
            resp = web.StreamResponse(headers={
                "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            await resp.prepare(request)

        sent: list[int] = []
        source = generate_tokens(config, text)
        stop_type, word = "", ""
        while True:
            if len(sent) >= limit:
                stop_type = "limit"
            if len(sent) == cut:
                stop_type = "cut"
            if stop_type:
                break
            batch = MAX_BATCH
            if paced:
                now = loop.time()
                due = int((now - t0) * rate + 1e-6)
                if due <= len(sent):
                    await asyncio.sleep(t0 + (len(sent) + 1) / rate - now)
                    continue
                batch = min(due - len(sent), MAX_BATCH)
            chunk: list[bytes] = []
            for _ in range(batch):
                token = next(source)
                if token_content(token) in stops:
                    stop_type, word = "word", token_content(token)
                    break
                sent.append(token)
                chunk.append(wire.event(token, len(sent), prompt_n))
                if token == EOT or (token == END_OF_SPEECH and config.emit_eos_as_stop):
                    stop_type = "eos"
                    break
                if len(sent) in (limit, cut):
                    break
            if resp is not None and chunk:
                await resp.write(b"".join(chunk))
            if not paced:
                await asyncio.sleep(0)  # resp.write may not yield; let other streams run

        if stop_type == "cut":
            if config.fault == "stall":
                await asyncio.Event().wait()
            if request.transport is not None:
                request.transport.close()
            return None
        final = wire.final(sent, stop_type, word, stream, prompt_n, started,
                           bool(body.get("return_tokens", False)))
        if resp is None:
            self.completed += 1
            return web.Response(body=final, content_type="application/json")
        await resp.write(final)
        await resp.write_eof()
        self.completed += 1
        return resp


def _limit(body: dict[str, Any], openai: bool) -> int:
    keys = ("max_tokens", "n_predict") if openai else ("n_predict", "max_tokens")
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return min(value, N_CTX)
    return N_CTX


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response(
        {"error": {"code": status, "message": message, "type": kind}}, status=status)


if __name__ == "__main__":
    from orpheus_ws.devtools.standin_cli import main

    main()
