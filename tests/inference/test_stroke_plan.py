"""The stroke plan stage 2's body reads: the same bumps for the corpus's apexes and the head's,
peaks picked above a threshold, a bounded reach in time, and a threshold calibrated on the data's
stroke rate."""
import numpy as np
import pytest

from gestura.inference.stroke_plan import (
    APEX_FLOOR, APEX_SIGMA, GRID, PEAK_RADIUS, RATE_SHARE, SPEECH_RANGE_DB, StrokeRate, apex_bumps, calibrate_threshold,
    plan_apexes, spoken_frames, stroke_plan, window_frames,
)


def test_an_apex_becomes_a_gaussian_bump_of_peak_one():
    apex = np.zeros(30)
    apex[10] = 1
    bumps = apex_bumps(apex)
    assert bumps.dtype == np.float32 and bumps.shape == (30,)
    assert bumps[10] == 1.0
    assert bumps[9] == bumps[11] == pytest.approx(np.exp(-0.5 / APEX_SIGMA ** 2))
    assert bumps[12] == pytest.approx(np.exp(-2 / APEX_SIGMA ** 2))
    radius = int(np.ceil(3 * APEX_SIGMA))
    assert np.all(bumps[:10 - radius] == 0) and np.all(bumps[10 + radius + 1:] == 0)


def test_overlapping_bumps_keep_the_larger_value_and_clip_at_the_ends():
    apex = np.zeros((2, 12))
    apex[0, [0, 3]] = 1
    apex[1, 11] = 1
    bumps = apex_bumps(apex)
    one = apex_bumps(np.eye(12)[0])
    other = apex_bumps(np.eye(12)[3])
    np.testing.assert_array_equal(bumps[0], np.maximum(one, other))
    assert bumps[1, 11] == 1.0 and bumps[1, 10] == pytest.approx(np.exp(-0.5 / APEX_SIGMA ** 2))


def test_peaks_above_the_threshold_are_planned_and_close_smaller_ones_are_not():
    p = np.full(40, 0.1, np.float32)
    p[5] = 0.9          # a clear peak
    p[5 + PEAK_RADIUS] = 0.8   # within the radius of a larger one: dropped
    p[20] = 0.45        # below the threshold
    p[30] = p[31] = 0.7  # a flat top: its first frame
    p[39] = 0.6          # at the end: kept
    planned = plan_apexes(p, 0.5)
    assert np.flatnonzero(planned).tolist() == [5, 30, 39]
    assert np.flatnonzero(plan_apexes(p, 0.4)).tolist() == [5, 20, 30, 39]


def test_float_noise_does_not_move_a_peak_between_nearly_equal_frames():
    p = np.full(20, 0.1, np.float32)
    p[8], p[9] = 0.7, 0.7 + 1e-6  # a flat top: one engine's rounding against another's
    assert np.flatnonzero(plan_apexes(p, 0.5)).tolist() == [8]
    p[9] = 0.7 - 1e-6
    assert np.flatnonzero(plan_apexes(p, 0.5)).tolist() == [8]


def test_a_planned_frame_depends_on_the_probabilities_within_the_radius_only():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(3, 60)).astype(np.float32)
    t = 25
    changed = p.copy()
    changed[:, t + PEAK_RADIUS + 1:] = rng.uniform(size=(3, 60 - t - PEAK_RADIUS - 1))
    changed[:, :t - PEAK_RADIUS] = rng.uniform(size=(3, t - PEAK_RADIUS))
    np.testing.assert_array_equal(plan_apexes(changed, 0.3)[:, t], plan_apexes(p, 0.3)[:, t])
    # The plan the body reads: the bumps add their own reach.
    reach = PEAK_RADIUS + int(np.ceil(3 * APEX_SIGMA))
    far = p.copy()
    far[:, t + reach + 1:] = 0
    far[:, :t - reach] = 0
    np.testing.assert_array_equal(stroke_plan(far, 0.3)[:, t], stroke_plan(p, 0.3)[:, t])


def test_calibration_plans_as_many_apexes_as_the_data_has():
    rng = np.random.default_rng(1)
    # Distinct values on the comparison grid, so that no two peaks tie.
    clips = [(rng.permutation(300) * 3 + k + 1).astype(np.float32) * GRID for k in range(3)]
    counts = [7, 4, 9]
    threshold = calibrate_threshold(clips, counts)
    assert 0 < threshold < 1
    assert sum(int(plan_apexes(p, threshold).sum()) for p in clips) == sum(counts)


def test_calibration_without_apexes_says_so():
    with pytest.raises(ValueError, match="no apexes"):
        calibrate_threshold([np.full(50, 0.2, np.float32)], [0])


