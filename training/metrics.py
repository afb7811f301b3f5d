"""Gesture metrics the field reports (MODEL.md, "Metrics"): BC, L1 diversity, FGD, jitter, foot sliding;
plus the upper body's speed relative to the training data, and the timing metrics of issue 15
(apex ratio, corpus correlation, rest in silence, frozen arms, speech-timing control).

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

from ..inference.frozen_arms import EXTENT_M, RAISED_M
from ..inference.stroke_plan import apex_bumps
from ..rigs.skeleton import FOOT_JOINTS, FPS, JAW_JOINT, UPPER_JOINTS

BODY_JOINTS = tuple(range(JAW_JOINT))  # pelvis to wrists: SMPL-X's first 22 joints, no face or fingers
WRIST_JOINTS = (20, 21)
ELBOW_JOINTS = (18, 19)
PELVIS = 0

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
def jitter(positions: list[np.ndarray] | np.ndarray, fps: float = FPS, joints=None) -> float:
    """Mean jerk: the mean over frames and joints of |d^3 position / dt^3| in m/s^3; ``joints``
    (indices) limits it to those joints (``BODY_JOINTS``: without the fingers, whose 30 joints at
    the end of the arm's lever carry about 10x the body joints' jerk and dominate the mean)."""
    if isinstance(positions, np.ndarray):
        positions = [positions]
    if joints is not None:
        positions = [np.asarray(p)[:, list(joints)] for p in positions]
    values = [np.linalg.norm(np.diff(np.asarray(p, np.float64), n=3, axis=0), axis=-1) * fps**3 for p in positions]
    values = [v for v in values if v.size]
    return float(np.concatenate([v.ravel() for v in values]).mean()) if values else 0.0


def seam_jitter(positions: list[np.ndarray] | np.ndarray, every: int, fps: float = FPS) -> float:
    """Jerk across the joins of windows generated one after another (a join every ``every`` frames,
    from frame ``every`` on) over the jerk elsewhere: 1 when the joins cannot be told apart, more
    when the motion jumps where one window meets the next. A jerk sample spans 4 frames; it
    crosses a join when the join's first frame is one of its last three."""
    if isinstance(positions, np.ndarray):
        positions = [positions]
    across, elsewhere = [], []
    for p in positions:
        jerk = np.linalg.norm(np.diff(np.asarray(p, np.float64), n=3, axis=0), axis=-1).mean(axis=1) * fps**3
        crossing = np.zeros(len(jerk), bool)
        for join in range(every, len(p), every):
            crossing[max(join - 3, 0):join] = True
        across.append(jerk[crossing])
        elsewhere.append(jerk[~crossing])
    across, elsewhere = np.concatenate(across), np.concatenate(elsewhere)
    return float(across.mean() / elsewhere.mean()) if across.size and elsewhere.size and elsewhere.mean() > 0 else float("nan")


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


# ----------------------------------------------------------------------------- timing (issue 15)
# Wrist speed, stroke apexes, stillness and speech timing. Positions as above: (N, 55, 3) metres,
# Y up, 30 fps, from the project's forward kinematics.
def faster_wrist_speed(positions: np.ndarray, fps: float = FPS) -> np.ndarray:
    """(N,) speed in m/s of whichever wrist moves faster on each frame."""
    return joint_speed(positions, fps)[:, list(WRIST_JOINTS)].max(axis=1)


def opening_leap(positions: np.ndarray, fps: float = FPS, seconds: float = 0.5, percentile: float = 99.0) -> float:
    """The faster wrist's top speed in a clip's first ``seconds`` over its ``percentile`` speed
    after them: above 1 when the motion's start, from the start pose, is faster than nearly every
    stroke that follows (a leap into the first gesture); NaN for a clip too short to have both or
    still after them."""
    speed = faster_wrist_speed(positions, fps)
    k = int(round(seconds * fps))
    if len(speed) <= k:
        return float("nan")
    after = np.percentile(speed[k:], percentile)
    return float(speed[:k].max() / after) if after > 0 else float("nan")


