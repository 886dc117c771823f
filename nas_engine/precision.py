"""How a job computes on its device: the `device` section's switches (bf16 autocast, channels
last, compilation) resolved for the device in hand.

Mixed precision follows Micikevicius et al. (ICLR 2018): the forward passes run in a 16-bit
type, the weights, α and optimiser states stay float32. bf16 keeps float32's exponent range, so
no loss scaling is needed (PyTorch's AMP recipe for bf16). What compares nearly equal numbers,
the finite-difference Hessian-vector product and λmax, runs in float32 (`float32`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import nn

from nas_engine.config import DeviceConfig

Weights = dict[str, torch.Tensor]


def _switch(value: str, device: torch.device) -> bool:
    return value == "on" or (value == "auto" and device.type == "cuda")


def float32(device: torch.device) -> AbstractContextManager:
    """Autocast off: what runs inside is float32 even within an AMP forward."""
    return torch.autocast(device.type, enabled=False)


@dataclass(frozen=True)
class Precision:
    device: torch.device
    amp: bool  # bf16 autocast for forward passes
    channels_last: bool  # NHWC images and conv weights
    compile: bool  # the network under torch.compile

    @classmethod
    def of(cls, config: DeviceConfig, device: torch.device) -> Precision:
        return cls(device, _switch(config.amp, device), _switch(config.channels_last, device),
                   config.compile)

    def autocast(self) -> AbstractContextManager:
        """The forward passes' context: bf16 autocast under AMP, nothing otherwise."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def mixing(self, weights: Weights) -> Weights:
        """Mixing weights for an AMP forward: in bf16, because a float32 weight would promote
        every weighted op output, and so every node sum, back to float32. Their gradient comes
        back to α in float32."""
        if not self.amp:
            return weights
        return {cell: w.to(torch.bfloat16) for cell, w in weights.items()}

    def place(self, module: nn.Module) -> nn.Module:
        """`module` on the device, its conv weights in the memory format."""
        if self.channels_last:
            return module.to(self.device, memory_format=torch.channels_last)
        return module.to(self.device)

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        """Images in the memory format the network's weights are in."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def compiled(self, module: nn.Module) -> nn.Module:
        """What the steps call: `module` under torch.compile when asked (sharing its
        parameters), else `module`. The module itself stays eager for what is not compiled
        (λmax's double backward, one-off passes), without torch.compiler.set_stance, which is
        process-wide and so not safe while other runs step in their threads."""
        return torch.compile(module) if self.compile else module
