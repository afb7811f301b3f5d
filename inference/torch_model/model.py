"""``GesturaModel``: the part VQ-VAEs, the global motion predictor and the generator in one module
whose ``state_dict()`` names are the checkpoint's tensor names (``architecture.tensor_shapes``).
The generator is the config's family: the masked code generator (``generator.Generator``,
"vq-mamba") or the diffusion model (``diffusion.DiffusionGenerator``, "dim-gestor")."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...rigs.skeleton import PARTS
from ..architecture import tensor_shapes
from ..checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from ..config import ModelConfig
from .diffusion import DiffusionGenerator
from .generator import Generator

GENERATORS = {"vq-mamba": Generator, "dim-gestor": DiffusionGenerator}
from .vqvae import GlobalMotionPredictor, PartVQVAE


class GesturaModel(nn.Module):
    def __init__(self, config: ModelConfig, with_generator: bool = True):
        super().__init__()
        self.config = config
        self.vq = nn.ModuleDict({part: PartVQVAE(part, config) for part in PARTS})
        self.gmp = GlobalMotionPredictor(config)
        self.generator = GENERATORS[config.family](config) if with_generator else None

    @property
    def stage(self) -> str:
        return "full" if self.generator is not None else "vq"

    # --- checkpoint ---------------------------------------------------------------------------
    def numpy_state(self) -> dict:
        return {name: value.detach().cpu().float().numpy() for name, value in self.state_dict().items()}

    def save(self, path, *, styles, stats=None, stage: str | None = None, extra_metadata=None):
        """Write this model as a checkpoint (``stage`` "vq" writes stage 1 only)."""
        stage = stage or self.stage
        tensors = self.numpy_state()
        if stage == "vq":
            keep = tensor_shapes(self.config, "vq")
            tensors = {k: v for k, v in tensors.items() if k in keep}
        return save_checkpoint(path, tensors, self.config, stats=stats, styles=styles, stage=stage,
                               extra_metadata=extra_metadata)

    def load_tensors(self, tensors: dict, stage: str = "full") -> None:
        """Copy numpy weights in; a "vq" set leaves the generator as it is (stage-2 training
        starts from trained stage-1 weights this way)."""
        own = self.state_dict()
        expected = tensor_shapes(self.config, stage)
        for name in expected:
            if name not in own:
                raise CheckpointError(f"tensor '{name}' does not exist in this model (built without a generator?)")
            value = torch.as_tensor(np.asarray(tensors[name]), dtype=own[name].dtype)
            if tuple(value.shape) != tuple(own[name].shape):
                raise CheckpointError(f"tensor '{name}' has shape {tuple(value.shape)}, model needs {tuple(own[name].shape)}")
            own[name].copy_(value)

    @classmethod
    def from_checkpoint(cls, checkpoint, with_generator: bool | None = None) -> "GesturaModel":
        """Build from a ``Checkpoint`` or a path (``None``: the bundled default)."""
        if not isinstance(checkpoint, Checkpoint):
            checkpoint = load_checkpoint(checkpoint)
        if with_generator is None:
            with_generator = checkpoint.stage == "full"
        if with_generator and checkpoint.stage != "full":
            raise CheckpointError(f"checkpoint '{checkpoint.path}' holds stage 1 only (no generator): "
                                  "train stage 2 first, or load it with with_generator=False")
        model = cls(checkpoint.config, with_generator=with_generator)
        with torch.no_grad():
            model.load_tensors(checkpoint.tensors, checkpoint.stage if with_generator else "vq")
        return model.eval()

    # --- training pieces ----------------------------------------------------------------------
    def encode_codes(self, parts: dict) -> dict:
        """{part: (B, T, dim) normalised features} -> {part: (B, T) long codes}."""
        return {p: self.vq[p].encode_codes(x) for p, x in parts.items()}

    def codebooks(self) -> dict:
        """{part: (K, D)} codebook weights, what ``Generator.known_latents`` reads."""
        return {p: self.vq[p].codebook.weight for p in PARTS}

    def parameter_counts(self) -> dict:
        counts = {f"vq.{p}": sum(x.numel() for x in self.vq[p].parameters()) for p in PARTS}
        counts["gmp"] = sum(x.numel() for x in self.gmp.parameters())
        if self.generator is not None:
            counts["generator"] = sum(x.numel() for x in self.generator.parameters())
        counts["total"] = sum(x.numel() for x in self.parameters())
        return counts