def moving_average(x: np.ndarray, seconds: float = 0.1, fps: float = FPS) -> np.ndarray:
    """Centred moving average over ``round(seconds * fps)`` frames (3 at 30 fps); the ends, where
    the window does not fit, are left out (the result is shorter by window - 1 frames)."""
    k = max(int(round(seconds * fps)), 1)
    x = np.asarray(x, np.float64)
    return np.convolve(x, np.ones(k) / k, mode="valid") if len(x) >= k else np.zeros(0)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (nothing to relate)."""
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    denominator = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denominator) if denominator > 1e-12 else 0.0


def apex_speed_ratios(positions: np.ndarray, apex_frames, fps: float = FPS, before_s: float = 0.1) -> np.ndarray:
    """For each apex frame: the faster wrist's speed ``before_s`` (0.1 s = 3 frames) earlier over
    the mean of the faster wrist's speed across the clip. Apexes closer than that to the clip's
    start are left out. A stroke is fastest just before it ends, so a motion that strokes on the
    planned apexes scores well above 1 (the synthetic corpus: about 2.7)."""
    fast = faster_wrist_speed(positions, fps)
    frames = np.asarray(apex_frames, np.int64) - int(round(before_s * fps))
    frames = frames[(frames >= 0) & (frames < len(fast))]
    mean = fast.mean() if len(fast) else 0.0
    if mean <= 0:
        return np.zeros(len(frames))
    return fast[frames] / mean


def apex_ratio(positions: list[np.ndarray], apex_frames: list, fps: float = FPS) -> float:
    """``apex_speed_ratios`` averaged over every apex of every clip (each apex counts once); NaN
    when the clips have no apexes. ``apex_frames[i]``: frame indices of clip i's stroke apexes."""
    ratios = [apex_speed_ratios(p, a, fps) for p, a in zip(positions, apex_frames, strict=True)]
    ratios = np.concatenate(ratios) if ratios else np.zeros(0)
    return float(ratios.mean()) if ratios.size else float("nan")


PLAN_TOLERANCE = 3  # frames (0.1 s) a planned apex may lie from the data's and still count as found


def stroke_plan_scores(probabilities: list[np.ndarray], planned: list, apexes: list,
                       tolerance: int = PLAN_TOLERANCE) -> dict:
    """How well a stroke-apex head finds the data's stroke apexes (what stage 2's body strokes on).

    Per clip i: ``probabilities[i]`` (N,) the head's apex probability per frame, ``planned[i]`` and
    ``apexes[i]`` frame indices of the plan's and the data's apexes. Returns {"head_correlation":
    mean over clips of the Pearson correlation of the probabilities with ``apex_bumps`` of the
    data's apexes (what the head is trained towards), "plan_precision": share of planned apexes
    within ``tolerance`` frames of one of the data's, "plan_recall": share of the data's apexes
    within ``tolerance`` frames of a planned one}; NaN where nothing is counted."""
    correlations, found_planned, found_data, total_planned, total_data = [], 0, 0, 0, 0
    for probability, plan, truth in zip(probabilities, planned, apexes, strict=True):
        probability = np.asarray(probability, np.float64)
        plan, truth = np.asarray(plan, np.int64), np.asarray(truth, np.int64)
        indicator = np.zeros(len(probability), np.float32)
        indicator[truth[(truth >= 0) & (truth < len(probability))]] = 1
        correlations.append(_pearson(probability, apex_bumps(indicator)))
        close = np.abs(plan[:, None] - truth[None, :]) <= tolerance  # (planned, data); either may be empty
        found_planned += int(close.any(1).sum())
        found_data += int(close.any(0).sum())
        total_planned, total_data = total_planned + len(plan), total_data + len(truth)
    return {
        "head_correlation": float(np.mean(correlations)) if correlations else float("nan"),
        "plan_precision": found_planned / total_planned if total_planned else float("nan"),
        "plan_recall": found_data / total_data if total_data else float("nan"),
    }


def corpus_correlation(positions: list[np.ndarray], corpus_positions: list[np.ndarray], fps: float = FPS) -> float:
    """Mean over clips of the Pearson correlation between the faster wrist's speed (0.1 s moving
    average) of a motion and of the corpus's motion on the same audio (both cut to the shorter
    one); 0 for a clip where either does not move; NaN for no clips."""
    values = []
    for a, b in zip(positions, corpus_positions, strict=True):
        n = min(len(a), len(b))
        values.append(_pearson(moving_average(faster_wrist_speed(a[:n], fps), 0.1, fps),
                               moving_average(faster_wrist_speed(b[:n], fps), 0.1, fps)))
    return float(np.mean(values)) if values else float("nan")


