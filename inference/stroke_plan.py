"""Stroke plans: when the hands' strokes end (their apexes), as the body of stage 2 reads them.

The synthesizer plans a stroke apex on a stressed syllable's onset, at the wrist-speed minimum
after the stroke's peak (``gestura synth``; BEAT2-layout data without the channel derives the same
events from the motion, ``training.metrics.derive_stroke_apexes``). Stage 2 is trained with the
corpus's plan as an input and, at generation, reads the plan its stroke-apex head makes from the
speech: the head gives a probability per motion frame, ``plan_apexes`` keeps its peaks above the
checkpoint's calibrated ``apex_threshold``, and ``apex_bumps`` spreads both kinds of plan the same
way. A plan of clear events, rather than the head's blurred probabilities, is what makes the body
commit to a stroke on time (measured in the closing note of issue 15).

The head is less sure of a human voice than of the espeak-ng speech it was trained on: on real
recordings few of its peaks reach the calibrated threshold (0.06 planned apexes per second against
0.37 on held-out espeak-ng clips, in the calm default style), so the body hardly moves. Where the
checkpoint gives its styles' stroke rates (``ModelConfig.apex_rates``: what the head plans on its
calibration clips), ``StrokeRate`` lowers the threshold, never below ``APEX_FLOOR``, until the
voice gets that rate of strokes, at the head's highest peaks.

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
# The lowest threshold ``StrokeRate`` goes to. On the real recordings of ``../shared/real-speech``
# the head's plan at 0.2 puts 43 % of its apexes within 2 frames of a stressed syllable's stroke
# apex (14 % with the syllables shifted by half the clip); at 0.15 34 % (15 %).
APEX_FLOOR = 0.2
# Frames this much quieter than the loudest so far are pauses, whose time does not ask for strokes.
SPEECH_RANGE_DB = 40.0
# Frames at most this loud are silence whatever came before: digital silence (``energy_db``'s floor
# is -80 dB) at the start of a clip, where no louder frame has been heard yet.
SILENCE_DB = -75.0
# The share of its style's rate below which ``StrokeRate`` lowers the threshold. The head's rate
# varies from clip to clip of its own training speech; at the full rate the 14 held-out espeak-ng
# clips got 13 % more planned strokes than at the calibrated threshold, and jitter rose from 59 to
# 70 m/s^3; at 0.7 they got 2 % more and jitter 65 (the goal: at most 62). At 0.5 their plan is
# the calibrated one, while the real recordings of ``../shared/real-speech`` and 41 more get 2.4x
# as many strokes planned as at the calibrated threshold (0.21 against 0.084 per second, in the
# default style), 53 % of them within 2 frames of a stressed syllable's apex (13 % by chance).
RATE_SHARE = 0.5


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


def plan_threshold(threshold, probability: np.ndarray, config) -> float:
    """The threshold a window's plan is made at: ``threshold`` when it is a number, its value on
    the window's apex probabilities (S, m) when it is a function (the pipeline's ``StrokeRate``),
    the checkpoint's calibrated ``config.apex_threshold`` when it is None."""
    if threshold is None:
        return config.apex_threshold
    return float(threshold(probability) if callable(threshold) else threshold)


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


class StrokeRate:
    """The plan threshold that gives a voice its style's rate of strokes, causally, window by window.

    After each window it keeps the head's peaks (the styled row's local maxima, ``plan_apexes`` at
    0) and the time spoken so far (``spoken_frames``), and returns the threshold at which the
    highest peaks so far number ``RATE_SHARE`` x ``rate`` x that time: the checkpoint's
    ``ceiling`` where the head already plans that many (so a style never plans fewer strokes than
    at the calibrated threshold), never below ``floor``. Each frame is counted once
    (the frames a window shares with the next one are counted by the next one, where their peaks
    are settled), so whole-clip and streamed generation, which see the same windows, plan alike.

    rate: stroke apexes per second of speech (the style's ``ModelConfig.apex_rates``); ceiling:
    the calibrated ``apex_threshold``; fps: motion frames per second."""

    def __init__(self, rate: float, ceiling: float, floor: float = APEX_FLOOR, fps: float = 30.0) -> None:
        if not rate > 0.0 or not 0.0 < floor <= ceiling < 1.0:
            raise ValueError(f"StrokeRate needs rate > 0 and 0 < floor <= ceiling < 1, got {rate}, {floor}, {ceiling}")
        self.rate, self.ceiling, self.floor, self.fps = float(rate), float(ceiling), float(floor), float(fps)
        self._peaks = np.zeros(0)  # grid units, every counted peak so far
        self._spoken = 0  # counted frames of speech

    @classmethod
    def for_style(cls, config, style: int | None) -> "StrokeRate | None":
        """The rule for a style index of a checkpoint's ``config`` (None: the mean style, at the
        mean rate); None for a checkpoint without ``apex_rates``, whose threshold stays fixed."""
        if not config.apex_rates:
            return None
        rate = float(np.mean(config.apex_rates)) if style is None else config.apex_rates[style]
        return cls(rate, config.apex_threshold)

    def threshold(self, probability: np.ndarray, counted: slice, spoken: np.ndarray) -> float:
        """probability (m,): the styled row's apex probabilities over a window's motion frames;
        counted: the window's frames not counted before and settled now (``window_frames``);
        spoken: (bool) which of those of them the audio has are speech (``spoken_frames``)
        -> the window's threshold."""
        p = np.asarray(probability, np.float64)
        peaks = plan_apexes(p, 0.0)[counted]
        self._peaks = np.concatenate([self._peaks, np.round(p[counted][peaks] / GRID)])
        self._spoken += int(np.count_nonzero(spoken))
        want = int(np.floor(RATE_SHARE * self.rate * self._spoken / self.fps + 0.5))
        if want < 1 or len(self._peaks) == 0:
            return self.ceiling
        line = np.sort(self._peaks)[::-1][min(want, len(self._peaks)) - 1]
        return float(np.clip((line - 0.5) * GRID, self.floor, self.ceiling))


def spoken_frames(loudness_db: np.ndarray, loudest: float = -np.inf) -> tuple[np.ndarray, float]:
    """(n,) frame levels in dB -> (n,) bool, the frames within ``SPEECH_RANGE_DB`` of the loudest
    frame up to and including them (``loudest``: the loudest before the first) and louder than
    ``SILENCE_DB``, and the loudest after the last. The time ``StrokeRate`` and the calibration of
    ``apex_rates`` count as speech; the others are pauses (``pauses.pause_codes``)."""
    levels = np.asarray(loudness_db, np.float64)
    running = np.maximum.accumulate(np.concatenate([[loudest], levels]))[1:]
    spoken = (levels >= running - SPEECH_RANGE_DB) & (levels > SILENCE_DB)
    return spoken, float(running[-1]) if len(levels) else loudest


def window_frames(new_from: int, frames: int, final: bool, radius: int = PEAK_RADIUS) -> slice:
    """The frames of a window whose peaks ``StrokeRate`` counts: from ``radius`` frames before its
    first new frame ``new_from`` (those the previous window left unsettled) to ``radius`` before
    its end, or to the end for the clip's last window. A peak within ``radius`` of a window's end
    may only be the edge of a rising curve; the next window, which sees past it, counts it."""
    start = new_from - radius if new_from >= radius else 0
    return slice(start, frames if final else max(start, frames - radius))
