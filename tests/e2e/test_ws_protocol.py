"""The realtime WebSocket (protocol.md), end to end: the server process against the real
llama-server where the model's behaviour matters, the stand-in for exact lengths and faults.

``OrpheusClient`` is used where it shows what a user sees; ``RawSocket`` where the client would
hide a fault (frames after a cancel, close codes, binary or oversized messages).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import numpy as np
import pytest

from orpheus_ws.client import OrpheusClient, ServerError
from orpheus_ws.devtools.llama_server import LlamaServerProcess
from orpheus_ws.devtools.standin_llm import StandinLLMServer

from ..utils import eventually, scaled
from .harness import (
    MAX_TOKENS,
    SAMPLES_PER_FRAME,
    TINY_FRAMES,
    Frame,
    RawSocket,
    ServerProcess,
    check_frames,
    completions,
    idle_deadline,
    llama_busy_slots,
    llama_seconds_per_token,
    seconds_until_llama_idle,
    speak,
)

GREEDY = {"temperature": 0.0, "max_tokens": MAX_TOKENS}
LONG = {"temperature": 0.0, "max_tokens": 2048}  # about 290 frames per segment


def segment_events(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


# -- against the real llama-server ----------------------------------------------------------


PIECES = ["Hi ", "there. ", "I ", "am ", "Tom. ", "Bye. "]


async def test_text_in_pieces_speaks_like_the_whole_text(real_server: ServerProcess) -> None:
    """Segments depend on the text only (protocol.md, rules 1-4): word-sized pieces at an
    LLM's pace give the same segments and samples as the whole text; audio starts before the
    text ends."""
    options = {**GREEDY, "buffer_delay_ms": 5000}  # rule 5 (a timer) out of the way
    async with OrpheusClient.connect(real_server.ws_url) as client:
        whole = await client.open_context("whole", **options)
        await whole.send_text("".join(PIECES), end=True)
        pieces = await client.open_context("pieces", **options)
        for piece in PIECES[:-1]:
            await pieces.send_text(piece)
            await asyncio.sleep(0.02)
        # The last piece waits for the first audio: the server must not wait for the end.
        await eventually(lambda: not pieces.queue.empty(), timeout=15, what="first audio")
        await pieces.send_text(PIECES[-1], end=True)
        (whole_chunks, whole_done), (piece_chunks, piece_done) = await asyncio.gather(
            whole.collect(), pieces.collect())

    def texts(handle: Any) -> list[str]:
        return [e["text"] for e in segment_events(handle.events, "segment_started")]

    def samples(handle: Any) -> list[int]:
        return [e["samples"] for e in segment_events(handle.events, "segment_finished")]

    assert texts(pieces) == texts(whole) == ["Hi there.", "I am Tom.", "Bye."]
    assert samples(pieces) == samples(whole) == [TINY_FRAMES * SAMPLES_PER_FRAME] * len(
        texts(whole))
    for chunks, done in ((whole_chunks, whole_done), (piece_chunks, piece_done)):
        per_segment = [0] * done["segments"]
        for chunk in chunks:
            per_segment[chunk.header.segment] += len(chunk.payload) // 2
        assert per_segment == samples(whole)
        assert done["samples"] == sum(per_segment)


async def start_long_context(raw: RawSocket, http: aiohttp.ClientSession,
                             llama: LlamaServerProcess) -> None:
    """Context "long" (two long segments, both generating) has sent its first frame."""
    await raw.send({"type": "text", "context_id": "long",
                    "text": "Hello there, this is long. And this is long too. ", **LONG})
    while not raw.frames("long"):
        await raw.next()
    assert await llama_busy_slots(http, llama) == 2  # the segment and the next one


async def test_cancel_frees_the_llm_slots_and_stops_the_audio(
        real_server: ServerProcess, llama_server: LlamaServerProcess) -> None:
    async with aiohttp.ClientSession() as http, RawSocket.connect(real_server.ws_url) as raw:
        await start_long_context(raw, http, llama_server)
        deadline = idle_deadline(await llama_seconds_per_token(http, llama_server))
        await raw.send({"type": "cancel", "context_id": "long"})
        ack = await raw.until("cancelled", "long")
        assert await seconds_until_llama_idle(http, llama_server) <= deadline

        # Everything sent before the pong has arrived: no frame of "long" after the ack.
        await raw.send({"type": "ping", "id": 1})
        await raw.until("pong")
        after_ack = raw.received[raw.received.index(ack):]
        assert not [m for m in after_ack if isinstance(m, Frame)]
        sent = raw.frames("long")
        assert ack["samples_sent"] == check_frames(sent, "long") > 0
        assert ack["duration_ms"] == pytest.approx(ack["samples_sent"] / 24, abs=0.1)

        done = await speak(raw, "next", "Hi there.", **GREEDY)
        assert done["frames"] == TINY_FRAMES
        assert check_frames(raw.frames("next"), "next") == done["samples"]


async def test_closing_the_socket_frees_the_llm_slots(
        real_server: ServerProcess, llama_server: LlamaServerProcess) -> None:
    async with aiohttp.ClientSession() as http:
        async with RawSocket.connect(real_server.ws_url) as raw:
            await start_long_context(raw, http, llama_server)
            deadline = idle_deadline(await llama_seconds_per_token(http, llama_server))
            await raw.connection.close()
        assert await seconds_until_llama_idle(http, llama_server) <= deadline


@pytest.mark.parametrize("how", ["cancel", "cancel all", "close"])
async def test_cancel_or_close_aborts_the_backend_at_once(
        how: str, standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    """The server's own part, measured on the stand-in (which sees a dropped connection at
    once): both generations of the context end within 100 ms of the ack or the close."""
    fake_llm.config.tokens_per_second = 100  # 2048 tokens: 20 s
    aborted = fake_llm.aborted
    async with RawSocket.connect(standin_server.ws_url) as raw:
        await raw.send({"type": "text", "context_id": "long", "max_tokens": 2048,
                        "text": "Hello there, this is long. And this is long too. "})
        while not raw.frames("long"):
            await raw.next()
        assert fake_llm.active == 2
        if how.startswith("cancel"):
            await raw.send({"type": "cancel", "all": True} if how == "cancel all"
                           else {"type": "cancel", "context_id": "long"})
            await raw.until("cancelled", "long")
        else:
            await raw.connection.close()
        started = time.monotonic()
        await eventually(lambda: fake_llm.active == 0, what="stand-in slots free")
        assert time.monotonic() - started <= scaled(0.1)
    assert fake_llm.aborted == aborted + 2


async def test_interleaved_contexts_each_get_their_own_audio(real_server: ServerProcess) -> None:
    """Two contexts with different lengths per segment (10 and 20 frames), their text
    interleaved on one socket: each gets exactly its own frames, in order."""
    async with OrpheusClient.connect(real_server.ws_url) as client:
        a = await client.open_context("a", **GREEDY)
        b = await client.open_context("b", temperature=0.0, max_tokens=2 * MAX_TOKENS)
        for piece_a, piece_b in [("Hi ", "Good "), ("there. ", "morning "), ("Bye. ", "to you. ")]:
            await a.send_text(piece_a)
            await b.send_text(piece_b)
        await a.end()
        await b.end()
        (chunks_a, done_a), (chunks_b, done_b) = await asyncio.gather(a.collect(), b.collect())

    for chunks, done, frames_per_segment in ((chunks_a, done_a, TINY_FRAMES),
                                             (chunks_b, done_b, 2 * TINY_FRAMES)):
        context_id = done["context_id"]
        frames = [Frame(c.header, c.payload, c.received_at) for c in chunks]
        total = check_frames(frames, context_id)
        assert done["frames"] == done["segments"] * frames_per_segment
        assert total == done["samples"] == done["source_samples"] == \
            done["frames"] * SAMPLES_PER_FRAME
        assert [c.header.segment for c in chunks] == sorted(c.header.segment for c in chunks)
    assert done_a["segments"] == 2 and done_b["segments"] == 1


# -- formats, events and flow control (stand-in: N frames per generation) -------------------


FORMATS = [(encoding, rate) for encoding in ("pcm_s16le", "pcm_f32le")
           for rate in (8000, 16000, 22050, 24000, 44100, 48000)] + [("mulaw", 8000),
                                                                     ("alaw", 8000)]


@pytest.mark.parametrize("encoding,rate", [("mp3", 24000), ("opus", 48000), ("aac", 24000),
                                           ("flac", 16000)])
async def test_compressed_formats(encoding: str, rate: int, standin_server: ServerProcess,
                                  fake_llm: StandinLLMServer) -> None:
    """A compressed context is one stream: its frames' payloads, joined, decode (PyAV) to all
    of its audio; offsets count bytes; the counts in events stay samples."""
    import io

    import av

    fake_llm.config.frames = 3
    async with OrpheusClient.connect(standin_server.ws_url) as client:
        chunks, done = await client.speak("c", "Hello there.",
                                          format={"encoding": encoding, "sample_rate": rate})
    offset = 0
    for chunk in chunks:
        assert chunk.header.encoding == encoding and chunk.header.sample_offset == offset
        offset += len(chunk.payload)
    assert done["samples"] == round(3 * SAMPLES_PER_FRAME * rate / 24000)
    with av.open(io.BytesIO(b"".join(c.payload for c in chunks)), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(int(frame.samples) for frame in container.decode(stream))
        seconds = samples / int(stream.codec_context.sample_rate)
    assert abs(seconds - 3 * SAMPLES_PER_FRAME / 24000) <= SAMPLES_PER_FRAME / 24000


async def test_every_format(standin_server: ServerProcess, fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 3
    source = 3 * SAMPLES_PER_FRAME
    async with OrpheusClient.connect(standin_server.ws_url) as client:
        offered = {(e, r) for e in client.ready["encodings"] for r in client.ready["sample_rates"]
                   if e.startswith("pcm") or (r == 8000 and e in ("mulaw", "alaw"))}
        assert offered == set(FORMATS)
        assert set(client.ready["encodings"]) - {e for e, _ in FORMATS} == \
            {"mp3", "opus", "aac", "flac"}  # compressed streams (test_compressed_formats)
        for encoding, rate in FORMATS:
            context_id = f"{encoding}-{rate}"
            chunks, done = await client.speak(
                context_id, "Hello there.", format={"encoding": encoding, "sample_rate": rate})
            frames = [Frame(c.header, c.payload, c.received_at) for c in chunks]
            total = check_frames(frames, context_id, sample_rate=rate)
            assert {c.header.encoding for c in chunks} == {encoding}
            assert total == done["samples"]
            assert total == pytest.approx(source * rate / 24000, abs=rate * 0.005), context_id
            assert (done["frames"], done["source_samples"]) == (3, source)
            if encoding == "pcm_f32le":
                audio = np.concatenate([c.samples() for c in chunks])
                assert np.all(np.abs(audio) <= 1.0)
            assert not client.errors
        for bad in ({"encoding": "mulaw", "sample_rate": 16000},
                    {"encoding": "alaw", "sample_rate": 24000},
                    {"encoding": "pcm_s16le", "sample_rate": 11025},
                    {"encoding": "opus", "sample_rate": 44100}, "pcm_s16le"):
            await client.send({"type": "text", "context_id": "bad", "text": "Hi.",
                               "format": bad})
            with pytest.raises(ServerError) as failed:
                await client.next_session_event("configured")
            assert (failed.value.code, failed.value.event["field"]) == \
                ("invalid_parameter", "format")


async def test_flush_end_done_and_event_order(standin_server: ServerProcess,
                                              fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 2
    async with RawSocket.connect(standin_server.ws_url) as raw:
        await raw.send({"type": "text", "context_id": "r1", "text": "Hello there, how"})
        await raw.send({"type": "flush", "context_id": "r1", "flush_id": "f-7"})
        flushed = await raw.until("flushed", "r1")
        assert flushed["flush_id"] == "f-7"
        assert flushed["samples"] == check_frames(raw.frames("r1"), "r1") == \
            2 * SAMPLES_PER_FRAME
        await raw.send({"type": "text", "context_id": "r1", "text": " are you? I am fine. "})
        await raw.send({"type": "text", "context_id": "r1", "text": "Bye", "flush": True})
        flushed = await raw.until("flushed", "r1")
        assert flushed["flush_id"] is None
        assert flushed["samples"] == 4 * 2 * SAMPLES_PER_FRAME
        await raw.send({"type": "text", "context_id": "r1", "text": " now."})
        await raw.send({"type": "end", "context_id": "r1"})
        done = await raw.until("done", "r1")

    mine = [m for m in raw.received if isinstance(m, Frame) or m.get("context_id") == "r1"]
    assert mine[0]["type"] == "context_started"  # type: ignore[index]
    assert mine[-1] is done
    started = raw.events("segment_started", "r1")
    finished = raw.events("segment_finished", "r1")
    assert [e["text"] for e in started] == ["Hello there, how", "are you?", "I am fine.", "Bye",
                                            "now."]
    assert [e["segment"] for e in started] == [e["segment"] for e in finished] == list(range(5))
    # Each segment: started, then its frames (first and last flagged), then finished.
    for segment in range(5):
        first = mine.index(started[segment])
        last = mine.index(finished[segment])
        frames = [m for m in mine[first:last] if isinstance(m, Frame)]
        assert frames and all(f.header.segment == segment for f in frames)
        assert frames[0].header.flags & 1 and frames[-1].header.flags & 2
        assert finished[segment]["samples"] == sum(f.samples for f in frames)
        assert finished[segment]["source_samples"] == 2 * SAMPLES_PER_FRAME
        assert finished[segment]["frames"] == 2
        assert 0 < finished[segment]["ttfa_ms"] <= finished[segment]["generation_ms"]
    total = check_frames(raw.frames("r1"), "r1")
    assert done["samples"] == done["source_samples"] == total == 5 * 2 * SAMPLES_PER_FRAME
    assert (done["frames"], done["segments"]) == (10, 5)
    assert done["duration_ms"] == pytest.approx(total / 24, abs=0.1)
    assert done["ttfa_ms"] > 0


async def test_ping_config_and_buffering_none(standin_server: ServerProcess,
                                              fake_llm: StandinLLMServer) -> None:
    fake_llm.config.frames = 1
    async with OrpheusClient.connect(standin_server.ws_url) as client:
        assert client.ready["protocol"] == 1
        assert set(client.ready) == {"type", "protocol", "session_id", "sample_rate",
                                     "encodings", "sample_rates", "voices", "emotion_tags",
                                     "defaults", "limits"}
        assert client.ready["limits"] == {"max_contexts": 8, "max_message_bytes": 65536,
                                          "max_text_chars": 5000, "idle_timeout_s": 180.0,
                                          "max_buffered_bytes": 4194304, "send_timeout_s": 10.0}
        pong = await client.ping({"n": 42})
        assert pong["id"] == {"n": 42} and pong["server_time"] > 0
        latency = await asyncio.wait_for(await client.connection.ping(), scaled(5))
        assert latency >= 0  # WebSocket protocol pings are answered too
        configured = await client.configure(voice="leo", buffering="none", max_tokens=600)
        assert configured["defaults"] == {**client.ready["defaults"], "voice": "leo",
                                          "buffering": "none", "max_tokens": 600}
        before = len(fake_llm.requests)
        handle = await client.open_context("n1")
        pieces = ["Hello there", " and more, without", " any end"]
        for piece in pieces:
            await handle.send_text(piece)
        await handle.end()
        _, done = await handle.collect()
        assert handle.events[0]["options"]["voice"] == "leo"
        assert [e["text"] for e in segment_events(handle.events, "segment_started")] == \
            [p.strip() for p in pieces]
        assert done["segments"] == 3
        # a segment generates ahead of the one playing: requests may reach the LLM in any order
        assert sorted(completions(fake_llm, before)) == sorted(f"leo: {p.strip()}"
                                                              for p in pieces)


async def test_timestamps_follow_each_segment_when_asked(standin_server: ServerProcess,
                                                         fake_llm: StandinLLMServer) -> None:
    """``"timestamps": true``: after each ``segment_finished`` the segment's words with
    estimated times from the context's first sample, spanning at most its audio; none
    otherwise."""
    fake_llm.config.frames = 3
    async with RawSocket.connect(standin_server.ws_url) as raw:
        await raw.send({"type": "text", "context_id": "t", "timestamps": True, "end": True,
                        "text": "Hello there, my friend. How are you today?",
                        "format": {"encoding": "pcm_s16le", "sample_rate": 16000}})
        await raw.until("done", "t")
        await raw.send({"type": "text", "context_id": "plain", "text": "Hi.", "end": True})
        await raw.until("done", "plain")
    assert raw.events("timestamps", "plain") == []
    mine = [m for m in raw.received if not isinstance(m, Frame) and m["context_id"] == "t"]
    finished = raw.events("segment_finished", "t")
    stamps = raw.events("timestamps", "t")
    assert [mine.index(s) for s in stamps] == [mine.index(f) + 1 for f in finished]
    segment_ms = 3 * SAMPLES_PER_FRAME / 24
    for n, (stamp, segment) in enumerate(zip(stamps, finished, strict=True)):
        assert stamp["segment"] == segment["segment"] == n
        assert [w["text"] for w in stamp["words"]] == segment["text"].split()
        starts = [w["start_ms"] for w in stamp["words"]]
        ends = [w["end_ms"] for w in stamp["words"]]
        assert n * segment_ms <= starts[0] and ends[-1] <= (n + 1) * segment_ms + 0.1
        assert starts == sorted(starts) and all(s < e for s, e in zip(starts, ends, strict=True))
