"""Rotation conversions between axis-angle, quaternion (w, x, y, z), matrix and 6D, in NumPy.

Every function takes any leading batch shape and returns float32 for float32 input, float64
otherwise. Work happens in float64 and the series expansions below keep the conversions exact at
zero angle (where sin(t)/t is 0/0) and at pi (where the matrix trace gives no axis).
Conventions follow pytorch3d, so rot6d values match what MambaTalk-style models were trained on.
"""
from __future__ import annotations

import numpy as np

# Below this angle sin/cos ratios come from their Taylor series; the next term is ~1e-16 there.
_SMALL = 1e-4


def _out_dtype(*arrays) -> np.dtype:
    return np.float32 if all(np.asarray(a).dtype == np.float32 for a in arrays) else np.float64


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _check_last(x: np.ndarray, dims: tuple[int, ...], name: str) -> None:
    if x.shape[x.ndim - len(dims):] != dims or x.ndim < len(dims):
        raise ValueError(f"{name} must have shape (..., {', '.join(map(str, dims))}), got {x.shape}")


def _safe_ratio(numerator, angle, series):
    """numerator/angle where angle is large enough, ``series(angle)`` where it is not."""
    small = angle < _SMALL
    safe_angle = np.where(small, 1.0, angle)
    return np.where(small, series(angle), numerator / safe_angle)


def axis_angle_to_matrix(axis_angle) -> np.ndarray:
    """Rodrigues' formula: (..., 3) rotation vectors (radians) -> (..., 3, 3) matrices."""
    dtype = _out_dtype(axis_angle)
    v = _f64(axis_angle)
    _check_last(v, (3,), "axis_angle")
    theta = np.linalg.norm(v, axis=-1)
    theta2 = theta * theta
    # sin(t)/t and (1 - cos t)/t^2, with their series near zero.
    small = theta < _SMALL
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(theta) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(theta)) / (safe * safe))
    # R = I + a K + b K^2 with K the cross-product matrix of v and K^2 = v v^T - |v|^2 I, written
    # out entry by entry: batched 3x3 matmuls are several times slower in NumPy.
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    c = 1.0 - b * theta2  # the diagonal's I - b |v|^2 I part (equals cos(theta))
    bxy, bxz, byz = b * x * y, b * x * z, b * y * z
    ax, ay, az = a * x, a * y, a * z
    m = np.stack(
        [
            c + b * x * x, bxy - az, bxz + ay,
            bxy + az, c + b * y * y, byz - ax,
            bxz - ay, byz + ax, c + b * z * z,
        ],
        axis=-1,
    ).reshape(v.shape[:-1] + (3, 3))
    return m.astype(dtype)


def axis_angle_to_quaternion(axis_angle) -> np.ndarray:
    """(..., 3) rotation vectors -> (..., 4) unit quaternions (w, x, y, z), Blender's order."""
    dtype = _out_dtype(axis_angle)
    v = _f64(axis_angle)
    _check_last(v, (3,), "axis_angle")
    theta = np.linalg.norm(v, axis=-1)
    half = 0.5 * theta
    # sin(t/2)/t -> 1/2 - t^2/48 near zero.
    s = _safe_ratio(np.sin(half), theta, lambda t: 0.5 - t * t / 48.0)
    q = np.concatenate([np.cos(half)[..., None], v * s[..., None]], axis=-1)
    return q.astype(dtype)


def quaternion_to_axis_angle(quaternion) -> np.ndarray:
    """(..., 4) quaternions (w, x, y, z; need not be unit) -> (..., 3) rotation vectors.

    The result has angle in [0, pi]: q and -q give the same rotation vector.
    """
    dtype = _out_dtype(quaternion)
    q = _f64(quaternion)
    _check_last(q, (4,), "quaternion")
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[..., :1] < 0, -q, q)  # the short way round: angle <= pi
    w, xyz = q[..., 0], q[..., 1:]
    sin_half = np.linalg.norm(xyz, axis=-1)
    angle = 2.0 * np.arctan2(sin_half, w)
    # angle / sin(angle/2) -> 2 + angle^2/12 near zero (w is ~1 there).
    scale = _safe_ratio(angle, sin_half, lambda s: 2.0 + s * s / 3.0)
    return (xyz * scale[..., None]).astype(dtype)


def quaternion_to_matrix(quaternion) -> np.ndarray:
    """(..., 4) quaternions (w, x, y, z; normalised here) -> (..., 3, 3) rotation matrices."""
    dtype = _out_dtype(quaternion)
    q = _f64(quaternion)
    _check_last(q, (4,), "quaternion")
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    ).reshape(q.shape[:-1] + (3, 3))
    return m.astype(dtype)


