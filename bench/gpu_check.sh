#!/usr/bin/env bash
# The checks a lent CUDA machine is for, in one call, on a machine with PyTorch, Triton, nvcc,
# einops, transformers and pytest but no package index (the device tool of this workplace):
#
#   1. the GPU tests (tests/**/test_gpu_*.py) on the pure PyTorch paths;
#   2. one span pass on the module and on the stacked path (bench/bench_span_paths.py: the CUDA
#      engine runs the first, the CPU engine the second), and CUDA rows of bench/bench_engines.py
#      at 10 s, 60 s and 10 min of speech: the bundled model, and, given their configs in .whl/,
#      DiM-Gestor and its transformer baseline in windows and over the whole clip (random weights
#      of those configs: the cost does not depend on the values);
#   3. meanwhile, mamba-ssm and causal-conv1d built from their source releases for this GPU's
#      architecture only; then the kernel tests (mamba-ssm's mixers against ours, both families'
#      engines with the kernels) and the CUDA rows again with the kernels.
#
# Run bench/gpu_prepare.sh here first; it fills .whl/ (ignored by git), which the call must carry:
# the device tool's `run` with `carry: [".whl"]` and `bash bench/gpu_check.sh`. Each step prints
# its result lines as it goes and appends its whole output to $OUT (default out/gpu): gpu.txt,
# tests.log, bench.log, build-*.log. Steps that would start with too little of BUDGET seconds
# left are skipped, saying so. On an H200 (2026-12-04) the pure part took 235 s, the two builds
# 335 s (alongside it), the kernel tests 90 s and each set of bench rows 20-75 s: more than one
# 10-minute call holds, so the DiM-Gestor kernel rows come last.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
START=$SECONDS
BUDGET=${BUDGET:-560}
say() { echo "[$((SECONDS - START)) s] $*"; }
# Seconds a step may take: what is left of the budget, at most $1; empty when under 30 are left.
allow() {
    local t=$((BUDGET - (SECONDS - START)))
    [ "$t" -gt "$1" ] && t=$1
    [ "$t" -ge 30 ] && echo "$t"
}

python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
mkdir -p /tmp/pkg && ln -sfn "$PWD" /tmp/pkg/gestura
export PYTHONPATH=/tmp/pkg:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" \
    | tee -a "$OUT/gpu.txt"

# 3, started first: a build for sm_90 only (the releases build eight architectures), at the
# lowest priority so that the timed rows below keep a core to themselves.
build() {  # name, tarball, prefix of its FORCE_BUILD variable, parallel jobs
    mkdir -p /tmp/build && tar xzf ".whl/src/$2" -C /tmp/build || return
    local dir=/tmp/build/${2%.tar.gz}
    python3 - "$dir/setup.py" <<'EOF' || return
import sys
path = sys.argv[1]
text = open(path).read()
anchor = "    # HACK: The compiler flag"
if anchor not in text:
    sys.exit(f"{path} changed: no place to set the architecture list")
open(path, "w").write(text.replace(anchor, '    cc_flag = ["-gencode", "arch=compute_90,code=sm_90"]\n' + anchor, 1))
EOF
    (cd "$dir" && env "$3_FORCE_BUILD=TRUE" MAX_JOBS="$4" NVCC_THREADS=1 nice -n 19 python3 setup.py build_ext --inplace) \
        > "$OUT/build-$1.log" 2>&1 && echo "$dir" > "/tmp/build/$1.ok"
}
build causal-conv1d causal_conv1d-1.7.0.tar.gz CAUSAL_CONV1D 3 &
build mamba-ssm mamba_ssm-2.3.2.post1.tar.gz MAMBA 11 &

gpu_tests() {  # label, pytest arguments...
    local label=$1 t
    shift
    t=$(allow 180) || { say "skipped: GPU tests ($label), out of time"; return; }
    say "GPU tests ($label)" | tee -a "$OUT/tests.log"
    timeout "$t" python3 -m pytest -q -s -p no:cacheprovider "$@" \
        tests/inference/engines/test_gpu_torch_engine.py tests/inference/torch_model/test_gpu_mamba.py \
        tests/inference/torch_model/test_gpu_mamba2.py 2>&1 | tee -a "$OUT/tests.log" \
        | grep -E "passed|failed|skipped|error| vs |Terminated" | tail -n 20
}
span_paths() {  # label
    local t
    t=$(allow 120) || { say "skipped: span paths ($1), out of time"; return; }
    say "span paths ($1)" | tee -a "$OUT/bench.log"
    timeout "$t" python3 bench/bench_span_paths.py 2>&1 | tee -a "$OUT/bench.log" | tail -n 4
}
rows() {  # label, checkpoint, bench_engines arguments...
    local label=$1 checkpoint=$2 t
    shift 2
    [ -f "$checkpoint" ] || { say "skipped: $label (no $checkpoint)"; return; }
    t=$(allow 150) || { say "skipped: $label, out of time"; return; }
    say "bench $label" | tee -a "$OUT/bench.log"
    timeout "$t" python3 bench/bench_engines.py --engines torch-cuda --style-strength 1 \
        --audio .whl/bench-speech.wav --checkpoint "$checkpoint" --seconds 10 60 600 "$@" 2>&1 \
        | tee -a "$OUT/bench.log" | grep -Ev "^(checkpoint|threads per engine|engine )"
}

gpu_tests pure
python3 - <<'EOF'
import json
import os
import sys

sys.path.insert(0, "tests")
from random_checkpoint import write_random_checkpoint

from gestura.inference.config import ModelConfig

for block in ("mamba2", "attention"):
    if os.path.isfile(f".whl/dim-{block}.json"):
        spec = json.load(open(f".whl/dim-{block}.json"))
        write_random_checkpoint(f"/tmp/dim-{block}.safetensors", ModelConfig.from_dict(spec["config"]), spec["styles"])
EOF
BUNDLED=weights/gestura-small.safetensors
span_paths pure
rows default-pure $BUNDLED
rows dim-pure /tmp/dim-mamba2.safetensors
rows dim-whole-pure /tmp/dim-mamba2.safetensors --whole-clip
rows transformer /tmp/dim-attention.safetensors
rows transformer-whole /tmp/dim-attention.safetensors --whole-clip

say "waiting for the kernel builds"
while [ "$(jobs -r | wc -l)" -gt 0 ] && allow 120 > /dev/null; do sleep 5; done
if [ -f /tmp/build/mamba-ssm.ok ] && [ -f /tmp/build/causal-conv1d.ok ]; then
    export PYTHONPATH=$PYTHONPATH:$(cat /tmp/build/mamba-ssm.ok):$(cat /tmp/build/causal-conv1d.ok)
    python3 -c "import mamba_ssm, causal_conv1d; print('mamba-ssm', mamba_ssm.__version__, 'causal-conv1d', causal_conv1d.__version__)" \
        2>&1 | tail -n 1 | tee -a "$OUT/gpu.txt"
    gpu_tests kernels -k "kernels or mamba_ssm"  # the pure paths ran above
    span_paths kernels
    rows default-kernels $BUNDLED
    rows dim-whole-kernels /tmp/dim-mamba2.safetensors --whole-clip
    rows dim-kernels /tmp/dim-mamba2.safetensors
else
    say "kernel builds not done ($(ls /tmp/build/*.ok 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')finished); their last lines:"
    tail -n 3 "$OUT"/build-*.log
fi
kill $(jobs -p) 2>/dev/null  # a build still running is given up with the call
say "done"
