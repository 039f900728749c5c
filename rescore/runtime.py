"""Devices, dtypes, autocast and threads: the runtime choices every torch step shares."""

from __future__ import annotations

import contextlib
import os

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | None) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``None``/``auto`` (cuda when available)."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return dev


def resolve_dtype(dtype: str) -> torch.dtype:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def autocast(device: torch.device, dtype: str):
    """Mixed precision for bf16/fp16 (weights stay fp32); a no-op for fp32."""
    if dtype == "fp32":
        return contextlib.nullcontext()
    if device.type == "cpu" and dtype == "fp16":
        raise ValueError("fp16 autocast is not supported on CPU; use bf16 or fp32")
    return torch.autocast(device_type=device.type, dtype=DTYPES[dtype])


def set_threads(num_threads: int | None) -> int:
    """Set torch's intra-op threads (default: the CPUs this process may use); returns the count."""
    if not num_threads:
        try:
            num_threads = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            num_threads = os.cpu_count() or 1
    torch.set_num_threads(num_threads)
    return num_threads
