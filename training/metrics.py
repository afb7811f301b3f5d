"""Gesture metrics the field reports (MODEL.md, "Metrics"): BC, L1 diversity, FGD, jitter, foot sliding;
plus the upper body's speed relative to the training data.

NumPy and SciPy only. Motion enters as joint positions (N, 55, 3) in metres, Y up, at 30 fps
(``gestura.training.dataset.joint_positions`` turns a Motion into them).

BC follows EMAGE's ``alignment`` class: audio onsets as librosa's ``onset_detect`` finds them
(16 kHz, hop 512, its default peak-picking parameters), motion beats as local minima (order 7)
of each upper-body joint's speed normalized by that joint's mean speed in the training data,
keeping minima whose normalized speed is above 0.3 (EMAGE's threshold: a "minimum" of a joint
at rest is noise, not a beat); per joint, the mean over onsets of exp(-d^2 / (2 sigma^2)) with d
the distance in seconds to the nearest motion beat, a joint without beats scoring 0; the mean
over the 13 upper-body joints. Onsets in the first and last 2 s are ignored.
"""
from __future__ import annotations

import numpy as np

from ..rigs.skeleton import FOOT_JOINTS, FPS, UPPER_JOINTS

WRIST_JOINTS = (20, 21)

SAMPLE_RATE = 16000
HOP = 512
N_FFT = 2048
N_MELS = 128


# ----------------------------------------------------------------------------- audio onsets
def _hz_to_mel(f):
    """Slaney mel scale (librosa's default, htk=False)."""
    f = np.asarray(f, np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    mel = f / f_sp
    return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mel)


