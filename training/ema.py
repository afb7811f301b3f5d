"""An exponential moving average of a model's trainable weights (Polyak averaging), the weights a
diffusion model is sampled with: DDPM (Ho et al. 2020, decay 0.9999) and DiT (Peebles and Xie 2023)
export the average, not the last step's weights, whose samples swing from one save to the next.

The average starts at the initial weights and warms up as TensorFlow's ``ExponentialMovingAverage``
with ``num_updates`` does: update n uses decay ``min(decay, (1 + n) / (10 + n))``, so the first
steps' weights (far from any good model) fade out within a few hundred steps whatever the decay.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

PREFIX = "ema."
UPDATES_KEY = "ema_updates"
DECAY_KEY = "ema_decay"


class ParameterEMA:
    """The average of ``module``'s parameters that require gradients (frozen ones are not tracked).

    ``decay`` in (0, 1): the weight of the old average per step; the average's horizon is about
    ``1 / (1 - decay)`` steps (0.999: the last thousand). Raises ValueError outside (0, 1).
    """

    def __init__(self, module: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay {decay} is outside (0, 1): give e.g. 0.999, or 0 for no average")
        self.decay = float(decay)
        self.shadow = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}
        self.updates = 0

    def current_decay(self) -> float:
        """The decay the next ``update`` uses (warm-up included)."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        """Move the average towards ``module``'s current weights (call once per optimizer step)."""
        weight = 1.0 - self.current_decay()
        params = dict(module.named_parameters())
        for name, average in self.shadow.items():
            average.lerp_(params[name].detach().to(average.dtype), weight)
        self.updates += 1

    @contextmanager
    def applied(self, module: torch.nn.Module) -> Iterator[None]:
        """Within the block ``module`` holds the averaged weights; its own are put back after."""
        params = dict(module.named_parameters())
        kept = {name: params[name].detach().clone() for name in self.shadow}
        with torch.no_grad():
            for name, average in self.shadow.items():
                params[name].copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, weights in kept.items():
                    params[name].copy_(weights)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors a resumable state holds: the average (``ema.<name>``), the update count and the
        decay (``saved_decay`` reads it back)."""
        tensors = {PREFIX + name: average for name, average in self.shadow.items()}
        tensors[UPDATES_KEY] = torch.tensor([self.updates], dtype=torch.int64)
        tensors[DECAY_KEY] = torch.tensor([self.decay], dtype=torch.float64)
        return tensors

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> bool:
        """Take the average from a state's tensors; False (the average unchanged) when they hold none
        for these parameters, e.g. a state written by a run without ``--ema``."""
        if UPDATES_KEY not in tensors or any(PREFIX + name not in tensors for name in self.shadow):
            return False
        with torch.no_grad():
            for name, average in self.shadow.items():
                average.copy_(tensors[PREFIX + name].reshape(average.shape))
        self.updates = int(tensors[UPDATES_KEY].reshape(-1)[0])
        return True


def saved_decay(tensors: dict[str, torch.Tensor]) -> float | None:
    """The decay of the average a state's tensors hold; None when they hold none (or were written
    before the decay was kept)."""
    return float(tensors[DECAY_KEY].reshape(-1)[0]) if DECAY_KEY in tensors else None


def checkpoint_metadata(decay: float) -> dict[str, str]:
    """What a checkpoint records of its weights: ``{"ema_decay": "0.999"}`` when they are the
    average (``decay`` > 0), nothing when they are the last step's."""
    return {DECAY_KEY: f"{decay:g}"} if decay else {}
