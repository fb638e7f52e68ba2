"""A context's audio in every format, through the delivery runner against a fake engine:
raw encodings resampled segment by segment (ws/frame_audio.py), and compressed streams."""

from __future__ import annotations

import io

import av
import pytest

from orpheus_ws.formats import AudioFormat

from .test_ws_delivery import (
    END,
    FRAME,
    SEGMENT_EVENTS,
    START,
    FakeEngine,
    check_offsets,
    drain,
    event,
    feed_and_end,
    frames_of,
    kinds,
    setup,
)


@pytest.mark.parametrize("encoding,rate", [("pcm_s16le", 24000), ("pcm_f32le", 24000),
                                           ("pcm_s16le", 16000), ("pcm_f32le", 48000),
                                           ("pcm_s16le", 22050), ("mulaw", 8000),
                                           ("alaw", 8000)])
async def test_every_format_gets_all_its_samples(encoding: str, rate: int) -> None:
    fmt = AudioFormat(encoding, rate)
    session, delivery, outbox = setup(FakeEngine(), fmt)
    feed_and_end(session, delivery, "One.", "Two.")
    await delivery.run()
    messages = await drain(outbox)
    frames = frames_of(messages)
    total = check_offsets(frames, fmt.bytes_per_sample)
    assert all(len(f.payload) % fmt.bytes_per_sample == 0 for f in frames)
    assert {(f.header.encoding, f.header.sample_rate) for f in frames} == {(encoding, rate)}
    done = event(messages, "done")
    assert done["samples"] == total == delivery.samples_sent
    assert abs(total - 6 * FRAME * rate / 24000) <= 1
    assert (done["frames"], done["source_samples"]) == (6, 6 * FRAME)


async def test_a_resampled_segment_ends_in_its_own_last_frame() -> None:
    """The resampler's held-back samples go out in the segment's last frame, flagged as its
    last, before segment_finished (and so before flushed and done)."""
    fmt = AudioFormat("pcm_s16le", 16000)
    session, delivery, outbox = setup(FakeEngine(), fmt)
    feed_and_end(session, delivery, "One.", "|f1", "Two.")
    await delivery.run()
    messages = await drain(outbox)
    assert kinds(messages) == [*SEGMENT_EVENTS, "flushed", *SEGMENT_EVENTS, "done"]
    frames = frames_of(messages)
    assert [f.header.segment for f in frames] == [0, 0, 1, 1]
    assert [f.header.flags for f in frames] == [START, END, START, END]
    assert check_offsets(frames, 2) == 2 * 4096
    assert messages[4] == {"type": "flushed", "context_id": "r1", "flush_id": "f1",
                           "samples": 4096}  # 3 frames: 6144 samples at 24 kHz
    done = event(messages, "done")
    assert (done["samples"], done["source_samples"], done["duration_ms"]) == \
        (8192, 6 * FRAME, 512.0)


@pytest.mark.parametrize("encoding,rate", [("pcm_s16le", 8000), ("pcm_s16le", 16000),
                                           ("pcm_f32le", 22050), ("pcm_s16le", 44100),
                                           ("pcm_f32le", 48000), ("mulaw", 8000),
                                           ("alaw", 8000)])
async def test_each_resampled_segment_has_its_own_samples(encoding: str, rate: int) -> None:
    """segment_finished.samples within a millisecond of F x 2048 x rate / 24000 for every
    segment, and no frame of a segment after its segment_finished (protocol.md)."""
    fmt = AudioFormat(encoding, rate)
    session, delivery, outbox = setup(FakeEngine(chunks=(1, 3, 2)), fmt)
    feed_and_end(session, delivery, "One.", "Two.", "Three.")
    await delivery.run()
    messages = await drain(outbox)
    finished = [m for m in messages if isinstance(m, dict) and m["type"] == "segment_finished"]
    assert len(finished) == 3
    for item in finished:
        assert abs(item["samples"] - 6 * FRAME * rate / 24000) <= rate / 1000, item
    for number, item in enumerate(finished):
        later = messages[messages.index(item) + 1:]
        assert not [f for f in frames_of(later) if f.header.segment == number]
    ends = [f for f in frames_of(messages) if f.header.flags & END]
    assert [f.header.segment for f in ends] == [0, 1, 2]
    assert check_offsets(frames_of(messages), fmt.bytes_per_sample) == \
        sum(item["samples"] for item in finished) == event(messages, "done")["samples"]


@pytest.mark.parametrize("encoding,rate", [("mp3", 24000), ("opus", 48000), ("aac", 16000),
                                           ("flac", 22050)])
async def test_a_compressed_context_is_one_stream_of_all_its_audio(encoding: str,
                                                                   rate: int) -> None:
    fmt = AudioFormat(encoding, rate)
    session, delivery, outbox = setup(FakeEngine(chunks=(1, 3, 2)), fmt)
    feed_and_end(session, delivery, "One.", "Two.")
    await delivery.run()
    messages = await drain(outbox)
    frames = frames_of(messages)
    offset = 0
    for number, frame in enumerate(frames):  # offsets count the stream's bytes
        assert frame.header.sequence == number and frame.header.sample_offset == offset
        assert frame.header.encoding == encoding and frame.header.sample_rate == rate
        offset += len(frame.payload)
    assert [f.header.flags for f in frames if f.header.flags] == [START, END, START, END]
    finished = [m for m in messages if isinstance(m, dict) and m["type"] == "segment_finished"]
    assert all(abs(m["samples"] - 6 * FRAME * rate / 24000) <= 1 for m in finished)
    assert event(messages, "done")["samples"] == round(12 * FRAME * rate / 24000)
    stream = b"".join(f.payload for f in frames)
    with av.open(io.BytesIO(stream), mode="r") as container:
        audio = container.streams.audio[0]
        decoded = sum(int(f.samples) for f in container.decode(audio))
        decoded_rate = int(audio.codec_context.sample_rate)
    seconds = decoded / decoded_rate
    assert abs(seconds - 12 * FRAME / 24000) <= FRAME / 24000, seconds  # within a frame
