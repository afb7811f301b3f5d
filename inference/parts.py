"""Body-part feature vectors (MambaTalk's layout) to and from ``Motion``. NumPy only.

Per frame, as in SMPLX.md:
- face  (106): jaw rot6d (6) + 100 expression coefficients;
- upper  (78): rot6d of joints 3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21;
- hands (180): rot6d of joints 25..54;
- lower  (61): rot6d of joints 0, 1, 2, 4, 5, 7, 8, 10, 11 (54), then the root channels
  ``[54:57]`` = (x velocity m/s, height y m, z velocity m/s), then 4 foot contacts ``[57:61]``
  (joints 7, 8, 10, 11; 1 = the joint moved less than 1 cm since the previous frame).
Velocities instead of positions make the lower-body codes independent of where the speaker
stands; positions are integrated back at 1/fps steps (``integrate_root``). Eye joints belong to
no part: they are kept from the base pose (rest by default).
"""
from __future__ import annotations

import numpy as np

from ..errors import GesturaError
from ..rigs.motion import Motion
from ..rigs.rotations import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_rot6d, rot6d_to_matrix
from ..rigs.skeleton import (FOOT_JOINTS, FPS, JAW_JOINT, LOWER_ROOT, LOWER_ROT6D, NUM_EXPRESSIONS, PART_DIMS,
                             PART_JOINTS, PARTS)

CONTACT_THRESHOLD = 0.01  # metres per frame


class PartsError(GesturaError, ValueError):
    """Part features of the wrong shape or content."""


def foot_contacts(positions: np.ndarray, threshold: float = CONTACT_THRESHOLD) -> np.ndarray:
    """(N, 4) float32: 1 where a foot joint (7, 8, 10, 11) moved less than ``threshold`` metres
    since the previous frame; frame 0 takes frame 1's label."""
    feet = np.asarray(positions)[:, list(FOOT_JOINTS)]
    if len(feet) < 2:
        return np.ones((len(feet), len(FOOT_JOINTS)), np.float32)
    contact = (np.linalg.norm(np.diff(feet, axis=0), axis=-1) < threshold).astype(np.float32)
    return np.concatenate([contact[:1], contact], axis=0)


def root_channels(trans: np.ndarray, fps: float = FPS) -> np.ndarray:
    """(N, 3) translation -> (N, 3) (x velocity, height, z velocity); frame 0 takes frame 1's velocity."""
    trans = np.asarray(trans, np.float64)
    velocity = np.zeros_like(trans)
    if len(trans) > 1:
        velocity[1:] = np.diff(trans, axis=0) * fps
        velocity[0] = velocity[1]
    return np.stack([velocity[:, 0], trans[:, 1], velocity[:, 2]], axis=1).astype(np.float32)


def integrate_root(channels: np.ndarray, fps: float = FPS, previous: np.ndarray | None = None) -> np.ndarray:
    """(N, 3) root channels -> (N, 3) translation. ``previous`` is the translation of the frame
    before the first (to continue a clip); without it the clip starts at x = z = 0."""
    channels = np.asarray(channels, np.float64)
    step = channels[:, [0, 2]] / fps
    if previous is None:
        step = step.copy()
        if len(step):
            step[0] = 0.0
        origin = np.zeros(2)
    else:
        origin = np.asarray(previous, np.float64)[[0, 2]]
    xz = origin + np.cumsum(step, axis=0)
    return np.stack([xz[:, 0], channels[:, 1], xz[:, 1]], axis=1).astype(np.float32)


