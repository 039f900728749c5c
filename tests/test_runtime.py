"""rescore/runtime.py: bf16 on a CPU without native bf16 warns once (it is emulated and slow)."""

from __future__ import annotations

import logging

import pytest
import torch

from rescore import runtime


@pytest.mark.parametrize("flags, warns", [({"avx2", "fma"}, True), ({"avx2", "avx512_bf16"}, False),
                                          ({"amx_bf16"}, False), (set(), False)])
def test_bf16_on_a_cpu_without_native_bf16_warns_once(monkeypatch, caplog, flags, warns):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: flags)
    monkeypatch.setattr(runtime, "_warned_bf16", False)
    cpu = torch.device("cpu")
    with caplog.at_level(logging.WARNING, logger="rescore"):
        for _ in range(3):
            with runtime.autocast(cpu, "bf16"):
                pass
        with runtime.autocast(cpu, "fp32"):
            pass
    hits = [r for r in caplog.records if "without native bf16" in r.getMessage()]
    assert len(hits) == (1 if warns else 0)


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ValueError, match="fp16 autocast is not supported on CPU"):
        runtime.autocast(torch.device("cpu"), "fp16")
