"""Devices, dtypes, autocast and threads: the runtime choices every torch step shares."""

from __future__ import annotations

import contextlib
import os
import re

import torch

from rescore.defaults import DEVICE_PATTERN
from rescore.exceptions import InputError

#: the device strings steps accept (``--device`` and the ``device`` config key)
DEVICE_RE = re.compile(DEVICE_PATTERN)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | None) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``None``/``auto`` (cuda when available)."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or not DEVICE_RE.fullmatch(device):
        raise InputError(None, None, f"unknown device {device!r}: expected auto, cpu, cuda, cuda:N, mps or xpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(None, None, f"device {device!r} requested but CUDA is not available")
    return dev


def resolve_dtype(dtype: str) -> torch.dtype:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


#: CPU flags (``/proc/cpuinfo``) of native bf16 arithmetic; without one, bf16 is emulated and slow
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_warned_bf16 = False


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_native_bf16() -> bool | None:
    """True/False from the CPU flags; None when they cannot be read (not Linux)."""
    flags = cpu_flags()
    if not flags:
        return None
    return any(f in flags for f in NATIVE_BF16_FLAGS)


def autocast(device: torch.device, dtype: str):
    """Mixed precision for bf16/fp16 (weights stay fp32); a no-op for fp32. bf16 on a CPU without
    native bf16 (no AVX512-BF16 or AMX) is allowed, with a one-time warning: there it is emulated and
    measured 3-4x slower than fp32 (bench/RESULTS.md)."""
    global _warned_bf16
    if dtype == "fp32":
        return contextlib.nullcontext()
    if device.type == "cpu" and dtype == "fp16":
        raise ValueError("fp16 autocast is not supported on CPU; use bf16 or fp32")
    if device.type == "cpu" and dtype == "bf16" and not _warned_bf16 and cpu_has_native_bf16() is False:
        _warned_bf16 = True
        from rescore.log import get_logger

        get_logger(__name__).warning(
            "bf16 on a CPU without native bf16 (none of %s in its flags): emulated, typically 3-4x slower "
            "than fp32; use --dtype fp32 here", "/".join(NATIVE_BF16_FLAGS))
    return torch.autocast(device_type=device.type, dtype=DTYPES[dtype])


def set_threads(num_threads: int | None) -> int:
    """Set torch's intra-op threads (default: the CPUs this process may use); returns the count."""
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 0):
        raise InputError(None, None, f"the number of threads must be an integer >= 0 (0: all), got {num_threads!r}")
    if not num_threads:
        try:
            num_threads = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            num_threads = os.cpu_count() or 1
    torch.set_num_threads(num_threads)
    return num_threads
