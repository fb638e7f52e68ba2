"""Response audio: vendor format names, streaming encoders (PyAV) and the time stretch."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from orpheus_ws.encoders import StreamEncoder, TempoStretch
from orpheus_ws.outputs import AudioOutput, OutputFormat, parse_vendor_format

TONE = (np.sin(2 * np.pi * 220 * np.arange(48000) / 24000) * 8000).astype(np.int16)


@pytest.mark.parametrize("name,kind,rate,bit_rate", [
    ("mp3_22050_32", "mp3", 22050, 32000), ("mp3_44100_128", "mp3", 44100, 128000),
    ("pcm_16000", "pcm", 16000, None), ("ulaw_8000", "mulaw", 8000, None),
    ("alaw_8000", "alaw", 8000, None), ("opus_48000_64", "opus", 48000, 64000),
    ("pcm", "pcm", 24000, None)])
def test_vendor_format_names(name: str, kind: str, rate: int, bit_rate: int | None) -> None:
    assert parse_vendor_format(name) == OutputFormat(kind, rate, bit_rate)


@pytest.mark.parametrize("name", ["mp3_12345_32", "ulaw_16000", "ogg_24000", "pcm_x",
                                  "mp3_44100_128_9", "wav_24000"])
def test_unknown_vendor_formats_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        parse_vendor_format(name)


def decode(data: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(int(frame.samples) for frame in container.decode(stream))
        return int(stream.codec_context.sample_rate), samples


@pytest.mark.parametrize("kind,rate", [("mp3", 24000), ("mp3", 44100), ("opus", 24000),
                                       ("aac", 24000), ("flac", 16000), ("wav", 24000),
                                       ("wav", 8000)])
def test_a_stream_fed_chunk_by_chunk_is_one_playable_file(kind: str, rate: int) -> None:
    output = AudioOutput(OutputFormat(kind, rate))
    pieces = [output.feed(TONE[i : i + 2048]) for i in range(0, len(TONE), 2048)]
    pieces.append(output.finish())
    assert pieces[0]  # bytes from the first chunk on: a listener can start at once
    got_rate, samples = decode(b"".join(pieces))
    want_rate = 48000 if kind == "opus" else rate
    assert got_rate == want_rate
    seconds = samples / got_rate
    assert abs(seconds - 2.0) < 0.085, seconds  # within a frame (encoder padding included)


def test_raw_pcm_is_exact() -> None:
    output = AudioOutput(OutputFormat("pcm"))
    data = b"".join(output.feed(TONE[i : i + 1000]) for i in range(0, len(TONE), 1000))
    assert data + output.finish() == TONE.astype("<i2").tobytes()


def test_a_rate_the_codec_does_not_take_is_refused() -> None:
    with pytest.raises(ValueError):
        OutputFormat("opus", 44100)
    with pytest.raises(ValueError):
        StreamEncoder("opus", 44100)
    with pytest.raises(ValueError):
        OutputFormat("mulaw", 16000)


@pytest.mark.parametrize("speed", [0.25, 0.5, 1.5, 3.0])
def test_the_stretch_changes_the_length_by_the_speed(speed: float) -> None:
    stretch = TempoStretch(speed)
    parts = [stretch.process(TONE[i : i + 2048]) for i in range(0, len(TONE), 2048)]
    parts.append(stretch.process(None))
    total = sum(p.shape[0] for p in parts)
    assert abs(total - len(TONE) / speed) < 0.1 * len(TONE) / speed