def rest_in_silence(positions: np.ndarray, gap: tuple[int, int], fps: float = FPS, margin_s: float = 1.0) -> float:
    """Mean wrist speed (both wrists) in a silent gap over the mean wrist speed outside it.

    ``gap``: (first, end) frames of the silence, end exclusive; ``margin_s`` at each side of the
    gap is left out (the hands come to rest and leave it). 0: the hands stop in silence; 1: they
    move as much as during speech. ValueError when the gap is not longer than both margins or
    leaves no frame outside it.
    """
    speed = joint_speed(positions, fps)[:, list(WRIST_JOINTS)].mean(axis=1)
    first, end = int(gap[0]), int(gap[1])
    margin = int(round(margin_s * fps))
    if not 0 <= first < end <= len(speed) or end - first <= 2 * margin:
        raise ValueError(f"gap {gap} must lie inside the {len(speed)} frames and be longer than 2 x {margin} frames")
    outside = np.concatenate([speed[:first], speed[end:]])
    if outside.size == 0 or outside.mean() <= 0:
        raise ValueError("rest in silence needs speech frames with motion outside the gap")
    return float(speed[first + margin: end - margin].mean() / outside.mean())


def frozen_arm_frames(positions: np.ndarray, fps: float = FPS, raised_m: float = RAISED_M, extent_m: float = EXTENT_M,
                      window_s: float = 3.0) -> np.ndarray:
    """(N,) bool: for either arm, over the surrounding ``window_s`` (centred; cut at the clip's
    ends) the wrist stays at least ``raised_m`` above the pelvis (Y) and the elbow stays inside
    ``extent_m``: a raised arm held in place. The elbow's extent is the largest side of the
    axis-aligned box around its positions in the window. The wrist must stay raised over the whole
    window: a forearm beating up and down about a still elbow is not frozen. Generation lets such
    an arm go after ``frozen_arms.LET_GO_S`` s (``inference/frozen_arms.py``, the same thresholds)."""
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    p = np.asarray(positions, np.float64)
    size = int(round(window_s * fps)) | 1  # odd, so the window is centred
    frozen = np.zeros(len(p), bool)
    for wrist, elbow in zip(WRIST_JOINTS, ELBOW_JOINTS):
        # "nearest" repeats the edge frame, which leaves a max / min unchanged: the window is cut.
        raised = minimum_filter1d(p[:, wrist, 1] - p[:, PELVIS, 1], size, mode="nearest") >= raised_m
        e = p[:, elbow]
        extent = maximum_filter1d(e, size, axis=0, mode="nearest") - minimum_filter1d(e, size, axis=0, mode="nearest")
        frozen |= raised & (extent.max(axis=1) < extent_m)
    return frozen


def frozen_arms(positions: list[np.ndarray] | np.ndarray, fps: float = FPS) -> float:
    """Share of all frames (of all clips) where ``frozen_arm_frames`` holds; NaN for no frames."""
    return _share_of_frames(frozen_arm_frames, positions, fps)


def _share_of_frames(flags_of, positions: list[np.ndarray] | np.ndarray, fps: float) -> float:
    """Share of all frames of the clips ``positions`` (one (N, 55, 3) array or a list) where
    ``flags_of(clip, fps)`` is true; NaN for no frames."""
    if isinstance(positions, np.ndarray):
        positions = [positions]
    flags = [flags_of(p, fps) for p in positions if len(p)]
    return float(np.concatenate(flags).mean()) if flags else float("nan")


def raised_arm_frames(positions: np.ndarray, fps: float = FPS, raised_m: float = RAISED_M,
                      window_s: float = 6.0) -> np.ndarray:
    """(N,) bool: for either arm, the wrist stays at least ``raised_m`` above the pelvis (Y) over
    the whole surrounding ``window_s`` (centred; cut at the clip's ends), still or beating: a hand
    kept up through pauses and phrases where a speaker lets it down. ``frozen_arm_frames`` counts
    only a raised arm whose elbow also holds still, so an arm held forward that keeps beating from
    the wrist escapes it; this measure catches it."""
    from scipy.ndimage import minimum_filter1d

    p = np.asarray(positions, np.float64)
    size = int(round(window_s * fps)) | 1
    raised = np.zeros(len(p), bool)
    for wrist in WRIST_JOINTS:
        raised |= minimum_filter1d(p[:, wrist, 1] - p[:, PELVIS, 1], size, mode="nearest") >= raised_m
    return raised


