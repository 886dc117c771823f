"""Shared test setup."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny tensors on a small machine: one torch thread is faster and steadier than several
    threads fighting over two cores (measured: a 0.1 s float64 forward-backward took 7-80 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
