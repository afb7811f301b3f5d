"""The stroke plan stage 2's body reads: the same bumps for the corpus's apexes and the head's,
peaks picked above a threshold, a bounded reach in time, and a threshold calibrated on the data's
stroke rate."""
import numpy as np
import pytest

from gestura.inference.stroke_plan import (
    APEX_SIGMA, GRID, PEAK_RADIUS, apex_bumps, calibrate_threshold, plan_apexes, stroke_plan,
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
