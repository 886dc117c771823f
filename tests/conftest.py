"""Shared test setup."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from pages.ui.common import DATA_DIR_ENV, DOWNLOAD_ENV, RUNS_DIR_ENV

APP = str(Path(__file__).resolve().parents[1] / "app.py")
APP_TIMEOUT = 120


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny tensors on a small machine: one torch thread is faster and steadier than several
    threads fighting over two cores (measured: a 0.1 s float64 forward-backward took 7-80 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def ctrl_c_reaches_python():
    """The CLI tests press Ctrl-C by signalling this process. A process started in the
    background of a script inherits SIGINT ignored, and Python then installs no
    KeyboardInterrupt: give it the handler a terminal's process has."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture
def app(tmp_path, monkeypatch):
    """The app under AppTest, on a runs folder and a data folder of its own."""
    monkeypatch.setenv(RUNS_DIR_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.delenv(DOWNLOAD_ENV, raising=False)
    at = AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    yield at
    st.cache_resource.clear()  # on_release stops this test's runs