def matrix_to_quaternion(matrix) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z) with w >= 0.

    Shepperd's method: of the four ways to read the quaternion off the matrix, use the one whose
    pivot component is largest, so the division never loses precision (angle near pi included).
    """
    dtype = _out_dtype(matrix)
    m = _f64(matrix)
    _check_last(m, (3, 3), "matrix")
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4 * component^2 for w, x, y, z.
    squares = np.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], axis=-1
    )
    roots = np.sqrt(np.maximum(squares, 0.0))  # 2 * |component|
    # Row i: the quaternion times 4*q_i (so dividing by 2*roots[i] normalises it).
    candidates = np.stack(
        [
            np.stack([squares[..., 0], m21 - m12, m02 - m20, m10 - m01], axis=-1),
            np.stack([m21 - m12, squares[..., 1], m10 + m01, m02 + m20], axis=-1),
            np.stack([m02 - m20, m10 + m01, squares[..., 2], m12 + m21], axis=-1),
            np.stack([m10 - m01, m20 + m02, m21 + m12, squares[..., 3]], axis=-1),
        ],
        axis=-2,
    )
    best = np.argmax(roots, axis=-1)
    chosen = np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]
    pivot = np.take_along_axis(roots, best[..., None], axis=-1)
    q = chosen / (2.0 * pivot)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[..., :1] < 0, -q, q)
    return q.astype(dtype)


def matrix_to_axis_angle(matrix) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) rotation vectors with angle in [0, pi]."""
    dtype = _out_dtype(matrix)
    return quaternion_to_axis_angle(matrix_to_quaternion(_f64(matrix))).astype(dtype)


def matrix_to_rot6d(matrix) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): the first two rows, flattened (pytorch3d's convention)."""
    m = np.asarray(matrix)
    _check_last(m, (3, 3), "matrix")
    dtype = _out_dtype(m)
    return m[..., :2, :].reshape(m.shape[:-2] + (6,)).astype(dtype)


def rot6d_to_matrix(rot6d) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two rows (pytorch3d's convention).

    Any 6 numbers give a rotation; degenerate input (a zero or parallel row) gives NaN rows only
    if the two rows are exactly parallel, which a trained model never outputs.
    """
    dtype = _out_dtype(rot6d)
    d = _f64(rot6d)
    _check_last(d, (6,), "rot6d")
    a1, a2 = d[..., :3], d[..., 3:]
    b1 = a1 / np.linalg.norm(a1, axis=-1, keepdims=True)
    b2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = b2 / np.linalg.norm(b2, axis=-1, keepdims=True)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-2).astype(dtype)


def quaternion_multiply(q1, q2) -> np.ndarray:
    """Hamilton product of (..., 4) quaternions (w, x, y, z): the rotation q2 followed by q1."""
    dtype = _out_dtype(q1, q2)
    a, b = _f64(q1), _f64(q2)
    w1, x1, y1, z1 = np.moveaxis(a, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(b, -1, 0)
    q = np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )
    return q.astype(dtype)


def slerp(q0, q1, t) -> np.ndarray:
    """Spherical interpolation of (..., 4) unit quaternions at fraction ``t`` (broadcasts).

    Takes the short way (q1 is flipped when the two are more than 180 degrees apart) and falls
    back to normalised linear interpolation when they are nearly equal, where slerp's 0/0 loses
    precision.
    """
    dtype = _out_dtype(q0, q1)
    a, b = _f64(q0), _f64(q1)
    _check_last(a, (4,), "q0")
    _check_last(b, (4,), "q1")
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    t = _f64(t)[..., None]
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    omega = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_omega = np.sin(omega)
    near = sin_omega < 1e-6
    safe = np.where(near, 1.0, sin_omega)
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * omega) / safe)
    w1 = np.where(near, t, np.sin(t * omega) / safe)
    q = w0 * a + w1 * b
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return q.astype(dtype)


def nearest_rotation(matrix) -> np.ndarray:
    """The rotation nearest a (3, 3) matrix (polar decomposition, float64): strips scale and shear
    from an object or bone matrix, and never returns a reflection."""
    u, _, vt = np.linalg.svd(np.asarray(matrix, np.float64))
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def sign_continuous(quaternions) -> np.ndarray:
    """(N, ..., 4) quaternions with signs flipped along time so consecutive frames lie in the same
    hemisphere: F-curves interpolate components one by one, and q then -q would swing the bone
    through a full turn. Each frame flips when it points away from the previous one; flips
    accumulate along time."""
    q = np.asarray(quaternions)
    if len(q) < 2:
        return q
    steps = np.where(np.sum(q[1:] * q[:-1], axis=-1) < 0, -1.0, 1.0)
    signs = np.concatenate([np.ones((1,) + steps.shape[1:]), np.cumprod(steps, axis=0)])
    return q * signs[..., None]
