"""Metrics on hand-made cases with known answers."""
import math

import numpy as np
import pytest
from beat2_fixture import SAMPLE_RATE, click_audio

from gestura.rigs.skeleton import FOOT_JOINTS, UPPER_JOINTS
from gestura.training import metrics

FPS = 30


def circling_positions(seconds: float, beats: np.ndarray, shift: float = 0.0, depth: float = 0.5) -> np.ndarray:
    """Every upper-body joint circles at a speed that dips to (1 - depth) at each beat (+ shift):
    its speed minima sit exactly on the beats, and stay above EMAGE's 0.3 threshold."""
    t = np.arange(int(seconds * FPS)) / FPS
    speed = 1.0 - depth * np.exp(-((t[:, None] - (beats[None, :] + shift)) ** 2) / (2 * 0.06**2)).sum(axis=1)
    # Trapezoid integral: the central-difference speed is then symmetric about each beat frame.
    angle = np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) / 2)]) / FPS / 0.2  # radius 0.2 m
    pos = np.zeros((len(t), 55, 3))
    for j in UPPER_JOINTS:
        pos[:, j, 0] = 0.2 * np.cos(angle) + j
        pos[:, j, 1] = 0.2 * np.sin(angle)
    return pos


def test_onsets_of_noise_bursts_are_found_where_the_bursts_start():
    rng = np.random.default_rng(0)
    beats = np.arange(1.0, 9.5, 0.75)
    wave = click_audio(10.0, beats, rng)
    onsets = metrics.onset_times(wave)
    onsets = onsets[onsets > 0.5]  # the noise floor starting after the zero padding is an onset too
    nearest = np.abs(onsets[:, None] - beats[None, :]).min(axis=1)
    assert (nearest < 0.07).all(), onsets  # no spurious onsets between bursts
    found = np.abs(beats[:, None] - onsets[None, :]).min(axis=1)
    assert (found <= 0.05).all(), found  # every burst found within about 1.5 hops (hop = 32 ms)


def test_onsets_of_real_speech_come_at_a_syllable_rate(speech_wav):
    import soundfile
    from scipy.signal import resample_poly

    wave, rate = soundfile.read(speech_wav, dtype="float32")
    wave = resample_poly(wave, SAMPLE_RATE, rate)
    duration = len(wave) / SAMPLE_RATE
    onsets = metrics.onset_times(wave)
    assert 1.0 * duration <= len(onsets) <= 12 * duration, (len(onsets), duration)


def test_alignment_score_known_values():
    assert metrics.alignment_score([1.0, 2.0], [1.0, 2.0]) == pytest.approx(1.0)
    assert metrics.alignment_score([1.0], [1.3]) == pytest.approx(math.exp(-0.09 / 0.18))
    assert metrics.alignment_score([1.0, 2.0], [1.3, 5.0]) == pytest.approx(
        (math.exp(-0.09 / 0.18) + math.exp(-0.49 / 0.18)) / 2
    )
    assert metrics.alignment_score([1.0], []) == 0.0


def test_bc_near_one_when_speed_minima_sit_on_onsets_and_near_chance_when_shifted():
    rng = np.random.default_rng(1)
    seconds, period = 12.0, 1.0
    beats = np.arange(0.5, seconds - 0.4, period)
    wave = click_audio(seconds, beats, rng)
    aligned = circling_positions(seconds, beats)
    mean_speed = metrics.joint_speed(aligned).mean(axis=0)
    bc = metrics.beat_consistency([aligned], [wave], mean_speed)
    assert bc > 0.95

    # Half a period off: every onset is 0.5 s from its nearest motion beat (less the detector's
    # lag of up to two hops, since librosa's peak picking at 16 kHz marks 1-2 frames per burst).
    half = metrics.beat_consistency([circling_positions(seconds, beats, shift=0.5)], [wave], mean_speed)
    onsets = metrics.onset_times(wave)
    onsets = onsets[(onsets >= 2) & (onsets <= seconds - 2)]
    assert half == pytest.approx(metrics.alignment_score(onsets, beats + 0.5), abs=0.01)
    assert half == pytest.approx(math.exp(-0.25 / 0.18), abs=0.1)

    # Shifts spread evenly over the period: the mean is the chance level for beats 1 s apart,
    # (2 / P) * integral_0^{P/2} exp(-d^2 / 2 sigma^2) dd.
    sigma = 0.3
    chance = 2 / period * sigma * math.sqrt(math.pi / 2) * math.erf(period / 2 / (sigma * math.sqrt(2)))
    shifts = np.arange(10) / 10 * period
    scores = [metrics.beat_consistency([circling_positions(seconds, beats, s)], [wave], mean_speed) for s in shifts]
    assert np.mean(scores) == pytest.approx(chance, abs=0.05)
    assert bc > chance + 0.25


