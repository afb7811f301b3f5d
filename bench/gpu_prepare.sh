#!/usr/bin/env bash
# Fills .whl/ (ignored by git) with what bench/gpu_check.sh needs on a CUDA machine that has
# PyTorch, Triton, nvcc, einops, transformers and pytest but no package index; run it here, where
# pip and espeak-ng work:
#
#   bench/gpu_prepare.sh [DIM_CHECKPOINT TRANSFORMER_CHECKPOINT]
#
# - wheels for the device's Python 3.12 of what it lacks: soundfile, cffi, pycparser;
# - the source releases of mamba-ssm 2.3.2.post1 and causal-conv1d 1.7.0 (built there for its GPU);
# - bench_engines.py's espeak-ng sentence as .whl/bench-speech.wav (the device has no espeak-ng);
# - given a trained DiM-Gestor and its transformer baseline (`gestura train --family dim-gestor`,
#   the second with `--set denoiser_block=attention`), their configs and speakers as
#   .whl/dim-mamba2.json and .whl/dim-attention.json: the weights are too large to travel beside
#   the bundled model, and the cost does not depend on them, so gpu_check.sh times random weights
#   of these configs. Without them it times the bundled model only.
#
# Then call the device tool's `run` with `carry: [".whl"]` and `bash bench/gpu_check.sh`.
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p .whl/src
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl soundfile==0.13.1 cffi pycparser
"$PY" - <<'EOF'
import json
import urllib.request

# pip cannot download these sdists without building them (their setup.py needs CUDA): fetch the files.
for name, version in (("mamba-ssm", "2.3.2.post1"), ("causal-conv1d", "1.7.0")):
    project = json.load(urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json"))
    sdist = next(u for u in project["releases"][version] if u["packagetype"] == "sdist")
    urllib.request.urlretrieve(sdist["url"], f".whl/src/{sdist['filename']}")
    print(".whl/src/" + sdist["filename"])
EOF
"$PY" - <<'EOF' | { read -r rate; read -r text; espeak-ng -s "$rate" -w .whl/bench-speech.wav "$text"; }
import sys
sys.path.insert(0, "bench")
from bench_engines import SPEECH_RATE, SPEECH_TEXT
print(SPEECH_RATE)
print(SPEECH_TEXT)
EOF
if [ $# -eq 2 ]; then
    "$PY" - "$1" "$2" <<'EOF'
import json
import sys

from gestura.inference.checkpoint import load_checkpoint

for path in sys.argv[1:]:
    checkpoint = load_checkpoint(path)
    block = checkpoint.config.denoiser_block
    if checkpoint.config.family != "dim-gestor":
        sys.exit(f"gpu_prepare: {path} is a {checkpoint.config.family} model, not a dim-gestor one")
    with open(f".whl/dim-{block}.json", "w") as f:
        json.dump({"config": checkpoint.config.to_dict(), "styles": list(checkpoint.styles)}, f)
    print(f".whl/dim-{block}.json from {path}")
EOF
fi
du -sh .whl
