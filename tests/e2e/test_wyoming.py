"""Home Assistant's Wyoming protocol (``serve --wyoming-port``) on the real server process,
driven with ``wyoming``'s own ``AsyncTcpClient`` as Home Assistant drives it: ``describe``, a
one-shot ``synthesize``, a stream fed word by word (with the whole-text ``synthesize`` a
streaming server ignores), a client leaving mid-reply, faults; the pass-through codec (silence
of the right length, counted) and the stand-in LLM."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

import orpheus_ws
from orpheus_ws.devtools.llama_server import free_port
from orpheus_ws.devtools.standin_llm import StandinLLMServer

from ..utils import eventually, scaled
from .harness import HOST, SAMPLES_PER_FRAME, ServerProcess, completions, serve_command, serving

FRAMES = 4  # per generation
SEGMENT = FRAMES * SAMPLES_PER_FRAME  # samples of one generated segment
VOICES = ["tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe"]
REPLY = ("The kitchen lights are on and the front door is locked now. The living room is "
         "warm, at twenty one degrees right now. Is there anything else I can do for you?")


@dataclass
class Wyoming:
    """The server process and its Wyoming port."""

    server: ServerProcess
    port: int


@pytest_asyncio.fixture(scope="module")
async def wyoming(shared_standin: StandinLLMServer, snac_dir: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Wyoming]:
    ports: list[int] = []  # a new one for each try the harness makes

    def command(port: int) -> list[str]:
        ports.append(free_port())
        return serve_command(port, shared_standin.url, snac_dir, "--codec", "passthrough",
                             "--wyoming-port", str(ports[-1]))

    async with serving(command, tmp_path_factory.mktemp("logs") / "wyoming.log") as process:
        assert f"Wyoming TTS on tcp://{HOST}:{ports[-1]}" in process.log_path.read_text()
        yield Wyoming(process, ports[-1])


@pytest.fixture
def standin(fake_llm: StandinLLMServer) -> StandinLLMServer:
    fake_llm.config.frames = FRAMES
    return fake_llm


@dataclass
class Answer:
    """What the server sent for one request, in order."""

    events: list[Event] = field(default_factory=list)
    first_audio_at: float = 0.0

    @property
    def types(self) -> list[str]:
        return [event.type for event in self.events]

    @property
    def samples(self) -> int:
        return sum(AudioChunk.from_event(e).samples for e in self.events
                   if AudioChunk.is_type(e.type))


async def connect(wyoming: Wyoming) -> AsyncTcpClient:
    client = AsyncTcpClient(HOST, wyoming.port)
    await client.connect()
    return client


async def read(client: AsyncTcpClient, timeout: float = 10.0) -> Event:
    event = await asyncio.wait_for(client.read_event(), scaled(timeout))
    assert event is not None, "the server closed the connection"
    return event


async def answer(client: AsyncTcpClient, last: str, timeout: float = 20.0) -> Answer:
    """The events up to and including the first of type ``last``."""
    got = Answer()
    deadline = time.monotonic() + scaled(timeout)
    while not got.events or got.events[-1].type != last:
        event = await read(client, max(0.01, deadline - time.monotonic()))
        if AudioChunk.is_type(event.type) and not got.first_audio_at:
            got.first_audio_at = time.monotonic()
        got.events.append(event)
    return got


def check_audio(got: Answer, *, streamed: bool) -> None:
    """One audio-start in Home Assistant's format before any audio, audio-stop after it all
    (then synthesize-stopped, for a stream); chunks all in that format."""
    types = got.types
    assert types[0] == "audio-start" and types.count("audio-start") == 1, types
    start = AudioStart.from_event(got.events[0])
    assert (start.rate, start.width, start.channels) == (24000, 2, 1)
    tail = ["audio-stop", "synthesize-stopped"] if streamed else ["audio-stop"]
    assert types[-len(tail):] == tail
    assert set(types[1:-len(tail)]) == {"audio-chunk"}
    for event in got.events[1:-len(tail)]:
        chunk = AudioChunk.from_event(event)
        assert (chunk.rate, chunk.width, chunk.channels) == (24000, 2, 1)


async def open_connections(http: aiohttp.ClientSession, wyoming: Wyoming) -> float:
    """``orpheus_ws_sockets_open{route="wyoming"}`` as /metrics has it."""
    async with http.get(wyoming.server.url + "/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith('orpheus_ws_sockets_open{route="wyoming"}'):
                return float(line.split()[-1])
    return 0.0


async def test_describe_offers_the_models_voices_and_streaming(
        wyoming: Wyoming, http: aiohttp.ClientSession) -> None:
    client = await connect(wyoming)
    try:
        await client.write_event(Describe().event())
        info = Info.from_event(await read(client))
        assert await open_connections(http, wyoming) == 1
    finally:
        await client.disconnect()
    opened = 1.0
    for _ in range(int(scaled(3) / 0.05)):  # the server sees the close a moment later
        if (opened := await open_connections(http, wyoming)) == 0:
            break
        await asyncio.sleep(0.05)
    assert opened == 0
    [program] = info.tts
    assert (program.name, program.installed, program.version) == \
        ("orpheus_ws", True, orpheus_ws.__version__)
    assert program.supports_synthesize_streaming
    assert program.attribution.name == "Canopy Labs"
    assert program.attribution.url == "https://github.com/canopyai/Orpheus-TTS"
    assert [voice.name for voice in program.voices] == VOICES
    assert all(voice.languages == ["en"] and voice.installed for voice in program.voices)


async def test_a_one_shot_synthesize_is_its_audio_exactly(
        wyoming: Wyoming, standin: StandinLLMServer) -> None:
    before = len(completions(standin))
    client = await connect(wyoming)
    try:
        await client.write_event(Synthesize(text="Hello there.",
                                            voice=SynthesizeVoice(name="leo")).event())
        got = await answer(client, "audio-stop")
        check_audio(got, streamed=False)
        assert completions(standin)[before:] == ["leo: Hello there."]
        assert got.samples == SEGMENT
        # the default voice, and one picked by its language (en-US: the first English voice)
        for voice in (None, SynthesizeVoice(language="en-US")):
            await client.write_event(Synthesize(text="Again.", voice=voice).event())
            assert (await answer(client, "audio-stop")).samples == SEGMENT
        assert completions(standin)[-2:] == ["tara: Again.", "tara: Again."]
    finally:
        await client.disconnect()


async def test_a_stream_speaks_sentences_as_they_complete_and_ignores_the_whole_text(
        wyoming: Wyoming, standin: StandinLLMServer) -> None:
    """As Home Assistant streams an LLM's reply: start, a chunk per word, the whole text in a
    ``synthesize`` for older servers, stop; reading all the while (two tasks)."""
    before = len(completions(standin))
    client = await connect(wyoming)
    last_chunk_sent = 0.0

    async def write() -> None:
        nonlocal last_chunk_sent
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="zoe")).event())
        for word in REPLY.split(" "):
            await client.write_event(SynthesizeChunk(text=word + " ").event())
            await asyncio.sleep(0.05)
        last_chunk_sent = time.monotonic()
        await client.write_event(Synthesize(text=REPLY,
                                            voice=SynthesizeVoice(name="zoe")).event())
        await client.write_event(SynthesizeStop().event())

    try:
        writer = asyncio.ensure_future(write())
        got = await answer(client, "synthesize-stopped", timeout=30)
        await writer
    finally:
        await client.disconnect()
    check_audio(got, streamed=True)
    assert got.first_audio_at < last_chunk_sent  # spoken while the reply was still coming
    spoken = completions(standin)[before:]
    assert all(text.startswith("zoe: ") for text in spoken)
    assert " ".join(text.removeprefix("zoe: ") for text in spoken) == REPLY  # each word once
    assert len(spoken) >= 2
    assert got.samples == len(spoken) * SEGMENT  # no audio twice


async def test_a_stream_without_text_answers_synthesize_stopped_alone(
        wyoming: Wyoming, standin: StandinLLMServer) -> None:
    """As wyoming-piper does: no audio-start or audio-stop for no audio."""
    client = await connect(wyoming)
    try:
        for event in (SynthesizeStart(), SynthesizeChunk(text="  "), SynthesizeStop()):
            await client.write_event(event.event())
        assert (await answer(client, "synthesize-stopped")).types == ["synthesize-stopped"]
    finally:
        await client.disconnect()


@pytest.mark.parametrize("streamed", [False, True])
async def test_ssml_where_the_request_says_so(streamed: bool, wyoming: Wyoming,
                                              standin: StandinLLMServer) -> None:
    """``text_format: "ssml"``: a ``<break>`` is exactly its silence, tags are not read."""
    pieces = ['<speak>Hello there.<break time="500ms"/>', "Again, ", "my friend.</speak>"]
    before = len(completions(standin))
    client = await connect(wyoming)
    try:
        if streamed:
            await client.write_event(SynthesizeStart(text_format="ssml").event())
            for piece in pieces:
                await client.write_event(SynthesizeChunk(text=piece).event())
            await client.write_event(SynthesizeStop().event())
        else:
            await client.write_event(Synthesize(text="".join(pieces),
                                                text_format="ssml").event())
        got = await answer(client, "synthesize-stopped" if streamed else "audio-stop")
    finally:
        await client.disconnect()
    check_audio(got, streamed=streamed)
    spoken = [text.removeprefix("tara: ") for text in completions(standin)[before:]]
    assert " ".join(spoken).split() == ["Hello", "there.", "Again,", "my", "friend."]
    assert got.samples == len(spoken) * SEGMENT + 12000  # 500 ms at 24 kHz


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_client_leaving_mid_reply_stops_its_generation(
        streamed: bool, wyoming: Wyoming, standin: StandinLLMServer) -> None:
    standin.config.frames = 500
    standin.config.tokens_per_second = 100  # a generation of 35 s
    client = await connect(wyoming)
    try:
        if streamed:
            await client.write_event(SynthesizeStart().event())
            await client.write_event(SynthesizeChunk(text="A long reply that goes on.").event())
            await client.write_event(SynthesizeStop().event())
        else:
            await client.write_event(Synthesize(text="A long reply that goes on.").event())
        while not AudioChunk.is_type((await read(client)).type):  # audio is flowing
            pass
        assert standin.active > 0
    finally:
        await client.disconnect()
    await eventually(lambda: standin.active == 0, 0.25, what="the generation stopped")


async def test_bad_events_are_answered_with_errors_and_the_connection_goes_on(
        wyoming: Wyoming, standin: StandinLLMServer) -> None:
    bad = [
        (Event("synthesize-chunk", {"text": "Hi."}), "invalid_state"),
        (Event("synthesize-stop"), "invalid_state"),
        (Event("synthesize", {"voice": {"name": "tara"}}), "invalid_parameter"),
        (Event("synthesize", {"text": 42}), "invalid_parameter"),
        (Event("synthesize", {"text": "Hi.", "voice": "tara"}), "invalid_parameter"),
        (Event("synthesize", {"text": "Hi.", "text_format": "rtf"}), "invalid_parameter"),
        (Synthesize(text="<speak>Hi <break", text_format="ssml").event(), "invalid_ssml"),
        (Synthesize(text="x" * 5001).event(), "text_too_long"),
        (Event("shout", {"text": "Hi."}), "unknown_type"),
    ]
    client = await connect(wyoming)
    try:
        for event, code in bad:
            await client.write_event(event)
            reply = await read(client)
            assert Error.is_type(reply.type), (event, reply)
            error = Error.from_event(reply)
            assert error.code == code and error.text, (event, error)
            if event.type == "synthesize":  # a one-shot still ends: Home Assistant reads to it
                assert (await read(client)).type == "audio-stop"
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeStart().event())  # one stream at a time
        assert Error.from_event(await read(client)).code == "invalid_state"
        await client.write_event(SynthesizeChunk(text="Fine.").event())
        await client.write_event(SynthesizeStop().event())
        got = await answer(client, "synthesize-stopped")
        check_audio(got, streamed=True)
        assert got.samples == SEGMENT  # the stream the first start opened
    finally:
        await client.disconnect()


async def test_requests_wait_their_turn_eight_at_most(
        wyoming: Wyoming, standin: StandinLLMServer) -> None:
    """Answers go out in the order asked; past --ws-max-contexts waiting, a request is
    refused (and the others go on)."""
    standin.config.frames = 200
    standin.config.tokens_per_second = 100  # the first answer takes 14 s
    client = await connect(wyoming)
    try:
        for index in range(9):
            await client.write_event(Synthesize(text=f"Request {index}.").event())
        while not Error.is_type((event := await read(client)).type):
            assert event.type in ("audio-start", "audio-chunk"), event
        assert Error.from_event(event).code == "too_many_contexts"
    finally:
        await client.disconnect()
    await eventually(lambda: standin.active == 0, 1, what="the generation stopped")


async def test_an_unknown_voice_is_an_error_and_no_audio(
        wyoming: Wyoming, standin: StandinLLMServer) -> None:
    before = len(standin.requests)
    client = await connect(wyoming)
    try:
        await client.write_event(Synthesize(text="Hi.",
                                            voice=SynthesizeVoice(name="pierre")).event())
        error = Error.from_event(await read(client))
        assert error.code == "unknown_voice"
        assert all(voice in error.text for voice in VOICES)
        assert (await read(client)).type == "audio-stop"  # no audio-start: nothing spoken
        await client.write_event(Describe().event())
        assert Info.is_type((await read(client)).type)  # nothing came between
    finally:
        await client.disconnect()
    assert len(standin.requests) == before  # nothing generated


async def test_an_event_over_the_size_limit_is_read_past_never_held(
        wyoming: Wyoming) -> None:
    """--ws-max-message-bytes (64 KiB) bounds an event's data and payload too: the event is
    refused, and the connection goes on after it."""
    client = await connect(wyoming)
    try:
        for data, payload in (({"text": "Hi."}, bytes(200_000)),
                              ({"text": "x" * 70_000}, None)):
            await client.write_event(Event("synthesize", data, payload=payload))
            error = Error.from_event(await read(client))
            assert error.code == "message_too_big"
        await client.write_event(Describe().event())
        assert Info.is_type((await read(client)).type)
    finally:
        await client.disconnect()


async def test_ten_connections_at_once_each_get_their_own_audio(
        wyoming: Wyoming, standin: StandinLLMServer) -> None:
    async def one(index: int) -> int:
        client = await connect(wyoming)
        try:
            await client.write_event(Synthesize(text=f"Number {index} here.").event())
            got = await answer(client, "audio-stop", timeout=60)
            check_audio(got, streamed=False)
            return got.samples
        finally:
            await client.disconnect()

    before = len(completions(standin))
    assert await asyncio.gather(*(one(i) for i in range(10))) == [SEGMENT] * 10
    assert sorted(completions(standin)[before:]) == sorted(
        f"tara: Number {i} here." for i in range(10))


async def test_sigterm_lets_a_reply_finish_and_refuses_new_ones(
        fake_llm: StandinLLMServer, snac_dir: Path, tmp_path: Path) -> None:
    """The engine's drain holds on the Wyoming port too: what is being spoken finishes, a new
    request (one-shot or stream) is refused with ``draining``, then the port closes."""
    fake_llm.config.frames = 30
    fake_llm.config.tokens_per_second = 140  # 1.5 s
    port = free_port()
    server = ServerProcess(lambda http_port: serve_command(
        http_port, fake_llm.url, snac_dir, "--codec", "passthrough", "--wyoming-port",
        str(port)), tmp_path / "server.log")
    await server.start()
    wyoming = Wyoming(server, port)
    try:
        client, late = await connect(wyoming), await connect(wyoming)
        await client.write_event(Synthesize(text="An utterance in progress.").event())
        first = await answer(client, "audio-chunk")
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        await late.write_event(Synthesize(text="Too late.").event())
        assert Error.from_event(await read(late)).code == "draining"
        assert (await read(late)).type == "audio-stop"
        for event in (SynthesizeStart(), SynthesizeChunk(text="Too late."), SynthesizeStop()):
            await late.write_event(event.event())
        assert Error.from_event(await read(late)).code == "draining"
        assert (await answer(late, "synthesize-stopped")).types == ["synthesize-stopped"]
        rest = await answer(client, "audio-stop")
        assert first.samples + rest.samples == 30 * SAMPLES_PER_FRAME
        assert await asyncio.to_thread(server.process.wait, scaled(15)) == 0
        assert "Wyoming TTS stopped" in server.log_tail()
        await client.disconnect()
        await late.disconnect()
    finally:
        await server.stop()
