"""The WebSocket protocol's error codes and close codes (protocol.md), each produced against
the real server process; one client's faults leave other clients untouched."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orpheus_ws.client import OrpheusClient, ServerError
from orpheus_ws.devtools.standin_llm import StandinLLMServer

from ..utils import eventually, scaled
from .harness import (
    SAMPLES_PER_FRAME,
    STRICT_LIMITS,
    STRICT_VOICES,
    Frame,
    RawSocket,
    ServerProcess,
    check_frames,
    serve_command,
    speak,
)

# -- error codes (protocol.md, "Error codes") -------------------------------------------------


async def expect_error(raw: RawSocket, message: dict[str, Any] | str | bytes, code: str,
                       **fields: Any) -> None:
    await raw.send(message)
    error = await raw.until("error")
    assert error["code"] == code, error
    for name, value in fields.items():
        assert error.get(name) == value, (name, error)
    assert error["message"]


MESSAGE_ERRORS: list[tuple[dict[str, Any] | str, str, dict[str, Any]]] = [
    ("{oops", "invalid_json", {}),
    ("[1, 2]", "invalid_json", {}),
    ({"type": "dance"}, "unknown_type", {}),
    ({"context_id": "x", "text": "Hi."}, "unknown_type", {}),
    ({"type": "text", "context_id": "bad id!", "text": "Hi."}, "invalid_parameter",
     {"field": "context_id"}),
    ({"type": "text", "context_id": "x", "text": 5}, "invalid_parameter", {"field": "text"}),
    ({"type": "text", "context_id": "x", "text": "Hi.", "temperature": 2.5},
     "invalid_parameter", {"field": "temperature", "context_id": "x"}),
    ({"type": "text", "context_id": "x", "text": "Hi.", "max_tokens": 10},
     "invalid_parameter", {"field": "max_tokens"}),
    ({"type": "config", "buffering": "sometimes"}, "invalid_parameter", {"field": "buffering"}),
    ({"type": "text", "context_id": "x", "text": "Hi.", "voice": "nobody"}, "unknown_voice",
     {"field": "voice", "context_id": "x"}),
    ({"type": "text", "context_id": "x", "text": "a" * 5001}, "text_too_long",
     {"field": "text"}),
    ({"type": "flush", "context_id": "x"}, "unknown_context", {"context_id": "x"}),
    ({"type": "end", "context_id": "x"}, "unknown_context", {"context_id": "x"}),
    ({"type": "cancel", "context_id": "x"}, "unknown_context", {"context_id": "x"}),
]


async def test_message_errors_leave_the_socket_usable(standin_server: ServerProcess,
                                                      fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 1
    async with RawSocket.connect(standin_server.ws_url) as raw:
        for number, (message, code, fields) in enumerate(MESSAGE_ERRORS):
            await expect_error(raw, message, code, **fields)
            # No context "x" was opened by the bad message; the socket still speaks.
            assert not raw.events("context_started", "x")
            done = await speak(raw, f"ok{number}", "Hi.")
            assert done["samples"] == SAMPLES_PER_FRAME


async def test_context_state_errors(standin_server: ServerProcess,
                                    fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 3
    fake_llm.config.tokens_per_second = 50  # 21 tokens: the context stays live a while
    async with RawSocket.connect(standin_server.ws_url) as raw:
        await raw.send({"type": "text", "context_id": "c", "text": "Hi there. "})
        await expect_error(raw, {"type": "text", "context_id": "c", "text": "More.",
                                 "voice": "leo"}, "invalid_state", context_id="c")
        await raw.send({"type": "text", "context_id": "c", "text": "Bye.", "end": True})
        await expect_error(raw, {"type": "text", "context_id": "c", "text": "Late."},
                           "context_ended", context_id="c")
        done = await raw.until("done", "c")
        assert done["segments"] == 2
        # Final: the id may be used again.
        fake_llm.config.tokens_per_second = 0
        assert (await speak(raw, "c", "Again."))["segments"] == 1


@pytest.mark.parametrize(("fault", "code"), [
    ("refuse", "backend_unavailable"),
    ("strays", "backend_protocol_error"),
    ("text", "backend_protocol_error"),
    ("fail_midway", "backend_error"),
])
async def test_backend_failures_fail_only_their_context(
        fault: str, code: str, standin_server: ServerProcess,
        fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 20
    fake_llm.config.tokens_per_second = 350  # "other" generates for 0.4 s
    async with RawSocket.connect(standin_server.ws_url) as raw:
        await raw.send({"type": "text", "context_id": "other", "text": "Hello.", "end": True})
        await eventually(lambda: fake_llm.active == 1, what="other generating")
        fake_llm.config.fault = fault  # type: ignore[assignment]
        fake_llm.config.tokens_per_second = 0
        await raw.send({"type": "text", "context_id": "bad", "text": "Hi.", "end": True})
        error = await raw.until("error", "bad")
        assert error["code"] == code
        if fault == "fail_midway":  # two good frames, then the connection broke
            assert check_frames(raw.frames("bad"), "bad") == 2 * SAMPLES_PER_FRAME
        fake_llm.config.fault = "none"
        done = await raw.until("done", "other")
        assert done["frames"] == 20
        assert check_frames(raw.frames("other"), "other") == 20 * SAMPLES_PER_FRAME
        assert not raw.events("done", "bad")
        # FAILED is final: the id may be used again, and now it works.
        fake_llm.config.frames = 1
        assert (await speak(raw, "bad", "Hi."))["samples"] == SAMPLES_PER_FRAME
    assert [e["context_id"] for e in raw.errors()] == ["bad"]


async def test_a_stray_token_costs_one_frame_not_the_context(
        standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 4
    fake_llm.config.fault = "garbage"  # one audio token out of position, in the third frame
    async with RawSocket.connect(standin_server.ws_url) as raw:
        done = await speak(raw, "s", "Hi.")
        assert (done["frames"], done["samples"]) == (3, 3 * SAMPLES_PER_FRAME)
        assert check_frames(raw.frames("s"), "s") == 3 * SAMPLES_PER_FRAME
        assert not raw.errors()


# -- close codes (protocol.md, "Close codes"), on the server with short limits -----------------


async def test_binary_message_closes_1003(strict_server: ServerProcess) -> None:
    async with RawSocket.connect(strict_server.ws_url) as raw:
        await expect_error(raw, b"\x00\x01", "binary_not_accepted")
        assert (await raw.closed())[0] == 1003


async def test_message_too_big_closes_1009(strict_server: ServerProcess) -> None:
    limit = STRICT_LIMITS["ws_max_message_bytes"]
    async with RawSocket.connect(strict_server.ws_url) as raw:
        assert raw.ready["limits"]["max_message_bytes"] == limit
        await raw.send({"type": "ping", "id": "é" * 900})  # 1800 characters' worth of bytes
        assert (await raw.until("pong"))["id"] == "é" * 900
        await expect_error(raw, {"type": "ping", "id": "é" * 1000}, "message_too_big")
        assert (await raw.closed())[0] == 1009


async def test_idle_closes_4000(strict_server: ServerProcess) -> None:
    idle = STRICT_LIMITS["ws_idle_timeout"]
    async with RawSocket.connect(strict_server.ws_url) as raw:
        assert raw.ready["limits"]["idle_timeout_s"] == idle
        for number in range(5):  # any message resets the timer: 2 s of pings, still open
            await asyncio.sleep(0.4)
            await raw.send({"type": "ping", "id": number})
            assert (await raw.until("pong"))["id"] == number
        error = await raw.until("error", timeout=idle + 5)
        assert error["code"] == "idle_timeout"
        assert (await raw.closed())[0] == 4000


async def test_too_many_contexts_closes_4001(strict_server: ServerProcess,
                                             fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 1
    async with RawSocket.connect(strict_server.ws_url) as raw:
        assert raw.ready["limits"]["max_contexts"] == 2
        for context_id in ("a", "b"):  # open: no end
            await raw.send({"type": "text", "context_id": context_id, "text": "Hi"})
            await raw.until("context_started", context_id)
        await expect_error(raw, {"type": "text", "context_id": "c", "text": "Hi"},
                           "too_many_contexts")
        assert (await raw.closed())[0] == 4001
        assert not raw.events("context_started", "c")


async def test_a_client_that_never_reads_closes_4002(strict_server: ServerProcess,
                                                     fake_llm: StandinLLMServer) -> None:
    """The socket's buffers fill, the context's audio is held at max_buffered_bytes, and the
    blocked send times out (--ws-send-timeout 2): 4002, and the generations stop."""
    fake_llm.config.tokens_per_second = 2000  # 2 x 4.6 MB of audio a second
    text = " ".join(f"Sentence {n}." for n in range(12)) + " "
    aborted = fake_llm.aborted
    # No compression: the stand-in's silence would deflate to nothing and never fill a buffer.
    async with RawSocket.connect(strict_server.ws_url, max_queue=1, ping_interval=None,
                                 compression=None) as raw:
        await raw.send({"type": "text", "context_id": "flood", "text": text, "end": True,
                        "max_tokens": 2048,
                        "format": {"encoding": "pcm_f32le", "sample_rate": 48000}})
        await asyncio.sleep(scaled(6))  # buffers fill, the blocked send times out
        code, _ = await raw.closed()  # now read everything that was waiting
        assert code == 4002
        assert not raw.errors()  # 4002 alone comes without an error event
    # Generations still running were aborted; none is left holding a slot.
    await eventually(lambda: fake_llm.active == 0, what="stand-in slots free")
    assert fake_llm.aborted >= aborted


async def test_a_client_that_reads_is_never_cut_off_by_the_buffer_limit(
        strict_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    """Segments generated ahead land in the send queue at once; flow control holds them at
    max_buffered_bytes instead of closing the socket on a client that reads at full speed."""
    fake_llm.config.tokens_per_second = 2000
    fake_llm.config.frames = 120  # 10 s of audio a segment: 1.9 MB as pcm_f32le at 48 kHz
    text = "One sentence here. Another sentence there. And a third one. "
    async with OrpheusClient.connect(strict_server.ws_url, compression=None) as client:
        chunks, done = await client.speak("fast", text, max_tokens=2048, format={
            "encoding": "pcm_f32le", "sample_rate": 48000})
        assert done["frames"] == 3 * 120
        assert sum(len(c.payload) for c in chunks) // 4 == done["samples"]
        assert client.close_code is None


async def test_one_clients_faults_leave_another_untouched(strict_server: ServerProcess,
                                                          fake_llm: StandinLLMServer) -> None:
    fake_llm.config.tokens_per_second = 1000
    async with OrpheusClient.connect(strict_server.ws_url) as bystander:
        chunks_task = asyncio.ensure_future(
            bystander.speak("steady", "Hello there.", max_tokens=1400))  # 200 frames, 1.4 s
        await eventually(lambda: fake_llm.active == 1, what="bystander generating")
        async with RawSocket.connect(strict_server.ws_url) as raw:
            for message, code, fields in MESSAGE_ERRORS:
                if len(str(message)) < STRICT_LIMITS["ws_max_message_bytes"]:
                    await expect_error(raw, message, code, **fields)
        async with RawSocket.connect(strict_server.ws_url) as raw:
            await expect_error(raw, b"binary", "binary_not_accepted")
            assert (await raw.closed())[0] == 1003
        async with RawSocket.connect(strict_server.ws_url) as raw:
            await expect_error(raw, "x" * 3000, "message_too_big")
            assert (await raw.closed())[0] == 1009
        async with RawSocket.connect(strict_server.ws_url) as raw:
            for context_id in ("a", "b", "c"):
                await raw.send({"type": "text", "context_id": context_id, "text": "Hi"})
            assert (await raw.until("error"))["code"] == "too_many_contexts"
            assert (await raw.closed())[0] == 4001
        chunks, done = await chunks_task
        frames = [Frame(c.header, c.payload, c.received_at) for c in chunks]
        assert check_frames(frames, "steady") == done["samples"] == 200 * SAMPLES_PER_FRAME
        assert not bystander.errors


async def test_custom_voices_on_the_socket(strict_server: ServerProcess,
                                           fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 1
    async with OrpheusClient.connect(strict_server.ws_url) as client:
        assert client.ready["voices"] == STRICT_VOICES.split(",")
        assert client.ready["defaults"]["voice"] == "leo"
        await client.speak("v", "Hi.", voice="nova")
        with pytest.raises(ServerError, match="unknown_voice"):
            await client.speak("w", "Hi.", voice="zoe")


async def test_server_shutdown_closes_1001(fake_llm: StandinLLMServer, snac_dir: Any,
                                          tmp_path: Any) -> None:
    server = ServerProcess(lambda port: serve_command(port, fake_llm.url, snac_dir),
                           tmp_path / "server.log")
    await server.start()
    try:
        fake_llm.config.tokens_per_second = 100
        async with RawSocket.connect(server.ws_url) as raw:
            await raw.send({"type": "text", "context_id": "a", "text": "Hello.",
                            "max_tokens": 2048})
            await raw.until("segment_started", "a")
            assert server.process is not None
            server.process.terminate()
            code, _ = await raw.closed()
            assert [e["code"] for e in raw.errors()] == ["going_away"]
            assert code == 1001
    finally:
        await server.stop()
    await eventually(lambda: fake_llm.active == 0, what="stand-in slots free")
