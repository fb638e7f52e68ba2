"""Audio codecs that turn batches of SNAC code windows into PCM.

:class:`SnacCodec` runs the real SNAC 24 kHz network (weights from a Hugging Face repo id or a
local folder holding ``config.json`` and ``pytorch_model.bin``, both through
``SNAC.from_pretrained``). :class:`PassThroughCodec` returns silence of the right length and
exists only to measure the server's own overhead in benchmarks.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from ..exceptions import DecoderError
from ..formats import SAMPLES_PER_FRAME

log = logging.getLogger(__name__)

# The published config of hubertsiuzdak/snac_24khz (../shared/orpheus-facts.md).
SNAC_24KHZ_CONFIG: dict[str, object] = {
    "sampling_rate": 24000,
    "encoder_dim": 48,
    "encoder_rates": [2, 4, 8, 8],
    "decoder_dim": 1024,
    "decoder_rates": [8, 8, 4, 2],
    "attn_window_size": None,
    "codebook_size": 4096,
    "codebook_dim": 8,
    "vq_strides": [4, 2, 1],
    "noise": True,
    "depthwise": True,
}


class Codec(Protocol):
    """Decodes a batch of equally long windows: codes of shapes (B, F), (B, 2F), (B, 4F)."""

    name: str
    device: str
    # Window lengths the codec decodes fastest (CUDA graphs captured): the decoder rounds a
    # padded call up to one of them. Empty: every length costs what it costs.
    fast_lengths: tuple[int, ...]
    # Where the weights came from (a repo id or a folder), for /health; None: no weights.
    model_source: str | None

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        """Float32 audio in -1..1 of shape (B, 2048 * F)."""
        ...


class PassThroughCodec:
    """Silence of the right length: for benchmarking the server without the network's cost.
    ``noise=True``: a fixed noise pattern instead (``--codec noise``), so that what the server
    does with the audio afterwards (encoding MP3 or Opus) costs what it costs on speech."""

    device = "none"
    fast_lengths: tuple[int, ...] = ()
    model_source: str | None = None

    def __init__(self, *, noise: bool = False) -> None:
        self.name = "noise" if noise else "passthrough"
        self._pattern = (np.random.default_rng(0).standard_normal(64 * SAMPLES_PER_FRAME)
                         .astype(np.float32) * 0.1) if noise else None

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        samples = c0.shape[1] * SAMPLES_PER_FRAME
        if self._pattern is None:
            return np.zeros((c0.shape[0], samples), dtype=np.float32)
        row = np.resize(self._pattern, samples)
        return np.broadcast_to(row, (c0.shape[0], samples)).copy()


class LevelCodec(PassThroughCodec):
    """A stand-in whose frames are as loud as their first code says (``--codec level``): a
    constant of c0 / 4096 of full scale, so a generation's level can be chosen through the
    stand-in LLM (its ``quiet_frames``) to test and measure what is done with quiet."""

    def __init__(self) -> None:
        super().__init__()
        self.name = "level"

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        return np.repeat(c0.astype(np.float32) / 4096, SAMPLES_PER_FRAME, axis=1)


def resolve_device(device: str) -> str:
    """``auto`` takes CUDA when torch sees it, else the CPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no CUDA device")
    if device not in ("cuda", "cpu"):
        raise ValueError(f"unknown device {device!r} (auto, cuda, cpu)")
    return device


# Shapes captured as CUDA graphs at start-up: batch buckets x window lengths of the chunk
# schedule (first window 2 frames; k new frames + 2 of context for k = 1, 2, 4, 8, 16).
GRAPH_BATCHES = (1, 2, 4, 8, 16, 32)
GRAPH_LENGTHS = (2, 3, 4, 6, 10, 18)


