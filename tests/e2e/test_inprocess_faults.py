"""Faults that can't be caused from outside the process: a decoder that fails (a CUDA error,
say) and an unexpected exception in a session. The server runs in-process on a real port,
built by ``create_app`` with an engine whose parts the test chooses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from orpheus_ws.client import OrpheusClient, ServerError
from orpheus_ws.devtools.standin_llm import StandinLLMServer
from orpheus_ws.engine import PassThroughCodec
from orpheus_ws.ws.delivery import Delivery
from orpheus_ws.ws.endpoint import Connection

from ..fakes import FailingCodec
from ..utils import scaled
from .harness import serve_in_process


@pytest_asyncio.fixture
async def failing_server(standin: StandinLLMServer) -> AsyncIterator[str]:
    async for address in serve_in_process(standin, FailingCodec()):
        yield address


@pytest_asyncio.fixture
async def working_server(standin: StandinLLMServer) -> AsyncIterator[str]:
    async for address in serve_in_process(standin, PassThroughCodec()):
        yield address


async def test_a_failing_decoder_fails_its_context_with_decoder_error(
        failing_server: str) -> None:
    async with OrpheusClient.connect(f"ws://{failing_server}/api/tts/ws") as client:
        with pytest.raises(ServerError) as info:
            await asyncio.wait_for(client.speak("a", "Hello there."), scaled(10))
        assert info.value.code == "decoder_error"
        assert info.value.event["context_id"] == "a"
        assert "CUDA" not in info.value.event["message"]  # no foreign exception text
        assert (await client.ping(1))["id"] == 1  # the socket stays usable


async def test_a_failing_decoder_answers_http_500(failing_server: str) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            f"http://{failing_server}/api/tts/wav", json={"text": "Hello there."}) as response:
        assert response.status == 500
        assert (await response.json())["error"]["code"] == "decoder_error"


async def test_an_unexpected_error_closes_1011_and_the_server_stays_up(
        failing_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Connection, *args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Connection, "on_flush", broken)
    url = f"ws://{failing_server}/api/tts/ws"
    async with OrpheusClient.connect(url) as client:
        await client.send({"type": "text", "context_id": "a", "text": "Hi"})
        await client.send({"type": "flush", "context_id": "a"})
        code, _ = await client.wait_closed(scaled(10))
        assert code == 1011
        assert [e["code"] for e in client.errors] == ["internal_error"]
        assert "a bug" not in client.errors[0]["message"]
    monkeypatch.undo()
    async with OrpheusClient.connect(url) as client:
        assert (await client.ping(2))["id"] == 2


async def test_an_unexpected_error_in_one_context_fails_only_that_context(
        working_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Delivery, *args: object) -> None:
        raise RuntimeError("a bug in one context")

    monkeypatch.setattr(Delivery, "send_audio", broken)
    async with OrpheusClient.connect(f"ws://{working_server}/api/tts/ws") as client:
        await client.configure(buffering="none")
        handle = await client.open_context("a")
        await handle.send_text("Hello there.", end=True)
        with pytest.raises(ServerError) as info:
            await asyncio.wait_for(handle.collect(), scaled(10))
        assert info.value.code == "internal_error"
        assert info.value.event["context_id"] == "a"
        assert "a bug" not in info.value.event["message"]
        assert (await client.ping(3))["id"] == 3  # the socket stays usable