def raised_arms(positions: list[np.ndarray] | np.ndarray, fps: float = FPS) -> float:
    """Share of all frames (of all clips) where ``raised_arm_frames`` holds; NaN for no frames."""
    return _share_of_frames(raised_arm_frames, positions, fps)


def derive_stroke_apexes(positions: np.ndarray, fps: float = FPS, peak_speed: float = STROKE_SPEED,
                         slow_down: float = 0.5, hold_s: float = 0.15, hold: float = 0.7,
                         merge_s: float = 0.1) -> np.ndarray:
    """(N,) float32, 1 on the frames where a stroke ends, found in the motion (for data that
    does not carry the synthesizer's planned ``stroke_apex``).

    Per wrist, on its speed (0.1 s moving average): every local maximum above ``peak_speed`` m/s
    (a stroke) is followed down to the first local minimum after it; that minimum is the apex
    when the speed has fallen below ``slow_down`` times the peak's (the stroke ended, not a
    ripple) and stays below ``hold`` times the peak's for ``hold_s`` after it (a preparation's end
    is followed at once by the fast stroke; a stroke's end by a hold). Apexes of the two wrists
    within ``merge_s`` of each other are one event (a two-handed stroke), marked at the earlier
    frame. On a 0.4 h synthetic corpus, 88 % of the planned apexes have a derived one within 0.1 s
    and 80 % of the derived ones a planned one.
    """
    speed = joint_speed(positions, fps)[:, list(WRIST_JOINTS)]
    n = len(speed)
    k = max(int(round(0.1 * fps)), 1)
    events = []
    for column in speed.T:
        s = np.full(n, np.nan)
        smooth = moving_average(column, 0.1, fps)
        s[(k - 1) // 2: (k - 1) // 2 + len(smooth)] = smooth
        inner = np.arange(1, n - 1)
        peaks = inner[(s[inner] > peak_speed) & (s[inner] >= s[inner - 1]) & (s[inner] > s[inner + 1])]
        for p in peaks:
            i = p
            while i + 1 < n and np.isfinite(s[i + 1]) and s[i + 1] < s[i]:
                i += 1
            after = s[i + 1: i + 1 + int(round(hold_s * fps))]
            if after.size and np.isfinite(after).all() and s[i] < slow_down * s[p] and after.max() < hold * s[p]:
                events.append(i)
    out = np.zeros(n, np.float32)
    last = -np.inf
    for i in sorted(set(events)):
        if i - last > merge_s * fps:
            out[i] = 1.0
            last = i
    return out


def onset_envelope(wave: np.ndarray, num_frames: int, sr: int = SAMPLE_RATE, fps: float = FPS) -> np.ndarray:
    """(num_frames,) onset strength (``onset_strength``) at the motion's frame times."""
    onset = onset_strength(np.asarray(wave, np.float32), sr)
    return np.interp(np.arange(num_frames) / fps, np.arange(len(onset)) * HOP / sr, onset)


def rms_loudness(wave: np.ndarray, num_frames: int, sr: int = SAMPLE_RATE, fps: float = FPS) -> np.ndarray:
    """(num_frames,) RMS of the samples within half a frame of each frame's time (linear, not dB)."""
    wave = np.asarray(wave, np.float64)
    half = sr / fps / 2
    out = np.zeros(num_frames)
    for i in range(num_frames):
        lo, hi = int(round(i * sr / fps - half)), int(round(i * sr / fps + half))
        chunk = wave[max(lo, 0): max(min(hi, len(wave)), 0)]
        out[i] = np.sqrt(np.mean(chunk * chunk)) if chunk.size else 0.0
    return out


def jaw_opening(poses: np.ndarray) -> np.ndarray:
    """(N,) jaw opening angle in radians: the x component of the jaw's local axis-angle (SMPL-X
    opens the mouth about x; > 0 open). ``poses``: (N, 55, 3) or (N, 165)."""
    poses = np.asarray(poses, np.float64)
    return poses.reshape(len(poses), -1, 3)[:, JAW_JOINT, 0]


def lagged_correlations(signal: np.ndarray, envelope: np.ndarray, lags) -> np.ndarray:
    """Pearson correlation of ``signal[t]`` with ``envelope[t - lag]`` over their overlap, per lag
    in frames (lag > 0: the signal follows the envelope)."""
    signal, envelope = np.asarray(signal, np.float64), np.asarray(envelope, np.float64)
    n = min(len(signal), len(envelope))
    out = []
    for lag in lags:
        lag = int(lag)
        if lag >= 0:
            out.append(_pearson(signal[lag:n], envelope[: n - lag]))
        else:
            out.append(_pearson(signal[: n + lag], envelope[-lag:n]))
    return np.asarray(out)


TIMING_MIN_SECONDS = 3.0


def timing_control(signal: np.ndarray, envelope: np.ndarray, fps: float = FPS, max_lag_s: float = 0.6,
                   far_lags_s: tuple[float, float] = (1.3, 2.3)) -> float:
    """How much a motion signal follows a speech envelope in time, beyond chance.

    The best Pearson correlation at lags within +-``max_lag_s`` minus the mean absolute
    correlation at lags of ``far_lags_s`` (either sign), where timing is broken but the signals
    are the same. About 0 when the motion ignores the speech's timing; up to 1 when it follows it.
    ValueError for clips shorter than 3 s (the far lags would leave too little overlap).
    """
    n = min(len(signal), len(envelope))
    if n < TIMING_MIN_SECONDS * fps:
        raise ValueError(f"speech-timing control needs at least {TIMING_MIN_SECONDS:g} s, got {n / fps:.2f} s")
    near = np.arange(-int(round(max_lag_s * fps)), int(round(max_lag_s * fps)) + 1)
    lo, hi = int(round(far_lags_s[0] * fps)), int(round(far_lags_s[1] * fps))
    far = np.concatenate([-np.arange(hi, lo - 1, -1), np.arange(lo, hi + 1)])
    best = lagged_correlations(signal, envelope, near).max()
    return float(best - np.abs(lagged_correlations(signal, envelope, far)).mean())


# The part of a clip that ``body_timing_control(..., skip_s=OPENING_SKIP_S)`` leaves out: the move
# from the start pose into the first gesture (at most 0.5 s, ``opening_leap``) and the 0.6 s of
# lags that can pair it with the speech's first onset, which every clip has and which the move
# follows whether the body listens or not.
OPENING_SKIP_S = 1.0


def body_timing_control(positions: np.ndarray, wave: np.ndarray, sr: int = SAMPLE_RATE, fps: float = FPS,
                        skip_s: float = 0.0) -> float:
    """``timing_control`` of the summed upper-body joint speed against the onset-strength envelope,
    both without the clip's first ``skip_s`` seconds (``OPENING_SKIP_S`` leaves out the opening:
    on clips under 7 s the leap into the first stroke made half of the bundled model's lead over
    shifted audio, ``weights/MODEL_CARD.md``). ValueError when under 3 s remain."""
    speed = joint_speed(positions, fps)[:, list(UPPER_JOINTS)].sum(axis=1)
    skip = int(round(skip_s * fps))
    return timing_control(speed[skip:], onset_envelope(wave, len(speed), sr, fps)[skip:], fps)


def jaw_timing_control(poses: np.ndarray, wave: np.ndarray, sr: int = SAMPLE_RATE, fps: float = FPS) -> float:
    """``timing_control`` of the jaw opening angle against RMS loudness."""
    jaw = jaw_opening(poses)
    return timing_control(jaw, rms_loudness(wave, len(jaw), sr, fps), fps)


def speech_timing_control(positions: list[np.ndarray], poses: list[np.ndarray], waves: list[np.ndarray],
                          sr: int = SAMPLE_RATE, fps: float = FPS) -> dict[str, float]:
    """{"body": ..., "jaw": ...}: ``body_timing_control`` and ``jaw_timing_control`` averaged over
    the clips of 3 s or more, weighted by length; NaN when no clip is that long."""
    body, jaw, weights = [], [], []
    for p, q, w in zip(positions, poses, waves, strict=True):
        if len(p) < TIMING_MIN_SECONDS * fps:
            continue
        body.append(body_timing_control(p, w, sr, fps))
        jaw.append(jaw_timing_control(q, w, sr, fps))
        weights.append(len(p))
    if not weights:
        return {"body": float("nan"), "jaw": float("nan")}
    return {"body": float(np.average(body, weights=weights)), "jaw": float(np.average(jaw, weights=weights))}


# ----------------------------------------------------------------------------- delivery (issue 16)
# How lively a recording sounds, to check that a model which infers style from the voice moves more
# for an animated delivery than for a calm one. Loudness in 40 ms frames every 10 ms; syllable
# nuclei as loudness peaks, as in de Jong & Wempe's speech-rate method (Behavior Research Methods
# 41, 2009): at least 2 dB above the dips around them and 0.1 s apart.
VOICED_RANGE_DB = 30.0  # frames within this many dB of the loudest count as voiced
PAUSE_S = 0.3  # unvoiced stretches at least this long are pauses, not speaking time
LOUDNESS_FRAME_S, LOUDNESS_HOP_S = 0.04, 0.01
SWELL_S = 0.5  # loudness variation is measured between stretches this long, mostly voiced


def loudness_db(wave: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Loudness in dB of LOUDNESS_FRAME_S frames every LOUDNESS_HOP_S (frame k centred at
    ``k * LOUDNESS_HOP_S + LOUDNESS_FRAME_S / 2`` s); empty for a clip shorter than one frame."""
    wave = np.asarray(wave, np.float64)
    frame, hop = int(LOUDNESS_FRAME_S * sr), int(LOUDNESS_HOP_S * sr)
    if len(wave) < frame:
        return np.zeros(0)
    idx = np.arange(frame)[None, :] + hop * np.arange(1 + (len(wave) - frame) // hop)[:, None]
    return 20.0 * np.log10(np.sqrt(np.mean(wave[idx] ** 2, axis=1)) + 1e-10)


def syllable_nuclei(db: np.ndarray, min_gap_s: float = 0.1, smooth_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Syllable nuclei as loudness peaks (de Jong & Wempe): ``(times in s, prominences in dB)`` of
    the voiced peaks of a ``loudness_db`` curve (within VOICED_RANGE_DB of the loudest) at least
    2 dB above the dips around them and ``min_gap_s`` apart, after a moving average over
    ``smooth_s``. Silence (a flat curve) has none."""
    from scipy.signal import find_peaks

    if len(db) == 0:
        return np.zeros(0), np.zeros(0)
    width = max(int(round(smooth_s / LOUDNESS_HOP_S)), 1)
    if width > 1:
        db = np.convolve(db, np.ones(width) / width, "same")
    voiced = db > db.max() - VOICED_RANGE_DB
    peaks, found = find_peaks(db, distance=max(int(min_gap_s / LOUDNESS_HOP_S), 1), prominence=2.0)
    keep = voiced[peaks]
    return peaks[keep] * LOUDNESS_HOP_S + LOUDNESS_FRAME_S / 2, found["prominences"][keep]


def delivery(wave: np.ndarray, sr: int = SAMPLE_RATE) -> dict:
    """``loudness_variation``: standard deviation in dB of the mean loudness of SWELL_S stretches of
    speech (voiced frames, within VOICED_RANGE_DB of the loudest, more than half of the stretch);
    ``syllable_rate``: syllable nuclei (``syllable_nuclei``) per second of
    speaking time (the clip without pauses of PAUSE_S or longer). Both 0 for silence."""
    db = loudness_db(wave, sr)
    if len(db) == 0 or not np.any(np.asarray(wave)):
        return {"loudness_variation": 0.0, "syllable_rate": 0.0}
    voiced = db > db.max() - VOICED_RANGE_DB
    speaking = voiced.copy()
    edges = np.flatnonzero(np.diff(np.r_[1, voiced.astype(np.int8), 1]))  # unvoiced runs [start, stop)
    for start, stop in zip(edges[::2], edges[1::2]):
        if (stop - start) * LOUDNESS_HOP_S < PAUSE_S:
            speaking[start:stop] = True
    nuclei, _ = syllable_nuclei(db)
    # Phrase-level swells, not syllables: the loudness of 0.5 s stretches of speaking time.
    k = int(SWELL_S / LOUDNESS_HOP_S)
    power = np.convolve(10.0 ** (db / 10.0) * voiced, np.ones(k), "valid")
    share = np.convolve(voiced.astype(np.float64), np.ones(k), "valid")
    full = share > 0.5 * k
    swells = 10.0 * np.log10(power[full] / share[full]) if full.any() else np.zeros(1)
    return {"loudness_variation": float(swells.std()),
            "syllable_rate": float(len(nuclei) / (speaking.sum() * LOUDNESS_HOP_S))}


def delivery_correlation(waves: list, positions: list[np.ndarray], groups: list | None = None,
                         fps: float = FPS) -> dict:
    """Pearson correlation across clips of the mean faster-wrist speed with each ``delivery``
    measure: does the motion get livelier with the voice? With ``groups`` (a label per clip, e.g.
    its speaker), the mean of the correlations within each group of at least 3 clips, so that
    differences between speakers do not count; NaN when no group has 3 clips."""
    speed = np.array([float(faster_wrist_speed(p, fps).mean()) for p in positions])
    measures = [delivery(w) for w in waves]
    labels = np.array(groups if groups is not None else [0] * len(waves), dtype=object)
    out = {}
    for name in ("loudness_variation", "syllable_rate"):
        values = np.array([m[name] for m in measures])
        within = [_pearson(speed[labels == g], values[labels == g])
                  for g in dict.fromkeys(labels) if np.sum(labels == g) >= 3]
        out[name] = float(np.mean(within)) if within else float("nan")
    return out


# ----------------------------------------------------------------------------- stressed syllables
# A timing measure for recordings that come with no stroke apexes (real speech): strokes should
# end where a listener hears stress. The loudest syllables stand for the stressed ones, and the
# synthesizer ends a stroke on its syllable's onset, about 0.1 s before the vowel's loudness peak
# (on the corpus's test clips, 44 % of the planned apexes lie 3 +- 1 frames before a stressed
# syllable's peak, against 10 % with the audio shifted; the corpus's ratio is 0.94 with no lead,
# 1.41 at 0.05 s, 1.46 at 0.1 s, 1.14 at 0.15 s), so each apex is taken that long before its
# syllable's peak. Peaks are found on loudness smoothed over 0.15 s and at least 0.25 s apart, so
# that one syllable gives one peak.
STRESS_SMOOTH_S = 0.15
STRESS_MIN_GAP_S = 0.25
STRESSED_SHARE = 0.4  # the most prominent 40 % of the syllables count as stressed
NUCLEUS_AFTER_APEX_S = 0.1


def stressed_syllables(wave: np.ndarray, sr: int = SAMPLE_RATE, share: float = STRESSED_SHARE) -> np.ndarray:
    """Times in s of the most prominent ``share`` of the syllable nuclei (``syllable_nuclei`` on
    loudness smoothed over STRESS_SMOOTH_S, STRESS_MIN_GAP_S apart); empty for silence."""
    times, prominence = syllable_nuclei(loudness_db(wave, sr), STRESS_MIN_GAP_S, STRESS_SMOOTH_S)
    if len(times) == 0:
        return times
    return times[prominence >= np.quantile(prominence, 1.0 - share)]


def stressed_syllable_apexes(wave: np.ndarray, num_frames: int, sr: int = SAMPLE_RATE, fps: float = FPS) -> np.ndarray:
    """Frames (inside ``[0, num_frames)``) where a stroke timed to the stressed syllables of
    ``wave`` ends: NUCLEUS_AFTER_APEX_S before each of ``stressed_syllables``."""
    frames = np.rint((stressed_syllables(wave, sr) - NUCLEUS_AFTER_APEX_S) * fps).astype(np.int64)
    return frames[(frames >= 0) & (frames < num_frames)]


def syllable_apex_ratio(positions: np.ndarray, wave: np.ndarray, sr: int = SAMPLE_RATE, fps: float = FPS) -> float:
    """``apex_speed_ratios`` at ``stressed_syllable_apexes``: the faster wrist's speed 0.1 s before
    the apex of a stroke timed to each stressed syllable, over its mean; NaN when the clip has no
    stressed syllable. 1 means no timing. The synthetic corpus's own motion scores about 1.46 on
    its test clips, and 1.00 against its audio shifted by half the clip."""
    ratios = apex_speed_ratios(positions, stressed_syllable_apexes(wave, len(positions), sr, fps), fps)
    return float(ratios.mean()) if len(ratios) else float("nan")
