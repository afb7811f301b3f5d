"""Stage 1: one VQ-VAE per body part, and the global motion predictor.

Inputs are a part's normalised features (``parts.py``; ``(x - mean) / std`` with the checkpoint
statistics), one code per frame at 30 fps (no temporal down-sampling, as in MambaTalk). All
convolutions are causal, so decoding codes in pieces with carried state equals decoding a clip
at once, and the NumPy engine can decode while it generates.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...rigs.skeleton import LOWER_CONTACTS, LOWER_ROT6D, PART_DIMS
from ..architecture import GMP_INPUT, GMP_OUTPUT
from .layers import ConvStack


class PartVQVAE(nn.Module):
    def __init__(self, part: str, config):
        super().__init__()
        self.part = part
        self.dim = PART_DIMS[part]
        self.commitment = config.commitment
        layers = config.vq_layers[part]
        self.encoder = ConvStack(self.dim, config.vq_hidden, config.code_dim, layers)
        self.codebook = nn.Embedding(config.codebook_size, config.code_dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / config.codebook_size, 1.0 / config.codebook_size)
        self.decoder = ConvStack(config.code_dim, config.vq_hidden, self.dim, layers)

    def encode(self, x: torch.Tensor, state=None):
        """(B, T, dim) -> continuous latents z (B, T, code_dim), state."""
        return self.encoder(x, state)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code index (squared L2) for each latent: (B, T, code_dim) -> (B, T) long."""
        book = self.codebook.weight
        distance = (z.pow(2).sum(-1, keepdim=True) - 2 * z @ book.t() + book.pow(2).sum(-1))
        return distance.argmin(-1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebook(codes)

    def decode(self, latents: torch.Tensor, state=None):
        """Quantised latents (B, T, code_dim) -> reconstructed features (B, T, dim), state."""
        return self.decoder(latents, state)

    def decode_codes(self, codes: torch.Tensor, state=None):
        return self.decode(self.lookup(codes), state)

    def encode_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantize(self.encode(x)[0])

    def forward(self, x: torch.Tensor) -> dict:
        """Training pass: returns ``recon`` (B, T, dim), ``codes``, ``z``, ``z_q`` and the losses
        ``codebook`` = ||z_q - sg(z)||^2 and ``commit`` = ||z - sg(z_q)||^2 (the total VQ loss is
        ``codebook + commitment * commit``; the reconstruction losses are the trainer's: it knows
        the rotation/velocity/vertex terms it wants)."""
        z, _ = self.encode(x)
        codes = self.quantize(z.detach())
        z_q = self.lookup(codes)
        codebook_loss = F.mse_loss(z_q, z.detach())
        commit_loss = F.mse_loss(z, z_q.detach())
        z_st = z + (z_q - z).detach()  # straight-through gradient to the encoder
        recon, _ = self.decode(z_st)
        return {"recon": recon, "codes": codes, "z": z, "z_q": z_q, "codebook": codebook_loss,
                "commit": commit_loss, "vq_loss": codebook_loss + self.commitment * commit_loss}


class GlobalMotionPredictor(nn.Module):
    """Lower-body rotations + foot contacts -> root x/z velocity and height (lower[54:57]).

    Input: the normalised lower features without the translation channels, i.e.
    ``cat(lower[..., :54], lower[..., 57:61])``; output: normalised ``lower[..., 54:57]``.
    """

    def __init__(self, config):
        super().__init__()
        self.net = ConvStack(GMP_INPUT, config.gmp_hidden, GMP_OUTPUT, config.gmp_layers)

    @staticmethod
    def inputs(lower: torch.Tensor) -> torch.Tensor:
        return torch.cat([lower[..., LOWER_ROT6D], lower[..., LOWER_CONTACTS]], dim=-1)

    def forward(self, lower: torch.Tensor, state=None):
        """lower (B, T, 61) normalised -> (B, T, 3) normalised root channels, state."""
        return self.net(self.inputs(lower), state)
