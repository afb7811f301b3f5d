"""The diffusion schedule and DDIM step (``inference/diffusion.py``): known values."""
import math

import numpy as np
import pytest

from gestura.inference.diffusion import (alpha_bar, ddim_step, sampling_times, sinusoidal_positions,
                                         timestep_features, TIME_FEATURES)


def test_the_cosine_schedule_runs_from_signal_to_noise():
    t = np.linspace(0, 1, 101)
    a = alpha_bar(t)
    assert a[0] == pytest.approx(1.0) and a[-1] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(a) < 0)
    # Nichol & Dhariwal's f(t) / f(0) at t = 0.5.
    s = 0.008
    expected = math.cos((0.5 + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
    assert alpha_bar(0.5) == pytest.approx(expected)


def test_ddim_with_the_true_clean_signal_lands_on_the_same_noise_path():
    rng = np.random.default_rng(0)
    x0, eps = rng.standard_normal((2, 5, 3))
    t, t_next = 0.8, 0.3
    x_t = math.sqrt(alpha_bar(t)) * x0 + math.sqrt(1 - alpha_bar(t)) * eps
    expected = math.sqrt(alpha_bar(t_next)) * x0 + math.sqrt(1 - alpha_bar(t_next)) * eps
    np.testing.assert_allclose(ddim_step(x_t, x0, t, t_next), expected, atol=1e-12)
    np.testing.assert_allclose(ddim_step(x_t, x0, t, 0.0), x0, atol=1e-12)


def test_sampling_visits_evenly_spaced_times_and_needs_a_step():
    np.testing.assert_allclose(sampling_times(4), [1.0, 0.75, 0.5, 0.25, 0.0])
    with pytest.raises(ValueError, match="at least 1 step"):
        sampling_times(0)


def test_fixed_features_have_their_known_values():
    f = timestep_features(np.array([0.0, 0.001]))
    assert f.shape == (2, TIME_FEATURES) and f.dtype == np.float32
    np.testing.assert_allclose(f[0], np.r_[np.ones(TIME_FEATURES // 2), np.zeros(TIME_FEATURES // 2)])
    assert f[1, TIME_FEATURES // 2] == pytest.approx(math.sin(1.0))  # step 1 at the first frequency (1)
    p = sinusoidal_positions(3, 4)
    np.testing.assert_allclose(p[2], [math.sin(2), math.cos(2), math.sin(2e-2), math.cos(2e-2)], rtol=1e-6)
