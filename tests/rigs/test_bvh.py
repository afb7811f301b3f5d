"""The BVH text, read back with a small independent parser (Blender's own importer is checked in
test_blender_rig.py)."""
import numpy as np
import pytest

from gestura.rigs import bvh, motion_io
from gestura.rigs.kinematics import forward_kinematics
from gestura.rigs.motion import Motion
from gestura.rigs.rest_skeleton import FOOT_CLEARANCE, standing_rest_joints
from gestura.rigs.rotations import axis_angle_to_matrix
from gestura.rigs.skeleton import JOINT_NAMES


def parse_bvh(text):
    """Joints (name, parent, offset, channels) in file order, and the frame table."""
    tokens = text.split()
    joints, stack, i = [], [], 0
    while tokens[i] != "MOTION":
        token = tokens[i]
        if token in ("ROOT", "JOINT"):
            joints.append({"name": tokens[i + 1], "parent": stack[-1] if stack else None})
            i += 2
        elif token == "End":
            joints.append({"name": None, "parent": stack[-1]})
            i += 2
        elif token == "{":
            stack.append(len(joints) - 1)
            i += 1
        elif token == "}":
            stack.pop()
            i += 1
        elif token == "OFFSET":
            joints[stack[-1]]["offset"] = np.array(tokens[i + 1:i + 4], float)
            i += 4
        elif token == "CHANNELS":
            count = int(tokens[i + 1])
            joints[stack[-1]]["channels"] = tokens[i + 2:i + 2 + count]
            i += 2 + count
        else:
            i += 1
    frames = int(tokens[i + 2])
    frame_time = float(tokens[i + 5])
    values = np.array(tokens[i + 6:], float).reshape(frames, -1)
    return joints, frame_time, values


def bvh_positions(joints, values):
    """World joint positions per frame, by the BVH rules (channel order = matrix product order)."""
    axes = {"X": 0, "Y": 1, "Z": 2}
    out = np.zeros((values.shape[0], len(joints), 3))
    for f, row in enumerate(values):
        column, world = 0, [None] * len(joints)
        for k, joint in enumerate(joints):
            rotation, position = np.eye(3), joint["offset"].copy()
            for channel in joint.get("channels", []):
                value = row[column]
                column += 1
                if channel.endswith("position"):
                    position[axes[channel[0]]] = value
                else:
                    axis = np.zeros(3)
                    axis[axes[channel[0]]] = np.radians(value)
                    rotation = rotation @ axis_angle_to_matrix(axis)
            if joint["parent"] is None:
                world[k] = (rotation, position)
            else:
                parent_rotation, parent_position = world[joint["parent"]]
                world[k] = (parent_rotation @ rotation, parent_position + parent_rotation @ joint["offset"])
            out[f, k] = world[k][1]
    return out


def test_bvh_reproduces_forward_kinematics(tmp_path):
    rng = np.random.default_rng(0)
    motion = Motion(rng.normal(scale=0.6, size=(6, 55, 3)), rng.normal(size=(6, 3)), np.zeros((6, 100)), fps=24)
    path = motion_io.save_bvh(motion, tmp_path / "clip.bvh")
    joints, frame_time, values = parse_bvh(path.read_text())
    assert frame_time == pytest.approx(1 / 24)
    names = [j["name"] for j in joints if j["name"]]
    assert sorted(names) == sorted(JOINT_NAMES)
    order = [JOINT_NAMES.index(j["name"]) for j in joints if j["name"]]
    positions = bvh_positions(joints, values)[:, [k for k, j in enumerate(joints) if j["name"]]]
    expected, _ = forward_kinematics(motion.poses.astype(np.float64), motion.trans, standing_rest_joints())
    np.testing.assert_allclose(positions, expected[:, order], atol=1e-5)


def test_the_built_in_skeleton_stands_on_the_floor(tmp_path):
    # trans 0 is the rest pose standing: feet on y = 0 (Y up), as on Gestura's armatures.
    path = motion_io.save_bvh(Motion.rest(3), tmp_path / "rest.bvh")
    joints, _, values = parse_bvh(path.read_text())
    positions = bvh_positions(joints, values)
    names = [j["name"] for j in joints]
    feet = [names.index(n) for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
    assert positions[:, feet, 1].min() == pytest.approx(FOOT_CLEARANCE, abs=1e-6)
    assert positions[0, names.index("pelvis"), 1] == pytest.approx(0.975, abs=1e-6)


def test_euler_conversion_round_trips_including_gimbal_lock():
    rng = np.random.default_rng(1)
    matrices = axis_angle_to_matrix(rng.normal(size=(200, 3)))
    locked = axis_angle_to_matrix(np.array([[0, np.pi / 2, 0], [0.3, -np.pi / 2, 0.0]]))
    locked = locked @ axis_angle_to_matrix(np.array([[0.4, 0, 0], [0.1, 0, 0]]))
    for m in (matrices, locked):
        np.testing.assert_allclose(bvh.euler_zyx_to_matrix(bvh.matrix_to_euler_zyx(m)), m, atol=1e-9)


def test_channels_are_unwrapped_over_time():
    # A steady turn past 180 degrees must not jump by 360 between frames.
    motion = Motion.rest(40)
    motion.poses[:, 0, 1] = np.linspace(0, 1.9 * np.pi, 40) - np.pi * (np.linspace(0, 1.9 * np.pi, 40) > np.pi) * 2
    _, _, values = parse_bvh(bvh.bvh_text(motion))
    assert np.abs(np.diff(values[:, 3:6], axis=0)).max() < 20


def test_continuous_euler_keeps_the_rotations():
    rng = np.random.default_rng(2)
    aa = np.cumsum(rng.normal(scale=0.1, size=(200, 4, 3)), axis=0)
    matrices = axis_angle_to_matrix(aa)
    angles = bvh.continuous_euler_zyx(bvh.matrix_to_euler_zyx(matrices))
    np.testing.assert_allclose(bvh.euler_zyx_to_matrix(angles), matrices, atol=1e-9)
    # Half and whole turn flips would show as jumps of pi or more.
    assert np.abs(np.diff(angles, axis=0)).max() < np.pi / 2
