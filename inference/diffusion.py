"""Diffusion arithmetic shared by both engines and training, in numpy: the noise schedule, the
DDIM sampler's step, and the fixed sinusoidal features of noise levels and positions. The pipeline
samples with it for every engine, and training draws its noise levels from the same ``alpha_bar``.

Time runs from t = 0 (clean) to t = 1 (pure noise); ``x_t = sqrt(alpha_bar(t)) x0 +
sqrt(1 - alpha_bar(t)) eps`` with the cosine schedule of Nichol & Dhariwal ("Improved DDPM",
arXiv 2102.09672). The denoiser predicts x0 (as MDM and EDGE do for motion), and sampling takes
deterministic DDIM steps (Song et al., arXiv 2010.02502, eta = 0) from t = 1 to 0, so the noise
drawn at t = 1 alone decides the take: a seed picks it, and a noise scale (the request's
temperature) shrinks it, down to 0 where every seed gives the same motion.
"""
from __future__ import annotations

import math

import numpy as np

COSINE_OFFSET = 0.008  # Nichol & Dhariwal's s: keeps the noise at t = 0 from vanishing too fast
TIME_FEATURES = 128  # sinusoidal features of the noise level the denoiser reads
TIME_SCALE = 1000.0  # t in [0, 1] is embedded as a DDPM step number in [0, 1000]
# Plan guidance (a stroke-planning model's clean estimate moved away from an empty plan's, by the
# request's plan strength) acts only at noise levels up to this. At high noise it sets the posture
# and held arms raised and still (plan strength 3 at every step: 18.7 % of frames, against 2.2 %
# up to t = 0.5); from t = 0.5 down it sharpens the strokes (README, "Plan guidance").
PLAN_GUIDANCE_TIME = 0.5


def alpha_bar(t) -> np.ndarray:
    """Signal share of the cosine schedule at times ``t`` in [0, 1] (any shape): 1 at t = 0, 0 at t = 1."""
    t = np.clip(np.asarray(t, np.float64), 0.0, 1.0)
    s = COSINE_OFFSET
    f = np.cos((t + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
    return np.clip(f, 0.0, 1.0)


def sampling_times(steps: int) -> np.ndarray:
    """The ``steps + 1`` times a DDIM run visits, evenly spaced from 1 down to 0."""
    if int(steps) < 1:
        raise ValueError(f"the sampler needs at least 1 step, got {steps}")
    return np.linspace(1.0, 0.0, int(steps) + 1)


def ddim_step(x_t, x0, t: float, t_next: float):
    """One deterministic DDIM step (eta = 0) from time ``t`` to ``t_next`` < t, given the
    denoiser's clean estimate ``x0`` of ``x_t`` (numpy arrays or torch tensors of one shape; the
    result has x_t's dtype). At ``t_next`` = 0 it returns x0."""
    a, a_next = float(alpha_bar(t)), float(alpha_bar(t_next))
    eps = (x_t - math.sqrt(a) * x0) / math.sqrt(max(1.0 - a, 1e-12))
    out = math.sqrt(a_next) * x0 + math.sqrt(1.0 - a_next) * eps
    return out.astype(x_t.dtype) if isinstance(out, np.ndarray) else out.to(x_t.dtype)


def timestep_features(t) -> np.ndarray:
    """(B,) times -> (B, TIME_FEATURES) float32 sinusoidal features of ``TIME_SCALE t`` (DDPM's
    timestep embedding: cosines, then sines, of geometrically spaced frequencies)."""
    half = TIME_FEATURES // 2
    frequencies = np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float64) / half)
    angles = np.asarray(t, np.float64).reshape(-1, 1) * TIME_SCALE * frequencies
    return np.concatenate([np.cos(angles), np.sin(angles)], -1).astype(np.float32)


def sinusoidal_positions(n: int, d: int) -> np.ndarray:
    """(n, d) float32 fixed positions (Vaswani et al.: sines on even, cosines on odd channels),
    what the transformer baseline adds to its tokens (Mamba scans know order by themselves)."""
    position = np.arange(n, dtype=np.float64)[:, None]
    frequency = np.exp(-math.log(10000.0) * np.arange(0, d, 2, dtype=np.float64) / d)
    out = np.zeros((n, d), np.float64)
    out[:, 0::2] = np.sin(position * frequency)
    out[:, 1::2] = np.cos(position * frequency)
    return out.astype(np.float32)
