"""BVH writer for SMPL-X motion.

Every SMPL-X joint frame equals the model frame at rest, so a joint's BVH rotation is its
local SMPL-X rotation as it is, and its OFFSET is the rest vector from its parent. The file is
Y up like SMPL-X (Blender's BVH importer turns Y up into Z up with its default axes). The
root's position channels hold its absolute position (rest + translation), as BVH readers
expect; the built-in skeleton stands on the floor (y = 0, ``standing_rest_joints``) like
Gestura's armatures, so ``trans`` near 0 puts the feet on the floor. Rotations are Euler angles
in degrees, channel order Z Y X (the matrix is Rz Ry Rx), kept continuous over time (no 360
degree jumps, no flips at 90 degrees of y).
"""
from __future__ import annotations

import io

import numpy as np

from .motion import Motion
from .rotations import axis_angle_to_matrix
from .skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS, children

ROTATION_CHANNELS = "Zrotation Yrotation Xrotation"
# Leaf joints need an end site; ones whose direction from the parent says little get a fixed one.
_END_SITES = {
    "jaw": (0.0, -0.03, 0.06),
    "left_eye_smplhf": (0.0, 0.0, 0.02),
    "right_eye_smplhf": (0.0, 0.0, 0.02),
}


def matrix_to_euler_zyx(matrix) -> np.ndarray:
    """(..., 3, 3) -> (..., 3) angles (x, y, z) in radians with matrix = Rz(z) Ry(y) Rx(x)."""
    m = np.asarray(matrix, np.float64)
    cos_y = np.hypot(m[..., 0, 0], m[..., 1, 0])
    y = np.arctan2(-m[..., 2, 0], cos_y)
    locked = cos_y < 1e-9
    # At y = +-90 degrees only x - z (or x + z) is defined: put it all in x.
    x = np.where(locked, np.arctan2(-m[..., 1, 2], m[..., 1, 1]), np.arctan2(m[..., 2, 1], m[..., 2, 2]))
    z = np.where(locked, 0.0, np.arctan2(m[..., 1, 0], m[..., 0, 0]))
    return np.stack([x, y, z], axis=-1)


def _nearest_turn(angles: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``angles`` plus whole turns, as close as possible to ``reference``."""
    return angles + 2 * np.pi * np.round((reference - angles) / (2 * np.pi))


def continuous_euler_zyx(angles) -> np.ndarray:
    """(N, ..., 3) per-frame Euler angles -> the same rotations with no jumps between frames.

    Each rotation has two Euler triples, (x, y, z) and (x + pi, pi - y, z + pi), each up to whole
    turns; per frame the one nearest the previous frame's is kept. Plain unwrapping is not
    enough: a turn through y = 90 degrees switches between the two triples.
    """
    angles = np.array(angles, np.float64)
    for f in range(1, angles.shape[0]):
        previous, current = angles[f - 1], angles[f]
        first = _nearest_turn(current, previous)
        flipped = current + np.array([np.pi, 0.0, np.pi])
        flipped[..., 1] = np.pi - current[..., 1]
        second = _nearest_turn(flipped, previous)
        use_second = np.sum((second - previous) ** 2, axis=-1) < np.sum((first - previous) ** 2, axis=-1)
        angles[f] = np.where(use_second[..., None], second, first)
    return angles


def euler_zyx_to_matrix(angles) -> np.ndarray:
    """Inverse of ``matrix_to_euler_zyx``: (..., 3) (x, y, z) radians -> Rz Ry Rx."""
    a = np.asarray(angles, np.float64)
    unit = np.eye(3)
    return (
        axis_angle_to_matrix(unit[2] * a[..., 2:3])
        @ axis_angle_to_matrix(unit[1] * a[..., 1:2])
        @ axis_angle_to_matrix(unit[0] * a[..., 0:1])
    )


def _end_site(joint: int, rest: np.ndarray) -> np.ndarray:
    name = JOINT_NAMES[joint]
    if name in _END_SITES:
        return np.array(_END_SITES[name])
    along = rest[joint] - rest[PARENTS[joint]]
    # Half the incoming bone, continued: fingertips, toes.
    return 0.5 * along


def bvh_text(motion: Motion, rest_joints=None, scale: float = 1.0) -> str:
    """The BVH file for ``motion`` on ``rest_joints`` (None = the built-in skeleton standing on
    the floor)."""
    if rest_joints is None:
        from .rest_skeleton import standing_rest_joints

        rest_joints = standing_rest_joints()
    rest = np.asarray(rest_joints, np.float64)
    if rest.shape != (NUM_JOINTS, 3):
        raise ValueError(f"rest_joints must have shape ({NUM_JOINTS}, 3), got {rest.shape}")
    if not (scale > 0):
        raise ValueError(f"scale must be positive, got {scale}")

    def vec(v) -> str:
        return " ".join(f"{float(c) * scale:.6f}" for c in v)

    lines = ["HIERARCHY"]

    def write_joint(joint: int, depth: int) -> None:
        pad = "  " * depth
        if joint == 0:
            lines.append(f"ROOT {JOINT_NAMES[0]}")
            offset = rest[0]
            channels = f"CHANNELS 6 Xposition Yposition Zposition {ROTATION_CHANNELS}"
        else:
            lines.append(f"{pad}JOINT {JOINT_NAMES[joint]}")
            offset = rest[joint] - rest[PARENTS[joint]]
            channels = f"CHANNELS 3 {ROTATION_CHANNELS}"
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {vec(offset)}")
        lines.append(f"{pad}  {channels}")
        kids = children(joint)
        for child in kids:
            write_joint(child, depth + 1)
        if not kids:
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {vec(_end_site(joint, rest))}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    write_joint(0, 0)

    angles = continuous_euler_zyx(matrix_to_euler_zyx(axis_angle_to_matrix(motion.poses.astype(np.float64))))
    degrees = np.degrees(angles)[..., ::-1]  # channel order z, y, x
    # Channel values in the order the hierarchy lists the joints (depth first).
    order = []

    def visit(joint: int) -> None:
        order.append(joint)
        for child in children(joint):
            visit(child)

    visit(0)
    root_position = (rest[0] + motion.trans.astype(np.float64)) * scale
    frames = np.concatenate([root_position, degrees[:, order, :].reshape(motion.num_frames, -1)], axis=1)

    lines.append("MOTION")
    lines.append(f"Frames: {motion.num_frames}")
    lines.append(f"Frame Time: {1.0 / motion.fps:.8f}")
    table = io.StringIO()
    np.savetxt(table, frames, fmt="%.6f", delimiter=" ")
    return "\n".join(lines) + "\n" + table.getvalue()
