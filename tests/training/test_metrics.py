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


def _track(step_speeds) -> np.ndarray:
    """(N,) positions whose frame-to-frame steps move at ``step_speeds`` m/s (step i: frame i-1 to
    i; the first entry is unused). Central differences then give frame i the mean of steps i and
    i + 1: exactly the step speed inside a stretch of equal steps."""
    steps = np.asarray(step_speeds, np.float64) / FPS
    steps[0] = 0.0
    return np.cumsum(steps)


def _wrists(right_steps, left_steps=None) -> np.ndarray:
    pos = np.zeros((len(right_steps), 55, 3))
    pos[:, 21, 0] = _track(right_steps)
    if left_steps is not None:
        pos[:, 20, 2] = _track(left_steps)
    return pos


def test_opening_leap_is_the_first_half_seconds_top_speed_over_the_rest_of_the_clip():
    # Right wrist 3 m/s on steps 5-7 (frames 5 and 6), then 16 two-step strokes of 1.5 m/s (a frame
    # each at 1.5) among 0.2 m/s; the left wrist 1 m/s on frames 19-20. 99th percentile of frames
    # 15-214: 1.5 m/s.
    steps = np.full(215, 0.2)
    steps[5:8] = 3.0
    steps[40:200:10] = steps[41:201:10] = 1.5
    left = np.zeros(215)
    left[20] = 2.0
    assert metrics.opening_leap(_wrists(steps, left)) == pytest.approx(2.0)
    steps[5:8] = 0.75
    assert metrics.opening_leap(_wrists(steps)) == pytest.approx(0.5)
    assert np.isnan(metrics.opening_leap(_wrists(steps[:15])))
    still_after = np.zeros(415)
    still_after[5:8] = 3.0
    still_after[100] = 1.0  # 2 moving frames of the 400 after the opening: the 99th percentile is 0
    assert np.isnan(metrics.opening_leap(_wrists(still_after)))


def test_apex_ratio_is_the_faster_wrists_speed_a_tenth_before_each_apex_over_its_mean():
    # Right wrist: 1 m/s over steps 21-40, 0.2 m/s elsewhere. Frame speeds: 1.0 on frames 21-39,
    # 0.6 on frames 20 and 40, 0.2 on the other 69 frames: mean 34 / 90.
    steps = np.full(90, 0.2)
    steps[21:41] = 1.0
    pos = _wrists(steps)
    # Frame 1 has no frame 0.1 s before it: left out.
    np.testing.assert_allclose(metrics.apex_speed_ratios(pos, [33, 60, 1]), [90 / 34, 0.2 * 90 / 34])
    assert metrics.apex_ratio([pos], [[33, 60]]) == pytest.approx(0.6 * 90 / 34)
    # Every apex counts once over clips: (1.0 + 0.2 + 1.0) / 3 in units of 90 / 34.
    assert metrics.apex_ratio([pos, pos], [[33, 60], [33]]) == pytest.approx(2.2 / 3 * 90 / 34)
    # A left wrist at 0.3 m/s is the faster one wherever the right moves at 0.2: mean 40.9 / 90.
    both = _wrists(steps, np.full(90, 0.3))
    np.testing.assert_allclose(metrics.apex_speed_ratios(both, [33, 60]), [90 / 40.9, 0.3 * 90 / 40.9])
    assert math.isnan(metrics.apex_ratio([pos], [[]]))


def test_stroke_plan_scores_count_apexes_found_within_three_frames():
    from gestura.inference.stroke_plan import apex_bumps

    truth = np.zeros(100)
    truth[[20, 50, 80]] = 1
    perfect = apex_bumps(truth)
    # Planned 23 finds 20 (3 frames), 55 is 5 from 50 (not found), 81 finds 80: 2 of 3 planned are
    # right, 2 of 3 apexes are found. Clip 2: one apex, nothing planned.
    scores = metrics.stroke_plan_scores([perfect, np.zeros(40)], [[23, 55, 81], []], [[20, 50, 80], [10]])
    assert scores["plan_precision"] == pytest.approx(2 / 3)
    assert scores["plan_recall"] == pytest.approx(2 / 4)
    # Correlation: 1 for the bumps themselves, 0 for a constant head (nothing to relate).
    assert scores["head_correlation"] == pytest.approx(0.5)
    # The same probabilities half a second later, between the apexes, do not follow them.
    late = metrics.stroke_plan_scores([np.roll(perfect, 15)], [[35, 65, 95]], [[20, 50, 80]])
    assert late["head_correlation"] < 0 and late["plan_precision"] == late["plan_recall"] == 0
    assert math.isnan(metrics.stroke_plan_scores([np.zeros(10)], [[]], [[]])["plan_precision"])

