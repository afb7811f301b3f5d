"""``NumpyModel``: the part VQ-VAEs, the global motion predictor and the generator built from a
checkpoint's tensors (names as in ``architecture.tensor_shapes``), as ``torch_model.model.GesturaModel``."""
from __future__ import annotations

import numpy as np

from ...rigs.skeleton import PARTS
from .diffusion import DiffusionGenerator
from .generator import Generator

GENERATORS = {"vq-mamba": Generator, "dim-gestor": DiffusionGenerator}
from .layers import F32
from .vqvae import GlobalMotionPredictor, PartVQVAE


class NumpyModel:
    """All modules of a checkpoint (``checkpoint.Checkpoint``); ``generator`` is None for a
    stage-"vq" checkpoint, which holds stage 1 only."""

    def __init__(self, checkpoint) -> None:
        config = checkpoint.config
        tensors = {name: np.ascontiguousarray(value, F32) for name, value in checkpoint.tensors.items()}
        self.config = config
        self.vq = {p: PartVQVAE(tensors, p, config) for p in PARTS}
        self.gmp = GlobalMotionPredictor(tensors, config)
        self.generator = GENERATORS[config.family](tensors, config) if checkpoint.stage == "full" else None

    def codebooks(self) -> dict:
        """{part: (K, D)} codebook weights, what ``Generator.known_latents`` reads."""
        return {p: self.vq[p].codebook for p in PARTS}
