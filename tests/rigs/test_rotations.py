import numpy as np
import pytest

from gestura.rigs import rotations as R

rng = np.random.default_rng(0)


def random_axis_angle(n, max_angle=np.pi):
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    return axis * rng.uniform(0, max_angle, size=(n, 1))


# Zero, tiny, ordinary, near pi and exactly pi, about every axis and a diagonal one.
EDGE_ANGLES = [0.0, 1e-12, 1e-7, 1e-4, 0.3, 2.0, np.pi - 1e-6, np.pi - 1e-9, np.pi]
EDGE_AXES = [np.array(a, float) / np.linalg.norm(a) for a in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, -2, 3])]
EDGE = np.array([axis * angle for angle in EDGE_ANGLES for axis in EDGE_AXES])


def test_axis_angle_to_matrix_matches_geometry():
    # 90 degrees about z takes x to y, y to -x.
    m = R.axis_angle_to_matrix(np.array([0, 0, np.pi / 2]))
    np.testing.assert_allclose(m @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(m @ [0, 1, 0], [-1, 0, 0], atol=1e-15)
    # 180 degrees about x flips y and z.
    np.testing.assert_allclose(R.axis_angle_to_matrix(np.array([np.pi, 0, 0])), np.diag([1, -1, -1]), atol=1e-15)
    np.testing.assert_array_equal(R.axis_angle_to_matrix(np.zeros(3)), np.eye(3))


def test_matches_scipy_on_random_rotations():
    rotation = pytest.importorskip("scipy.spatial.transform").Rotation
    aa = random_axis_angle(500)
    reference = rotation.from_rotvec(aa)
    np.testing.assert_allclose(R.axis_angle_to_matrix(aa), reference.as_matrix(), atol=1e-12)
    xyzw = reference.as_quat()
    wxyz = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=-1)
    wxyz *= np.sign(wxyz[:, :1])
    np.testing.assert_allclose(R.axis_angle_to_quaternion(aa), wxyz, atol=1e-12)
    np.testing.assert_allclose(R.matrix_to_axis_angle(reference.as_matrix()), aa, atol=1e-10)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-9), (np.float32, 2e-6)])
def test_round_trips_at_edge_cases(dtype, tol):
    aa = EDGE.astype(dtype)
    m = R.axis_angle_to_matrix(aa)
    assert m.dtype == dtype
    assert np.isfinite(m).all()
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=tol)
    back = R.matrix_to_axis_angle(m)
    assert back.dtype == dtype
    # At exactly pi, v and -v are the same rotation: compare matrices; elsewhere the vectors.
    np.testing.assert_allclose(R.axis_angle_to_matrix(back), m, atol=tol * 10)
    below_pi = np.linalg.norm(EDGE, axis=-1) < np.pi - 1e-3
    np.testing.assert_allclose(back[below_pi], aa[below_pi], atol=tol)
    q = R.axis_angle_to_quaternion(aa)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=tol)
    np.testing.assert_allclose(R.quaternion_to_matrix(q), m, atol=tol * 10)
    np.testing.assert_allclose(R.quaternion_to_axis_angle(q)[below_pi], aa[below_pi], atol=tol)
    q2 = R.matrix_to_quaternion(m)
    # Same rotation up to sign.
    np.testing.assert_allclose(np.abs(np.sum(q2 * q, axis=-1)), 1.0, atol=tol)


def test_tiny_angles_keep_their_axis_and_size():
    aa = np.array([[1e-9, -2e-9, 3e-9], [0.0, 0.0, 1e-15]])
    np.testing.assert_allclose(R.quaternion_to_axis_angle(R.axis_angle_to_quaternion(aa)), aa, rtol=1e-9, atol=0)
    np.testing.assert_allclose(R.matrix_to_axis_angle(R.axis_angle_to_matrix(aa)), aa, rtol=1e-6, atol=1e-20)


def test_exact_pi_rotations_recover_the_axis():
    for axis in EDGE_AXES:
        back = R.matrix_to_axis_angle(R.axis_angle_to_matrix(axis * np.pi))
        assert np.linalg.norm(back) == pytest.approx(np.pi, abs=1e-12)
        assert abs(abs(back @ axis) - np.pi) < 1e-9  # +axis or -axis, both pi rotations


def test_any_batch_shape():
    aa = random_axis_angle(2 * 3 * 5).reshape(2, 3, 5, 3)
    m = R.axis_angle_to_matrix(aa)
    assert m.shape == (2, 3, 5, 3, 3)
    assert R.matrix_to_rot6d(m).shape == (2, 3, 5, 6)
    assert R.rot6d_to_matrix(R.matrix_to_rot6d(m)).shape == (2, 3, 5, 3, 3)
    assert R.axis_angle_to_quaternion(aa).shape == (2, 3, 5, 4)
    assert R.matrix_to_quaternion(m).shape == (2, 3, 5, 4)
    assert R.matrix_to_axis_angle(m).shape == (2, 3, 5, 3)
    # Single rotation without a batch.
    assert R.axis_angle_to_matrix(np.zeros(3)).shape == (3, 3)
    assert R.matrix_to_axis_angle(np.eye(3)).shape == (3,)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        R.axis_angle_to_matrix(np.zeros((4, 4)))


