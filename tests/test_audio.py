"""Output audio: WAV files, resampling in chunks, float samples, G.711 mu-law and A-law."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from orpheus_ws.audio import FormatConverter, alaw_encode, mulaw_encode, wav_bytes
from orpheus_ws.formats import SAMPLE_RATES, AudioFormat

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


# -- straightforward per-sample G.711 (after Sun's public-domain g711.c) ----------------------

def ref_mulaw(sample: int) -> int:
    """Mu-law of a 16-bit sample: bias 0x84, clip 32635, segment by the biased magnitude."""
    mask = 0x7F if sample < 0 else 0xFF
    magnitude = min(abs(sample), 32635) + 0x84
    segment = 0
    while segment < 8 and magnitude > (0x100 << segment) - 1:  # 0xFF, 0x1FF, ...
        segment += 1
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((magnitude >> (segment + 3)) & 0x0F)) ^ mask


def ref_alaw(sample: int) -> int:
    """A-law of a 16-bit sample, on its 13 most significant bits."""
    value = sample >> 3
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    segment = 0
    while segment < 8 and value > (0x20 << segment) - 1:  # 0x1F, 0x3F, ...
        segment += 1
    if segment >= 8:
        return 0x7F ^ mask
    quant = (value >> 1) if segment < 2 else (value >> segment)
    return ((segment << 4) | (quant & 0x0F)) ^ mask


def ref_mulaw_decode(byte: int) -> int:
    u = ~byte & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def ref_alaw_decode(byte: int) -> int:
    a = byte ^ 0x55
    t = (a & 0x0F) << 4
    segment = (a & 0x70) >> 4
    if segment == 0:
        t += 8
    elif segment == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (segment - 1)
    return t if a & 0x80 else -t


# -- tests ---------------------------------------------------------------------------------------

def test_wav_round_trip() -> None:
    pcm = np.random.default_rng(0).integers(-32768, 32768, 5000).astype(np.int16)
    for rate in (24000, 8000):
        with wave.open(io.BytesIO(wav_bytes(pcm, rate)), "rb") as wav:
            assert wav.getnchannels() == 1
            assert wav.getsampwidth() == 2
            assert wav.getframerate() == rate
            assert wav.getnframes() == pcm.size
            back = np.frombuffer(wav.readframes(pcm.size), dtype="<i2")
        assert np.array_equal(back, pcm)


def test_wav_of_nothing() -> None:
    with wave.open(io.BytesIO(wav_bytes(np.zeros(0, dtype=np.int16))), "rb") as wav:
        assert wav.getnframes() == 0
        assert wav.getframerate() == 24000


def test_audio_format_validation() -> None:
    assert AudioFormat().bytes_per_sample == 2
    assert AudioFormat("pcm_f32le", 48000).bytes_per_sample == 4
    assert AudioFormat("mulaw", 8000).bytes_per_sample == 1
    assert AudioFormat("opus", 24000).compressed and AudioFormat("mp3", 44100).compressed
    assert not AudioFormat().compressed
    for bad in (("ogg", 24000), ("opus", 44100), ("pcm_s16le", 32000), ("mulaw", 16000),
                ("alaw", 24000)):
        with pytest.raises(ValueError):
            AudioFormat(*bad)


def test_24k_s16_passes_through_unchanged() -> None:
    pcm = np.random.default_rng(1).integers(-32768, 32768, 7000).astype(np.int16)
    converter = FormatConverter(AudioFormat())
    assert converter.convert(pcm[:3000]) + converter.convert(pcm[3000:], last=True) == \
        pcm.astype("<i2").tobytes()


def test_24k_f32_values() -> None:
    pcm = np.array([0, 1, -1, 16384, -16384, 32767, -32768], dtype=np.int16)
    out = np.frombuffer(FormatConverter(AudioFormat("pcm_f32le")).convert(pcm), dtype="<f4")
    assert out.tolist() == [0.0, 1 / 32768, -1 / 32768, 0.5, -0.5, 32767 / 32768, -1.0]


def speech_like(n: int) -> np.ndarray:
    t = np.arange(n) / 24000
    signal = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1800 * t)
    return (signal * 32767).astype(np.int16)


def stream(converter: FormatConverter, pcm: np.ndarray, sizes: list[int]) -> bytes:
    out, i = [], 0
    for size in sizes:
        out.append(converter.convert(pcm[i : i + size]))
        i += size
    out.append(converter.convert(pcm[i:], last=True))
    return b"".join(out)


@pytest.mark.parametrize("rate", SAMPLE_RATES)
def test_resampling_in_chunks(rate: int) -> None:
    pcm = speech_like(24000)  # one second
    sizes = [2048] * 3 + [4096, 1, 777, 6144] + [0]
    streamed = np.frombuffer(stream(FormatConverter(AudioFormat("pcm_f32le", rate)), pcm, sizes),
                             dtype="<f4")
    whole = np.frombuffer(FormatConverter(AudioFormat("pcm_f32le", rate)).convert(pcm, last=True),
                          dtype="<f4")
    assert abs(streamed.size - rate) <= 2, streamed.size
    assert abs(whole.size - rate) <= 2, whole.size
    n = min(streamed.size, whole.size)
    assert np.max(np.abs(streamed[:n] - whole[:n])) < 1e-3
    # the signal survives: same level as the source
    source_rms = np.sqrt(np.mean((pcm / 32768.0) ** 2))
    assert abs(np.sqrt(np.mean(streamed**2)) - source_rms) < 0.02 * source_rms
    s16 = np.frombuffer(stream(FormatConverter(AudioFormat("pcm_s16le", rate)), pcm, sizes),
                        dtype="<i2")
    assert s16.size == streamed.size
    assert np.max(np.abs(s16 / 32768.0 - streamed)) <= 1 / 32768 + 1e-6


def test_resampled_tone_keeps_its_pitch() -> None:
    t = np.arange(24000) / 24000
    pcm = (0.5 * np.sin(2 * np.pi * 1000 * t) * 32767).astype(np.int16)
    out = np.frombuffer(FormatConverter(AudioFormat("pcm_s16le", 16000)).convert(pcm, last=True),
                        dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(out))
    peak_hz = np.argmax(spectrum) * 16000 / out.size
    assert abs(peak_hz - 1000) < 5


@pytest.mark.parametrize("encoding,encode", [("mulaw", mulaw_encode), ("alaw", alaw_encode)])
def test_g711_stream_at_8k(encoding: str, encode: object) -> None:
    pcm = speech_like(12000)
    sizes = [2048, 2048, 1000]
    encoded = stream(FormatConverter(AudioFormat(encoding, 8000)), pcm, sizes)
    resampled = np.frombuffer(stream(FormatConverter(AudioFormat("pcm_s16le", 8000)), pcm, sizes),
                              dtype="<i2")
    assert len(encoded) == resampled.size
    assert encoded == encode(resampled).tobytes()  # type: ignore[operator]


def test_g711_known_values() -> None:
    # ITU-T G.711: silence is 0xFF in mu-law and 0xD5 in A-law
    assert mulaw_encode(np.array([0], dtype=np.int16)).tolist() == [0xFF]
    assert alaw_encode(np.array([0], dtype=np.int16)).tolist() == [0xD5]
    extremes = np.array([32767, -32768, -1, 1], dtype=np.int16)
    assert mulaw_encode(extremes).tolist() == [0x80, 0x00, 0x7F, 0xFF]
    assert alaw_encode(extremes).tolist() == [0xAA, 0x2A, 0x55, 0xD5]
    assert mulaw_encode(ALL_INT16).dtype == alaw_encode(ALL_INT16).dtype == np.uint8


def test_mulaw_matches_the_reference_for_every_sample() -> None:
    reference = np.array([ref_mulaw(int(x)) for x in ALL_INT16], dtype=np.uint8)
    got = mulaw_encode(ALL_INT16)
    mismatches = np.flatnonzero(got != reference)
    assert mismatches.size == 0, f"first mismatch at sample {ALL_INT16[mismatches[0]]}"


def test_alaw_matches_the_reference_for_every_sample() -> None:
    reference = np.array([ref_alaw(int(x)) for x in ALL_INT16], dtype=np.uint8)
    got = alaw_encode(ALL_INT16)
    mismatches = np.flatnonzero(got != reference)
    assert mismatches.size == 0, f"first mismatch at sample {ALL_INT16[mismatches[0]]}"


@pytest.mark.parametrize("encode,decode", [(mulaw_encode, ref_mulaw_decode),
                                           (alaw_encode, ref_alaw_decode)])
def test_g711_decodes_back_close_and_in_order(encode: object, decode: object) -> None:
    table = np.array([decode(b) for b in range(256)])  # type: ignore[operator]
    back = table[encode(ALL_INT16)]  # type: ignore[operator]
    x = ALL_INT16.astype(np.int64)
    assert np.all(np.diff(back) >= 0), "louder samples never decode quieter"
    assert np.all(np.abs(back - x) <= 16 + np.abs(x) / 16)
    assert np.all(np.sign(back[x > 64]) == 1) and np.all(np.sign(back[x < -64]) == -1)