def test_corpus_correlation_of_the_same_a_scaled_and_a_mirrored_speed():
    rng = np.random.default_rng(4)
    steps = rng.uniform(0.1, 1.0, 120)
    pos = _wrists(steps)
    assert metrics.corpus_correlation([pos], [pos]) == pytest.approx(1.0)
    assert metrics.corpus_correlation([pos], [2 * pos]) == pytest.approx(1.0)  # twice as fast, same timing
    # Steps of 1.1 - s: every speed (and its 0.1 s average) is 1.1 minus the other's: r = -1.
    mirrored = _wrists(1.1 - steps)
    assert metrics.corpus_correlation([pos], [mirrored]) == pytest.approx(-1.0)
    assert metrics.corpus_correlation([pos, pos], [pos, mirrored]) == pytest.approx(0.0, abs=1e-9)
    assert metrics.corpus_correlation([pos], [np.zeros_like(pos)]) == 0.0  # a still motion relates to nothing


def test_rest_in_silence_is_the_gap_speed_over_the_speech_speed_without_the_margins():
    # Speech at 0.4 m/s on frames 0-59 and 300-359; the gap is frames 60-299, its first and last
    # second (frames 60-89 and 270-299) move fast at 2 m/s and are left out; inside it 0.1 m/s.
    steps = np.full(360, 0.4)
    steps[61:90] = 2.0
    steps[90:271] = 0.1
    steps[271:300] = 2.0
    pos = _wrists(steps, steps)
    assert metrics.rest_in_silence(pos, (60, 300)) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="longer than"):
        metrics.rest_in_silence(pos, (60, 110))


def test_frozen_arms_counts_wrists_held_raised_with_a_still_elbow_for_three_seconds():
    n = 300
    pos = np.zeros((n, 55, 3))
    pos[:, 21, 1] = 0.2  # right wrist 20 cm above the pelvis
    pos[:, 20, 1] = -0.3  # the left one hangs low: never counts, although its elbow is still
    pos[150:, 19, 0] = 0.5  # the right elbow jumps 50 cm at frame 150
    # A frame's window is the 91 frames within 1.5 s: it holds the jump for frames 105-194.
    expected = np.ones(n, bool)
    expected[105:195] = False
    np.testing.assert_array_equal(metrics.frozen_arm_frames(pos), expected)
    assert metrics.frozen_arms(pos) == pytest.approx(210 / 300)
    assert metrics.frozen_arms([pos, np.zeros((100, 55, 3))]) == pytest.approx(210 / 400)
    low = pos.copy()
    low[:, 21, 1] = 0.14  # below 15 cm
    assert metrics.frozen_arms(low) == 0.0
    low[:100, 21, 1] = 0.2  # raised on frames 0-99 only: the whole window of frames 0-54
    assert metrics.frozen_arms(low) == pytest.approx(55 / 300)
    beating = pos.copy()
    beating[::20, 21, 1] = 0.1  # the forearm drops below 15 cm now and then, the elbow still
    assert metrics.frozen_arms(beating) == 0.0
    moving = pos.copy()
    moving[:, 19, 2] = 0.03 * np.sin(np.arange(n) / 5)  # a 6 cm sway stays inside 8 cm
    assert metrics.frozen_arms(moving) == pytest.approx(210 / 300)
    moving[:, 19, 2] *= 2  # 12 cm does not
    assert metrics.frozen_arms(moving) == 0.0


