"""The checkpoint file format: a torch zip file followed by a 48-byte trailer (a magic word, the
zip's length and its SHA-256), so that a file cut short by a crash or a full disk, or changed
afterwards, is recognised before anything is loaded from it.

Files are read with `torch.load(weights_only=True)`: our checkpoints hold only tensors (a
`torch.Generator` state is a ByteTensor), dicts, lists, strings, numbers, None and booleans,
all within torch's default allow-list, so nothing is added to it. A pickle that names anything
else (e.g. `os.system`) is refused before that thing is imported or called. `torch.load` on a
checkpoint still works (zip readers ignore the trailer); the check needs this module.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import torch

MAGIC = b"NASCKPT1"
TRAILER = struct.Struct(">8sQ32s")  # magic, length of the zip before it, its SHA-256
ZIP_MAGIC = b"PK\x03\x04"  # what torch.save's zip format starts with
ZIP_END, ZIP_END_SIZE = b"PK\x05\x06", 22  # and its last record (torch writes no comment)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: `path` names it, `reason` says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class DamagedCheckpoint(CheckpointError):
    """Cut short, changed, or not a checkpoint at all: a resume falls back to an older one."""


class RefusedCheckpoint(CheckpointError):
    """Its pickle names something no checkpoint holds (a crafted file): never loaded, and never
    passed over quietly either, since someone put it there."""


def encode(state: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file holding `state`."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    return payload + TRAILER.pack(MAGIC, len(payload), hashlib.sha256(payload).digest())


def decode(data: bytes, path: Path) -> dict[str, Any]:
    """The state in a checkpoint file's bytes (`path` only names it in errors). A file without
    a trailer (written before checksums existed) is read if it is a whole zip file."""
    payload = data
    trailer = data[-TRAILER.size:]
    if not data:
        raise DamagedCheckpoint(path, "damaged: empty")
    if not data.startswith(ZIP_MAGIC):
        raise DamagedCheckpoint(path, "damaged: not a checkpoint (no torch zip header)")
    if len(data) >= TRAILER.size and trailer.startswith(MAGIC):
        _, length, digest = TRAILER.unpack(trailer)
        payload = data[: -TRAILER.size]
        if len(payload) != length:
            raise DamagedCheckpoint(path, f"damaged: {len(payload)} bytes where its trailer "
                                    f"says {length}")
        if hashlib.sha256(payload).digest() != digest:
            raise DamagedCheckpoint(path, "damaged: its checksum does not match (the file was "
                                    "changed or corrupted)")
    elif data[-ZIP_END_SIZE:-ZIP_END_SIZE + 4] != ZIP_END:
        raise DamagedCheckpoint(path, "damaged: cut short (its end is missing)")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        named = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if named:
            raise RefusedCheckpoint(path, f"refused: it would load {named[1]}, which no "
                                    "checkpoint holds (a crafted file?); nothing in it ran"
                                    ) from None
        raise DamagedCheckpoint(path, "damaged: its contents are not a checkpoint's") from None
    except Exception as exc:  # torch's zip reader raises RuntimeError, ValueError, EOFError...
        raise DamagedCheckpoint(path, f"damaged: {type(exc).__name__}: {_first_line(exc)}"
                                ) from None
    if not isinstance(state, dict):
        raise DamagedCheckpoint(path, f"damaged: holds a {type(state).__name__}, not a state")
    return state


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else "no message"
