"""The vendors' socket adapters as translations, tested with strings as ws/protocol.py is: a
client's message in, what the adapter queues on the outbox out, against a fake engine. No
socket: the runtime (transport/runtime.py) does the I/O, and its limits have their own tests
(tests/e2e/test_socket_limits.py)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from orpheus_ws.compat.baseten import Baseten, BasetenConnection
from orpheus_ws.compat.cartesia_ws import CartesiaConnection, CartesiaSocket
from orpheus_ws.compat.deepgram_ws import DeepgramConnection
from orpheus_ws.compat.elevenlabs_ws import ElevenLabsConnection, ElevenLabsSocket
from orpheus_ws.compat.together import TogetherConnection, TogetherSocket
from orpheus_ws.config import Settings
from orpheus_ws.engine import Caller
from orpheus_ws.exceptions import ConnectionFault
from orpheus_ws.transport.limits import SocketLimits
from orpheus_ws.transport.outbox import CloseFrame, Outbox
from orpheus_ws.transport.runtime import SocketRegistry

from .fakes import speech_engine
from .test_ws_delivery import FakeEngine
from .utils import eventually, scaled

SETTINGS = Settings()
LIMITS = SocketLimits.from_settings(SETTINGS)
CALLER = Caller("key1", "test")
Out = list[Any]  # JSON messages as dicts, binary audio as bytes, the close as a CloseFrame


async def drain(outbox: Outbox, *, until: Any = None, timeout: float = 5.0) -> Out:
    """What the adapter queued, in order: everything queued now, or (with ``until``, a
    predicate on one message) up to the first message it accepts."""
    out: Out = []
    async with asyncio.timeout(scaled(timeout)):
        while len(outbox) or until is not None:
            item = (await outbox.get()).data
            data = item() if callable(item) else item
            message = json.loads(data) if isinstance(data, str) else data
            out.append(message)
            if until is not None and until(message):
                break
    return out


def deepgram(outbox: Outbox, engine: FakeEngine, query: dict[str, str] | None = None
             ) -> DeepgramConnection:
    query = query or {}
    return DeepgramConnection(speech_engine(engine), CALLER, "tara",
                              query.get("encoding", "linear16"), query.get("sample_rate"),
                              "aura-2-tara-en", outbox, LIMITS)


async def test_deepgram_speak_flush_then_close() -> None:
    engine, outbox = FakeEngine(), Outbox(1 << 20)
    adapter = deepgram(outbox, engine)
    adapter.opened()
    assert (await drain(outbox))[0]["type"] == "Metadata"
    await adapter.received('{"type": "Speak", "text": "Hello there."}', None)
    await adapter.received('{"type": "Flush"}', None)
    out = await drain(outbox, until=lambda m: isinstance(m, dict) and m["type"] == "Flushed")
    audio = [m for m in out if isinstance(m, bytes)]
    assert sum(map(len, audio)) == engine.frames * 2048 * 2
    assert out[-1] == {"type": "Flushed", "sequence_id": 0}
    assert engine.calls == [("tara", engine.calls[0][1])]
    await adapter.received('{"type": "Close"}', None)
    assert await drain(outbox, until=lambda m: isinstance(m, CloseFrame)) == [CloseFrame(1000)]
    await adapter.stop()


@pytest.mark.parametrize("message,code", [
    ("{oops", "INVALID_JSON"), ('{"type": "Dance"}', "UNKNOWN_MESSAGE"),
    ('{"type": "Speak", "text": "' + "a" * 5001 + '"}', "TEXT_TOO_LONG"),
])
async def test_deepgram_answers_what_it_cannot_act_on_with_a_warning(message: str,
                                                                     code: str) -> None:
    outbox = Outbox(1 << 20)
    adapter = deepgram(outbox, FakeEngine())
    await adapter.received(message, None)
    warning = (await drain(outbox))[-1]
    assert (warning["type"], warning["warn_code"]) == ("Warning", code)
    await adapter.stop()


@pytest.mark.parametrize("query,message", [
    ({"encoding": "opus"}, "encoding must be one of linear16, mulaw, alaw"),
    ({"sample_rate": "abc"}, "sample_rate must be a whole number of Hz"),
    ({"sample_rate": "12345"}, "sample_rate must be one of"),
])
def test_deepgram_refuses_a_query_it_cannot_serve(query: dict[str, str], message: str) -> None:
    adapter = deepgram(Outbox(1 << 20), FakeEngine(), query)
    with pytest.raises(ConnectionFault) as refused:
        adapter.opened()
    assert str(refused.value).startswith(message)
    refusal = adapter.refusal(refused.value)
    assert refusal.close_code == 1008
    error = json.loads(refusal.messages[0])
    assert (error["type"], error["err_code"]) == ("Error", "INVALID_QUERY")
    assert "invalid literal" not in error["err_msg"]


async def test_deepgram_clear_stops_the_audio_and_stands_for_the_flushes_it_cut() -> None:
    engine, outbox = FakeEngine(hold_after=1), Outbox(1 << 20)
    adapter = deepgram(outbox, engine)
    await adapter.received('{"type": "Speak", "text": "A long reply."}', None)
    await adapter.received('{"type": "Flush"}', None)
    await eventually(lambda: len(engine.chunks) == 1, what="the first audio")
    await adapter.received('{"type": "Clear"}', None)
    assert (await drain(outbox)) == [{"type": "Cleared", "sequence_id": 1}]
    assert engine.open == 0  # the generation is closed before Cleared is queued


async def test_elevenlabs_contexts_speak_then_close_with_is_final() -> None:
    engine, outbox = FakeEngine(), Outbox(1 << 20)
    socket = ElevenLabsSocket(SETTINGS, SocketRegistry())
    adapter = ElevenLabsConnection(speech_engine(engine), CALLER, socket, outbox, "tara",
                                   "pcm_24000", None, multi=True)
    adapter.opened()
    await adapter.received('{"text": " ", "context_id": "c1"}', None)
    await adapter.received('{"text": "Hello there. ", "context_id": "c1", "flush": true}',
                           None)
    await adapter.received('{"context_id": "c1", "close_context": true}', None)
    out = await drain(outbox, until=lambda m: m.get("isFinal") is True)
    audio = b"".join(base64.b64decode(m["audio"]) for m in out if m.get("audio"))
    assert len(audio) == engine.frames * 2048 * 2
    assert all(m["contextId"] == "c1" for m in out)
    assert out[-2]["alignment"]["chars"]  # the segment's last audio carries its alignment


@pytest.mark.parametrize("message,error", [
    ("[1]", "invalid_message"), ('{"text": 5}', "invalid_message"),
    ('{"text": "x", "context_id": "' + "c" * 300 + '"}', "invalid_parameter"),
])
async def test_elevenlabs_closes_1008_on_what_it_cannot_read(message: str, error: str) -> None:
    adapter = ElevenLabsConnection(speech_engine(FakeEngine()), CALLER, ElevenLabsSocket(
        SETTINGS, SocketRegistry()), Outbox(1 << 20), "tara", "pcm_24000", None, multi=True)
    with pytest.raises(ConnectionFault) as fault:
        await adapter.received(message, None)
    refusal = adapter.refusal(fault.value)
    assert refusal.close_code == 1008
    assert json.loads(refusal.messages[0])["error"] == error


@pytest.mark.parametrize("timeout", ["nan", "inf", "-3", "soon"])
def test_elevenlabs_refuses_an_inactivity_timeout_that_is_no_number_of_seconds(
        timeout: str) -> None:
    adapter = ElevenLabsConnection(speech_engine(FakeEngine()), CALLER, ElevenLabsSocket(
        SETTINGS, SocketRegistry()), Outbox(1 << 20), "tara", "pcm_24000", timeout,
        multi=True)
    with pytest.raises(ConnectionFault, match="inactivity_timeout"):
        adapter.opened()


async def test_cartesia_refuses_a_long_context_id_without_echoing_it() -> None:
    outbox = Outbox(1 << 20)
    adapter = CartesiaConnection(speech_engine(FakeEngine()), CALLER, CartesiaSocket(
        SETTINGS, SocketRegistry()), outbox)
    await adapter.received(json.dumps({"context_id": "x" * 1_000_000, "transcript": "Hi."}),
                           None)
    error = (await drain(outbox))[-1]
    assert error["type"] == "error" and error["context_id"] == ""
    assert len(json.dumps(error)) < 400


async def test_cartesia_speaks_a_context_and_says_done() -> None:
    engine, outbox = FakeEngine(), Outbox(1 << 20)
    adapter = CartesiaConnection(speech_engine(engine), CALLER, CartesiaSocket(
        SETTINGS, SocketRegistry()), outbox)
    await adapter.received(json.dumps({"context_id": "a", "transcript": "Hello there.",
                                       "continue": False, "voice": {"id": "tara"}}), None)
    out = await drain(outbox, until=lambda m: m["type"] == "done")
    assert [m["type"] for m in out][-1] == "done"
    assert all(m["context_id"] == "a" for m in out)


async def test_together_items_and_a_binary_message() -> None:
    engine, outbox = FakeEngine(), Outbox(1 << 20)
    adapter = TogetherConnection(speech_engine(engine), CALLER, TogetherSocket(
        SETTINGS, SocketRegistry()), outbox, "tara")
    adapter.opened()
    await adapter.received(None, b"\x00\x01")  # answered, not a silent close
    await adapter.received('{"type": "input_text_buffer.append", "text": "Hello there."}', None)
    await adapter.received('{"type": "input_text_buffer.commit"}', None)
    out = await drain(outbox, until=lambda m: m["type"].endswith("audio_output.done"))
    assert out[0]["type"] == "session.created"
    assert out[1]["error"]["code"] == "binary_not_accepted"
    assert out[2]["type"] == "conversation.item.input_text.received"
    assert out[-1]["item_id"] == out[2]["item_id"]


async def test_baseten_options_text_end_then_the_close() -> None:
    engine, outbox = FakeEngine(), Outbox(1 << 20)
    adapter = BasetenConnection(speech_engine(engine), CALLER, Baseten(
        SETTINGS, SocketRegistry()), outbox)
    await adapter.received('{"voice": "tara", "max_tokens": 100}', None)
    await adapter.received("Hello there.", None)
    await adapter.received("__END__", None)
    out = await drain(outbox, until=lambda m: isinstance(m, CloseFrame))
    assert out[-1] == CloseFrame(1000)
    assert sum(len(m) for m in out[:-1]) == engine.frames * 2048 * 2
    with pytest.raises(ConnectionFault) as fault:
        await BasetenConnection(speech_engine(FakeEngine()), CALLER, Baseten(
            SETTINGS, SocketRegistry()), Outbox(1)).received("not json", None)
    assert fault.value.code == "invalid_options"
