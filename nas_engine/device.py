"""Where a search runs, and how many CPU threads it may take."""

from __future__ import annotations

import os

import torch


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit choice must exist on this machine."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        found = ", ".join(["cpu"] + (["cuda"] if cuda else []) + (["mps"] if mps else []))
        raise ValueError(f"device must be auto or one this machine has ({found}); got {name!r}")
    return torch.device(name)


def cpu_threads(requested: int | None) -> int:
    """Threads for torch on the CPU: by default all cores but one, so the UI keeps a core (the
    measured rule: with every core busy the page rendered at half rate, the trainer 7x slower)."""
    return requested if requested is not None else max(1, available_cores() - 1)


def configure_threads(device: torch.device, requested: int | None) -> None:
    """`torch.set_num_threads` is process-wide: concurrent runs share one setting."""
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(requested))