def test_raised_arms_count_a_hand_kept_up_for_six_seconds_beating_or_not():
    n = 600
    pos = np.zeros((n, 55, 3))
    pos[:, 20, 1] = -0.3  # the left hand hangs
    pos[:300, 21, 1] = 0.2 + 0.05 * np.sin(np.arange(300) / 3)  # right hand up and beating for 10 s
    pos[:300, 19, 0] = 0.1 * np.sin(np.arange(300) / 7)  # its elbow moving: not frozen
    pos[300:, 21, 1] = -0.3  # then down
    # A frame's window is the 181 frames within 3 s: up over all of it for frames 0-209.
    expected = np.zeros(n, bool)
    expected[:210] = True
    np.testing.assert_array_equal(metrics.raised_arm_frames(pos), expected)
    assert metrics.raised_arms([pos, np.zeros((400, 55, 3))]) == pytest.approx(210 / 1000)
    assert not metrics.frozen_arm_frames(pos).any()
    dropped = pos.copy()
    dropped[150, 21, 1] = 0.1  # once below 15 cm: only frames whose window, cut at the clip's
    np.testing.assert_array_equal(metrics.raised_arm_frames(dropped), np.arange(n) < 60)  # start, ends before it
    pos[:, 0, 1] = 0.1  # measured from the pelvis
    assert metrics.raised_arm_frames(pos).sum() == 0


def test_derived_apex_is_the_first_speed_minimum_after_a_stroke_that_then_holds():
    # A stroke (speed up to 1.2 m/s), its end at frame 40 (0.1 m/s), a slow glide (0.3 m/s peak),
    # a stop; later a fast move (1 m/s) that ends in another fast one: a preparation, no apex.
    speed = np.full(150, 0.05)
    speed[25:41] = np.interp(np.arange(25, 41), [25, 32, 40], [0.05, 1.2, 0.1])
    speed[41:60] = np.interp(np.arange(41, 60), [40, 48, 59], [0.1, 0.3, 0.02])
    speed[90:121] = np.interp(np.arange(90, 121), [90, 97, 103, 110, 120], [0.05, 1.0, 0.4, 1.3, 0.05])
    pos = _wrists(speed, speed)  # both wrists together: one event
    events = np.flatnonzero(metrics.derive_stroke_apexes(pos))
    assert len(events) == 2 and abs(events[0] - 40) <= 1, events  # the stroke's end; the move's end
    assert 115 <= events[1] <= 121, events
    assert metrics.derive_stroke_apexes(np.zeros((30, 55, 3))).sum() == 0


def test_rms_loudness_and_jaw_opening_known_values():
    wave = np.tile([0.5, -0.5], 8000)  # 1 s of a square wave: RMS 0.5 everywhere
    wave[8000:] *= 0.2
    rms = metrics.rms_loudness(wave, 30)
    assert rms[:14] == pytest.approx(np.full(14, 0.5))
    assert rms[16:] == pytest.approx(np.full(14, 0.1))
    poses = np.zeros((3, 55, 3))
    poses[:, 22, 0] = [0.0, 0.1, 0.3]
    poses[:, 22, 1] = 9.0  # not an opening
    np.testing.assert_allclose(metrics.jaw_opening(poses), [0.0, 0.1, 0.3])
    np.testing.assert_allclose(metrics.jaw_opening(poses.reshape(3, 165)), [0.0, 0.1, 0.3])