def test_bc_ignores_minima_of_joints_at_rest_and_the_first_and_last_two_seconds():
    beats = np.array([1.0, 3.0, 5.0, 7.0])
    pos = circling_positions(8.0, beats)
    mean_speed = metrics.joint_speed(pos).mean(axis=0)
    # Onsets only inside the ignored ends -> no score.
    assert metrics.beat_consistency_clip(pos, np.array([1.0, 7.0]), mean_speed) is None
    # A joint whose minima are below 0.3 x its mean speed has no beats and scores 0.
    slow = pos.copy()
    slow_mean = mean_speed * 10
    assert metrics.beat_consistency_clip(slow, np.array([3.0, 5.0]), slow_mean) == 0.0
    assert metrics.beat_consistency_clip(pos, np.array([3.0, 5.0]), mean_speed) == pytest.approx(1.0, abs=1e-3)


def _wrists_with_strokes(seconds: float, strokes: np.ndarray) -> np.ndarray:
    """Both wrists slide along x with a 0.15 s speed bump at each stroke time."""
    t = np.arange(int(seconds * FPS)) / FPS
    speed = 0.05 + np.exp(-((t[:, None] - strokes[None, :]) ** 2) / (2 * 0.15**2)).sum(axis=1)
    pos = np.zeros((len(t), 55, 3))
    pos[:, [20, 21], 0] = (np.cumsum(speed) / FPS)[:, None]
    return pos


def test_sync_is_high_when_the_hands_stroke_with_the_onsets_and_near_zero_otherwise():
    rng = np.random.default_rng(3)
    seconds = 30.0
    onsets = np.sort(rng.uniform(1.0, seconds - 1.0, 40))  # irregular, like syllables
    wave = click_audio(seconds, onsets, rng)
    synced = metrics.speech_motion_sync([_wrists_with_strokes(seconds, onsets + 0.1)], [wave])
    assert synced > 0.3
    unrelated = np.sort(rng.uniform(1.0, seconds - 1.0, 40))
    ignoring = metrics.speech_motion_sync([_wrists_with_strokes(seconds, unrelated)], [wave])
    assert abs(ignoring) < 0.1
    # Strokes 0.4 s after the onsets are still within the lags it searches; 1.5 s after are not.
    assert metrics.speech_motion_sync([_wrists_with_strokes(seconds, onsets + 0.4)], [wave]) > 0.3
    assert metrics.speech_motion_sync([_wrists_with_strokes(seconds, onsets + 1.5)], [wave]) < synced - 0.2
    assert math.isnan(metrics.speech_motion_sync([_wrists_with_strokes(3.0, np.array([1.0]))], [wave[:48000]]))


def test_gesture_stats_of_a_hand_that_strokes_twice_a_second():
    # The right wrist 0.3 m above the pelvis sways 0.1 m either side once a second: speed peaks of
    # 0.1 x 2 pi = 0.63 m/s twice a second, mean speed 0.4 m/s. The left one rests 0.1 m lower.
    t = np.arange(6 * FPS) / FPS
    pos = np.zeros((len(t), 55, 3))
    pos[:, 21, 0] = 0.1 * np.sin(2 * np.pi * t)
    pos[:, 21, 1] = 0.3
    pos[:, 20, 1] = 0.2
    stats = metrics.gesture_stats(pos)
    assert stats["hand_height"] == pytest.approx(0.3)
    assert stats["wrist_speed"] == pytest.approx(0.4 / 2, rel=0.02)  # the mean over both wrists
    assert stats["stroke_rate"] == pytest.approx(11 / 6)  # the peak on the first frame has no left side
    pos[:, 21, 0] *= 0.5  # strokes below the 0.4 m/s threshold do not count
    assert metrics.gesture_stats(pos)["stroke_rate"] == 0


