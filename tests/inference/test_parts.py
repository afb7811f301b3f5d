"""Body-part features: layout, round trip to Motion, contacts, root integration."""
import numpy as np
import pytest

from gestura.inference.parts import (
    PartsError, foot_contacts, integrate_root, motion_to_parts, parts_to_motion, root_channels,
)
from gestura.rigs.motion import Motion
from gestura.rigs.rotations import axis_angle_to_matrix
from gestura.rigs.skeleton import EYE_JOINTS, PART_DIMS, PARTS


def procedural_motion(n=60, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None, None] / 30.0
    poses = 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 1.5, (1, 55, 3)) * t + rng.uniform(0, 6, (1, 55, 3)))
    poses[:, list(EYE_JOINTS)] = 0.0
    trans = np.stack([0.3 * np.sin(np.arange(n) / 20), 0.9 + 0.01 * np.cos(np.arange(n) / 7), 0.02 * np.arange(n) / 30], 1)
    expressions = rng.standard_normal((n, 100)) * 0.5
    return Motion(poses, trans, expressions)


def test_layout_and_round_trip():
    motion = procedural_motion()
    parts = motion_to_parts(motion)
    assert {p: v.shape for p, v in parts.items()} == {p: (60, PART_DIMS[p]) for p in PARTS}
    back = parts_to_motion(parts, base=None, previous_trans=None)
    assert np.allclose(axis_angle_to_matrix(back.poses), axis_angle_to_matrix(motion.poses), atol=1e-5)
    assert np.allclose(back.expressions, motion.expressions, atol=1e-6)
    # x/z start at the origin without ``previous_trans``; the height is absolute.
    assert np.allclose(back.trans - back.trans[0], motion.trans - motion.trans[0], atol=1e-5)
    assert np.allclose(back.trans[:, 1], motion.trans[:, 1], atol=1e-6)


def test_root_integration_continues_from_previous_frame():
    trans = np.cumsum(np.random.default_rng(2).normal(0, 0.01, (50, 3)), 0)
    channels = root_channels(trans)
    first = integrate_root(channels[:20])
    rest = integrate_root(channels[20:], previous=first[-1])
    whole = integrate_root(channels)
    assert np.allclose(np.concatenate([first, rest]), whole, atol=1e-6)
    assert np.allclose(whole[:, [0, 2]] + trans[0, [0, 2]], trans[:, [0, 2]], atol=1e-5)


def test_foot_contacts_follow_displacement():
    positions = np.zeros((5, 55, 3))
    positions[3:, 7, 0] = 0.5  # left ankle jumps between frames 2 and 3
    contacts = foot_contacts(positions)
    assert contacts.shape == (5, 4)
    assert contacts[3, 0] == 0 and contacts[2, 0] == 1 and contacts[4, 0] == 1 and contacts[:, 1:].all()


def test_missing_parts_keep_the_base_pose():
    motion = procedural_motion(10)
    base = procedural_motion(10, seed=5)
    parts = motion_to_parts(motion)
    out = parts_to_motion({"hands": parts["hands"]}, base=base)
    assert np.allclose(axis_angle_to_matrix(out.poses[:, 25:]), axis_angle_to_matrix(motion.poses[:, 25:]), atol=1e-5)
    assert np.array_equal(out.poses[:, :25], base.poses[:, :25])
    assert np.array_equal(out.trans, base.trans) and np.array_equal(out.expressions, base.expressions)


def test_bad_shapes_fail_clearly():
    with pytest.raises(PartsError, match="shape"):
        parts_to_motion({"face": np.zeros((3, 5))})
    with pytest.raises(PartsError, match="unknown part"):
        parts_to_motion({"tail": np.zeros((3, 5))})
    with pytest.raises(PartsError, match="contacts"):
        motion_to_parts(procedural_motion(4), contacts=np.zeros((3, 4)))


def test_degenerate_rot6d_becomes_rest_rotation():
    out = parts_to_motion({"upper": np.zeros((2, 78), np.float32)})
    assert np.isfinite(out.poses).all() and np.allclose(out.poses, 0)