def _mel_to_hz(m):
    m = np.asarray(m, np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) triangular filters with Slaney area normalization."""
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


def onset_strength(wave: np.ndarray, sr: int = SAMPLE_RATE, hop: int = HOP) -> np.ndarray:
    """librosa.onset.onset_strength: mean positive change of the log-mel spectrogram (dB) between
    consecutive frames, shifted so that frame t is centred at t * hop samples."""
    wave = np.asarray(wave, np.float64)
    pad = N_FFT // 2
    padded = np.pad(wave, (pad, pad))
    num = 1 + (len(padded) - N_FFT) // hop
    if num < 2:
        return np.zeros(max(num, 0))
    idx = np.arange(N_FFT)[None, :] + hop * np.arange(num)[:, None]
    window = np.hanning(N_FFT + 1)[:-1]  # periodic Hann, as scipy.signal.get_window("hann")
    power = np.abs(np.fft.rfft(padded[idx] * window, axis=1)) ** 2
    mel = power @ mel_filterbank(sr).T  # (frames, mels)
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db, db.max() - 80.0)
    flux = np.maximum(0.0, db[1:] - db[:-1]).mean(axis=1)
    # librosa pads lag (1) + n_fft // (2 hop) frames in front to undo the centred window's lead.
    shift = 1 + N_FFT // (2 * hop)
    env = np.concatenate([np.zeros(shift), flux])[:num]
    return env


def onset_times(wave: np.ndarray, sr: int = SAMPLE_RATE, hop: int = HOP) -> np.ndarray:
    """Onset times in seconds: librosa.onset.onset_detect with its default peak picking."""
    env = onset_strength(wave, sr, hop)
    if env.size == 0 or env.max() <= env.min():
        return np.zeros(0)
    env = (env - env.min()) / (env.max() - env.min())
    pre_max, post_max = int(0.03 * sr // hop), int(0.0 * sr // hop + 1)
    pre_avg, post_avg = int(0.10 * sr // hop), int(0.10 * sr // hop + 1)
    wait, delta = int(0.03 * sr // hop), 0.07
    peaks = _peak_pick(env, pre_max, post_max, pre_avg, post_avg, delta, wait)
    return peaks * hop / sr


def _peak_pick(x, pre_max, post_max, pre_avg, post_avg, delta, wait) -> np.ndarray:
    """librosa.util.peak_pick: local max over [n - pre_max, n + post_max), at least ``delta`` above
    the mean over [n - pre_avg, n + post_avg), and more than ``wait`` frames after the last peak."""
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    max_len = pre_max + post_max
    max_origin = int(np.ceil(0.5 * (pre_max - post_max)))
    mov_max = maximum_filter1d(x, max_len, mode="constant", origin=max_origin, cval=x.min())
    avg_len = pre_avg + post_avg
    avg_origin = int(np.ceil(0.5 * (pre_avg - post_avg)))
    mov_avg = uniform_filter1d(x, avg_len, mode="nearest", origin=avg_origin)
    detections = x * (x == mov_max)
    detections = detections * (detections >= mov_avg + delta)
    peaks, last = [], -np.inf
    for i in np.nonzero(detections)[0]:
        if i > last + wait:
            peaks.append(i)
            last = i
    return np.asarray(peaks, np.int64)


# ----------------------------------------------------------------------------- motion beats and BC
def joint_speed(positions: np.ndarray, fps: float = FPS) -> np.ndarray:
    """(N, J) speed in m/s: central differences inside, one-sided at the ends (as EMAGE)."""
    p = np.asarray(positions, np.float64)
    if len(p) < 2:
        return np.zeros(p.shape[:2])
    v = np.empty_like(p)
    v[1:-1] = (p[2:] - p[:-2]) * (fps / 2)
    v[0] = (p[1] - p[0]) * fps
    v[-1] = (p[-1] - p[-2]) * fps
    return np.linalg.norm(v, axis=-1)


def motion_beats(
    positions: np.ndarray,
    mean_speed: np.ndarray | float,
    fps: float = FPS,
    joints=UPPER_JOINTS,
    order: int = 7,
    threshold: float = 0.3,
) -> list[np.ndarray]:
    """Per joint in ``joints``: times (s) of local speed minima whose normalized speed > threshold."""
    from scipy.signal import argrelextrema

    speed = joint_speed(positions, fps)
    mean = np.broadcast_to(np.asarray(mean_speed, np.float64), (speed.shape[1],))
    beats = []
    for j in joints:
        s = speed[:, j] / max(mean[j], 1e-8)
        (minima,) = argrelextrema(s, np.less, order=order)
        beats.append(minima[s[minima] > threshold] / fps)
    return beats


def alignment_score(onsets: np.ndarray, beats: np.ndarray, sigma: float = 0.3) -> float:
    """Mean over onsets of exp(-d^2 / (2 sigma^2)), d = distance to the nearest beat (0 if no beats)."""
    onsets = np.asarray(onsets, np.float64)
    beats = np.asarray(beats, np.float64)
    if onsets.size == 0 or beats.size == 0:
        return 0.0
    d = np.abs(onsets[:, None] - beats[None, :]).min(axis=1)
    return float(np.exp(-(d**2) / (2 * sigma**2)).mean())


def beat_consistency_clip(
    positions: np.ndarray,
    onsets: np.ndarray,
    mean_speed: np.ndarray | float,
    fps: float = FPS,
    sigma: float = 0.3,
    order: int = 7,
    threshold: float = 0.3,
    ignore_s: float = 2.0,
) -> float | None:
    """BC of one clip given its onset times; None when no onset lies outside the ignored ends."""
    duration = len(positions) / fps
    onsets = np.asarray(onsets, np.float64)
    onsets = onsets[(onsets >= ignore_s) & (onsets <= duration - ignore_s)]
    if onsets.size == 0:
        return None
    beats = motion_beats(positions, mean_speed, fps, UPPER_JOINTS, order, threshold)
    return float(np.mean([alignment_score(onsets, b, sigma) for b in beats]))


def beat_consistency(
    positions: list[np.ndarray],
    waves: list[np.ndarray],
    mean_speed: np.ndarray | float,
    fps: float = FPS,
    sr: int = SAMPLE_RATE,
    sigma: float = 0.3,
    ignore_s: float = 2.0,
) -> float:
    """BC over clips: their mean weighted by clip length (as EMAGE accumulates it), over the clips
    that have onsets outside the ignored ends; NaN when none has."""
    total, weight = 0.0, 0.0
    for p, w in zip(positions, waves, strict=True):
        score = beat_consistency_clip(p, onset_times(w, sr), mean_speed, fps, sigma, ignore_s=ignore_s)
        if score is not None:
            total += score * len(p)
            weight += len(p)
    return total / weight if weight else float("nan")


# ----------------------------------------------------------------------------- diversity, FGD
def l1_diversity(positions: list[np.ndarray]) -> float:
    """Mean over all frames of sum over joints and axes of |position - the clip's mean position|.
    Pass positions computed with the root translation zeroed (``positions - trans[:, None]``)."""
    total, count = 0.0, 0
    for p in positions:
        p = np.asarray(p, np.float64).reshape(len(p), -1)
        total += np.abs(p - p.mean(axis=0)).sum()
        count += len(p)
    return total / max(count, 1)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    if not np.isfinite(covmean).all():
        # Singular product (fewer samples than dimensions): regularize, as the FID reference code does.
        offset = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean), 0.0))


def fgd(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between the Gaussian statistics of two (num_samples, D) feature sets."""
    a = np.asarray(features_a, np.float64).reshape(len(features_a), -1)
    b = np.asarray(features_b, np.float64).reshape(len(features_b), -1)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("FGD needs at least 2 feature vectors on each side")
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def _standardized(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9)


