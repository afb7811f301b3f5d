"""Exact two-bone inverse kinematics for SMPL-X limbs (arms, legs), vectorized over frames.

SMPL-X poses are local rotations of bones whose rest frames all equal the model frame, so a limb
is solved in two steps: the middle joint (elbow, knee) bends about a fixed hinge axis until the
root-to-end distance is right, then the root joint (shoulder, hip) is turned as a whole so the end
lands on the target and the hinge axis points where the swivel asks. Both steps use the real rest
bone vectors (which are not exactly collinear), so the end effector lands exactly on a reachable
target - what keeps planted feet from sliding.
"""
from __future__ import annotations

import numpy as np


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def axis_rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices about a fixed unit ``axis`` (3,) by ``angle`` (...,) radians."""
    axis = _normalize(np.asarray(axis, np.float64))
    angle = np.asarray(angle, np.float64)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def hinge_angle(upper: np.ndarray, lower: np.ndarray, axis: np.ndarray, distance: np.ndarray,
                bend_range: tuple[float, float]) -> np.ndarray:
    """Angle about ``axis`` that makes |upper + R(angle) lower| equal ``distance``.

    ``upper``/``lower`` are the rest bone vectors (root->middle, middle->end). Unreachable
    distances are clipped to the nearest reachable one. Of the two solutions the one inside
    ``bend_range`` (the joint's flexion range) is returned.
    """
    l1, l2 = np.linalg.norm(upper), np.linalg.norm(lower)
    u, w, a = upper / l1, lower / l2, _normalize(axis)
    # u . R(t) w = P cos t + Q sin t + C  (Rodrigues)
    p = u @ w - (a @ w) * (a @ u)
    q = u @ np.cross(a, w)
    c = (a @ u) * (a @ w)
    target = (np.asarray(distance, np.float64) ** 2 - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    amp = np.hypot(p, q)
    phi = np.arctan2(q, p)
    delta = np.arccos(np.clip((target - c) / amp, -1.0, 1.0))
    lo, hi = bend_range
    candidates = np.stack([phi + delta, phi - delta])
    candidates = (candidates + np.pi) % (2 * np.pi) - np.pi
    inside = (candidates >= lo - 1e-6) & (candidates <= hi + 1e-6)
    mid = 0.5 * (lo + hi)
    cost = np.where(inside, 0.0, 10.0) + np.abs(candidates - mid) * 1e-3
    pick = np.argmin(cost, axis=0)
    angle = np.take_along_axis(candidates, pick[None], 0)[0]
    return np.clip(angle, lo, hi)


def _frame(first: np.ndarray, axis_hint: np.ndarray) -> np.ndarray:
    """Orthonormal frame (columns): ``first``, then ``axis_hint`` made orthogonal to it, completed."""
    e1 = _normalize(first)
    e3 = _normalize(axis_hint - np.sum(axis_hint * e1, axis=-1, keepdims=True) * e1)
    e2 = np.cross(e3, e1)
    return np.stack([e1, e2, e3], axis=-1)


def solve_two_bone(root_pos: np.ndarray, target: np.ndarray, parent_global: np.ndarray,
                   upper: np.ndarray, lower: np.ndarray, hinge_axis: np.ndarray,
                   pole: np.ndarray, bend_range: tuple[float, float], twist: np.ndarray | None = None,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Local rotations (root, middle) that put the limb's end on ``target``.

    root_pos, target: (N, 3) world positions of the root joint and the goal for the end joint.
    parent_global: (N, 3, 3) global rotation of the root joint's parent.
    upper, lower: rest bone vectors (3,); hinge_axis (3,): the middle joint's bend axis in its
    rest frame (positive angles flex); pole: (N, 3) world direction the middle joint should point
    to, away from the root-end line (elbows down and out, knees forward).
    twist: optional (N,) rotation of the middle joint about its own lower bone (forearm roll).
    Returns (N, 3, 3) local rotations for the root joint and the middle joint.
    """
    offset = target - root_pos
    distance = np.linalg.norm(offset, axis=-1)
    bend = hinge_angle(upper, lower, hinge_axis, distance, bend_range)
    middle_local = axis_rotation(hinge_axis, bend)
    if twist is not None:
        middle_local = middle_local @ axis_rotation(lower, twist)
    # Root-to-end vector in the root's rest frame, for each frame's bend.
    reach_rest = upper[None, :] + np.einsum("nij,j->ni", middle_local, lower)
    rest_frame = _frame(reach_rest, np.broadcast_to(hinge_axis, reach_rest.shape))
    # In the world, the hinge axis goes where the pole asks: perpendicular to the root-end line,
    # on the side that makes the middle joint bulge toward the pole (pole x end direction).
    direction = _normalize(offset)
    pole_perp = pole - np.sum(pole * direction, axis=-1, keepdims=True) * direction
    world_axis = np.cross(_normalize(pole_perp), direction)
    world_frame = _frame(direction, world_axis)
    root_global = world_frame @ np.swapaxes(rest_frame, -1, -2)
    root_local = np.swapaxes(parent_global, -1, -2) @ root_global
    return root_local, middle_local
