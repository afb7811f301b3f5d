"""``bench/bench_stage1_ceiling.py``: a clip's own motion through the bundled model's codes and
decoders comes out frame for frame where the clip has it. The bundled decoders look 2 frames
ahead; read without lining them up, the motion is 2 frames late, and the bench's apex ratio at the
corpus's apexes measured 1.21 instead of 2.87."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("soundfile")

from gestura import cli  # noqa: E402
from gestura.inference.checkpoint import load_checkpoint  # noqa: E402
from gestura.inference.torch_model.model import GesturaModel  # noqa: E402
from gestura.training import metrics  # noqa: E402
from gestura.training.dataset import Beat2Dataset, joint_positions  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "weights" / "gestura-small.safetensors"
pytestmark = pytest.mark.skipif(not WEIGHTS.exists(), reason="no bundled weights (make weights trains them)")


def load_script():
    sys.path.insert(0, str(REPO / "bench"))  # the bench scripts import their helpers from there
    spec = importlib.util.spec_from_file_location("bench_stage1_ceiling", REPO / "bench" / "bench_stage1_ceiling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_clip_decoded_through_stage_1_is_lined_up_with_the_clip(tmp_path):
    bench = load_script()
    corpus = tmp_path / "synth"
    assert cli.main(["synth", "--out", str(corpus), "--hours", "0.004", "--seed", "5", "--jobs", "1"]) == 0
    clips = Beat2Dataset.load(corpus, ("train", "val", "test"), None).clips
    checkpoint = load_checkpoint(WEIGHTS)
    assert max(checkpoint.config.decoder_lookahead.values()) > 0  # what there is to line up
    model = GesturaModel.from_checkpoint(checkpoint, with_generator=False).eval()
    clip = max(clips, key=lambda c: c.num_frames)
    r = checkpoint.config.frames_per_code
    decoded = joint_positions(bench.decoded_motion(model, checkpoint.stats, clip))
    assert len(decoded) == clip.num_frames // r * r
    ours = metrics.faster_wrist_speed(decoded)
    theirs = metrics.faster_wrist_speed(clip.positions[:len(decoded)])
    k = 3
    lagged = {lag: np.corrcoef(ours[k + lag:len(ours) - k + lag], theirs[k:len(theirs) - k])[0, 1]
              for lag in range(-k, k + 1)}
    assert max(lagged, key=lagged.get) == 0, lagged
    assert lagged[0] > 0.5  # the decoded clip is the clip's motion