def test_relative_speed_is_the_upper_body_speed_over_the_training_mean():
    pos = np.zeros((31, 55, 3))
    t = np.arange(31) / FPS
    for j in UPPER_JOINTS:
        pos[:, j, 0] = 0.5 * t  # 0.5 m/s
    pos[:, 0, 1] = 10 * t  # the pelvis is not upper body: ignored
    mean = np.full(55, 0.25)
    assert metrics.relative_speed([pos], mean) == pytest.approx(2.0)
    assert metrics.relative_speed([pos, np.zeros((31, 55, 3))], mean) == pytest.approx(1.0)


def test_l1_diversity_known_value():
    pos = np.zeros((4, 55, 3))
    pos[:, 5, 0] = [0.3, -0.3, 0.3, -0.3]
    pos[:, 9, 2] = [1.0, 1.0, 1.0, 1.0]  # constant offsets do not count
    assert metrics.l1_diversity([pos]) == pytest.approx(0.3)
    still = np.ones((3, 55, 3))
    assert metrics.l1_diversity([pos, still]) == pytest.approx(0.3 * 4 / 7)


def test_fgd_identical_sets_is_zero_and_shifted_gaussians_give_the_known_value():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5000, 4))
    assert metrics.fgd(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    b = rng.standard_normal((20000, 4)) + shift
    c = rng.standard_normal((20000, 4))
    assert metrics.fgd(c, b) == pytest.approx(float(shift @ shift), rel=0.03)
    # Closed form with different covariances: |d|^2 + sum (s1 + s2 - 2 sqrt(s1 s2)) for diagonals.
    d = metrics.frechet_distance([0, 0], np.diag([1.0, 4.0]), [3, 0], np.diag([4.0, 9.0]))
    assert d == pytest.approx(9 + (1 + 4 - 4) + (4 + 9 - 12))


def test_jitter_of_a_cubic_is_six_times_its_coefficient():
    t = np.arange(60) / FPS
    pos = np.zeros((60, 55, 3))
    pos[:, :, 1] = 0.5 * t[:, None] ** 3  # jerk 3 m/s^3 for every joint
    assert metrics.jitter(pos) == pytest.approx(3.0, rel=1e-6)
    assert metrics.jitter(np.zeros((10, 55, 3))) == 0.0


def test_foot_sliding_measures_horizontal_speed_of_grounded_feet_only():
    n = 30
    t = np.arange(n) / FPS
    pos = np.zeros((n, 55, 3))
    assert metrics.foot_sliding(pos) == 0.0
    sliding = pos.copy()
    for j in FOOT_JOINTS:
        sliding[:, j, 0] = 0.5 * t  # on the ground, moving 0.5 m/s along x
    assert metrics.foot_sliding(sliding) == pytest.approx(0.5)
    # A foot that lifts off while moving does not slide; the grounded ones stand still.
    lifted = pos.copy()
    lifted[:, 7, 1] = np.where(np.arange(n) < 10, 0.0, 0.3)
    lifted[:, 7, 0] = np.where(np.arange(n) < 10, 0.0, t)
    assert metrics.foot_sliding(lifted) == pytest.approx(0.0)


def test_bc_over_clips_is_weighted_by_clip_length():
    rng = np.random.default_rng(3)
    beats_a = np.arange(0.5, 9.6, 1.0)
    beats_b = np.arange(0.5, 5.6, 1.0)
    wave_a, wave_b = click_audio(10.0, beats_a, rng), click_audio(6.0, beats_b, rng)
    pos_a, pos_b = circling_positions(10.0, beats_a), circling_positions(6.0, beats_b, shift=0.5)
    mean_speed = metrics.joint_speed(pos_a).mean(axis=0)
    a = metrics.beat_consistency([pos_a], [wave_a], mean_speed)
    b = metrics.beat_consistency([pos_b], [wave_b], mean_speed)
    both = metrics.beat_consistency([pos_a, pos_b], [wave_a, wave_b], mean_speed)
    assert both == pytest.approx((10 * a + 6 * b) / 16)
    # A clip shorter than the ignored 2 s + 2 s adds nothing.
    short = metrics.beat_consistency([pos_a, pos_b[:90]], [wave_a, wave_b[:48000]], mean_speed)
    assert short == pytest.approx(a)
