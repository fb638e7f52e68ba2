"""SNAC 24 kHz with random weights, saved as the published folder layout: what the tests and
``orpheus-ws bench`` decode with where the real weights can't be downloaded."""

from __future__ import annotations

import json
from pathlib import Path

from ..engine import SNAC_24KHZ_CONFIG


def save_random_snac(folder: Path, *, seed: int = 0) -> Path:
    """Writes SNAC 24 kHz with random weights as ``config.json`` + ``pytorch_model.bin``.

    The same architecture and cost as the published weights, loadable through the same path
    (``--snac-model FOLDER``); it decodes to noise, not speech. For tests and benchmarks.
    """
    import torch
    from snac import SNAC

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    net = SNAC(**SNAC_24KHZ_CONFIG)
    (folder / "config.json").write_text(json.dumps(SNAC_24KHZ_CONFIG))
    torch.save(net.state_dict(), folder / "pytorch_model.bin")
    return folder
