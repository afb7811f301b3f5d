"""The NumPy engine against the PyTorch engine on the same randomly initialised checkpoint.

Agreement as documented in the README ("Engines"): identical codes at temperature 0 (and with
the same seed when sampling), and motion within ``POSE_TOLERANCE`` radians (geodesic angle per
joint), ``TRANS_TOLERANCE`` metres and ``EXPRESSION_TOLERANCE``. Both engines compute in float32;
the differences are rounding (BLAS order, torch's chunked parallel scan vs the step recurrence).
The engine's contract step by step against ``torch_model``: test_numpy_engine_contract.py; the
numpy modules: tests/inference/numpy_model.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gestura.inference import pipeline
from gestura.inference.checkpoint import load_checkpoint
from gestura.inference.engines import EngineError
from gestura.rigs.motion import Motion
from gestura.rigs.rotations import axis_angle_to_matrix
from gestura.rigs.skeleton import PART_DIMS, PARTS

from conftest import REPO

torch = pytest.importorskip("torch", reason="the comparison needs the torch engine")
torch.set_num_threads(1)

from gestura.inference.engines.numpy import NumpyEngine  # noqa: E402
from gestura.inference.engines.torch import TorchEngine  # noqa: E402
from gestura.inference.torch_model.model import GesturaModel  # noqa: E402
from random_checkpoint import tiny_config

POSE_TOLERANCE = 1e-3  # radians
TRANS_TOLERANCE = 1e-4  # metres
EXPRESSION_TOLERANCE = 1e-4

# Small enough for 2 shared cores, with every kind of module (two local layers for the face,
# gated MLPs, lower-body VQ with two blocks) and torch's own initialisation.
MINI = tiny_config(name="mini", code_dim=16, codebook_size=64, vq_hidden=32, gmp_hidden=16, d_model=32,
                   local_layers={"face": 2, "upper": 1, "hands": 1, "lower": 1},
                   vq_layers={"face": 1, "upper": 1, "hands": 1, "lower": 2})


# The multi-granularity model gives each scan other pooling factors, so a scan reading another's
# factors would not load; the stroke planner's speech states travel beside the body's (and its
# features with voicing and pitch beside the body's).
@pytest.fixture(scope="module", params=[{}, {"granularities": {"window": (1, 2, 4, 8), "global": (1, 2), "local": (1, 4)}},
                                        {"stroke_planner": True}, {"stroke_planner": True, "planner_pitch": True}],
                ids=["single-scale", "granular", "stroke-planner", "pitch-planner"])
def checkpoint(request, tmp_path_factory):
    torch.manual_seed(7)
    model = GesturaModel(MINI.with_(**request.param))
    rng = np.random.default_rng(7)
    # Non-trivial statistics, so denormalisation is exercised too.
    stats = {}
    for part in PARTS:
        stats[f"{part}_mean"] = rng.normal(0, 0.1, PART_DIMS[part]).astype(np.float32)
        stats[f"{part}_std"] = rng.uniform(0.05, 0.5, PART_DIMS[part]).astype(np.float32)
    from gestura.inference.checkpoint import identity_stats

    stats = {**identity_stats(), **stats}
    path = model.save(tmp_path_factory.mktemp("ckpt") / "mini.safetensors", styles=["calm", "lively"], stats=stats)
    return load_checkpoint(path)


@pytest.fixture(scope="module")
def engines(checkpoint):
    pair = TorchEngine("cpu"), NumpyEngine()
    for engine in pair:
        engine.prepare(checkpoint)
    return pair


def geodesic(poses_a, poses_b) -> np.ndarray:
    ra, rb = axis_angle_to_matrix(poses_a.astype(np.float64)), axis_angle_to_matrix(poses_b.astype(np.float64))
    cos = (np.einsum("...ij,...ij->...", ra, rb) - 1.0) / 2.0  # trace(Ra^T Rb) = sum Ra*Rb
    return np.arccos(np.clip(cos, -1.0, 1.0))


def assert_motions_agree(a: Motion, b: Motion) -> None:
    assert a.num_frames == b.num_frames
    assert geodesic(a.poses, b.poses).max() < POSE_TOLERANCE
    np.testing.assert_allclose(a.trans, b.trans, atol=TRANS_TOLERANCE, rtol=0)
    np.testing.assert_allclose(a.expressions, b.expressions, atol=EXPRESSION_TOLERANCE, rtol=0)


@pytest.mark.parametrize(("temperature", "style_strength"), [(0.0, 1.0), (0.8, 2.0), (0.8, 0.0)])
def test_whole_generation_agrees_between_engines(checkpoint, speech_wav, temperature, style_strength):
    request = pipeline.GenerationRequest(audio=str(speech_wav), style="lively", seed=3, temperature=temperature,
                                         style_strength=style_strength)
    motions = [pipeline.generate(request, checkpoint=checkpoint, engine=e) for e in (TorchEngine("cpu"), NumpyEngine())]
    assert motions[0].num_frames > 100
    assert np.abs(motions[0].poses).max() > 0.01  # real motion, not the rest pose
    assert_motions_agree(*motions)


def test_parts_subset_and_start_pose_agree(checkpoint):
    rng = np.random.default_rng(4)
    audio = (0.2 * rng.standard_normal(16000 * 3)).astype(np.float32)
    start = Motion.rest(1)
    start.poses[0, 16:22] = rng.normal(0, 0.3, (6, 3))
    start.trans[0] = (0.1, 0.9, -0.2)
    request = pipeline.GenerationRequest(audio=audio, temperature=0.0, parts=("face", "upper", "lower"),
                                         start_pose=start)
    motions = [pipeline.generate(request, checkpoint=checkpoint, engine=e) for e in (TorchEngine("cpu"), NumpyEngine())]
    assert_motions_agree(*motions)
    # Hands were switched off: they keep the start pose's (rest) values in both.
    np.testing.assert_array_equal(motions[1].poses[:, 25:55], 0.0)


def test_streamed_numpy_generation_equals_whole_clip(checkpoint):
    rng = np.random.default_rng(5)
    audio = (0.2 * rng.standard_normal(16000 * 5 + 123)).astype(np.float32)
    whole = pipeline.generate(pipeline.GenerationRequest(audio=audio, seed=9), checkpoint=checkpoint, engine="numpy")
    stream = pipeline.GenerationStream(NumpyEngine(), checkpoint, pipeline.GenerationRequest(audio=None, seed=9))
    pieces, start = [], 0
    for size in (1000, 7000, 20000, 333, 100000):
        got = stream.push_audio(audio[start:start + size])
        start += size
        if got is not None:
            pieces.append(got)
    pieces.append(stream.finish())
    streamed = np.concatenate([m.poses for m in pieces if m is not None])
    np.testing.assert_array_equal(streamed, whole.poses)


def test_stage_one_checkpoint_is_refused_clearly(checkpoint, tmp_path):
    from gestura.inference.checkpoint import save_checkpoint
    from gestura.inference.architecture import tensor_shapes

    keep = tensor_shapes(MINI, "vq")
    path = save_checkpoint(tmp_path / "vq.safetensors", {k: v for k, v in checkpoint.tensors.items() if k in keep},
                           MINI, styles=checkpoint.styles, stage="vq")
    with pytest.raises(EngineError, match="has no generator"):
        NumpyEngine().prepare(load_checkpoint(path))


def test_numpy_engine_needs_no_torch(tmp_path, speech_wav):
    # A Python where importing torch fails, as in a stock Blender: "auto" picks numpy and generates.
    script = f"""
