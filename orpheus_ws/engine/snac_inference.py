"""SNAC made ready for inference: the same output, bit for bit, in less time.

Two things in the published network cost time on every decode call and buy nothing once the
weights are fixed (BENCHMARKS.md, "SNAC on the CPU"):

- weight norm: each of its 67 convolutions recomputes its weight from ``g`` and ``v`` at every
  call, 10-15 ms a call on 2 CPU cores whatever the window length; baked in once here;
- the snake activation ``x + sin(alpha x)^2 / alpha`` runs as five full-size tensor passes,
  each allocating its result; here it reuses one buffer;
- on the CPU, oneDNN runs the first upsampling layer (a transposed convolution, 1024 -> 512
  channels, kernel 16, stride 8) slowly for short inputs: a 2-frame window spent 11 of its 31 ms
  there. As one matrix product and an overlap-add (``fold``) it costs what its arithmetic costs
  (the same output to float rounding, about 4e-7);
- on the CPU, oneDNN's dilated depthwise convolutions (kernel 7, dilation 3 and 9, in every
  residual unit) take 1.3-3.5 ms each on a 10-frame window; as seven shifted multiply-adds they
  take 0.4-0.8 ms (the same output to float rounding).

Imported only where torch is (the codec loads it lazily).
"""

from __future__ import annotations

from typing import TypeGuard

import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

# Transposed convolutions with at least this many input channels run as matmul + fold on the CPU.
MATMUL_UPSAMPLE_CHANNELS = 1024


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


class MatmulUpsample(torch.nn.Module):
    """A ``ConvTranspose1d`` (no groups, dilation 1) as one matrix product and an overlap-add."""

    weight_t: torch.Tensor
    bias: torch.Tensor

    def __init__(self, conv: torch.nn.ConvTranspose1d) -> None:
        super().__init__()
        channels_in, channels_out, kernel = conv.weight.shape
        self.kernel, self.stride, self.padding = kernel, conv.stride[0], int(conv.padding[0])
        weight = conv.weight.detach().reshape(channels_in, channels_out * kernel)
        self.register_buffer("weight_t", weight.t().contiguous())
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(channels_out)
        self.register_buffer("bias", bias.clone()[None, :, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = torch.matmul(self.weight_t, x)  # (B, C_out * K, T)
        length = (x.shape[-1] - 1) * self.stride + self.kernel
        y = F.fold(columns, output_size=(1, length), kernel_size=(1, self.kernel),
                   stride=(1, self.stride))
        return y[:, :, 0, self.padding : length - self.padding] + self.bias


class ShiftedDepthwise(torch.nn.Module):
    """A depthwise ``Conv1d`` (stride 1) as one multiply-add per kernel tap on shifted input."""

    weight: torch.Tensor
    bias: torch.Tensor

    def __init__(self, conv: torch.nn.Conv1d) -> None:
        super().__init__()
        self.dilation, self.padding = conv.dilation[0], int(conv.padding[0])
        self.register_buffer("weight", conv.weight.detach()[:, 0, :, None].clone())  # (C, K, 1)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
        self.register_buffer("bias", bias.clone()[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (self.padding, self.padding))
        taps = self.weight.shape[1]
        length = padded.shape[-1] - self.dilation * (taps - 1)
        y = torch.addcmul(self.bias, padded[..., :length], self.weight[:, 0])
        for k in range(1, taps):
            start = k * self.dilation
            y.addcmul_(padded[..., start : start + length], self.weight[:, k])
        return y


def _shifted_depthwise_fits(module: torch.nn.Module) -> TypeGuard[torch.nn.Conv1d]:
    return (isinstance(module, torch.nn.Conv1d) and module.dilation[0] > 1
            and module.groups == module.in_channels == module.out_channels
            and module.stride[0] == 1 and isinstance(module.padding, tuple)
            and module.padding_mode == "zeros")


def _matmul_upsample_fits(module: torch.nn.Module) -> TypeGuard[torch.nn.ConvTranspose1d]:
    return (isinstance(module, torch.nn.ConvTranspose1d)
            and module.in_channels >= MATMUL_UPSAMPLE_CHANNELS and module.groups == 1
            and module.dilation[0] == 1 and module.output_padding[0] == 0
            and module.padding_mode == "zeros")


def prepare_for_inference(net: torch.nn.Module, device: str = "cpu") -> dict[str, int]:
    """Bakes weight norm into plain weights and swaps in :class:`InPlaceSnake` (and, on the
    CPU, :class:`MatmulUpsample` and :class:`ShiftedDepthwise`), in place. Returns how many
    modules of each kind changed."""
    from snac.layers import Snake1d

    baked = snakes = upsamples = depthwise = 0
    for module in list(net.modules()):
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            baked += 1
        for name, child in list(module.named_children()):
            if isinstance(child, Snake1d):
                setattr(module, name, InPlaceSnake(child.alpha))
                snakes += 1
            elif device == "cpu" and _matmul_upsample_fits(child):
                setattr(module, name, MatmulUpsample(child))
                upsamples += 1
            elif device == "cpu" and _shifted_depthwise_fits(child):
                setattr(module, name, ShiftedDepthwise(child))
                depthwise += 1
    return {"weight_norm": baked, "snake": snakes, "matmul_upsample": upsamples,
            "shifted_depthwise": depthwise}
