"""The inputs of every rectifier a forward pass calls, whether through an `nn.ReLU` module or
`F.relu` inside an op (the cell ops here call `F.relu` once per shared input).

NASWOT's codes are the on/off pattern of the rectified linear units (Mellor et al. 2021); a
torch function mode sees each call, module or functional, without knowing the network.
LeakyReLU is piecewise linear with the same two regions, so its input's sign is a code too;
tanh has no such regions and gives none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

Tensor = torch.Tensor
RECTIFIERS = frozenset({F.relu, F.leaky_relu, torch.relu, torch.relu_, Tensor.relu,
                        Tensor.relu_, F.relu_})


class RectifierInputs(TorchFunctionMode):
    """Within `with RectifierInputs(on_input):` each rectifier's input (B, ...) is passed to
    `on_input` before the rectifier runs (in-place ones included)."""

    def __init__(self, on_input: Callable[[Tensor], None]) -> None:
        super().__init__()
        self.on_input = on_input

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        if func in RECTIFIERS and args and isinstance(args[0], Tensor):
            self.on_input(args[0].detach())
        return func(*args, **(kwargs or {}))