def test_timing_control_is_high_for_motion_led_by_the_speech_and_near_zero_with_shifted_audio():
    rng = np.random.default_rng(5)
    seconds = 20.0
    onsets = np.sort(rng.uniform(0.5, seconds - 0.5, 40))  # irregular, like syllables
    wave = click_audio(seconds, onsets, rng)
    n = int(seconds * FPS)
    envelope = metrics.onset_envelope(wave, n)
    # Upper-body speed made from the envelope 0.2 s later: the motion leads the speech by 0.2 s.
    lead = np.concatenate([envelope[6:], np.zeros(6)])
    pos = np.zeros((n, 55, 3))
    pos[:, list(UPPER_JOINTS), 0] = _track(lead)[:, None]
    timed = metrics.body_timing_control(pos, wave)
    assert timed > 0.5, timed
    # The same motion against the audio 5 s later (wrapped round): timing broken, same signals.
    # 0.06-0.07 over three seeds: the best of 37 lags of unrelated signals is a little above 0.
    shifted = metrics.body_timing_control(pos, np.roll(wave, 5 * SAMPLE_RATE))
    assert abs(shifted) < 0.15, shifted
    # The lag search reaches 0.6 s either way, not 1 s.
    late = np.zeros((n, 55, 3))
    late[:, list(UPPER_JOINTS), 0] = _track(np.concatenate([np.zeros(30), envelope[:-30]]))[:, None]
    assert metrics.body_timing_control(late, wave) < timed - 0.3
    # A signal equal to the envelope 6 frames later correlates exactly 1 at lag 6.
    assert metrics.lagged_correlations(np.roll(envelope, 6), envelope, [6])[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 3 s"):
        metrics.timing_control(envelope[:89], envelope[:89])


def test_body_timing_control_can_leave_out_the_opening():
    # A body that moves with the speech in its first second only (the move from the start pose
    # into the first gesture) and is still after it: timed as a whole, untimed without the opening.
    rng = np.random.default_rng(8)
    seconds = 8.0
    wave = click_audio(seconds, np.sort(np.concatenate([[0.1, 0.5], rng.uniform(1.0, seconds - 0.3, 18)])), rng)
    n = int(seconds * FPS)
    envelope = metrics.onset_envelope(wave, n)
    skip = int(round(metrics.OPENING_SKIP_S * FPS))
    speed = np.where(np.arange(n) < skip, np.concatenate([envelope[6:], np.zeros(6)]), 0.0)  # 0.2 s ahead
    pos = np.zeros((n, 55, 3))
    pos[:, list(UPPER_JOINTS), 0] = _track(speed)[:, None]
    assert metrics.body_timing_control(pos, wave) > 0.1
    assert metrics.body_timing_control(pos, wave, skip_s=metrics.OPENING_SKIP_S) == 0.0
    # Left out of both signals alike: a body that follows the speech throughout keeps its score.
    led = np.zeros((n, 55, 3))
    led[:, list(UPPER_JOINTS), 0] = _track(np.concatenate([envelope[6:], np.zeros(6)]))[:, None]
    assert metrics.body_timing_control(led, wave, skip_s=metrics.OPENING_SKIP_S) > 0.5
    with pytest.raises(ValueError, match="at least 3 s"):
        metrics.body_timing_control(pos[:int(3.5 * FPS)], wave, skip_s=metrics.OPENING_SKIP_S)


def test_jaw_timing_control_follows_loudness_and_speech_timing_control_averages_clips():
    rng = np.random.default_rng(6)
    seconds = 12.0
    wave = click_audio(seconds, np.sort(rng.uniform(0.5, seconds - 0.5, 25)), rng)
    n = int(seconds * FPS)
    poses = np.zeros((n, 55, 3))
    poses[:, 22, 0] = metrics.rms_loudness(wave, n)  # the jaw opens with the loudness, no lag
    pos = np.zeros((n, 55, 3))
    assert metrics.jaw_timing_control(poses, wave) > 0.8
    assert abs(metrics.jaw_timing_control(poses, np.roll(wave, 5 * SAMPLE_RATE))) < 0.15
    both = metrics.speech_timing_control([pos, pos[:60]], [poses, poses[:60]], [wave, wave[:32000]])
    assert both["jaw"] == pytest.approx(metrics.jaw_timing_control(poses, wave))  # the 2 s clip is left out
    assert both["body"] == pytest.approx(0.0, abs=1e-9)  # a still body: no correlation at any lag
    assert math.isnan(metrics.speech_timing_control([pos[:60]], [poses[:60]], [wave[:32000]])["body"])


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
    # Fingers alone jerking: the body joints' jitter is 0, the 55-joint mean is not.
    fingers = np.zeros((60, 55, 3))
    fingers[:, 25:, 1] = 0.5 * t[:, None] ** 3
    assert metrics.jitter(fingers, joints=metrics.BODY_JOINTS) == 0.0
    assert metrics.jitter(fingers) == pytest.approx(3.0 * 30 / 55, rel=1e-6)
    assert metrics.jitter(pos, joints=metrics.BODY_JOINTS) == pytest.approx(3.0, rel=1e-6)
    assert metrics.BODY_JOINTS == tuple(range(22))


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


def test_delivery_measures_loudness_variation_and_syllable_rate():
    sr = metrics.SAMPLE_RATE
    t = np.arange(4 * sr) / sr
    tone = np.sin(2 * np.pi * 220 * t)
    # Two seconds at amplitude 1, two at 0.1: loudness 20 dB apart, so its spread is 10 dB.
    steps = tone * np.where(t < 2, 1.0, 0.1)
    assert metrics.delivery(steps)["loudness_variation"] == pytest.approx(10.0, abs=0.5)
    # Syllables: 60 ms bursts 4 times a second over a quiet floor.
    bursts = tone * np.where((t % 0.25) < 0.06, 1.0, 0.02)
    assert metrics.delivery(bursts)["syllable_rate"] == pytest.approx(4.0, abs=0.5)
    assert metrics.delivery(np.zeros(sr)) == {"loudness_variation": 0.0, "syllable_rate": 0.0}


def test_delivery_correlation_is_positive_when_livelier_voices_move_more():
    sr = metrics.SAMPLE_RATE
    t = np.arange(3 * sr) / sr
    waves, positions = [], []
    for k, rate in enumerate((3.0, 4.0, 5.0, 6.0)):  # gaps under PAUSE_S: all speaking time
        waves.append(np.sin(2 * np.pi * 200 * t) * np.where((t % (1 / rate)) < 0.06, 1.0, 0.02))
        p = np.zeros((90, 55, 3))
        p[:, 20, 0] = np.sin(np.arange(90) / 5.0) * 0.05 * (k + 1)  # faster for livelier voices
        positions.append(p)
    assert metrics.delivery_correlation(waves, positions)["syllable_rate"] > 0.9
    # Within groups: a second speaker who moves three times as fast, as lively, counts alike.
    faster = [p * 3.0 for p in positions]
    grouped = metrics.delivery_correlation(waves + waves, positions + faster, groups=["a"] * 4 + ["b"] * 4)
    assert grouped["syllable_rate"] > 0.9


def test_stressed_syllables_are_the_loudest_nuclei_and_strokes_timed_to_them_score_high():
    sr = metrics.SAMPLE_RATE
    seconds = 10.0
    t = np.arange(int(seconds * sr)) / sr
    # Syllables every 0.4 s from 1 s on (0.1 s Hann bursts over a quiet floor); every third is
    # 10 dB louder: stressed.
    centres = np.arange(1.0, 9.0, 0.4)
    loud = np.arange(len(centres)) % 3 == 0
    envelope = np.full_like(t, 0.01)
    for centre, stressed in zip(centres, loud):
        inside = np.abs(t - centre) < 0.05
        envelope[inside] += (1.0 if stressed else 0.316) * np.sin(np.pi * (t[inside] - centre + 0.05) / 0.1) ** 2
    wave = np.sin(2 * np.pi * 200 * t) * envelope
    found = metrics.stressed_syllables(wave)
    # 40 % of the 20 nuclei: the 7 loud ones and one of the others.
    assert len(found) == 8
    nearest = np.abs(found[:, None] - centres[loud][None, :]).min(axis=0)
    assert (nearest < 0.02).all(), found
    n = int(seconds * FPS)
    apexes = metrics.stressed_syllable_apexes(wave, n)
    assert set(np.rint((centres[loud] - 0.1) * FPS).astype(int)) <= set(apexes.tolist())

    # A wrist that moves at 0.1 m/s and at 1 m/s on the frames 0.1 s before those apexes.
    speed = np.full(n, 0.1)
    speed[apexes - 3] = 1.0
    pos = np.zeros((n, 55, 3))
    pos[:, metrics.WRIST_JOINTS[0], 0] = np.cumsum(speed) / FPS
    ratios = metrics.apex_speed_ratios(pos, apexes)
    assert metrics.syllable_apex_ratio(pos, wave) == pytest.approx(ratios.mean())
    assert metrics.syllable_apex_ratio(pos, wave) > 3.0
    # The same motion against the audio shifted by 0.6 s: the strokes no longer meet the stress.
    assert metrics.syllable_apex_ratio(pos, np.roll(wave, int(0.6 * sr))) < 1.2
    assert np.isnan(metrics.syllable_apex_ratio(pos, np.zeros_like(wave)))


def test_seam_jitter_finds_jumps_where_windows_meet():
    t = np.arange(200) / 30.0
    smooth = np.zeros((200, 55, 3))
    smooth[:, :, 0] = np.sin(2 * np.pi * 0.7 * t)[:, None] * 0.1
    assert metrics.seam_jitter(smooth, every=50) == pytest.approx(1.0, abs=0.1)
    jumpy = smooth.copy()
    for join in (50, 100, 150):
        jumpy[join:, :, 1] += 0.02  # each window starts 2 cm off where the last one ended
    assert metrics.seam_jitter(jumpy, every=50) > 5.0
