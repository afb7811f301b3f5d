"""rigs/motion.py: the Motion structure."""
import numpy as np
import pytest

from gestura.rigs.motion import Motion, MotionError
from gestura.rigs.skeleton import LOWER_CONTACTS, LOWER_ROOT, LOWER_ROT6D, PART_DIMS


def _motion(n: int, value: float) -> Motion:
    rest = Motion.rest(n)
    return Motion(rest.poses + value, rest.trans + value, rest.expressions + value, rest.fps, rest.betas + value)


def test_join_puts_frames_one_after_another_and_keeps_the_first_betas():
    joined = Motion.join([_motion(3, 0.1), _motion(2, 0.2)])
    assert joined.num_frames == 5 and joined.fps == 30.0
    np.testing.assert_array_equal(joined.poses[:3], np.full((3, 55, 3), 0.1, np.float32))
    np.testing.assert_array_equal(joined.trans[3:], np.full((2, 3), 0.2, np.float32))
    np.testing.assert_array_equal(joined.expressions[3:], np.full((2, 100), 0.2, np.float32))
    np.testing.assert_array_equal(joined.betas, np.full(300, 0.1, np.float32))


def test_join_refuses_nothing_and_mixed_frame_rates():
    with pytest.raises(MotionError, match="no motion to join"):
        Motion.join([])
    other = Motion.rest(2, fps=60.0)
    with pytest.raises(MotionError, match="different frame rates"):
        Motion.join([Motion.rest(2), other])


def test_lower_body_feature_channels():
    # rot6d of the 9 lower joints, root x velocity / height / z velocity, 4 foot contacts.
    assert (LOWER_ROT6D, LOWER_ROOT, LOWER_CONTACTS) == (slice(0, 54), slice(54, 57), slice(57, 61))
    assert PART_DIMS["lower"] == 61
