"""Hand shapes of the gesture repertoire as SMPL-X finger rotations, and the wrist/forearm axes.

All rotations are written for the LEFT hand and mirrored for the right (a reflection in x keeps
the x component of an axis-angle and flips y and z). In the left hand's rest frame (T-pose, palm
down) the fingers point +x, the palm faces -y and the thumb sits on the +z side, so:
finger flexion (toward the palm) is a rotation about -z, spreading the index toward the thumb
is about -y, and the thumb's own flexion axis is perpendicular to its bone and to the palm normal.
"""
from __future__ import annotations

import numpy as np

from ...rigs.skeleton import JOINT_INDEX

FINGERS = ("index", "middle", "pinky", "ring", "thumb")  # SMPL-X order (joints 25..39 / 40..54)
HAND_SHAPES = ("relaxed", "open", "point", "precision", "baton")

# Per finger: flexion of joints 1, 2, 3 (rad), spread (rad, + = away from the middle finger).
# Thumb: (flexion across the palm, swing toward the index finger, joint 2, joint 3).
_SHAPES: dict[str, dict[str, tuple[float, ...]]] = {
    "relaxed": {"index": (0.25, 0.35, 0.2, 0.04), "middle": (0.35, 0.45, 0.25, 0.0),
                "ring": (0.42, 0.5, 0.3, 0.03), "pinky": (0.5, 0.55, 0.3, 0.06),
                "thumb": (0.25, 0.15, 0.2, 0.2)},
    "open": {"index": (0.03, 0.06, 0.04, 0.16), "middle": (0.04, 0.06, 0.04, 0.0),
             "ring": (0.06, 0.08, 0.05, 0.1), "pinky": (0.08, 0.1, 0.06, 0.22),
             "thumb": (-0.15, -0.25, 0.05, 0.05)},
    "point": {"index": (0.0, 0.04, 0.02, 0.0), "middle": (1.35, 1.55, 0.9, 0.0),
              "ring": (1.4, 1.55, 0.9, 0.0), "pinky": (1.45, 1.5, 0.85, 0.0),
              "thumb": (0.75, 0.45, 0.45, 0.35)},
    # Thumb and index tips meet (the "ring" of a precision grip), found by searching the angles
    # with forward kinematics on the built-in skeleton.
    "precision": {"index": (0.9, 1.0, 0.6, 0.0), "middle": (0.3, 0.4, 0.2, 0.0),
                  "ring": (0.4, 0.5, 0.25, 0.05), "pinky": (0.5, 0.55, 0.3, 0.1),
                  "thumb": (0.3, 0.5, 0.3, 0.3)},
    "baton": {"index": (0.12, 0.18, 0.1, 0.05), "middle": (0.3, 0.42, 0.22, 0.0),
              "ring": (0.5, 0.6, 0.35, 0.04), "pinky": (0.65, 0.7, 0.4, 0.08),
              "thumb": (0.35, 0.25, 0.25, 0.15)},
}

FLEX_AXIS = np.array([0.0, 0.0, -1.0])  # left fingers and wrist: toward the palm
RADIAL_AXIS = np.array([0.0, -1.0, 0.0])  # left wrist: toward the thumb


def mirror(axis_angle: np.ndarray) -> np.ndarray:
    """Left-side rotation -> the right side's (reflection in x)."""
    return np.asarray(axis_angle) * np.array([1.0, -1.0, -1.0])


def _thumb_axes(rest_joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left thumb flexion axis (perpendicular to the thumb and the palm normal) and swing axis."""
    d = rest_joints[JOINT_INDEX["left_thumb3"]] - rest_joints[JOINT_INDEX["left_thumb1"]]
    d = d / np.linalg.norm(d)
    flex = np.cross(d, np.array([0.0, -1.0, 0.0]))
    flex /= np.linalg.norm(flex)
    # Swinging the thumb toward the index finger is a turn about the palm normal's opposite (+y).
    return flex, np.array([0.0, 1.0, 0.0])


def hand_pose(shape: str, rest_joints: np.ndarray, curl: float = 0.0, spread: float = 0.0) -> np.ndarray:
    """(15, 3) left-hand local axis-angles (joints 25..39) for ``shape``.

    ``curl`` adds flexion to every finger joint (rad, e.g. a tenser or laxer hand) and ``spread``
    scales the fingers' spread; both small per-gesture variations.
    """
    if shape not in _SHAPES:
        raise ValueError(f"unknown hand shape '{shape}': choose one of {', '.join(HAND_SHAPES)}")
    table = _SHAPES[shape]
    pose = np.zeros((15, 3))
    thumb_flex, thumb_swing = _thumb_axes(rest_joints)
    for f, finger in enumerate(FINGERS):
        values = table[finger]
        if finger == "thumb":
            flex1, swing, flex2, flex3 = values
            pose[3 * f] = (flex1 + 0.5 * curl) * thumb_flex + swing * thumb_swing
            pose[3 * f + 1] = (flex2 + curl) * thumb_flex
            pose[3 * f + 2] = (flex3 + curl) * thumb_flex
            continue
        f1, f2, f3, spr = values
        # Spread turns the finger about the palm normal: index toward the thumb (+z side).
        side = {"index": -1.0, "middle": 0.0, "ring": 1.0, "pinky": 1.0}[finger]
        # Fingers do not bend backward past straight by more than a trace.
        pose[3 * f] = max(f1 + curl, -0.02) * FLEX_AXIS + side * spr * (1 + spread) * np.array([0.0, 1.0, 0.0])
        pose[3 * f + 1] = max(f2 + curl, 0.0) * FLEX_AXIS
        pose[3 * f + 2] = max(f3 + 0.7 * curl, 0.0) * FLEX_AXIS
    return pose
