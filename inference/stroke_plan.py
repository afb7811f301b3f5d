"""Stroke plans: when the hands' strokes end (their apexes), as the body of stage 2 reads them.

The synthesizer plans a stroke apex on a stressed syllable's onset, at the wrist-speed minimum
after the stroke's peak (``gestura synth``; BEAT2-layout data without the channel derives the same
events from the motion, ``training.metrics.derive_stroke_apexes``). Stage 2 is trained with the
corpus's plan as an input and, at generation, reads the plan its stroke-apex head makes from the
speech: the head gives a probability per motion frame, ``plan_apexes`` keeps its peaks above the
checkpoint's calibrated ``apex_threshold``, and ``apex_bumps`` spreads both kinds of plan the same
way. A plan of clear events, rather than the head's blurred probabilities, is what makes the body
commit to a stroke on time (measured in the closing note of issue 15).

NumPy only: the same functions serve training, the PyTorch engine and the NumPy engine.
"""
from __future__ import annotations

import numpy as np

APEX_SIGMA = 2.0  # frames: an apex spread into a bump (timing within +-2 frames is right)
PEAK_RADIUS = 4  # frames: two planned apexes are at least this far apart (0.13 s at 30 fps)
# Probabilities are compared on this grid: near a peak neighbouring frames differ by less than
# float noise (NumPy against PyTorch, a resampled copy of the same audio), and a peak that moved
# by a frame would move the stroke. On the grid such near-ties are exact ties, which go to the
# first frame; only a value within noise of a grid line can still change the plan.
GRID = 1.0 / 1024.0


def apex_bumps(apex: np.ndarray) -> np.ndarray:
    """(..., N) apex indicators (1 at an apex frame) -> (..., N) float32 in [0, 1]: a Gaussian of
    ``APEX_SIGMA`` frames around each apex, peak 1, the larger value where two overlap."""
    apex = np.asarray(apex)
    radius = int(np.ceil(3 * APEX_SIGMA))
    offsets = np.arange(-radius, radius + 1)
    bump = np.exp(-0.5 * (offsets / APEX_SIGMA) ** 2).astype(np.float32)
    padded = np.pad((apex > 0.5).astype(np.float32), [(0, 0)] * (apex.ndim - 1) + [(radius, radius)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=-1)
    return (windows * bump[::-1]).max(-1).astype(np.float32)


def plan_apexes(probability: np.ndarray, threshold: float, radius: int = PEAK_RADIUS) -> np.ndarray:
    """(..., N) stroke-apex probabilities per frame -> (..., N) bool: the frames that are the
    largest within ``radius`` frames either side (the first of equal values) and above
    ``threshold``, compared on a grid of ``GRID``. Frames beyond the ends count as lower, so a
    peak at an edge is kept."""
    p = np.round(np.asarray(probability, np.float64) / GRID)
    threshold = np.floor(threshold / GRID)
    pad = [(0, 0)] * (p.ndim - 1) + [(radius, radius)]
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(p, pad, constant_values=-np.inf), 2 * radius + 1,
                                                       axis=-1)
    before, after = windows[..., :radius], windows[..., radius + 1:]
    return (p > threshold) & (p > before.max(-1)) & (p >= after.max(-1))


def stroke_plan(probability: np.ndarray, threshold: float) -> np.ndarray:
    """(..., N) apex probabilities -> (..., N) float32 plan the body reads: ``apex_bumps`` of
    ``plan_apexes``."""
    return apex_bumps(plan_apexes(probability, threshold))


def calibrate_threshold(probabilities: list, apex_counts: list, radius: int = PEAK_RADIUS) -> float:
    """The ``apex_threshold`` at which the head plans as many apexes as the data has.

    probabilities: per clip (N,) head probabilities; apex_counts: per clip the number of the data's
    apexes. Returns a value in (0, 1) halfway between grid lines, above which exactly the
    ``sum(apex_counts)`` highest peaks lie (fewer where peaks tie on the grid).
    Raises ValueError when there is nothing to calibrate on (no apexes, or no peaks)."""
    peaks = np.concatenate([np.round(np.asarray(p, np.float64)[plan_apexes(p, 0.0, radius)] / GRID)
                            for p in probabilities] + [np.zeros(0)])
    want = int(sum(apex_counts))
    if want < 1 or len(peaks) == 0:
        raise ValueError("cannot calibrate the stroke-apex threshold: the clips have no apexes or the head no peaks")
    peaks = np.sort(peaks)[::-1]
    line = peaks[want] if want < len(peaks) else peaks[-1] - 1
    return float(np.clip((line + 0.5) * GRID, 0.5 * GRID, 1 - 0.5 * GRID))
