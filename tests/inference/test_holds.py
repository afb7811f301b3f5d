"""The watch that lets a held arm go: raised and still over the trailing window, on the built-in
skeleton's forward kinematics, span after span."""
import numpy as np
import pytest

from gestura.inference.holds import EXTENT_M, HOLD_S, RAISED_M, HoldWatch
from gestura.rigs.kinematics import forward_kinematics
from gestura.rigs.motion import Motion
from gestura.rigs.rest_skeleton import default_rest_joints
from gestura.rigs.skeleton import FPS, JOINT_INDEX

HOLD = int(round(HOLD_S * FPS))
DOWN = np.deg2rad(75.0)  # a shoulder turned this far about Z lets the T-pose's arm hang


def motion(frames: int, left_down: bool = False, right_down: bool = False, left_swing_deg: float = 0.0) -> Motion:
    """T-pose frames (both wrists at shoulder height), an arm let down where asked; the left arm
    swinging forward and back about its shoulder by up to ``left_swing_deg`` (one cycle a second)."""
    m = Motion.rest(frames)
    poses = m.poses.copy()
    if left_down:
        poses[:, JOINT_INDEX["left_shoulder"], 2] = -DOWN
    if right_down:
        poses[:, JOINT_INDEX["right_shoulder"], 2] = DOWN
    swing = np.deg2rad(left_swing_deg) * np.sin(2 * np.pi * np.arange(frames) / FPS)
    poses[:, JOINT_INDEX["left_shoulder"], 1] += swing
    return Motion(poses, m.trans, m.expressions, FPS)


def arm_heights_and_elbow_extent(m: Motion, side: str) -> tuple[float, float]:
    p, _ = forward_kinematics(m.poses, m.trans, default_rest_joints())
    height = p[:, JOINT_INDEX[f"{side}_wrist"], 1] - p[:, JOINT_INDEX["pelvis"], 1]
    elbow = p[:, JOINT_INDEX[f"{side}_elbow"]]
    return float(height.min()), float(np.max(elbow.max(0) - elbow.min(0)))


def test_the_poses_are_what_the_tests_say():
    assert arm_heights_and_elbow_extent(motion(10), "left")[0] > RAISED_M + 0.1
    assert arm_heights_and_elbow_extent(motion(10, left_down=True), "left")[0] < RAISED_M - 0.1
    assert arm_heights_and_elbow_extent(motion(10, right_down=True), "right")[0] < RAISED_M - 0.1
    height, extent = arm_heights_and_elbow_extent(motion(HOLD, right_down=True, left_swing_deg=40), "left")
    assert height > RAISED_M and extent > EXTENT_M + 0.05
    assert arm_heights_and_elbow_extent(motion(HOLD, right_down=True, left_swing_deg=5), "left")[1] < EXTENT_M


def test_an_arm_held_up_and_still_for_the_whole_window_is_held():
    watch = HoldWatch()
    assert watch.push(motion(HOLD - 1)) is False  # not yet held long enough
    assert watch.push(motion(1)) is True


def test_arms_let_down_are_never_held():
    watch = HoldWatch()
    assert not any(watch.push(motion(64, left_down=True, right_down=True)) for _ in range(5))


@pytest.mark.parametrize("side", ["left", "right"])
def test_either_arm_alone_is_enough(side):
    watch = HoldWatch()
    pose = motion(HOLD, left_down=side == "right", right_down=side == "left")
    assert watch.push(pose) is True


def test_a_raised_arm_that_moves_about_its_elbow_is_not_held_and_a_small_sway_is():
    assert HoldWatch().push(motion(HOLD, right_down=True, left_swing_deg=40)) is False
    assert HoldWatch().push(motion(HOLD, right_down=True, left_swing_deg=5)) is True


def test_only_the_trailing_window_counts():
    watch = HoldWatch()
    watch.push(motion(HOLD))  # held
    assert watch.push(motion(10, left_down=True, right_down=True)) is False  # let down since
    assert watch.push(motion(HOLD - 10)) is False  # raised again, but not for the whole window
    assert watch.push(motion(10)) is True


def test_the_decision_depends_on_the_frames_not_on_how_they_were_pushed():
    frames = [motion(40), motion(30, left_down=True), motion(120, right_down=True), motion(7)]
    joined = Motion.join(frames)
    one = HoldWatch()
    by_frame = [one.push(Motion(joined.poses[i:i + 1], joined.trans[i:i + 1], joined.expressions[i:i + 1], FPS))
                for i in range(joined.num_frames)]
    ends = np.cumsum([f.num_frames for f in frames]) - 1
    other = HoldWatch()
    assert [other.push(f) for f in frames] == [by_frame[i] for i in ends]
