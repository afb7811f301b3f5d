"""A DiM-Gestor model's own reconstructions of training windows, for its decoders to learn from
(``gestura train-vq --decoder-only --denoised T``).

The decoders learnt on codebook entries, but the denoiser's samples land between them, and an
in-between latent decodes to a damped stroke (README, "Decoders that read the denoiser's
latents"). So each training window's clean latents are noised to time ``T`` and denoised by the
frozen model as generation denoises (deterministic DDIM over the model's sampling times below
``T``, the previous window's tail given, the speaker contrasted with the voice alone and the
corpus's stroke plan with an empty one at the default style and plan strengths): close enough to
the window to stay paired with its motion, and made the way generation makes latents.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..inference.diffusion import PLAN_GUIDANCE_TIME, alpha_bar, ddim_step, sampling_times
from ..inference.sampling import DEFAULT_PLAN_STRENGTH, DEFAULT_STYLE_STRENGTH, guided
from ..rigs.skeleton import PARTS
from .dataset import take_window
from .train_diffusion import clip_latents
from .train_generator import encode_clips, window_features


def denoising_times(t: float, steps: int) -> list[float]:
    """The times a DDIM run of ``steps`` steps from pure noise visits below ``t``, after ``t``
    itself: [t, ..., 0]. ValueError for t outside (0, 1]."""
    if not 0.0 < t <= 1.0:
        raise ValueError(f"the noise level to denoise from is a time in (0, 1], got {t}")
    return [float(t)] + [float(s) for s in sampling_times(steps) if s < t]


@torch.no_grad()
def denoised_latents(generator, features: torch.Tensor, style: torch.Tensor, latents: torch.Tensor,
                     plan: torch.Tensor | None, t: float, steps: int, prefix: int,
                     rng: torch.Generator, style_strength: float = DEFAULT_STYLE_STRENGTH,
                     plan_strength: float = DEFAULT_PLAN_STRENGTH) -> torch.Tensor:
    """The frozen diffusion generator's reconstruction of clean normalised ``latents`` (B, n, C)
    noised to time ``t``: DDIM (eta 0) over ``denoising_times(t, steps)`` with the first
    ``prefix`` codes given (RePaint, as generation gives the previous window's tail).
    features (B, n r + L, F), style (B,) long (-1: none), plan (B, n r) or None for a model
    without a planner; noise drawn from ``rng``; style and plan guidance as generation guides
    (``pipeline.DiffusionStream``). Returns normalised latents (B, n, C), the given codes
    exactly as given."""
    b, n, c = latents.shape
    noise = torch.randn(latents.shape, generator=rng, device="cpu").to(latents)
    mask = torch.zeros(b, n, len(PARTS), device=latents.device, dtype=latents.dtype)
    mask[:, :prefix] = 1.0
    given = mask.repeat_interleave(c // len(PARTS), -1) > 0
    contrasted = style_strength != 1.0
    styles = torch.cat([style, torch.full_like(style, -1)]) if contrasted else style
    rows = 2 if contrasted else 1
    cond, style_vectors = generator.condition(features.repeat(rows, 1, 1), styles,
                                              None if plan is None else plan.repeat(rows, 1))
    known, row_mask = latents.repeat(rows, 1, 1), mask.repeat(rows, 1, 1)
    bare = None if plan is None or plan_strength == 1.0 else generator.condition(features, style, torch.zeros_like(plan))
    times = denoising_times(t, steps)
    a = float(alpha_bar(times[0]))
    x = math.sqrt(a) * latents + math.sqrt(1.0 - a) * noise
    for now, later in zip(times[:-1], times[1:]):
        a = float(alpha_bar(now))
        x = torch.where(given, math.sqrt(a) * latents + math.sqrt(1.0 - a) * noise, x)
        estimate = generator.denoise(x.repeat(rows, 1, 1), torch.full((rows * b,), now, device=x.device),
                                     cond, style_vectors, known, row_mask)
        estimate = guided(estimate[:b], estimate[b:], style_strength) if contrasted else estimate
        if bare is not None and now <= PLAN_GUIDANCE_TIME:
            unplanned = generator.denoise(x, torch.full((b,), now, device=x.device), *bare, latents, mask)
            estimate = guided(estimate, unplanned, plan_strength)
        x = ddim_step(x, estimate, now, later)
    return torch.where(given, latents, x)


class DenoiserInputs:
    """What ``denoised_latents`` reads for the training windows of ``gestura train-vq --denoised``:
    per clip its normalised audio features, speaker and clean normalised latents (the codebook
    entries of its codes, normalised as the diffusion model's). ``model``: a GesturaModel with the
    dim-gestor generator of ``init``; windows start on whole codes."""

    def __init__(self, model, init, clips, window_frames: int, device):
        self.model, self.device, self.window_frames = model, device, window_frames
        self.config = model.config
        self.feats, codes, plans = encode_clips(model, clips, init.stats, device)
        # The denoiser reads the corpus's plan where it has a stroke planner, whatever the decoders read.
        self.plans = plans if self.config.stroke_planner else None
        books = {p: w.detach().cpu().numpy() for p, w in model.codebooks().items()}
        gen = model.generator
        self.mean, self.std = gen.latent_mean.detach().cpu().numpy(), gen.latent_std.detach().cpu().numpy()
        self.latents = [((clip_latents(c, books) - self.mean) / self.std).astype(np.float32) for c in codes]
        self.styles = [init.styles.index(c.ref.style) for c in clips]

    def batch(self, rows) -> dict:
        """Windows [(clip, first frame)] of the train-vq index -> {"features" (B, n r + L, F),
        "style" (B,), "clean_latents" (B, n, C), and for a model with a stroke planner
        "denoiser_plan" (B, n r)} on the device (n r: the window's frames)."""
        r, look = self.config.frames_per_code, self.config.lookahead
        n = self.window_frames // r
        plan = {} if self.plans is None else {"denoiser_plan": torch.from_numpy(
            np.stack([take_window(self.plans[c], s, n * r) for c, s in rows])).to(self.device)}
        return {
            **plan,
            "features": torch.from_numpy(np.stack([window_features(self.feats[c], s, n * r + look)
                                                   for c, s in rows])).to(self.device),
            "style": torch.as_tensor([self.styles[c] for c, _ in rows], dtype=torch.long, device=self.device),
            "clean_latents": torch.from_numpy(np.stack([take_window(self.latents[c], s // r, n)
                                                        for c, s in rows])).to(self.device),
        }

    def decoder_latents(self, batch: dict, t: float, rng: torch.Generator) -> dict:
        """{part: (B, n, code_dim)} the diffusion model's reconstruction of the batch's windows
        from time ``t``, as the decoders read latents (not normalised)."""
        gen, config = self.model.generator, self.config
        was_training = gen.training
        gen.eval()
        x = denoised_latents(gen, batch["features"], batch["style"], batch["clean_latents"], batch.get("denoiser_plan"),
                             t, config.sampling_steps, config.prefix_codes, rng)
        gen.train(was_training)
        x = x * torch.from_numpy(self.std).to(x) + torch.from_numpy(self.mean).to(x)
        d = config.code_dim
        return {p: x[..., i * d:(i + 1) * d] for i, p in enumerate(PARTS)}
