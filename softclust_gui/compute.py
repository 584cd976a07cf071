"""Which compute device the app uses: CUDA, then Apple MPS, then the CPU.

Model and engine code never pick a device themselves; they ask ``resolve_device``.
Importing torch is slow (seconds), so callers on a GUI thread run these in a worker.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

logger = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda", "mps" or "cpu"
    name: str  # human-readable, e.g. "NVIDIA GeForce RTX 4060 Laptop GPU"

    def describe(self) -> str:
        if self.kind == "cpu":
            return f"CPU ({self.name})"
        if self.kind == "mps":
            return "Apple GPU (MPS)"
        return f"GPU: {self.name}"


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(requested: str = "auto") -> str:
    """Return the torch device string for ``requested`` ("auto", "cpu", "cuda", "mps").

    Raises ValueError for an unknown name or a device this machine does not have.
    """
    import torch

    if requested not in DEVICE_CHOICES:
        raise ValueError(
            f"device must be one of {', '.join(DEVICE_CHOICES)}; got {requested!r}."
        )
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available(torch):
            return "mps"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was asked for, but no CUDA GPU is available; "
            "use device='auto' or 'cpu'."
        )
    if requested == "mps" and not _mps_available(torch):
        raise ValueError(
            "device='mps' was asked for, but Apple MPS is not available; "
            "use device='auto' or 'cpu'."
        )
    return requested


def describe_device(requested: str = "auto") -> DeviceInfo:
    """The device ``resolve_device`` picks, with a name a person can read."""
    import platform

    import torch

    kind = resolve_device(requested)
    if kind == "cuda":
        name = torch.cuda.get_device_name(0)
    elif kind == "mps":
        name = "Apple MPS"
    else:
        cores = os.cpu_count() or 1
        name = f"{platform.processor() or platform.machine() or 'processor'}, {cores} cores"
    info = DeviceInfo(kind, name)
    logger.info("compute device: %s", info.describe())
    return info