def motion_to_parts(motion: Motion, contacts: np.ndarray | None = None, rest_joints=None) -> dict:
    """{part: (N, PART_DIMS[part]) float32}. Contacts come from forward kinematics on
    ``rest_joints`` (the built-in skeleton by default) unless given."""
    n = motion.num_frames
    rot6d = matrix_to_rot6d(axis_angle_to_matrix(motion.poses.astype(np.float64))).astype(np.float32)  # (N, 55, 6)
    if contacts is None:
        from ..rigs.kinematics import motion_joints

        contacts = foot_contacts(motion_joints(motion, rest_joints))
    contacts = np.asarray(contacts, np.float32)
    if contacts.shape != (n, len(FOOT_JOINTS)):
        raise PartsError(f"contacts must have shape ({n}, {len(FOOT_JOINTS)}), got {contacts.shape}")
    out = {
        "face": np.concatenate([rot6d[:, JAW_JOINT], motion.expressions], axis=1),
        "upper": rot6d[:, list(PART_JOINTS["upper"])].reshape(n, -1),
        "hands": rot6d[:, list(PART_JOINTS["hands"])].reshape(n, -1),
        "lower": np.concatenate([rot6d[:, list(PART_JOINTS["lower"])].reshape(n, -1),
                                 root_channels(motion.trans, motion.fps), contacts], axis=1),
    }
    return {p: np.ascontiguousarray(v, dtype=np.float32) for p, v in out.items()}


def _axis_angles(rot6d: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        matrices = rot6d_to_matrix(rot6d.astype(np.float64))
    bad = ~np.isfinite(matrices).all(axis=(-2, -1))
    if bad.any():  # a degenerate 6D vector (both rows parallel or zero): use the rest rotation
        matrices[bad] = np.eye(3)
    return matrix_to_axis_angle(matrices).astype(np.float32)


def parts_to_motion(parts: dict, fps: float = FPS, base: Motion | None = None,
                    previous_trans: np.ndarray | None = None) -> Motion:
    """Motion from part features. Parts missing from ``parts`` keep ``base``'s values (a Motion
    of the same length; rest when None). ``previous_trans`` continues the root integration from
    the frame before (see ``integrate_root``)."""
    lengths = {p: np.shape(v)[0] for p, v in parts.items()}
    if base is None and not lengths:
        raise PartsError("parts_to_motion needs at least one part or a base motion")
    n = base.num_frames if base is not None else next(iter(lengths.values()))
    for part, value in parts.items():
        if part not in PART_DIMS:
            raise PartsError(f"unknown part '{part}': parts are {PARTS}")
        if np.shape(value) != (n, PART_DIMS[part]):
            raise PartsError(f"part '{part}' has shape {np.shape(value)}, expected ({n}, {PART_DIMS[part]})")
    base = base if base is not None else Motion.rest(n, fps)
    poses = base.poses.copy()
    trans = base.trans.copy()
    expressions = base.expressions.copy()
    if "face" in parts:
        face = np.asarray(parts["face"], np.float32)
        poses[:, JAW_JOINT] = _axis_angles(face[:, :6])
        expressions = face[:, 6:6 + NUM_EXPRESSIONS].copy()
    for part in ("upper", "hands"):
        if part in parts:
            joints = list(PART_JOINTS[part])
            poses[:, joints] = _axis_angles(np.asarray(parts[part], np.float32).reshape(n, len(joints), 6))
    if "lower" in parts:
        lower = np.asarray(parts["lower"], np.float32)
        joints = list(PART_JOINTS["lower"])
        poses[:, joints] = _axis_angles(lower[:, LOWER_ROT6D].reshape(n, len(joints), 6))
        trans = integrate_root(lower[:, LOWER_ROOT], fps, previous_trans)
    return Motion(poses, trans, expressions, fps, base.betas)


def normalize(parts: dict, stats: dict) -> dict:
    return {p: ((np.asarray(v, np.float32) - stats[f"{p}_mean"]) / stats[f"{p}_std"]).astype(np.float32)
            for p, v in parts.items()}


def denormalize(parts: dict, stats: dict) -> dict:
    return {p: (np.asarray(v, np.float32) * stats[f"{p}_std"] + stats[f"{p}_mean"]).astype(np.float32)
            for p, v in parts.items()}
