"""The watch that lets a frozen arm go: raised and still over the trailing window, on the built-in
skeleton's forward kinematics, span after span; the same decision as issue 15's metric."""
import numpy as np
import pytest

from gestura.inference.frozen_arms import EXTENT_M, LET_GO_S, RAISED_M, FrozenArmWatch
from gestura.rigs.kinematics import forward_kinematics
from gestura.rigs.motion import Motion
from gestura.rigs.rest_skeleton import default_rest_joints
from gestura.rigs.skeleton import FPS, JOINT_INDEX
from gestura.training.metrics import frozen_arm_frames

WINDOW = int(round(LET_GO_S * FPS))
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
    poses[:, JOINT_INDEX["left_shoulder"], 1] += np.deg2rad(left_swing_deg) * np.sin(2 * np.pi * np.arange(frames) / FPS)
    return Motion(poses, m.trans, m.expressions, FPS)


def positions(m: Motion) -> np.ndarray:
    """(N, 55, 3) float64 joint positions, as the watch and the metric compare them."""
    return np.asarray(forward_kinematics(m.poses, m.trans, default_rest_joints())[0], np.float64)


def arm(m: Motion, side: str) -> tuple[float, float]:
    """The wrist's lowest height over the pelvis and the elbow's extent over ``m``, metres."""
    p = positions(m)
    elbow = p[:, JOINT_INDEX[f"{side}_elbow"]]
    return (float(np.min(p[:, JOINT_INDEX[f"{side}_wrist"], 1] - p[:, JOINT_INDEX["pelvis"], 1])),
            float(np.max(elbow.max(0) - elbow.min(0))))


def test_the_poses_are_what_the_tests_say():
    assert arm(motion(10), "left")[0] > RAISED_M + 0.1
    assert arm(motion(10, left_down=True), "left")[0] < RAISED_M - 0.1
    assert arm(motion(10, right_down=True), "right")[0] < RAISED_M - 0.1
    height, extent = arm(motion(WINDOW, right_down=True, left_swing_deg=40), "left")
    assert height > RAISED_M and extent > EXTENT_M + 0.05
    assert arm(motion(WINDOW, right_down=True, left_swing_deg=5), "left")[1] < EXTENT_M


def test_an_arm_raised_and_still_for_the_whole_window_is_frozen():
    watch = FrozenArmWatch()
    assert watch.push(motion(WINDOW - 1)) is False  # not yet for long enough
    assert watch.push(motion(1)) is True


def test_arms_let_down_never_freeze():
    watch = FrozenArmWatch()
    assert not any(watch.push(motion(64, left_down=True, right_down=True)) for _ in range(5))


@pytest.mark.parametrize("side", ["left", "right"])
def test_either_arm_alone_is_enough(side):
    assert FrozenArmWatch().push(motion(WINDOW, left_down=side == "right", right_down=side == "left")) is True


def test_a_raised_arm_that_moves_about_its_elbow_is_not_frozen_and_a_small_sway_is():
    assert FrozenArmWatch().push(motion(WINDOW, right_down=True, left_swing_deg=40)) is False
    assert FrozenArmWatch().push(motion(WINDOW, right_down=True, left_swing_deg=5)) is True


def test_the_thresholds_are_the_metrics_own_at_their_edges():
    # Raised on the edge: the lowest wrist height exactly at the threshold counts, a hair under does not.
    m = motion(WINDOW, right_down=True)
    height, _ = arm(m, "left")
    assert FrozenArmWatch(raised_m=height).push(m) is True
    assert FrozenArmWatch(raised_m=np.nextafter(height, np.inf)).push(m) is False
    # Still on the edge: an extent equal to the threshold is movement.
    swing = motion(WINDOW, right_down=True, left_swing_deg=5)
    _, extent = arm(swing, "left")
    assert FrozenArmWatch(extent_m=extent).push(swing) is False
    assert FrozenArmWatch(extent_m=np.nextafter(extent, np.inf)).push(swing) is True


def test_only_the_trailing_window_counts():
    watch = FrozenArmWatch()
    watch.push(motion(WINDOW))  # frozen
    assert watch.push(motion(10, left_down=True, right_down=True)) is False  # let down since
    assert watch.push(motion(WINDOW - 10)) is False  # raised again, but not for the whole window
    assert watch.push(motion(10)) is True


def test_it_decides_as_issue_15s_metric_over_the_same_window():
    # Stretches of held, swinging, lowered and raised arms; after each frame the watch over the
    # last 61 frames says what frozen_arm_frames says of the window's middle frame.
    pieces = [motion(80), motion(45, left_down=True), motion(70, right_down=True, left_swing_deg=5),
              motion(50, right_down=True, left_swing_deg=40), motion(90, left_down=True), motion(40)]
    joined = Motion.join(pieces)
    half = 30
    metric = frozen_arm_frames(positions(joined), window_s=(2 * half + 1) / FPS)
    watch = FrozenArmWatch(seconds=(2 * half + 1) / FPS)
    said = [watch.push(Motion(joined.poses[i:i + 1], joined.trans[i:i + 1], joined.expressions[i:i + 1], FPS))
            for i in range(joined.num_frames)]
    middle = np.arange(half, joined.num_frames - half)
    assert [said[i + half] for i in middle] == metric[middle].tolist()
    assert 0 < metric[middle].sum() < len(middle)  # both decisions occur


def test_the_decision_depends_on_the_frames_not_on_how_they_were_pushed():
    frames = [motion(40), motion(30, left_down=True), motion(120, right_down=True), motion(7)]
    joined = Motion.join(frames)
    one = FrozenArmWatch()
    by_frame = [one.push(Motion(joined.poses[i:i + 1], joined.trans[i:i + 1], joined.expressions[i:i + 1], FPS))
                for i in range(joined.num_frames)]
    ends = np.cumsum([f.num_frames for f in frames]) - 1
    other = FrozenArmWatch()
    assert [other.push(f) for f in frames] == [by_frame[i] for i in ends]


def test_a_window_under_one_frame_is_refused():
    with pytest.raises(ValueError, match="at least one frame"):
        FrozenArmWatch(seconds=0.01)
