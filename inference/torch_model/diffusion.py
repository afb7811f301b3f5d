"""Stage 2 of the "dim-gestor" family: DiM-Gestor (arXiv 2411.16729; DiM-Gesture, 2408.00370), a
diffusion model over the motion latents whose denoiser is a stack of AdaLN-conditioned Mamba-2
blocks, with a speech feature extractor that infers the style from the voice.

What is diffused: one token per code position (r = frames_per_code frames), holding every part's
VQ-VAE latent side by side (``latent_dim`` = 4 D), normalised by ``latent_mean`` / ``latent_std``
(buffers, measured on the training data). The frozen stage-1 decoders turn the sampled latents
into motion, so their smoothing and the global motion predictor carry over from the default family.
The authors publish no code; sizes, schedule and step counts are ours (``config.py``,
``inference/diffusion.py``). Structure (names as in ``architecture.py``; L = look-ahead in frames):

- speech extractor: ``audio_in``, bidirectional Mamba-2 ``speech`` blocks over the window's audio
  features (its codes' frames plus L), ``speech_norm``; code k reads the states of its r frames and
  of the r frames L later (``cond_in``), as the code generator's frame pairs do;
- stroke plan (``config.stroke_planner`` only): ``planner``, the code generator's
  ``StrokePlanner`` (a causal speech encoder streamed over the clip, a window scan, a style and an
  apex head, ``inference/stroke_plan.py``), makes the plan of stroke apexes; ``cond_in`` also reads
  the plan at code k's r frames, as the code generator's ``code_in`` does. Training reads the
  corpus's plan, generation the planner's (the planner is trained for a vq-mamba model and copied,
  ``gestura train --planner-from``);
- style: ``voice_style`` of the states' mean over the window (the delivery: calm or animated), plus
  the ``style`` embedding of a speaker when one is asked for (training drops it a third of the time,
  so the model also works from the voice alone, and style strength contrasts the two);
- denoiser: ``x_in`` reads the noisy latents, the known latents (the previous window's tail, a start
  pose) and the per-part known mask; ``blocks`` are DiT's adaLN-Zero blocks (Peebles & Xie, arXiv
  2212.09748) whose shift, scale and gate come per token from that token's speech condition plus
  the noise level's embedding plus the style (Persona-Gestor's token-wise conditioning); the mixer
  is a forward plus a reversed Mamba-2 scan (``mamba2.both_ways``) or, for the transformer baseline
  (``denoiser_block = "attention"``), multi-head self-attention with sinusoidal positions;
  ``final_ada`` and ``x_out`` give the clean latents.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...rigs.skeleton import PARTS
from ..architecture import ADALN_EPS
from ..diffusion import TIME_FEATURES, sinusoidal_positions, timestep_features
from ..stroke_plan import plan_threshold, stroke_plan
from .layers import GatedMLP, RMSNorm
from .generator import StrokePlanner
from .mamba2 import Mamba2, both_ways

STYLE_DROP = 1.0 / 3.0  # share of training windows that hear no speaker, only the voice


def mamba2_mixer(config) -> Mamba2:
    return Mamba2(config.d_model, d_state=config.mamba2_d_state, d_conv=config.d_conv, expand=config.expand,
                  headdim=config.headdim)


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    """Parameter-free LayerNorm (DiT's, before adaLN's shift and scale)."""
    return F.layer_norm(x, x.shape[-1:], eps=ADALN_EPS)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention (the transformer baseline's mixer)."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class SpeechBlock(nn.Module):
    """Pre-norm residual block of the speech extractor: a bidirectional Mamba-2 scan, then the gated MLP."""

    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.norm = RMSNorm(d)
        self.mixer, self.mixer_back = mamba2_mixer(config), mamba2_mixer(config)
        self.norm2 = RMSNorm(d)
        self.mlp = GatedMLP(d, config.mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + both_ways(self.mixer, self.mixer_back, self.norm(x))
        return x + self.mlp(self.norm2(x))


class AdaLNBlock(nn.Module):
    """DiT's adaLN-Zero block: per token, ``ada(silu(c))`` gives shift, scale and gate for the mixer
    and for the MLP; zero-initialised, so each block starts as the identity."""

    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.ada = nn.Linear(d, 6 * d)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        if config.denoiser_block == "mamba2":
            self.mixer, self.mixer_back = mamba2_mixer(config), mamba2_mixer(config)
        else:
            self.attn = SelfAttention(d, config.attention_heads)
        self.mlp = GatedMLP(d, config.mlp_hidden)

    def mix(self, h: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "attn"):
            return self.attn(h)
        return both_ways(self.mixer, self.mixer_back, h)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(F.silu(c)).chunk(6, -1)
        x = x + gate1 * self.mix(modulate(layer_norm(x), shift1, scale1))
        return x + gate2 * self.mlp(modulate(layer_norm(x), shift2, scale2))


class DiffusionGenerator(nn.Module):
    """Speech extractor + AdaLN denoiser (see the module docstring); C = ``config.latent_dim``."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        d, c, r = config.d_model, config.latent_dim, config.frames_per_code
        self.frames_per_code, self.lookahead = r, config.lookahead
        self.audio_in = nn.Linear(config.feature_dim, d)
        self.speech = nn.ModuleList(SpeechBlock(config) for _ in range(config.speech_layers))
        self.speech_norm = RMSNorm(d)
        planned = bool(config.stroke_planner)
        self.planner = StrokePlanner(config, config.input_width) if planned else None
        self.cond_in = nn.Linear(r * (2 * d + (1 if planned else 0)), d)
        self.voice_style = nn.Linear(d, d)
        # N(0, 1), PyTorch's default, not DiT's 0.02: the speaker is added to conditions whose
        # norms grow to 20-40 (speech) and 6 (voice); started at 0.02 it stayed near 0.6 through
        # 2500 steps, and every style generated the same motion.
        self.style = nn.Embedding(config.num_styles, d)
        self.time_in = nn.Linear(TIME_FEATURES, d)
        self.time_out = nn.Linear(d, d)
        self.x_in = nn.Linear(2 * c + len(PARTS), d)
        self.blocks = nn.ModuleList(AdaLNBlock(config) for _ in range(config.denoiser_layers))
        self.final_ada = nn.Linear(d, 2 * d)
        self.x_out = nn.Linear(d, c)
        for layer in (self.final_ada, self.x_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.register_buffer("latent_mean", torch.zeros(c))
        self.register_buffer("latent_std", torch.ones(c))

    @property
    def attention(self) -> bool:
        return self.config.denoiser_block == "attention"

    def stream_speech(self, features: torch.Tensor, state=None):
        """The stroke planner's causal speech states, what the engines stream: features (B, T,
        ``config.input_width``) normalised -> (B, T, d), state (``StrokePlanner.speech_states``)."""
        return self.planner.speech_states(features, state)

    def apex_probabilities(self, speech: torch.Tensor, styles: tuple) -> torch.Tensor:
        """Stroke-apex probabilities (S, n r) of a window's motion frames for each of ``styles`` (a
        tuple of indices, None for the mean style), from the window's streamed planner states (1,
        n r + L, d) (``stream_speech``): the code generator's ``apex_probabilities``, which
        ``gestura eval`` reads the plan of either family through."""
        return self.planner.window_probabilities(speech, styles)

    def window_plan(self, speech: torch.Tensor, style, threshold=None) -> np.ndarray:
        """The stroke plan (n r,) float32 numpy of a window's motion frames: ``apex_probabilities``
        for ``style`` (an index, None for the mean style) planned at ``threshold``
        (``stroke_plan.plan_threshold``)."""
        probability = self.apex_probabilities(speech, (style,)).float().cpu().numpy()
        return stroke_plan(probability, plan_threshold(threshold, probability, self.config))[0]

    def condition(self, features: torch.Tensor, style: torch.Tensor, plan: torch.Tensor | None = None):
        """Normalised audio features of a window's n codes plus the look-ahead (B, n r + L, F or
        ``config.input_width``; the extractor reads the first F) and style indices (S,) long, -1 =
        none (the voice alone), S = B or B = 1 (one window heard once for several styles), and for
        a ``stroke_planner`` model the stroke plan of the n r frames (B, n r): the corpus's
        (``stroke_plan.apex_bumps``) in training, ``window_plan`` in generation -> per-code
        conditions (B, n, d) and style vectors (S, d). ValueError when the plan is missing or given
        to a model without a planner."""
        if (plan is None) == (self.planner is not None):
            raise ValueError("a stroke plan goes with a stroke_planner model, and only with one")
        s = self.audio_in(features[..., :self.config.feature_dim])
        for block in self.speech:
            s = block(s)
        s = self.speech_norm(s)
        b, m = s.shape[0], s.shape[1] - self.lookahead
        pairs = torch.cat([s[:, :m], s[:, self.lookahead:]], -1).reshape(b, m // self.frames_per_code, -1)
        if plan is not None:
            pairs = torch.cat([pairs, plan.to(pairs).expand(b, -1).reshape(b, m // self.frames_per_code, -1)], -1)
        cond = self.cond_in(pairs)
        speaker = self.style(style.clamp(min=0)) * (style >= 0).unsqueeze(-1).to(s.dtype)
        return cond, self.voice_style(s.mean(1)) + speaker

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) noise levels in [0, 1] -> (B, d)."""
        features = torch.from_numpy(timestep_features(t.detach().cpu().numpy())).to(self.time_in.weight)
        return self.time_out(F.silu(self.time_in(features)))

    def denoise(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, style: torch.Tensor,
                known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Noisy normalised latents x (B, n, C) at noise levels t (B,), conditions (B or 1, n, d),
        style vectors (B, d), known normalised latents (B or 1, n, C) where ``mask`` (B or 1, n, 4)
        is 1 for that part and code (0 elsewhere) -> clean latents (B, n, C)."""
        b, n, _ = x.shape
        per_channel = mask.repeat_interleave(self.config.code_dim, -1)
        h = self.x_in(torch.cat([x, (known * per_channel).expand(b, -1, -1), mask.expand(b, -1, -1)], -1))
        if self.attention:
            h = h + torch.from_numpy(sinusoidal_positions(n, h.shape[-1])).to(h)
        c = cond + (self.time_embedding(t) + style).unsqueeze(1)
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_ada(F.silu(c)).chunk(2, -1)
        return self.x_out(modulate(layer_norm(h), shift, scale))

    def forward(self, features, style, x, t, known, mask, plan=None):
        """Training pass: ``condition`` of (features, style, plan) then ``denoise`` -> clean latents (B, n, C)."""
        cond, style_vector = self.condition(features, style, plan)
        return self.denoise(x, t, cond, style_vector, known, mask)
