"""SNAC made ready for inference: the same output, bit for bit, in less time.

Two things in the published network cost time on every decode call and buy nothing once the
weights are fixed (BENCHMARKS.md, "SNAC on the CPU"):

- weight norm: each of its 67 convolutions recomputes its weight from ``g`` and ``v`` at every
  call, 10-15 ms a call on 2 CPU cores whatever the window length; baked in once here;
- the snake activation ``x + sin(alpha x)^2 / alpha`` runs as five full-size tensor passes,
  each allocating its result; here it reuses one buffer.

Imported only where torch is (the codec loads it lazily).
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize


class InPlaceSnake(torch.nn.Module):
    """SNAC's ``Snake1d`` with one allocation: ``x + (alpha + 1e-9)^-1 * sin(alpha x)^2``."""

    alpha: torch.Tensor
    inverse: torch.Tensor

    def __init__(self, alpha: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("alpha", alpha.detach().clone())
        self.register_buffer("inverse", (self.alpha + 1e-9).reciprocal())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.sin(x * self.alpha)
        return y.mul_(y).mul_(self.inverse).add_(x)


def prepare_for_inference(net: torch.nn.Module) -> dict[str, int]:
    """Bakes weight norm into plain weights and swaps in :class:`InPlaceSnake`, in place.
    Returns how many modules of each kind changed."""
    from snac.layers import Snake1d

    baked = snakes = 0
    for module in list(net.modules()):
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            baked += 1
        for name, child in list(module.named_children()):
            if isinstance(child, Snake1d):
                setattr(module, name, InPlaceSnake(child.alpha))
                snakes += 1
    return {"weight_norm": baked, "snake": snakes}