def speech_motion_sync(positions: list[np.ndarray], waves: list[np.ndarray], fps: float = FPS,
                       sr: int = SAMPLE_RATE, max_lag_s: float = 0.5, min_seconds: float = 4.0) -> float:
    """Whether the hands move with the speech: per clip, the peak over lags within ``max_lag_s`` of
    the correlation between the wrists' speed and the audio's onset envelope, minus the same peak
    with the audio shifted by half the clip (same signals, timing broken; the peak of unrelated
    signals is above 0). Mean over clips weighted by length; NaN when no clip is ``min_seconds``
    long. About 0 when motion ignores the audio. BC cannot tell: it rewards any motion with many
    speed minima, since speech has an onset every few tenths of a second."""
    max_lag = int(round(max_lag_s * fps))
    total, weight = 0.0, 0.0
    for p, w in zip(positions, waves, strict=True):
        n = len(p)
        if n < min_seconds * fps:
            continue
        speed = _standardized(joint_speed(p, fps)[:, list(WRIST_JOINTS)].sum(axis=1))
        onset = onset_strength(np.asarray(w, np.float32), sr)
        envelope = np.interp(np.arange(n) / fps, np.arange(len(onset)) * HOP / sr, onset)
        kernel = np.exp(-0.5 * (np.arange(-9, 10) / 3.0) ** 2)  # 100 ms Gaussian
        envelope = _standardized(np.convolve(envelope, kernel / kernel.sum(), mode="same"))

        def peak(e):  # lag > 0: the motion follows the audio
            return max(float(np.mean(speed[lag:] * e[: n - lag])) if lag >= 0 else float(np.mean(speed[:lag] * e[-lag:]))
                       for lag in range(-max_lag, max_lag + 1))

        total += (peak(envelope) - peak(np.roll(envelope, n // 2))) * n
        weight += n
    return total / weight if weight else float("nan")


STROKE_SPEED = 0.4  # m/s: a peak of the faster wrist's speed above this counts as a stroke


def gesture_stats(positions: np.ndarray, fps: float = FPS) -> dict:
    """What a speaker's style changes, for one clip of joint positions (y up): the wrists' mean
    speed (m/s), the mean height of the higher wrist above the pelvis (m) and strokes per second
    (local maxima of the faster wrist's speed above ``STROKE_SPEED``)."""
    positions = np.asarray(positions)
    speed = joint_speed(positions, fps)[:, list(WRIST_JOINTS)]
    height = (positions[:, list(WRIST_JOINTS), 1].max(axis=1) - positions[:, 0, 1]).mean()
    fast = speed.max(axis=1)
    strokes = np.sum((fast[1:-1] > fast[:-2]) & (fast[1:-1] >= fast[2:]) & (fast[1:-1] > STROKE_SPEED))
    return {"wrist_speed": float(speed.mean()), "hand_height": float(height),
            "stroke_rate": float(strokes / (len(positions) / fps))}


def relative_speed(positions: list[np.ndarray], mean_speed: np.ndarray | float, fps: float = FPS,
                   joints=UPPER_JOINTS) -> float:
    """Mean speed of the upper-body joints divided by their mean speed in the training data, over
    all frames of all clips: 1 moves as much as the data, below 1 too little (a model that holds
    poses), above 1 too much. BC rewards any extra speed minimum, so read it next to this."""
    joints = list(joints)
    mean = np.broadcast_to(np.asarray(mean_speed, np.float64), (55,))[joints]
    speeds = [joint_speed(p, fps)[:, joints] / np.maximum(mean, 1e-8) for p in positions if len(p) > 1]
    return float(np.concatenate(speeds).mean()) if speeds else float("nan")


# ----------------------------------------------------------------------------- smoothness, feet
def jitter(positions: list[np.ndarray] | np.ndarray, fps: float = FPS) -> float:
    """Mean jerk: the mean over frames and joints of |d^3 position / dt^3| in m/s^3."""
    if isinstance(positions, np.ndarray):
        positions = [positions]
    values = [np.linalg.norm(np.diff(np.asarray(p, np.float64), n=3, axis=0), axis=-1) * fps**3 for p in positions]
    values = [v for v in values if v.size]
    return float(np.concatenate([v.ravel() for v in values]).mean()) if values else 0.0


def foot_sliding(
    positions: list[np.ndarray] | np.ndarray, fps: float = FPS, height_threshold: float = 0.05
) -> float:
    """Mean horizontal speed (m/s) of foot joints (7, 8, 10, 11) while they touch the ground.

    A foot joint touches the ground when it is within ``height_threshold`` metres of its own
    lowest height in the clip (the ground, since there is no floor in the data); sliding is its
    horizontal (x, z) speed on those frames. 0 when no foot touches the ground.
    """
    if isinstance(positions, np.ndarray):
        positions = [positions]
    speeds = []
    for p in positions:
        feet = np.asarray(p, np.float64)[:, list(FOOT_JOINTS)]
        if len(feet) < 2:
            continue
        height = feet[..., 1]
        grounded = height <= height.min(axis=0, keepdims=True) + height_threshold
        both = grounded[1:] & grounded[:-1]  # on the ground at both ends of the step
        horizontal = np.linalg.norm(np.diff(feet[..., [0, 2]], axis=0), axis=-1) * fps
        speeds.append(horizontal[both])
    speeds = np.concatenate(speeds) if speeds else np.zeros(0)
    return float(speeds.mean()) if speeds.size else 0.0
