"""Jaw, head nods and the 100 FLAME expression coefficients of the synthetic speaker.

FLAME's expression basis is a PCA whose components have no published names, and the model file
is licensed (not available here), so the meanings below are ASSUMPTIONS, chosen to give the
coefficients a plausible, speech-driven structure the model can learn:

    0  mouth opening that goes with the jaw (co-articulation)   5  eyelid closure (blinks)
    1  smile / mouth corners, a style baseline plus slow drift  6-9 small slow drift
    2  lip rounding, loosely following pitch                    10-99 zero
    3  brow raise on pitch accents
    4  brow lowering, slow drift

Magnitudes stay within about +-1.5, the range BEAT2's coefficients mostly occupy.
"""
from __future__ import annotations

import numpy as np
from scipy import signal

from ...rigs.skeleton import NUM_EXPRESSIONS
from .curves import bumps, smooth_noise
from .prosody import HOP, Prosody
from .styles import Style


def mouth_opening(prosody: Prosody, t: np.ndarray) -> np.ndarray:
    """(N,) 0..1: loudness mapped to opening, low-passed like a jaw's inertia, leading sound by 30 ms."""
    level = np.clip((prosody.envelope_db + 35.0) / 30.0, 0.0, 1.0) ** 1.3
    sos = signal.butter(2, 7.0, fs=1 / HOP, output="sos")
    smooth = np.clip(signal.sosfiltfilt(sos, level), 0.0, 1.0)
    return prosody.sample(smooth, t + 0.03)


def jaw_angle(opening: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Jaw rotation about +x (positive opens the mouth): 0.02 rad closed, up to ~0.3 rad."""
    gain = rng.uniform(0.22, 0.3)
    return 0.02 + gain * opening


def nod_signal(prosody: Prosody, t: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    """(N,) head pitch (rad, positive = down): a quick down-and-up around most pitch accents."""
    centres, heights = [], []
    last = -10.0
    for accent in prosody.accents:
        if accent.onset - last < 0.6 or rng.random() > 0.7:
            continue
        centres.append(accent.onset + 0.06)
        heights.append(style.nod_gain * rng.uniform(0.05, 0.1) * (0.6 + 0.4 * accent.stress))
        last = accent.onset
    nods = bumps(t, np.array(centres), np.array(heights), width=0.42)
    # Smaller head beats on the other stressed syllables: the head keeps time with speech.
    accent_times = np.array(centres)
    beats = [s for s in prosody.syllables if s.stress > 0.55
             and (len(accent_times) == 0 or np.min(np.abs(accent_times - s.onset)) > 0.4)]
    beat_heights = style.nod_gain * rng.uniform(0.012, 0.03, len(beats)) * np.array([s.stress for s in beats])
    return nods + bumps(t, np.array([s.onset + 0.04 for s in beats]), beat_heights, width=0.3)


def blink_times(duration: float, style: Style, prosody: Prosody, rng: np.random.Generator) -> np.ndarray:
    """Blinks at random (mean gap ``style.blink_every``), plus one at many phrase ends."""
    times = []
    now = rng.exponential(style.blink_every)
    while now < duration:
        times.append(now)
        now += max(0.5, rng.exponential(style.blink_every))
    times += [end + 0.1 for _, end in prosody.phrases if rng.random() < 0.4]
    times = np.sort(np.array(times))
    keep = np.concatenate([[True], np.diff(times) > 0.6]) if len(times) else np.zeros(0, bool)
    return times[keep]


def expressions(prosody: Prosody, t: np.ndarray, style: Style, rng: np.random.Generator,
                opening: np.ndarray) -> np.ndarray:
    """(N, 100) expression coefficients (see the module docstring for the assumed meanings)."""
    n = len(t)
    out = np.zeros((n, NUM_EXPRESSIONS))
    drift = smooth_noise(rng, t, 2.0, 8, amplitude=0.15)
    out[:, 0] = 1.2 * opening + 0.5 * drift[:, 0]
    out[:, 1] = style.smile + smooth_noise(rng, t, 4.0, 1, amplitude=0.25)[:, 0]
    pitch = prosody.sample(np.where(prosody.voiced, prosody.f0, 0.0), t)
    voiced_pitch = pitch[pitch > 0]
    reference = np.median(voiced_pitch) if len(voiced_pitch) else 1.0
    semitones = np.where(pitch > 0, 12 * np.log2(np.maximum(pitch, 1.0) / reference), 0.0)
    sos = signal.butter(2, 3.0, fs=1 / (t[1] - t[0]) if n > 1 else 30.0, output="sos")
    out[:, 2] = 0.06 * np.clip(signal.sosfiltfilt(sos, semitones) if n > 12 else semitones, -6, 6) + drift[:, 1]
    raises = [a for a in prosody.accents if a.pitch > 1.5 and rng.random() < 0.6]
    out[:, 3] = bumps(t, np.array([a.onset for a in raises]), style.brow_gain * rng.uniform(0.5, 1.0, len(raises)), 0.8)
    out[:, 3] += drift[:, 2]
    out[:, 4] = smooth_noise(rng, t, 3.0, 1, amplitude=0.3)[:, 0]
    blinks = blink_times(t[-1] if n else 0.0, style, prosody, rng)
    out[:, 5] = bumps(t, blinks, np.full(len(blinks), 1.2), 0.2)
    out[:, 6:10] = drift[:, 3:7]
    return out
