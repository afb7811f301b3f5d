"""A tiny randomly initialised checkpoint written with numpy alone (Blender 4.2's venv has no torch).

Initialised like the torch layers are (fan-in scaled weights, zero biases, unit norms, Mamba's
A_log = log(1..N) (Mamba-2's: log(1..heads)) and D = 1, the diffusion latents' identity
statistics), so the model runs and gives finite, seed-dependent motion.
"""
from __future__ import annotations

import numpy as np

from gestura.inference.architecture import tensor_shapes
from gestura.inference.checkpoint import identity_stats, save_checkpoint
from gestura.inference.config import ModelConfig



def tiny_config(**changes) -> ModelConfig:
    """The tests' tiny model: one layer everywhere, 16 codes of 8 dims, d_model 16, two styles.
    ``changes`` override fields (a test that needs a wider or deeper model says only how)."""
    one = {"face": 1, "upper": 1, "hands": 1, "lower": 1}
    base = ModelConfig(name="tiny", code_dim=8, codebook_size=16, vq_hidden=16, gmp_hidden=8, d_model=16,
                       speech_layers=1, global_layers=1, local_layers=dict(one), num_styles=2, vq_layers=dict(one))
    return base.with_(**changes) if changes else base


TINY = tiny_config()
STYLES = ["alice", "bob"]


def random_tensors(config: ModelConfig, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in tensor_shapes(config, "full").items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "A_log":
            value = np.broadcast_to(np.log(np.arange(1, shape[-1] + 1, dtype=np.float32)), shape)
        elif leaf in ("D", "latent_std") or ("norm" in name and leaf == "weight" and len(shape) == 1):
            value = np.ones(shape, np.float32)
        elif leaf in ("bias", "dt_bias", "latent_mean"):
            value = np.zeros(shape, np.float32)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
            value = rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), shape)
        tensors[name] = np.ascontiguousarray(value, np.float32)
    return tensors


def speech_stats(wave: np.ndarray) -> dict:
    """Identity statistics but the audio features' mean and spread of ``wave`` (16 kHz), so that a
    random model hears features in the range training would give them."""
    from gestura.inference.features import audio_features

    stats = identity_stats()
    feats = audio_features(wave)
    stats["audio_mean"], stats["audio_std"] = feats.mean(0), feats.std(0) + 1e-3
    return stats


def write_random_checkpoint(path, config: ModelConfig = TINY, styles=STYLES, seed: int = 0, stats: dict | None = None):
    return save_checkpoint(path, random_tensors(config, seed), config, styles=list(styles), stage="full", stats=stats)
