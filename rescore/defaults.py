"""Defaults that command-line parsers show, kept apart from the modules that use them.

This module imports nothing, so that ``python -m rescore.bin.<step> --help`` answers without
loading torch or transformers; the scoring modules take their defaults from here.
"""

PLL_BATCH_TOKENS = 4096  # padded tokens per PLL batch: CPU-cache friendly; on a GPU pass 16384-65536
PLL_WORD_MASKS = ("none", "whole", "l2r")  # score_pll --word_mask
CLM_BATCH_TOKENS = 4096  # padded positions per causal-LM batch
STUDENT_BATCH_TOKENS = 8192  # padded tokens per student batch
DEVICE_PATTERN = r"auto|cpu|cuda(:[0-9]+)?|mps|xpu(:[0-9]+)?"  # --device and the device config key