def test_rot6d_is_the_first_two_rows_and_round_trips():
    m = R.axis_angle_to_matrix(np.concatenate([random_axis_angle(200), EDGE]))
    d6 = R.matrix_to_rot6d(m)
    np.testing.assert_array_equal(d6[:, :3], m[:, 0, :])
    np.testing.assert_array_equal(d6[:, 3:], m[:, 1, :])
    np.testing.assert_allclose(R.rot6d_to_matrix(d6), m, atol=1e-12)


def test_rot6d_to_matrix_orthonormalises_noisy_input():
    m = R.axis_angle_to_matrix(random_axis_angle(100))
    noisy = R.matrix_to_rot6d(m) * 1.7 + rng.normal(scale=0.01, size=(100, 6))
    out = R.rot6d_to_matrix(noisy)
    np.testing.assert_allclose(out @ np.swapaxes(out, -1, -2), np.broadcast_to(np.eye(3), out.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(out), 1.0, atol=1e-12)
    # Gram-Schmidt keeps the first row's direction.
    first = noisy[:, :3] / np.linalg.norm(noisy[:, :3], axis=-1, keepdims=True)
    np.testing.assert_allclose(out[:, 0], first, atol=1e-12)


def test_rot6d_matches_pytorch3d_convention_via_torch_reference():
    # pytorch3d: matrix_to_rotation_6d(m) = m[..., :2, :].reshape(..., 6); rotation_6d_to_matrix
    # normalises a1, removes its component from a2, b3 = cross(b1, b2), stacks as rows.
    torch = pytest.importorskip("torch")
    d6 = rng.normal(size=(50, 6))
    a1, a2 = torch.tensor(d6[:, :3]), torch.tensor(d6[:, 3:])
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    reference = torch.stack((b1, b2, torch.cross(b1, b2, dim=-1)), dim=-2).numpy()
    np.testing.assert_allclose(R.rot6d_to_matrix(d6), reference, atol=1e-12)


def test_quaternion_multiply_composes_like_matrices():
    a, b = random_axis_angle(50), random_axis_angle(50)
    q = R.quaternion_multiply(R.axis_angle_to_quaternion(a), R.axis_angle_to_quaternion(b))
    np.testing.assert_allclose(
        R.quaternion_to_matrix(q), R.axis_angle_to_matrix(a) @ R.axis_angle_to_matrix(b), atol=1e-12
    )


def test_slerp_follows_the_great_circle():
    axis = np.array([0.0, 0.6, 0.8])
    q0 = R.axis_angle_to_quaternion(axis * 0.2)
    q1 = R.axis_angle_to_quaternion(axis * 1.4)
    t = np.linspace(0, 1, 7)
    out = R.slerp(q0, q1, t)
    expected = R.axis_angle_to_quaternion(axis[None] * (0.2 + 1.2 * t)[:, None])
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_slerp_takes_the_short_way_and_handles_equal_inputs():
    q0 = R.axis_angle_to_quaternion(np.array([0.0, 0.0, 0.1]))
    q1 = -R.axis_angle_to_quaternion(np.array([0.0, 0.0, 0.3]))  # same rotation, other hemisphere
    mid = R.slerp(q0, q1, 0.5)
    np.testing.assert_allclose(R.quaternion_to_axis_angle(mid), [0, 0, 0.2], atol=1e-12)
    same = R.slerp(q0, q0, np.array([0.0, 0.3, 1.0]))
    np.testing.assert_allclose(same, np.broadcast_to(q0, (3, 4)), atol=1e-15)
    batch = R.slerp(np.broadcast_to(q0, (4, 2, 4)), np.broadcast_to(q1, (4, 2, 4)), np.full((4, 2), 0.5))
    assert batch.shape == (4, 2, 4)


def test_nearest_rotation_strips_scale_and_never_reflects():
    rotation = R.axis_angle_to_matrix(np.array([0.3, -0.2, 0.9]))
    np.testing.assert_allclose(R.nearest_rotation(2.5 * rotation), rotation, atol=1e-12)
    mirrored = R.nearest_rotation(np.diag([1.0, 1.0, -1.0]))
    assert np.linalg.det(mirrored) == pytest.approx(1.0)


def test_sign_continuous_flips_quaternions_into_one_hemisphere_along_time():
    q = np.array([[1.0, 0, 0, 0], [-0.99, -0.14, 0, 0], [0.98, 0.2, 0, 0], [-0.97, -0.24, 0, 0]])
    out = R.sign_continuous(q)
    np.testing.assert_array_equal(out, q * np.array([1, -1, 1, -1])[:, None])
    assert (np.sum(out[1:] * out[:-1], axis=-1) > 0).all()
    np.testing.assert_array_equal(R.sign_continuous(-q[:1]), -q[:1])  # one frame: nothing to follow
