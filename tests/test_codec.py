"""Codecs: SNAC from a local folder (random weights), its shapes and determinism; pass-through."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from orpheus_ws.devtools.random_snac import save_random_snac
from orpheus_ws.engine.codec import (
    SNAC_24KHZ_CONFIG,
    PassThroughCodec,
    SnacCodec,
    load_codec,
    resolve_device,
)
from orpheus_ws.exceptions import DecoderError


def network(codec: SnacCodec) -> torch.nn.Module:
    net = codec.network
    assert isinstance(net, torch.nn.Module)
    return net

def random_codes(seed: int, batch: int, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 4096, (batch, frames)), rng.integers(0, 4096, (batch, 2 * frames)),
            rng.integers(0, 4096, (batch, 4 * frames)))


def test_save_random_snac_writes_the_published_layout(snac_dir: Path) -> None:
    assert sorted(p.name for p in snac_dir.iterdir()) == ["config.json", "pytorch_model.bin"]
    assert json.loads((snac_dir / "config.json").read_text()) == SNAC_24KHZ_CONFIG


def test_snac_codec_loads_the_folder_weights(snac_dir: Path, snac_codec: SnacCodec) -> None:
    saved = torch.load(snac_dir / "pytorch_model.bin", map_location="cpu")
    loaded = network(snac_codec).state_dict()
    # every saved tensor is in the network (noise blocks, replaced by identities, excepted);
    # weight-normed weights are baked from their saved g and v
    checked = 0
    for name, tensor in saved.items():
        prefix = name.removesuffix(".parametrizations.weight.original1")
        if prefix != name and prefix + ".weight_t" in loaded:  # the matmul upsample
            g = saved[prefix + ".parametrizations.weight.original0"]
            want = torch._weight_norm(tensor, g, 0)
            got = loaded[prefix + ".weight_t"].t().reshape(want.shape)
            assert torch.allclose(got, want, atol=1e-6), name
            checked += 2
        elif prefix != name and prefix + ".weight" in loaded:
            g = saved[prefix + ".parametrizations.weight.original0"]
            want = torch._weight_norm(tensor, g, 0)
            got = loaded[prefix + ".weight"].reshape(want.shape[0], -1)  # depthwise: (C, K, 1)
            assert torch.allclose(got, want.reshape(want.shape[0], -1), atol=1e-6), name
            checked += 2
        elif name in loaded:
            assert torch.equal(tensor, loaded[name].reshape(tensor.shape)), name
            checked += 1
    assert checked > 0.9 * len(saved)
    assert snac_codec.model_source == str(snac_dir)
    assert snac_codec.device == "cpu"
    assert snac_codec.name == "snac"
    assert not snac_codec.noise


def test_decode_shape_and_range(snac_codec: SnacCodec) -> None:
    audio = snac_codec.decode(*random_codes(0, 2, 3))
    assert audio.shape == (2, 3 * 2048)
    assert audio.dtype == np.float32
    assert np.all(np.abs(audio) <= 1.0)
    assert np.std(audio) > 0.01  # random weights: noise, not silence
    assert not np.allclose(audio[0], audio[1])


def test_noise_off_is_deterministic(snac_codec: SnacCodec) -> None:
    codes = random_codes(1, 1, 2)
    assert np.array_equal(snac_codec.decode(*codes), snac_codec.decode(*codes))


def test_noise_on_varies_and_noise_off_matches_it_closely(snac_dir: Path,
                                                          snac_codec: SnacCodec) -> None:
    noisy = SnacCodec(str(snac_dir), "cpu", noise=True)
    codes = random_codes(2, 1, 2)
    a, b = noisy.decode(*codes), noisy.decode(*codes)
    assert not np.array_equal(a, b)
    clean = snac_codec.decode(*codes)
    # the noise blocks add detail; the signal stays the same
    assert np.corrcoef(a[0], clean[0])[0, 1] > 0.5


def test_batch_rows_decode_as_alone(snac_codec: SnacCodec) -> None:
    c0, c1, c2 = random_codes(3, 3, 2)
    batch = snac_codec.decode(c0, c1, c2)
    for row in range(3):
        alone = snac_codec.decode(c0[row : row + 1], c1[row : row + 1], c2[row : row + 1])
        np.testing.assert_allclose(batch[row], alone[0], atol=1e-4)


def test_passthrough_codec() -> None:
    codec = PassThroughCodec()
    audio = codec.decode(*random_codes(4, 5, 7))
    assert audio.shape == (5, 7 * 2048)
    assert audio.dtype == np.float32
    assert not audio.any()
    assert load_codec("unused", "cpu", kind="passthrough").name == "passthrough"


def test_empty_folder_is_a_decoder_error(tmp_path: Path) -> None:
    with pytest.raises(DecoderError) as info:
        SnacCodec(str(tmp_path), "cpu")
    assert str(tmp_path) in str(info.value)


def test_corrupt_weights_are_a_decoder_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(SNAC_24KHZ_CONFIG))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(DecoderError):
        SnacCodec(str(tmp_path), "cpu")


def test_wrong_weights_are_a_decoder_error(tmp_path: Path) -> None:
    save_random_snac(tmp_path)
    config = {**SNAC_24KHZ_CONFIG, "decoder_dim": 512}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DecoderError):
        SnacCodec(str(tmp_path), "cpu")


def test_load_codec_unknown_kind() -> None:
    with pytest.raises(ValueError):
        load_codec("x", "cpu", kind="wavenet")


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda") == "cuda"
    else:
        with pytest.raises(ValueError):
            resolve_device("cuda")


def test_graph_path_pads_batches_to_buckets_and_runs_uncaptured_shapes_eagerly(
    snac_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CUDA-graph path's bookkeeping, on the CPU: torch.compile is replaced by a
    recorder, so the test checks which shapes reach the captured function and that padding
    rows never leak into the output."""
    calls: list[tuple[int, int]] = []

    def fake_compile(fn, **kwargs):  # type: ignore[no-untyped-def]
        assert kwargs.get("mode") == "reduce-overhead"

        def captured(codes):  # type: ignore[no-untyped-def]
            calls.append(tuple(codes[0].shape))
            return fn(codes)
        return captured

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr("orpheus_ws.engine.codec.GRAPH_BATCHES", (1, 4))
    monkeypatch.setattr("orpheus_ws.engine.codec.GRAPH_LENGTHS", (3,))
    codec = SnacCodec(str(snac_dir), "cpu", noise=False, graphs=True)
    assert codec.captured_shapes == {(1, 3), (4, 3)}
    assert codec.fast_lengths == (3,)  # the decoder rounds padded calls up to these
    calls.clear()
    batch = random_codes(7, 3, 3)
    out = codec.decode(*batch)
    assert calls == [(4, 3)]  # three rows padded up to the bucket of four
    assert out.shape == (3, 3 * 2048)
    for row in range(3):
        alone = codec.decode(*(c[row : row + 1] for c in batch))
        assert np.allclose(out[row], alone[0], atol=1e-4)
    calls.clear()
    odd = codec.decode(*random_codes(8, 2, 5))  # length 5 was never captured: eager
    assert calls == [] and odd.shape == (2, 5 * 2048)


