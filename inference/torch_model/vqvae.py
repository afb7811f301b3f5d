"""Stage 1: one VQ-VAE per body part, and the global motion predictor.

Inputs are a part's normalised features (``parts.py``; ``(x - mean) / std`` with the checkpoint
statistics) at 30 fps. One code covers ``frames_per_code`` = r frames (GestureLSM, LiveGesture: 4):
the encoder's causal convolutions run at the frame rate and ``down`` (Conv1d, kernel = stride = r)
turns each r frames into one latent; the decoder's ``up`` (ConvTranspose1d, kernel = stride = r)
turns each code into r frames, which causal convolutions smooth. Code k therefore depends on
frames < r (k + 1) only, and output frame t of the decoder on codes <= t // r only: decoding codes
in pieces with carried state equals decoding a clip at once. A part whose decoder looks ahead
(``config.decoder_lookahead`` l frames, trained so in ``train_vq.Stage1``) returns at output t
the motion of frame t - l, so motion frame t depends on codes <= (t + l) // r; a stream lines
the parts up (``inference/decoder_delay.py``).

With ``config.plan_decoders`` the upper-body and hand decoders also read the stroke plan
(``stroke_plan.apex_bumps`` of the apexes: the corpus's in training, the planner's in generation)
through ``plan_in``, added to each up-sampled frame: codes of 4 frames smooth a stroke's peak away
(reconstructing the corpus's test motion through codes gives 1.9x the mean wrist speed before an
apex, the corpus 3.0x), and the plan says on which frame the stroke ends.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...rigs.skeleton import LOWER_CONTACTS, LOWER_ROT6D, PART_DIMS
from ..architecture import GMP_INPUT, GMP_OUTPUT, PLAN_DECODER_PARTS
from .layers import ConvStack


class PartVQVAE(nn.Module):
    def __init__(self, part: str, config):
        super().__init__()
        self.part = part
        self.dim = PART_DIMS[part]
        self.commitment = config.commitment
        layers, hidden, r = config.vq_layers[part], config.vq_hidden, config.frames_per_code
        self.frames_per_code = r
        self.encoder = ConvStack(self.dim, hidden, hidden, layers)
        self.down = nn.Conv1d(hidden, config.code_dim, r, stride=r)
        self.codebook = nn.Embedding(config.codebook_size, config.code_dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / config.codebook_size, 1.0 / config.codebook_size)
        self.up = nn.ConvTranspose1d(config.code_dim, hidden, r, stride=r)
        self.plan_in = nn.Linear(1, hidden) if config.plan_decoders and part in PLAN_DECODER_PARTS else None
        self.decoder = ConvStack(hidden, hidden, self.dim, layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, dim), T a multiple of frames_per_code -> continuous latents z (B, T / r, code_dim)."""
        if x.shape[1] % self.frames_per_code:
            raise ValueError(f"{x.shape[1]} frames do not make whole codes of {self.frames_per_code} frames")
        h, _ = self.encoder(x)
        return self.down(h.transpose(1, 2)).transpose(1, 2)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code index (squared L2) for each latent: (B, T, code_dim) -> (B, T) long."""
        book = self.codebook.weight
        distance = (z.pow(2).sum(-1, keepdim=True) - 2 * z @ book.t() + book.pow(2).sum(-1))
        return distance.argmin(-1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebook(codes)

    def decode(self, latents: torch.Tensor, state=None, plan: torch.Tensor | None = None):
        """Quantised latents (B, n, code_dim) -> reconstructed features (B, n * r, dim), state.
        ``plan`` (B, n * r): the stroke plan of the frames, read where there is ``plan_in``; None
        is a plan without apexes (zeros)."""
        frames = self.up(latents.transpose(1, 2)).transpose(1, 2)
        if self.plan_in is not None:
            if plan is None:
                plan = frames.new_zeros(frames.shape[:2])
            frames = frames + self.plan_in(plan[..., None].to(frames.dtype))
        return self.decoder(frames, state)

    def decode_codes(self, codes: torch.Tensor, state=None, plan: torch.Tensor | None = None):
        return self.decode(self.lookup(codes), state, plan)

    def encode_codes(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) -> (B, T / r) long codes."""
        return self.quantize(self.encode(x))

    def forward(self, x: torch.Tensor, plan: torch.Tensor | None = None, swap=None) -> dict:
        """Training pass on x (B, T, dim) (``plan`` (B, T): its stroke plan, see ``decode``): returns
        ``recon`` (B, T, dim), ``codes`` (B, T / r), ``z``, ``z_q`` and the losses ``codebook`` =
        ||z_q - sg(z)||^2 and ``commit`` = ||z - sg(z_q)||^2 (the total VQ loss is ``codebook +
        commitment * commit``; the reconstruction losses are the trainer's: it knows the
        rotation/velocity/vertex terms it wants). ``swap(codes) -> codes``: what the decoder reads
        in place of the encoder's codes (``train_vq.near_code_swaps``); the straight-through
        gradient reaches the encoder where they are the same, and the reconstruction reaches the
        codebook nowhere, swapped or not."""
        z = self.encode(x)
        codes = self.quantize(z.detach())
        z_q = self.lookup(codes)
        codebook_loss = F.mse_loss(z_q, z.detach())
        commit_loss = F.mse_loss(z, z_q.detach())
        z_st = z + (z_q - z).detach()  # straight-through gradient to the encoder
        if swap is not None:  # the codebook learns from the encoder's codes alone (vq_loss), not the swaps
            read = swap(codes)
            z_st = torch.where((read == codes)[..., None], z_st, self.lookup(read).detach())
        recon, _ = self.decode(z_st, plan=plan)
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