class SnacCodec:
    """The SNAC 24 kHz decoder on one device.

    ``noise=False`` replaces SNAC's noise blocks with identities, so that two decodes of the same
    codes agree exactly (for tests that compare streamed and one-shot decoding).
    ``graphs=True`` (the default on CUDA) captures fixed shapes as CUDA graphs with
    ``torch.compile(mode="reduce-overhead")`` at start-up: a batch is padded up to the next
    batch bucket; a shape not captured runs eagerly, so nothing compiles while serving.
    """

    name = "snac"

    def __init__(self, model: str, device: str = "auto", *, noise: bool = True,
                 graphs: bool | None = None) -> None:
        import torch
        from snac import SNAC
        from snac.layers import NoiseBlock

        self.device = resolve_device(device)
        self.model_source: str | None = model
        try:
            net = SNAC.from_pretrained(model)
        except Exception as exc:  # hub or file errors: report which weights, not the text
            raise DecoderError(f"could not load SNAC weights from {model!r}") from exc
        from .snac_inference import prepare_for_inference

        prepare_for_inference(net, self.device)
        if not noise:
            for parent in list(net.modules()):
                for child_name, child in list(parent.named_children()):
                    if isinstance(child, NoiseBlock):
                        setattr(parent, child_name, torch.nn.Identity())
        self.noise = noise
        self._net = net.to(self.device).eval()
        self._torch = torch
        self.graphs = (self.device == "cuda") if graphs is None else graphs
        self._captured: set[tuple[int, int]] = set()
        # Window lengths with a captured graph: the decoder rounds a padded call up to one.
        self.fast_lengths: tuple[int, ...] = ()
        self._compiled = None
        # The first calls of a fresh process are slow (lazy initialisation): pay it now.
        for length in (2, 3):
            self._run(self._net.decode, *(np.zeros((1, length * m), dtype=np.int64)
                                          for m in (1, 2, 4)))
        if self.graphs:
            self._compiled = torch.compile(self._net.decode, mode="reduce-overhead",
                                           dynamic=False)
            self.warm_up()

    @property
    def network(self) -> object:
        """The prepared ``torch.nn.Module`` that decodes (for inspection; do not mutate)."""
        return self._net

    @property
    def captured_shapes(self) -> frozenset[tuple[int, int]]:
        """The (batch bucket, window length) shapes captured as CUDA graphs."""
        return frozenset(self._captured)

    def warm_up(self) -> None:
        """Captures every (batch bucket, window length) once, before serving."""
        for batch in GRAPH_BATCHES:
            for length in GRAPH_LENGTHS:
                zeros = [np.zeros((batch, length * m), dtype=np.int64) for m in (1, 2, 4)]
                self._run(self._compiled, *zeros)
                self._captured.add((batch, length))
        self.fast_lengths = tuple(sorted({length for _, length in self._captured}))
        log.info("SNAC: %d shapes captured as CUDA graphs", len(self._captured))

    def _run(self, fn: object, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            codes = [
                torch.from_numpy(np.ascontiguousarray(c)).to(self.device, non_blocking=True)
                for c in (c0, c1, c2)
            ]
            audio = fn(codes)  # type: ignore[operator]
        return audio[:, 0, :].float().cpu().numpy()  # type: ignore[no-any-return]

    def decode(self, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
        batch, length = c0.shape
        bucket = next((b for b in GRAPH_BATCHES if b >= batch), 0)
        if self._compiled is None or (bucket, length) not in self._captured:
            return self._run(self._net.decode, c0, c1, c2)
        pad = bucket - batch  # repeat the last row up to the bucket; its output is dropped
        padded = [np.concatenate([c, np.repeat(c[-1:], pad, axis=0)]) if pad else c
                  for c in (c0, c1, c2)]
        return self._run(self._compiled, *padded)[:batch]


def load_codec(model: str, device: str, *, kind: str = "snac", noise: bool = True,
               graphs: str = "auto") -> Codec:
    """The codec named by ``kind``: ``snac`` (the real network) or ``passthrough``.
    ``graphs``: ``auto`` captures CUDA graphs on CUDA only; ``on``/``off`` force it."""
    if kind in ("passthrough", "noise"):
        return PassThroughCodec(noise=kind == "noise")
    if kind == "level":
        return LevelCodec()
    if kind != "snac":
        raise ValueError(f"unknown codec {kind!r} (snac, passthrough, noise, level)")
    codec = SnacCodec(model, device, noise=noise,
                      graphs=None if graphs == "auto" else graphs == "on")
    log.info("SNAC decoder loaded from %s on %s", model, codec.device)
    return codec
