"""Whether a training loss falls, judged over windows of steps rather than single steps.

A single step's loss is noisy: a dead-code reset or an unlucky batch can lift it above the first
step's on one machine and not on another. The mean of the last ``k`` steps against the mean of the
first ``k`` is what a falling curve means, and holds wherever the arithmetic rounds differently.
Other test modules import this (``pythonpath = tests``).
"""
from __future__ import annotations

import numpy as np


def window_ratio(losses, k: int) -> float:
    """Mean of the last ``k`` losses over the mean of the first ``k`` (per-step losses, >= 2k of them)."""
    losses = np.asarray(losses, np.float64)
    assert len(losses) >= 2 * k, f"{len(losses)} losses cannot make two windows of {k}"
    return float(losses[-k:].mean() / losses[:k].mean())