def test_inference_preparation_keeps_the_output(snac_dir: Path, snac_codec: SnacCodec) -> None:
    """Baked weight norm and the in-place snake decode exactly what the published modules do."""
    from snac import SNAC
    from snac.layers import NoiseBlock, Snake1d

    original = SNAC.from_pretrained(str(snac_dir)).eval()
    for parent in list(original.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, NoiseBlock):
                setattr(parent, name, torch.nn.Identity())
    assert any(isinstance(m, Snake1d) for m in original.modules())
    assert not any(isinstance(m, Snake1d) for m in network(snac_codec).modules())
    for frames in (2, 5):
        codes = random_codes(frames, 2, frames)
        with torch.inference_mode():
            want = original.decode([torch.from_numpy(c) for c in codes])[:, 0].numpy()
        np.testing.assert_allclose(snac_codec.decode(*codes), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kernel,stride,padding,bias", [(16, 8, 4, True), (4, 2, 1, False)])
def test_matmul_upsample_is_the_transposed_convolution(kernel: int, stride: int, padding: int,
                                                       bias: bool) -> None:
    from orpheus_ws.engine.snac_inference import MatmulUpsample

    torch.manual_seed(0)
    conv = torch.nn.ConvTranspose1d(12, 6, kernel, stride=stride, padding=padding, bias=bias)
    for batch, steps in ((1, 2), (3, 9)):
        x = torch.randn(batch, 12, steps)
        with torch.inference_mode():
            torch.testing.assert_close(MatmulUpsample(conv)(x), conv(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dilation", [3, 9])
def test_shifted_depthwise_is_the_depthwise_convolution(dilation: int) -> None:
    from orpheus_ws.engine.snac_inference import ShiftedDepthwise

    torch.manual_seed(1)
    conv = torch.nn.Conv1d(8, 8, 7, dilation=dilation, padding=3 * dilation, groups=8)
    for batch, steps in ((1, 5), (2, 300)):
        x = torch.randn(batch, 8, steps)
        with torch.inference_mode():
            torch.testing.assert_close(ShiftedDepthwise(conv)(x), conv(x), atol=1e-5, rtol=1e-5)
