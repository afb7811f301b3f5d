"""The numpy model next to the torch model on the same random weights (torch's own initialisation),
for the tests of ``numpy_model`` and the NumPy engine."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from gestura.inference.checkpoint import Checkpoint, identity_stats
from gestura.rigs.skeleton import PART_DIMS, PARTS

from random_checkpoint import tiny_config


def small_config(**changes):
    """Every kind of module, small: two speech, global and face-local layers, gated MLPs, a
    two-block lower-body VQ, four styles; ``changes`` override."""
    base = dict(code_dim=16, codebook_size=64, vq_hidden=32, gmp_hidden=16, d_model=32, num_styles=4,
                speech_layers=2, global_layers=2, lookahead=6,
                local_layers={"face": 2, "upper": 1, "hands": 1, "lower": 1},
                vq_layers={"face": 1, "upper": 1, "hands": 1, "lower": 2})
    return tiny_config(**{**base, **changes})


@functools.lru_cache(maxsize=None)
def _pair(frames_per_code: int, granularities: tuple = (1,), stroke_planner: bool = False,
          plan_decoders: bool = False, planner_pitch: bool = False):
    torch = pytest.importorskip("torch")
    from gestura.inference.numpy_model.model import NumpyModel
    from gestura.inference.torch_model.model import GesturaModel

    torch.set_num_threads(1)
    config = small_config(frames_per_code=frames_per_code, granularities=granularities, stroke_planner=stroke_planner,
                          plan_decoders=plan_decoders, planner_pitch=planner_pitch)
    torch.manual_seed(11)
    model = GesturaModel(config).eval()
    with torch.no_grad():
        # Codebook rows among the encoder's latents, as training leaves them (torch's initial
        # codebook is so small that every latent has the same nearest code).
        for part in PARTS:
            x = torch.randn(1, config.codebook_size * frames_per_code, PART_DIMS[part])
            model.vq[part].codebook.weight.copy_(model.vq[part].encode(x)[0])
    checkpoint = Checkpoint(tensors=model.numpy_state(), config=config, stats=identity_stats(),
                            styles=["a", "b", "c", "d"], stage="full")
    return model, NumpyModel(checkpoint), checkpoint


def model_pair(frames_per_code: int = 4, granularities: tuple = (1,), stroke_planner: bool = False,
               plan_decoders: bool = False, planner_pitch: bool = False):
    """(torch ``GesturaModel``, ``NumpyModel``) with the same weights (built once per r,
    granularities, and whether there is a stroke planner, one that hears pitch, and plan-reading
    decoders); skips without torch."""
    return _pair(frames_per_code, tuple(granularities), stroke_planner or planner_pitch, plan_decoders,
                 planner_pitch)[:2]


def pair_checkpoint(frames_per_code: int = 4, stroke_planner: bool = False, plan_decoders: bool = False,
                    planner_pitch: bool = False):
    """The in-memory ``Checkpoint`` of ``model_pair(frames_per_code, stroke_planner=..., plan_decoders=...,
    planner_pitch=...)``."""
    return _pair(frames_per_code, (1,), stroke_planner or planner_pitch, plan_decoders, planner_pitch)[2]


def assert_close(actual, expected, tol=1e-4):
    """Within ``tol`` of the expected values' scale (float32 rounding, not model differences)."""
    expected = np.asarray(expected)
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    assert actual.shape == expected.shape
    worst = float(np.abs(np.asarray(actual) - expected).max()) if expected.size else 0.0
    assert worst <= tol * scale, f"off by {worst} at scale {scale}"
