"""Text in as people write it, on the real server process (#21): the prompt the stand-in LLM
receives is normalized in the voice's language while every event keeps the client's words;
SSML, where a protocol says the text is SSML (the native ``text_format``, ElevenLabs'
``enable_ssml_parsing``), with ``<break>`` adding exactly its silence; plain text is never
read as SSML."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
import websockets

from orpheus_ws.devtools.standin_llm import StandinLLMServer
from orpheus_ws.devtools.standin_tokens import prompt_text

from ..utils import scaled
from .harness import SAMPLES_PER_FRAME, RawSocket, ServerProcess, serve_command, serving

FRAMES = 4  # per generation
PAUSE = 12000  # <break time="500ms"/> at 24 kHz
WRITTEN = "Dr. Smith paid $4.50 at 3:30 pm on Jan. 5th, 2026."
READ = ("Doctor Smith paid four dollars and fifty cents at three thirty PM on January fifth, "
        "twenty twenty-six.")
MARKUP = ('<speak>Hello there.<break time="500ms"/>Again, <say-as interpret-as="cardinal">42'
          '</say-as> <sub alias="World Wide Web Consortium">W3C</sub>.</speak>')


@pytest_asyncio.fixture(scope="module")
async def server(shared_standin: StandinLLMServer, snac_dir: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with serving(lambda port: serve_command(
            port, shared_standin.url, snac_dir, "--codec", "passthrough", "--normalize"),
                       tmp_path_factory.mktemp("logs") / "text.log") as process:
        yield process


@pytest.fixture
def standin(fake_llm: StandinLLMServer) -> StandinLLMServer:
    fake_llm.config.frames = FRAMES
    return fake_llm


def prompts(standin: StandinLLMServer, since: int) -> list[str]:
    """The texts the stand-in was asked to speak, from request ``since`` on."""
    return [prompt_text(r.body["prompt"]) for r in standin.requests[since:]
            if r.path == "/completion"]


async def native(server: ServerProcess, *messages: dict[str, Any]) -> RawSocket:
    async with RawSocket.connect(server.ws_url) as raw:
        for message in messages:
            await raw.send(message)
        await raw.until("done", "c", timeout=scaled(30))
        return raw


async def test_the_model_reads_words_and_events_keep_the_clients_own(
        server: ServerProcess, standin: StandinLLMServer) -> None:
    since = len(standin.requests)
    raw = await native(server, {"type": "text", "context_id": "c", "text": WRITTEN,
                                "end": True})
    # the first segment may end early at a clause (protocol.md): the same words either way
    said = prompts(standin, since)
    assert all(p.startswith("tara: ") for p in said)
    assert " ".join(p.removeprefix("tara: ") for p in said) == READ
    assert " ".join(e["text"] for e in raw.events("segment_started", "c")) == WRITTEN
    since = len(standin.requests)
    await native(server, {"type": "text", "context_id": "c", "text": WRITTEN,
                          "normalize": False, "end": True})
    assert " ".join(p.removeprefix("tara: ") for p in prompts(standin, since)) == WRITTEN


@pytest.mark.parametrize("normalize", [None, False])
async def test_the_seed_api_normalizes_unless_asked_not_to(
        normalize: bool | None, server: ServerProcess, standin: StandinLLMServer,
        http: aiohttp.ClientSession) -> None:
    since = len(standin.requests)
    body: dict[str, Any] = {"text": WRITTEN, "voice": "leo"}
    if normalize is not None:
        body["normalize"] = normalize
    async with http.post(server.url + "/api/tts", json=body) as answer:
        assert answer.status == 200
    assert prompts(standin, since) == [f"leo: {READ if normalize is None else WRITTEN}"]


async def test_a_french_voice_is_read_in_french(standin: StandinLLMServer, snac_dir: Path,
                                                tmp_path: Path,
                                                http: aiohttp.ClientSession) -> None:
    async with serving(lambda port: serve_command(
            port, standin.url, snac_dir, "--codec", "passthrough", "--normalize", "--model",
            "lex-au/Orpheus-3b-French-FT-Q8_0.gguf"), tmp_path / "fr.log") as french:
        since = len(standin.requests)
        async with http.post(french.url + "/api/tts",
                             json={"text": "Il coûte 5,50 € le 5 janvier 2026."}) as answer:
            assert answer.status == 200
    assert prompts(standin, since) == [
        "pierre: Il coûte cinq euros et cinquante centimes le cinq janvier deux mille "
        "vingt-six."]


def check_ssml_speech(standin: StandinLLMServer, since: int) -> None:
    assert prompts(standin, since) == [
        "tara: Hello there.", "tara: Again, forty-two World Wide Web Consortium."]


@pytest.mark.parametrize("pieces", [1, 7])
async def test_native_ssml_breaks_add_exactly_their_silence(
        pieces: int, server: ServerProcess, standin: StandinLLMServer) -> None:
    """Whole, or in pieces of 7 characters (tags cut in two): the same segments, and the
    break is a segment of its own with exactly its samples of silence."""
    since = len(standin.requests)
    parts = [MARKUP[k: k + pieces] for k in range(0, len(MARKUP), pieces)] if pieces > 1 \
        else [MARKUP]
    messages = [{"type": "text", "context_id": "c", "text": part,
                 **({"text_format": "ssml"} if n == 0 else {})} for n, part in enumerate(parts)]
    raw = await native(server, *messages, {"type": "end", "context_id": "c"})
    assert not raw.errors()
    check_ssml_speech(standin, since)
    finished = raw.events("segment_finished", "c")
    assert [(f["frames"], f["source_samples"]) for f in finished] == \
        [(FRAMES, FRAMES * SAMPLES_PER_FRAME), (0, PAUSE), (FRAMES, FRAMES * SAMPLES_PER_FRAME)]
    done = raw.events("done", "c")[0]
    assert done["samples"] == 2 * FRAMES * SAMPLES_PER_FRAME + PAUSE


async def test_plain_text_is_never_read_as_ssml(server: ServerProcess,
                                                standin: StandinLLMServer) -> None:
    raw = await native(server, {"type": "text", "context_id": "c", "end": True,
                                "text": 'Type <break time="1s"/> to pause.'})
    assert raw.events("done", "c")[0]["samples"] == FRAMES * SAMPLES_PER_FRAME


async def test_markup_that_cannot_be_read_is_an_error_and_the_socket_goes_on(
        server: ServerProcess, standin: StandinLLMServer) -> None:
    async with RawSocket.connect(server.ws_url) as raw:
        await raw.send({"type": "text", "context_id": "c", "text_format": "ssml",
                        "text": "<speak>Hello <emphasis>there</speak>", "end": True})
        error = await raw.until("error", "c")
        assert error["code"] == "invalid_ssml" and "<emphasis>" not in error["message"]
        await raw.send({"type": "text", "context_id": "d", "text": "Still here.", "end": True})
        await raw.until("done", "d", timeout=scaled(30))


async def test_elevenlabs_ssml_on_its_socket_and_its_http_path(
        server: ServerProcess, standin: StandinLLMServer, http: aiohttp.ClientSession) -> None:
    expected = (2 * FRAMES * SAMPLES_PER_FRAME + PAUSE) * 2  # bytes of pcm_24000
    since = len(standin.requests)
    url = server.url + "/v1/text-to-speech/tara?output_format=pcm_24000&enable_ssml_parsing=true"
    async with http.post(url, json={"text": MARKUP}) as answer:
        assert answer.status == 200 and len(await answer.read()) == expected
    check_ssml_speech(standin, since)
    since = len(standin.requests)
    socket_url = server.ws_url.replace("/api/tts/ws", "/v1/text-to-speech/tara/stream-input") \
        + "?output_format=pcm_24000&enable_ssml_parsing=true"
    audio = 0
    async with websockets.connect(socket_url) as socket:
        await socket.send(orjson.dumps({"text": " "}).decode())
        half = len(MARKUP) // 2
        for piece in (MARKUP[:half], MARKUP[half:]):
            await socket.send(orjson.dumps({"text": piece}).decode())
        await socket.send(orjson.dumps({"text": ""}).decode())
        async for message in socket:
            event = orjson.loads(message)
            if event.get("audio"):
                audio += len(base64.b64decode(event["audio"]))
            if event.get("isFinal"):
                break
    assert audio == expected
    check_ssml_speech(standin, since)


@pytest.mark.parametrize("model,said", [
    ("lex-au/Orpheus-3b-German-FT-Q8_0.gguf", [(
        "jana", "Der Termin ist am 5. Januar 2026 um 15:30 Uhr und kostet 4,50 €.",
        "Der Termin ist am fünften Januar zweitausendsechsundzwanzig um fünfzehn Uhr dreißig "
        "und kostet vier Euro und fünfzig Cent.")]),
    ("lex-au/Orpheus-3b-Italian_Spanish-FT-Q8_0.gguf", [
        ("javi", "La cita es el 5 de enero de 2026 a las 15:30 y cuesta 4,50 €.",
         "La cita es el cinco de enero de dos mil veintiséis a las quince y treinta y cuesta "
         "cuatro euros con cincuenta céntimos."),
        ("pietro", "Il prezzo è di 4,50 € alle 15:30 del 5 gennaio 2026.",
         "Il prezzo è di quattro euro e cinquanta centesimi alle quindici e trenta del cinque "
         "gennaio duemilaventisei.")]),
    ("lex-au/Orpheus-3b-Korean-FT-Q8_0.gguf", [(
        "유나", "회의는 2026년 1월 5일 오후 3시 30분에 있고 가격은 4,500원입니다.",
        "회의는 이천이십육년 일월 오일 오후 세시 삼십분에 있고 가격은 사천오백원입니다.")]),
])
async def test_each_voice_is_read_in_its_own_language(
        model: str, said: list[tuple[str, str, str]], standin: StandinLLMServer,
        snac_dir: Path, tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """The prompt the stand-in receives, for a voice of each multilingual model (the
    Spanish-Italian model's voices each in their own language)."""
    async with serving(lambda port: serve_command(
            port, standin.url, snac_dir, "--codec", "passthrough", "--normalize", "--model",
            model), tmp_path / "lang.log") as server:
        for voice, written, read in said:
            since = len(standin.requests)
            async with http.post(server.url + "/api/tts",
                                 json={"text": written, "voice": voice}) as answer:
                assert answer.status == 200
            assert prompts(standin, since) == [f"{voice}: {read}"]
