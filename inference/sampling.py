"""Choosing a code from logits: argmax at temperature 0, otherwise sampling with optional top-k /
top-p (nucleus) truncation; style strength first moves the logits away from the speaker-neutral
ones. NumPy only; one random stream per part so that switching a part on or off does not change
what the other parts draw."""
from __future__ import annotations

import numpy as np

from ..rigs.skeleton import PARTS

# The default of every front end (panel, operator, command line, worker, evaluation). Lower
# temperatures favour the most likely code, and with one code per frame the most likely code is
# usually the current one: motion calms down below it and freezes at 0 (MODEL_CARD.md).
DEFAULT_TEMPERATURE = 0.9
# The generator's previous codes say more about the next code than the speaker id does, so a
# model reproduces its styles only partly; strength > 1 restores the differences (MODEL_CARD.md).
DEFAULT_STYLE_STRENGTH = 1.5


def part_rngs(seed: int, parts=PARTS) -> dict:
    return {part: np.random.default_rng([int(seed) & 0xFFFFFFFF, PARTS.index(part)]) for part in parts}


def check_sampling(temperature: float, top_k, top_p, style_strength: float = 1.0) -> None:
    if not np.isfinite(style_strength) or style_strength < 0:
        raise ValueError(f"style strength must be >= 0 (0 = no particular speaker, 1 = the style as "
                         f"learnt, more exaggerates it), got {style_strength}")
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = always the most likely code), got {temperature}")
    if top_k is not None and int(top_k) < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0.0 < float(top_p) <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def guided_logits(styled: np.ndarray, neutral: np.ndarray, strength: float) -> np.ndarray:
    """Classifier-free guidance on the speaker: the logits of the chosen style moved ``strength``
    times their distance from those of the mean style (0 = neutral, 1 = unchanged)."""
    return neutral + strength * (np.asarray(styled) - neutral)


def sample_code(logits: np.ndarray, rng: np.random.Generator, temperature: float, top_k=None, top_p=None) -> int:
    logits = np.asarray(logits, np.float64)
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits / temperature
    if top_k is not None and top_k < len(z):
        kth = np.partition(z, -int(top_k))[-int(top_k)]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - np.max(z))
    p /= p.sum()
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        cumulative = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cumulative, top_p)) + 1]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(p) - 1))
