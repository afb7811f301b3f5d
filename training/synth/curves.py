"""Smooth trajectories: keyframes joined by quintic Hermite segments, and smooth random drift.

Quintic segments match position, velocity and acceleration at both ends, so the jerk is bounded
and there is no jitter. A key is either a stop (velocity and acceleration zero: a stroke's apex,
the end of a hold, rest) or a via point the limb passes through without stopping (a preparation
pose), whose velocity comes from its neighbours as in a Catmull-Rom spline.
"""
from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline


def _quintic(p0, v0, p1, v1, duration, s):
    """Hermite quintic with zero end accelerations, s in [0, 1] (columns broadcast)."""
    s = s[:, None]
    h00 = 1 - 10 * s**3 + 15 * s**4 - 6 * s**5
    h10 = s - 6 * s**3 + 8 * s**4 - 3 * s**5
    h01 = 10 * s**3 - 15 * s**4 + 6 * s**5
    h11 = -4 * s**3 + 7 * s**4 - 3 * s**5
    return h00 * p0 + h10 * duration * v0 + h01 * p1 + h11 * duration * v1


def key_curve(times: np.ndarray, values: np.ndarray, via: np.ndarray, t: np.ndarray,
              via_speed: float = 0.6, velocities: np.ndarray | None = None) -> np.ndarray:
    """Evaluate keyframes at times ``t``.

    times (K,) strictly increasing, values (K, D), via (K,) bool. Before the first key and after
    the last the curve holds. ``via_speed`` scales a via key's Catmull-Rom velocity (1 = full).
    ``velocities`` (K, D), optional: where finite, the velocity a key is passed with, overriding
    both rules (a stroke's apex that flows on instead of stopping).
    """
    times = np.asarray(times, np.float64)
    values = np.asarray(values, np.float64)
    via = np.asarray(via, bool)
    if values.ndim != 2 or len(times) != len(values) or len(via) != len(times):
        raise ValueError("key_curve needs times (K,), values (K, D) and via (K,) of one length K")
    if len(times) == 0:
        raise ValueError("key_curve needs at least one key")
    if np.any(np.diff(times) <= 0):
        raise ValueError("key times must be strictly increasing")
    t = np.asarray(t, np.float64)
    out = np.empty((len(t), values.shape[1]))
    if len(times) == 1:
        out[:] = values[0]
        return out
    velocity = np.zeros_like(values)
    for k in np.flatnonzero(via):
        if 0 < k < len(times) - 1:
            velocity[k] = via_speed * (values[k + 1] - values[k - 1]) / (times[k + 1] - times[k - 1])
    if velocities is not None:
        given = np.isfinite(velocities)
        velocity[given] = np.asarray(velocities)[given]
    seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    duration = times[seg + 1] - times[seg]
    s = np.clip((t - times[seg]) / duration, 0.0, 1.0)
    out[:] = _quintic(values[seg], velocity[seg], values[seg + 1], velocity[seg + 1], duration[:, None], s)
    return out


def smooth_noise(rng: np.random.Generator, t: np.ndarray, knot_every: float, dims: int = 1,
                 amplitude: float | np.ndarray = 1.0) -> np.ndarray:
    """Slow random wandering: a cubic spline through N(0, amplitude) knots every ~``knot_every`` s.

    Returns (len(t), dims). Knot spacing is jittered by +-30 % so no fixed rhythm shows.
    """
    t = np.asarray(t, np.float64)
    end = (t[-1] if len(t) else 0.0) + 2 * knot_every
    gaps = knot_every * rng.uniform(0.7, 1.3, size=int(end / (0.7 * knot_every)) + 3)
    knots = np.concatenate([[-knot_every], -knot_every + np.cumsum(gaps)])
    knots = knots[knots <= end + knot_every]
    values = rng.standard_normal((len(knots), dims)) * amplitude
    return CubicSpline(knots, values, bc_type="natural")(t)


def bumps(t: np.ndarray, centres: np.ndarray, heights: np.ndarray, width: float) -> np.ndarray:
    """Sum of smooth compact bumps (quintic smoothstep up then down) of total ``width`` seconds."""
    out = np.zeros(len(t))
    half = width / 2
    for c, h in zip(centres, heights):
        x = np.abs(t - c) / half
        inside = x < 1
        s = 1 - x[inside]
        out[inside] += h * (10 * s**3 - 15 * s**4 + 6 * s**5)
    return out