def peaks_at(values, every=30, frames=None):
    """A probability curve (frames,) of 0.05 with a peak of each of ``values`` every ``every`` frames."""
    p = np.full(frames or every * (len(values) + 1), 0.05)
    for i, value in enumerate(values):
        p[every * (i + 1)] = value
    return p


def test_stroke_rate_plans_the_styles_rate_at_the_voices_highest_peaks():
    # 10 s of speech whose head is unsure: no peak reaches the calibrated 0.45. A style that plans
    # 0.4 / RATE_SHARE strokes per second on its own speech wants 4 here: the four highest peaks.
    p = peaks_at([0.3, 0.25, 0.35, 0.22, 0.3, 0.21, 0.24, 0.28], every=33, frames=300)
    rate = StrokeRate(rate=0.4 / RATE_SHARE, ceiling=0.45)
    threshold = rate.threshold(p, slice(0, 300), np.ones(300, bool))
    assert np.round(p[plan_apexes(p, threshold)], 3).tolist() == [0.3, 0.35, 0.3, 0.28]
    assert not plan_apexes(p, 0.45).any()


def test_stroke_rate_never_raises_the_threshold_nor_goes_below_the_floor():
    sure = peaks_at([0.9] * 9, every=30, frames=300)  # a head surer than the calibration: 9 strokes
    assert StrokeRate(rate=0.3, ceiling=0.45).threshold(sure, slice(0, 300), np.ones(300, bool)) == 0.45
    unsure = peaks_at([0.12, 0.15, 0.1], every=60, frames=300)  # nothing but noise
    threshold = StrokeRate(rate=2.0, ceiling=0.45).threshold(unsure, slice(0, 300), np.ones(300, bool))
    assert threshold == APEX_FLOOR and not plan_apexes(unsure, threshold).any()


def test_pauses_ask_for_no_strokes():
    levels = np.concatenate([np.full(100, -20.0), np.full(200, -20.0 - SPEECH_RANGE_DB - 1), np.full(50, -25.0)])
    spoken, loudest = spoken_frames(levels)
    assert spoken.sum() == 150 and loudest == -20.0
    # Loudness is judged against the loudest frame so far: a quiet start counts until louder speech.
    spoken, _ = spoken_frames(np.array([-70.0, -70.0, -20.0, -70.0]))
    assert spoken.tolist() == [True, True, True, False]
    # Digital silence is never speech, not even before anything louder (the features' floor is -80 dB).
    spoken, loudest = spoken_frames(np.array([-80.0, -80.0, -30.0, -80.0]))
    assert spoken.tolist() == [False, False, True, False] and loudest == -30.0
    # 10 s of which 6 s are a pause: 4 s of speech at 0.5 strokes per second want 2 strokes.
    p = peaks_at([0.3, 0.28, 0.26, 0.24, 0.22], every=50, frames=300)
    quiet = np.where(np.arange(300) < 120, -20.0, -90.0)
    threshold = StrokeRate(rate=0.5 / RATE_SHARE, ceiling=0.45).threshold(p, slice(0, 300), spoken_frames(quiet)[0])
    assert plan_apexes(p, threshold).sum() == 2


def test_stroke_rate_counts_every_frame_of_a_clip_once_window_by_window():
    # Windows of a 2-code prefix (8 frames) and a 16-code span (64 frames), as generation runs them.
    counted, first = [], 0
    total = 16 * 4 * 5 + 12
    while first < total:
        start = max(first - 8, 0)
        stop = min(first + 64, total)
        frames = window_frames(first - start, stop - start, final=stop == total)
        counted += list(range(start + frames.start, start + frames.stop))
        first = stop
    assert counted == list(range(total))
    assert window_frames(0, 72, final=False) == slice(0, 72 - PEAK_RADIUS)


def test_stroke_rate_is_the_same_in_one_window_and_in_several():
    rng = np.random.default_rng(0)
    p = np.clip(rng.normal(0.2, 0.08, 400), 0, 1)
    whole = StrokeRate(rate=0.8, ceiling=0.45)
    one = whole.threshold(p, window_frames(0, 400, final=True), np.ones(400, bool))
    pieces = StrokeRate(rate=0.8, ceiling=0.45)
    for start, first, stop in ((0, 0, 200), (192, 200, 400)):
        frames = window_frames(first - start, stop - start, final=stop == 400)
        last = pieces.threshold(p[start:stop], frames, np.ones(frames.stop - frames.start, bool))
    assert last == one


def test_stroke_rate_refuses_nonsense():
    with pytest.raises(ValueError, match="rate > 0"):
        StrokeRate(rate=0.0, ceiling=0.45)
    with pytest.raises(ValueError, match="floor <= ceiling"):
        StrokeRate(rate=1.0, ceiling=0.1)
