"""Voices follow the model (lineup.py) on the real server process: the French GGUF served by
the managed llama-server through the loopback Hub offers pierre, amelie and marie, speaks
with them and refuses tara on every route; ``--voices`` does the same for a custom model; a
Korean voice speaks through ElevenLabs' path; with ``--llm-url`` the voices follow the model
the backend names, and backends serving another model than the voices' stop the server."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
import websockets
from openai import AsyncOpenAI, BadRequestError

from orpheus_ws.devtools.llama_server import free_port
from orpheus_ws.devtools.standin_llm import StandinLLMServer
from orpheus_ws.devtools.standin_tokens import prompt_text

from ..support.fake_hub import FakeHub
from ..support.newcomer import hub_root
from ..utils import scaled
from .harness import HOST, RawSocket, ServerProcess, clean_env, serve_command, serving

FRENCH = "lex-au/Orpheus-3b-French-FT-Q8_0.gguf"
FRENCH_VOICES = ["pierre", "amelie", "marie"]
KOREAN = "lex-au/Orpheus-3b-Korean-FT-Q8_0.gguf"


@pytest_asyncio.fixture(scope="module")
async def french(snac_dir: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[ServerProcess]:
    """``orpheus-ws serve --model lex-au/Orpheus-3b-French-FT-Q8_0.gguf``: the tiny GGUF
    under that name, downloaded from the loopback Hub, run by the managed llama-server."""
    root = hub_root(tmp_path_factory.mktemp("hub"),
                    extra_repos={FRENCH: "Orpheus-3b-French-FT-Q8_0.gguf"})
    async with FakeHub(root) as hub:
        env = clean_env(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path_factory.mktemp("hf-home")))
        server = ServerProcess(
            lambda port: [sys.executable, "-m", "orpheus_ws.cli", "serve", "--host", HOST,
                          "--port", str(port), "--model", FRENCH, "--snac-model", str(snac_dir),
                          "--device", "cpu", "--streams", "2", "--no-realtime-admission",
                          "--no-runaway-guard", "--no-trim-quiet", "--codec", "passthrough"],
            tmp_path_factory.mktemp("logs") / "french.log", env=env, startup_timeout=120)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()


def last_prompt(standin: StandinLLMServer) -> str:
    """The text of the last prompt the stand-in was asked to speak."""
    body = next(r.body for r in reversed(standin.requests) if r.path == "/completion")
    return prompt_text(body["prompt"])


async def get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_a_french_model_offers_its_own_voices(french: ServerProcess,
                                                    http: aiohttp.ClientSession) -> None:
    voices = await get(http, french.url + "/api/voices")
    assert voices["voices"] == FRENCH_VOICES and voices["default"] == "pierre"
    assert "<whimper>" in voices["emotion_tags"]
    openai = await get(http, french.url + "/v1/audio/voices")
    assert [v["id"] for v in openai["voices"]][:3] == FRENCH_VOICES
    assert all(v["orpheus"] in FRENCH_VOICES for v in openai["voices"])
    eleven = await get(http, french.url + "/v1/voices")
    assert [(v["voice_id"], v["labels"]["language"]) for v in eleven["voices"]] == \
        [(v, "fr") for v in FRENCH_VOICES]
    async with RawSocket.connect(french.ws_url) as raw:
        ready = raw.ready
        assert ready["voices"] == FRENCH_VOICES and ready["defaults"]["voice"] == "pierre"


async def test_a_french_model_speaks_with_marie(french: ServerProcess,
                                               http: aiohttp.ClientSession) -> None:
    async with http.post(french.url + "/api/tts/wav",
                         json={"text": "Bonjour.", "voice": "marie", "max_tokens": 70}) as answer:
        assert answer.status == 200 and len(await answer.read()) > 44
    async with RawSocket.connect(french.ws_url) as raw:
        await raw.send({"type": "text", "context_id": "m", "text": "Salut.", "voice": "amelie",
                        "max_tokens": 70, "end": True})
        done = await raw.until("done", "m", timeout=scaled(60))
        assert done["frames"] > 0 and not raw.errors()


async def test_a_french_model_refuses_tara_on_every_route(french: ServerProcess,
                                                          http: aiohttp.ClientSession) -> None:
    async with http.post(french.url + "/api/tts", json={"text": "Hi.", "voice": "tara"}) as answer:
        assert answer.status == 422
        assert (await answer.json())["error"]["voices"] == FRENCH_VOICES
    client = AsyncOpenAI(base_url=french.url + "/v1", api_key="unused")
    with pytest.raises(BadRequestError, match="tara"):
        await client.audio.speech.create(model="tts-1", voice="tara", input="Hi.")
    async with http.post(french.url + "/v1/text-to-speech/tara", json={"text": "Hi."}) as answer:
        assert answer.status == 400 and "pierre" in await answer.text()
    async with RawSocket.connect(french.ws_url) as raw:
        await raw.send({"type": "text", "context_id": "t", "text": "Hi.", "voice": "tara",
                        "end": True})
        error = await raw.until("error", "t")
        assert error["code"] == "unknown_voice"
    url = french.ws_url.replace("/api/tts/ws", "/v1/text-to-speech/tara/stream-input")
    async with websockets.connect(url) as socket:  # ElevenLabs' refusal: the error, then 1008
        message = await socket.recv()
        assert "tara" in str(message) and "pierre" in str(message)
        await socket.wait_closed()
        assert socket.close_code == 1008
    async with http.post(french.url + "/v1/speak?model=aura-2-tara-en",
                         json={"text": "Hi."}) as answer:
        assert answer.status == 400


async def test_voices_name_the_voices_of_a_custom_model(
        shared_standin: StandinLLMServer, fake_llm: StandinLLMServer, snac_dir: Path,
        tmp_path: Path, http: aiohttp.ClientSession) -> None:
    fake_llm.config.frames = 4
    async with serving(lambda port: serve_command(
            port, shared_standin.url, snac_dir, "--codec", "passthrough", "--model",
            "my-own-finetune.gguf", "--voices", "ana,유나", "--emotion-tags", "giggle"),
                       tmp_path / "custom.log") as server:
        voices = await get(http, server.url + "/api/voices")
        assert voices == {"voices": ["ana", "유나"], "default": "ana",
                          "emotion_tags": ["<giggle>"]}
        async with http.post(server.url + "/api/tts",
                             json={"text": "Hola.", "voice": "유나"}) as answer:
            assert answer.status == 200
        assert last_prompt(fake_llm) == "유나: Hola."
        async with http.post(server.url + "/api/tts",
                             json={"text": "Hi.", "voice": "tara"}) as answer:
            assert answer.status == 422


async def test_a_korean_voice_speaks_through_elevenlabs_path(
        shared_standin: StandinLLMServer, fake_llm: StandinLLMServer, snac_dir: Path,
        tmp_path: Path, http: aiohttp.ClientSession) -> None:
    fake_llm.config.frames = 4
    async with serving(lambda port: serve_command(
            port, shared_standin.url, snac_dir, "--codec", "passthrough", "--model", KOREAN),
                       tmp_path / "korean.log") as server:
        voices = await get(http, server.url + "/api/voices")
        assert voices["voices"] == ["유나", "준서"] and "<한숨>" in voices["emotion_tags"]
        url = server.url + "/v1/text-to-speech/" + quote("준서") + "?output_format=pcm_24000"
        async with http.post(url, json={"text": "안녕하세요."}) as answer:
            assert answer.status == 200 and len(await answer.read()) == 4 * 2048 * 2
        assert last_prompt(fake_llm) == "준서: 안녕하세요."


async def test_the_voices_follow_the_model_the_backend_names(
        fake_llm: StandinLLMServer, snac_dir: Path, tmp_path: Path,
        http: aiohttp.ClientSession) -> None:
    fake_llm.config.model = "/models/Orpheus-3b-German-FT-Q8_0.gguf"
    async with serving(lambda port: serve_command(port, fake_llm.url, snac_dir, "--codec",
                                                  "passthrough"),
                       tmp_path / "german.log") as server:
        assert (await get(http, server.url + "/api/voices"))["voices"] == \
            ["jana", "thomas", "max"]


async def test_a_backend_serving_another_model_stops_the_server(
        fake_llm: StandinLLMServer, snac_dir: Path) -> None:
    fake_llm.config.model = "/models/Orpheus-3b-German-FT-Q8_0.gguf"
    command = serve_command(free_port(), fake_llm.url, snac_dir, "--codec", "passthrough",
                            "--model", FRENCH)
    server = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env=clean_env())
    try:
        _, stderr = await asyncio.wait_for(server.communicate(), scaled(60))
    finally:
        if server.returncode is None:
            server.kill()
    assert server.returncode != 0
    assert b"German-FT" in stderr and b"--model" in stderr and b"Unclosed" not in stderr
