#!/usr/bin/env bash
# The checks a lent CUDA machine is for, in one call of about ten minutes, on a machine with
# PyTorch, Triton and nvcc but no registry to install from (the device tool of this workplace):
#
#   1. the GPU tests (tests/**/test_gpu_*.py) on the pure PyTorch paths;
#   2. one span pass on the module and the stacked path (bench/bench_span_paths.py; the CUDA engine
#      runs the module path, the CPU engine the stacked one), and CUDA rows of
#      bench/bench_engines.py at 10 s, 60 s and 10 min of speech: the bundled model,
#      and DiM-Gestor and its transformer baseline in windows and over the whole clip (random
#      weights of the trained models' configs: the cost does not depend on the values);
#   3. meanwhile, mamba-ssm and causal-conv1d built from their source releases for this GPU's
#      architecture only; then the GPU tests again with the kernels (mamba-ssm's mixers against
#      ours) and the CUDA rows with them.
#
# Prepare .whl/ on the development machine first (it travels with the call; .gitignore ignores it):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl soundfile==0.13.1 cffi pycparser
#   .whl/src/: the sdists mamba_ssm-2.3.2.post1.tar.gz and causal_conv1d-1.7.0.tar.gz from PyPI
#   .whl/dim-mamba2.json, .whl/dim-attention.json: {"config": ..., "styles": ...} of the trained
#       DiM-Gestor and transformer checkpoints (their safetensors metadata)
#   .whl/bench-speech.wav: bench_engines.py's espeak-ng sentence (the device has no espeak-ng)
# Logs and results go to $OUT (default out/gpu); the last lines printed are the summary.
# On an H200 (2026-12-04) the pure part took 235 s, the two builds 335 s, the kernel tests 90 s and
# each set of bench rows 20-75 s: give the call the whole ten minutes, or BUDGET=... less work.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
START=$SECONDS
BUDGET=${BUDGET:-540}  # seconds; steps that would start later are skipped and said so
left() { echo $((BUDGET - (SECONDS - START))); }
say() { echo "[$((SECONDS - START)) s] $*"; }

python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
mkdir -p /tmp/pkg && ln -sfn "$PWD" /tmp/pkg/gestura
export PYTHONPATH=/tmp/pkg:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" \
    | tee -a "$OUT/gpu.txt"

# 3, started first: a build for sm_90 only (the releases build eight architectures), niced so
# that the timed rows below keep a core to themselves.
build() {  # name, tarball, env prefix, jobs
    mkdir -p /tmp/build && tar xzf ".whl/src/$2" -C /tmp/build
    local dir=/tmp/build/${2%.tar.gz}
    python3 - "$dir/setup.py" <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path).read()
anchor = "    # HACK: The compiler flag"
assert anchor in text, "setup.py changed: no anchor for the architecture list"
open(path, "w").write(text.replace(anchor, '    cc_flag = ["-gencode", "arch=compute_90,code=sm_90"]\n' + anchor, 1))
EOF
    (cd "$dir" && env "$3_FORCE_BUILD=TRUE" MAX_JOBS=$4 NVCC_THREADS=1 nice -n 19 python3 setup.py build_ext --inplace) \
        > "$OUT/build-$1.log" 2>&1 && echo "$dir" > "/tmp/build/$1.ok"
}
build causal-conv1d causal_conv1d-1.7.0.tar.gz CAUSAL_CONV1D 3 &
build mamba-ssm mamba_ssm-2.3.2.post1.tar.gz MAMBA 11 &

gpu_tests() {  # label, pytest arguments...
    say "GPU tests ($1)" | tee -a "$OUT/tests.log"
    shift
    timeout $(( $(left) < 180 ? $(left) : 180 )) python3 -m pytest -q -s -p no:cacheprovider "$@" \
        tests/inference/engines/test_gpu_torch_engine.py tests/inference/torch_model/test_gpu_mamba.py \
        tests/inference/torch_model/test_gpu_mamba2.py 2>&1 | tee -a "$OUT/tests.log" | grep -E "passed|failed|skipped|vs|Error|error" | tail -15
}
gpu_tests pure

python3 - <<'EOF'
import json, sys
sys.path.insert(0, "tests")
from random_checkpoint import write_random_checkpoint
from gestura.inference.config import ModelConfig
for block in ("mamba2", "attention"):
    spec = json.load(open(f".whl/dim-{block}.json"))
    write_random_checkpoint(f"/tmp/dim-{block}.safetensors", ModelConfig.from_dict(spec["config"]), spec["styles"])
EOF

rows() {  # label, checkpoint, extra bench args...
    local label=$1 checkpoint=$2
    shift 2
    if [ "$(left)" -lt 40 ]; then say "skipped: $label (time)"; return; fi
    say "bench $label" | tee -a "$OUT/bench.log"
    timeout $(( $(left) < 150 ? $(left) : 150 )) python3 bench/bench_engines.py --engines torch-cuda --style-strength 1 \
        --audio .whl/bench-speech.wav --checkpoint "$checkpoint" "$@" 2>&1 \
        | tee -a "$OUT/bench.log" | grep -E "^(machine|torch-cuda)"
}
span_paths() {  # label: one span pass, module against stacked path (bench_span_paths.py)
    say "span paths ($1)" | tee -a "$OUT/bench.log"
    timeout 120 python3 bench/bench_span_paths.py 2>&1 | tee -a "$OUT/bench.log" | tail -n 3
}
BUNDLED=weights/gestura-small.safetensors
span_paths pure
rows default-pure $BUNDLED --seconds 10 60 600
rows dim-pure /tmp/dim-mamba2.safetensors --seconds 10 60 600
rows dim-whole-pure /tmp/dim-mamba2.safetensors --seconds 10 60 600 --whole-clip
rows transformer /tmp/dim-attention.safetensors --seconds 10 60 600
rows transformer-whole /tmp/dim-attention.safetensors --seconds 10 60 600 --whole-clip

say "waiting for the kernel builds"
while [ "$(jobs -r | wc -l)" -gt 0 ] && [ "$(left)" -gt 120 ]; do sleep 5; done
if [ -f /tmp/build/mamba-ssm.ok ] && [ -f /tmp/build/causal-conv1d.ok ]; then
    export PYTHONPATH=$PYTHONPATH:$(cat /tmp/build/mamba-ssm.ok):$(cat /tmp/build/causal-conv1d.ok)
    python3 -c "import mamba_ssm, causal_conv1d; print('mamba-ssm', mamba_ssm.__version__, 'causal-conv1d', causal_conv1d.__version__)" \
        2>&1 | tail -1 | tee -a "$OUT/gpu.txt"
    gpu_tests kernels -k "kernels or mamba_ssm"  # the pure paths ran above
    span_paths kernels
    rows default-kernels $BUNDLED --seconds 10 60 600
    rows dim-whole-kernels /tmp/dim-mamba2.safetensors --seconds 10 60 600 --whole-clip
    rows dim-kernels /tmp/dim-mamba2.safetensors --seconds 10 60 600
else
    say "kernel builds not done: $(ls /tmp/build/*.ok 2>/dev/null | xargs -r -n1 basename) ok; tails:"
    tail -n 3 "$OUT"/build-*.log
fi
say "done"