import sys
sys.modules["torch"] = None
sys.path.insert(0, {str(REPO / "tests")!r})
from random_checkpoint import write_random_checkpoint
from gestura.inference import pipeline
from gestura.inference.engines import resolve_engine
path = write_random_checkpoint({str(tmp_path / "tiny.safetensors")!r})
engine = resolve_engine("auto", "auto")
motion = pipeline.generate(pipeline.GenerationRequest(audio={str(speech_wav)!r}), checkpoint=path, engine="auto")
print("RESULT", engine.name, motion.num_frames, "torch" in sys.modules and sys.modules["torch"] is not None)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = [line for line in done.stdout.splitlines() if line.startswith("RESULT")][-1].split()
    assert result[1] == "numpy" and int(result[2]) > 100 and result[3] == "False"


def test_bundled_model_agrees_between_engines(speech_wav):
    from gestura.inference.checkpoint import default_checkpoint_path

    if not default_checkpoint_path().is_file():
        pytest.skip(f"no bundled model at {default_checkpoint_path()} yet")
    checkpoint = load_checkpoint(None)
    request = pipeline.GenerationRequest(audio=str(speech_wav), temperature=0.0)
    motions = [pipeline.generate(request, checkpoint=checkpoint, engine=e) for e in (TorchEngine("cpu"), NumpyEngine())]
    assert_motions_agree(*motions)
