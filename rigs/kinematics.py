"""Forward kinematics of the SMPL-X skeleton and grounding, in NumPy (no bpy).

SMPL-X's rule: in the rest pose every joint frame equals the model frame (Y up, metres), so
joint j's world rotation is its parent's world rotation times its own local rotation, and its
position is the parent's position plus the parent's world rotation applied to the rest offset.
The root translation is added to the pelvis, as the ``smplx`` package does.
"""
from __future__ import annotations

import numpy as np

from .motion import Motion
from .rotations import axis_angle_to_matrix
from .skeleton import FOOT_JOINTS, NUM_JOINTS, PARENTS

UP_AXIS = 1  # SMPL-X is Y up


def forward_kinematics(poses, trans, rest_joints) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions and world rotations for axis-angle ``poses``.

    poses (..., 55, 3) local axis-angle, trans (..., 3), rest_joints (55, 3) rest positions.
    Returns positions (..., 55, 3) and global rotations (..., 55, 3, 3) in the SMPL-X frame;
    float32 when ``poses`` is float32, float64 otherwise.
    """
    poses = np.asarray(poses)
    dtype = np.float32 if poses.dtype == np.float32 else np.float64
    poses = poses.astype(np.float64)
    trans = np.asarray(trans, np.float64)
    rest = np.asarray(rest_joints, np.float64)
    if poses.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"poses must have shape (..., {NUM_JOINTS}, 3), got {poses.shape}")
    if trans.shape != poses.shape[:-2] + (3,):
        raise ValueError(f"trans must have shape {poses.shape[:-2] + (3,)}, got {trans.shape}")
    if rest.shape != (NUM_JOINTS, 3):
        raise ValueError(f"rest_joints must have shape ({NUM_JOINTS}, 3), got {rest.shape}")

    local = axis_angle_to_matrix(poses)
    rotations = np.empty_like(local)
    positions = np.empty(poses.shape, np.float64)
    rotations[..., 0, :, :] = local[..., 0, :, :]
    positions[..., 0, :] = rest[0] + trans
    # PARENTS is topologically ordered (parent index < child index), so one pass suffices.
    for joint in range(1, NUM_JOINTS):
        parent = PARENTS[joint]
        parent_rotation = rotations[..., parent, :, :]
        rotations[..., joint, :, :] = parent_rotation @ local[..., joint, :, :]
        positions[..., joint, :] = positions[..., parent, :] + parent_rotation @ (rest[joint] - rest[parent])
    return positions.astype(dtype), rotations.astype(dtype)


def motion_joints(motion: Motion, rest_joints=None) -> np.ndarray:
    """(N, 55, 3) joint positions of a Motion; the built-in skeleton when ``rest_joints`` is None."""
    if rest_joints is None:
        from .rest_skeleton import default_rest_joints

        rest_joints = default_rest_joints()
    positions, _ = forward_kinematics(motion.poses, motion.trans, rest_joints)
    return positions


def floor_offset(motion: Motion, rest_joints=None, clearance: float | None = None) -> float:
    """The vertical shift (metres, SMPL-X y) that puts the lowest foot joint of ``motion`` on
    ``rest_joints`` ``clearance`` above y = 0, over the whole clip; 0.0 for an empty clip.

    ``rest_joints`` None is the built-in skeleton standing on the floor (``standing_rest_joints``,
    floor at y = 0) with its own sole gap as the default ``clearance``; for other rest joints the
    default clearance is 0. Foot joints are joint centres, not soles.
    """
    if rest_joints is None:
        from .rest_skeleton import FOOT_CLEARANCE, standing_rest_joints

        rest_joints = standing_rest_joints()
        clearance = FOOT_CLEARANCE if clearance is None else clearance
    clearance = 0.0 if clearance is None else clearance
    if motion.num_frames == 0:
        return 0.0
    positions = motion_joints(motion, rest_joints)
    return float(clearance - positions[:, list(FOOT_JOINTS), UP_AXIS].min())


def ground(motion: Motion, rest_joints=None, clearance: float | None = None) -> Motion:
    """A copy of ``motion`` moved vertically by ``floor_offset`` (same arguments): its lowest foot
    joint ``clearance`` above the floor of ``rest_joints``.

    One offset for the whole clip (not per frame), so steps, crouches and jumps keep their
    height changes.
    """
    trans = motion.trans.astype(np.float64)
    trans[:, UP_AXIS] += floor_offset(motion, rest_joints, clearance)
    return Motion(motion.poses.copy(), trans, motion.expressions.copy(), motion.fps, motion.betas.copy())
