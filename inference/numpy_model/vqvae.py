"""``torch_model/vqvae.py`` in numpy: a part's VQ-VAE (encode, quantize, decode with carried
decoder state) and the global motion predictor.

One code covers r = ``frames_per_code`` frames: the encoder's causal convolutions run at the
frame rate and ``down`` turns each r frames into one latent; ``up`` turns each code into r frames
that the decoder's causal convolutions smooth, so decoding codes in pieces with the returned
state equals decoding them at once. Arrays are time-major: features (T, dim), codes (n,).
With ``config.plan_decoders`` the upper-body and hand decoders add ``plan_in`` of each frame's
stroke plan to the up-sampled frames, as in torch.
"""
from __future__ import annotations

import numpy as np

from ...rigs.skeleton import LOWER_CONTACTS, LOWER_ROT6D
from ..architecture import PLAN_DECODER_PARTS
from .layers import F32, ConvStack, Downsample, Linear, Upsample


class PartVQVAE:
    def __init__(self, tensors: dict, part: str, config) -> None:
        prefix, layers = f"vq.{part}", config.vq_layers[part]
        self.part = part
        self.frames_per_code = config.frames_per_code
        self.encoder = ConvStack(tensors, f"{prefix}.encoder", layers)
        self.down = Downsample(tensors, f"{prefix}.down")
        self.codebook = tensors[f"{prefix}.codebook.weight"]  # (K, D)
        self.codebook_sq = np.sum(self.codebook * self.codebook, axis=1)
        self.up = Upsample(tensors, f"{prefix}.up")
        self.plan_in = Linear(tensors, f"{prefix}.plan_in") if config.plan_decoders and part in PLAN_DECODER_PARTS else None
        self.decoder = ConvStack(tensors, f"{prefix}.decoder", layers)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Normalised features (T, dim), T a multiple of r, from zero history -> latents (T / r, D).
        ValueError when T is not a multiple of r."""
        if x.shape[-2] % self.frames_per_code:
            raise ValueError(f"{x.shape[-2]} frames do not make whole codes of {self.frames_per_code} frames")
        h, _ = self.encoder(x)
        return self.down(h)

    def quantize(self, z: np.ndarray) -> np.ndarray:
        """Nearest code (squared L2, written as the torch model writes it; ties to the lowest
        index): latents (..., D) -> codes (...) int64."""
        distance = np.sum(z * z, axis=-1, keepdims=True) - 2 * (z @ self.codebook.T) + self.codebook_sq
        return np.argmin(distance, axis=-1).astype(np.int64)

    def encode_codes(self, x: np.ndarray) -> np.ndarray:
        return self.quantize(self.encode(x))

    def decode(self, latents: np.ndarray, state=None, plan: np.ndarray | None = None):
        """Latents (n, D) -> reconstructed normalised features (n r, dim), new decoder state.
        ``plan`` (n r,): the frames' stroke plan, read where there is ``plan_in`` (None: zeros)."""
        frames = self.up(latents)
        if self.plan_in is not None:
            plan = np.zeros(len(frames), F32) if plan is None else np.asarray(plan, F32)
            frames = frames + self.plan_in(plan[:, None])
        return self.decoder(frames, state)

    def decode_codes(self, codes: np.ndarray, state=None, plan: np.ndarray | None = None):
        return self.decode(self.codebook[np.asarray(codes, np.int64)], state, plan)


class GlobalMotionPredictor:
    """Normalised lower-body features (T, 61) -> normalised root channels lower[54:57] (T, 3), state."""

    def __init__(self, tensors: dict, config) -> None:
        self.net = ConvStack(tensors, "gmp.net", config.gmp_layers)

    @staticmethod
    def inputs(lower: np.ndarray) -> np.ndarray:
        return np.concatenate([lower[..., LOWER_ROT6D], lower[..., LOWER_CONTACTS]], axis=-1)

    def __call__(self, lower: np.ndarray, state=None):
        return self.net(self.inputs(lower), state)
