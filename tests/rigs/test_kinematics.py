import numpy as np
import pytest

from gestura.rigs import kinematics, rest_skeleton
from gestura.rigs.motion import Motion
from gestura.rigs.rotations import axis_angle_to_matrix
from gestura.rigs.skeleton import FOOT_JOINTS, JOINT_INDEX as J, PARENTS

REST = rest_skeleton.default_rest_joints()


def pose_with(**rotations) -> np.ndarray:
    poses = np.zeros((1, 55, 3))
    for name, aa in rotations.items():
        poses[0, J[name]] = aa
    return poses


def fk(poses, trans=None):
    trans = np.zeros((poses.shape[0], 3)) if trans is None else trans
    return kinematics.forward_kinematics(poses, trans, REST)


def test_rest_pose_puts_joints_at_rest_plus_translation():
    positions, rotations = fk(np.zeros((2, 55, 3)), np.array([[0, 0, 0], [1.0, -2.0, 0.5]]))
    np.testing.assert_allclose(positions[0], REST)
    np.testing.assert_allclose(positions[1], REST + [1.0, -2.0, 0.5])
    np.testing.assert_array_equal(rotations, np.broadcast_to(np.eye(3), rotations.shape))


def test_lowering_the_left_arm_points_it_down():
    # -90 degrees about z turns the T-pose arm (+x) to point down (-y).
    positions, rotations = fk(pose_with(left_shoulder=[0, 0, -np.pi / 2]))
    shoulder = REST[J["left_shoulder"]]
    for name in ("left_elbow", "left_wrist", "left_middle3"):
        offset = REST[J[name]] - shoulder
        expected = shoulder + [offset[1], -offset[0], offset[2]]
        np.testing.assert_allclose(positions[0, J[name]], expected, atol=1e-12)
    np.testing.assert_allclose(rotations[0, J["left_wrist"]], axis_angle_to_matrix(np.array([0, 0, -np.pi / 2])), atol=1e-12)
    # Nothing else moves.
    others = [j for j in range(55) if not _descends_from(j, J["left_shoulder"])]
    np.testing.assert_allclose(positions[0, others], REST[others], atol=1e-15)


def _descends_from(joint: int, ancestor: int) -> bool:
    while joint >= 0:
        if joint == ancestor:
            return True
        joint = PARENTS[joint]
    return False


def test_elbow_rotation_acts_in_the_rotated_shoulder_frame():
    # Shoulder -90 about z (arm down), then elbow +90 about its own y: the forearm, +x at rest,
    # becomes -z locally (rot_y(90) x = -z), and z is unchanged by the shoulder's z rotation.
    positions, _ = fk(pose_with(left_shoulder=[0, 0, -np.pi / 2], left_elbow=[0, np.pi / 2, 0]))
    elbow = positions[0, J["left_elbow"]]
    forearm = REST[J["left_wrist"]] - REST[J["left_elbow"]]
    # rot_y(90): (x, y, z) -> (z, y, -x); then rot_z(-90): (x, y, z) -> (y, -x, z)
    local = np.array([forearm[2], forearm[1], -forearm[0]])
    expected = elbow + np.array([local[1], -local[0], local[2]])
    np.testing.assert_allclose(positions[0, J["left_wrist"]], expected, atol=1e-12)
    assert positions[0, J["left_wrist"], 2] < elbow[2] - 0.2  # pointing backwards


def test_turning_the_pelvis_half_round_mirrors_the_body_about_the_vertical_axis():
    positions, _ = fk(pose_with(pelvis=[0, np.pi, 0]), np.array([[0.3, 0.9, -0.2]]))
    expected = REST * [-1, 1, -1] + [0.3, 0.9, -0.2]
    np.testing.assert_allclose(positions[0], expected, atol=1e-12)


def test_knee_flexion_moves_the_shin_backwards_and_keeps_its_length():
    positions, _ = fk(pose_with(left_knee=[np.pi / 2, 0, 0]))
    knee, ankle = positions[0, J["left_knee"]], positions[0, J["left_ankle"]]
    shin = np.linalg.norm(REST[J["left_ankle"]] - REST[J["left_knee"]])
    assert np.linalg.norm(ankle - knee) == pytest.approx(shin)
    assert ankle[2] < knee[2] - 0.35  # behind the knee
    assert ankle[1] == pytest.approx(knee[1] + (REST[J["left_ankle"], 2] - REST[J["left_knee"], 2]) * -1)


def test_batch_shapes_and_dtype():
    poses = np.random.default_rng(0).normal(scale=0.3, size=(2, 4, 55, 3)).astype(np.float32)
    positions, rotations = kinematics.forward_kinematics(poses, np.zeros((2, 4, 3), np.float32), REST)
    assert positions.shape == (2, 4, 55, 3) and positions.dtype == np.float32
    assert rotations.shape == (2, 4, 55, 3, 3)
    # Bone lengths never change.
    lengths = np.linalg.norm(positions[..., 1:, :] - positions[..., list(PARENTS[1:]), :], axis=-1)
    rest_lengths = np.linalg.norm(REST[1:] - REST[list(PARENTS[1:])], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(rest_lengths, lengths.shape), rtol=1e-5)
    with pytest.raises(ValueError, match="poses"):
        kinematics.forward_kinematics(np.zeros((3, 54, 3)), np.zeros((3, 3)), REST)
    with pytest.raises(ValueError, match="trans"):
        kinematics.forward_kinematics(np.zeros((3, 55, 3)), np.zeros((2, 3)), REST)


def test_ground_puts_the_lowest_foot_at_its_clearance_with_one_offset():
    rng = np.random.default_rng(3)
    motion = Motion(
        poses=rng.normal(scale=0.2, size=(20, 55, 3)),
        trans=np.stack([np.zeros(20), np.linspace(2.0, 2.5, 20), np.zeros(20)], axis=1),
        expressions=np.zeros((20, 100)),
    )
    grounded = kinematics.ground(motion)
    # The built-in skeleton's floor: FLOOR_Y below the rest pelvis, y = 0 when it stands on it.
    feet = kinematics.motion_joints(grounded)[:, list(FOOT_JOINTS), 1]
    assert feet.min() == pytest.approx(rest_skeleton.FLOOR_Y + rest_skeleton.FOOT_CLEARANCE, abs=1e-5)
    standing = kinematics.motion_joints(grounded, rest_skeleton.standing_rest_joints())[:, list(FOOT_JOINTS), 1]
    assert standing.min() == pytest.approx(rest_skeleton.FOOT_CLEARANCE, abs=1e-5)
    assert kinematics.floor_offset(grounded) == pytest.approx(0.0, abs=1e-6)  # grounding twice changes nothing
    # One offset for the clip: vertical motion is kept.
    np.testing.assert_allclose(np.diff(grounded.trans[:, 1]), np.diff(motion.trans[:, 1]), atol=1e-6)
    np.testing.assert_array_equal(grounded.poses, motion.poses)
    on_floor = kinematics.ground(motion, rest_joints=REST)
    assert kinematics.motion_joints(on_floor)[:, list(FOOT_JOINTS), 1].min() == pytest.approx(0.0, abs=1e-5)


def test_standing_rest_joints_put_the_floor_at_zero_under_the_rest_feet():
    assert rest_skeleton.floor_height(REST) == pytest.approx(rest_skeleton.FLOOR_Y)
    standing = rest_skeleton.standing_rest_joints()
    # One constant lift: the rest pelvis height above the floor; x and z unchanged.
    np.testing.assert_allclose(standing - REST, np.tile([0.0, -rest_skeleton.FLOOR_Y, 0.0], (55, 1)), atol=1e-12)
    assert standing[list(FOOT_JOINTS), 1].min() == pytest.approx(rest_skeleton.FOOT_CLEARANCE)
    taller = REST * 1.1 + [0.0, 0.3, 0.0]
    assert rest_skeleton.standing_rest_joints(taller)[list(FOOT_JOINTS), 1].min() == pytest.approx(rest_skeleton.FOOT_CLEARANCE)


def test_built_in_skeleton_is_a_plausible_adult_in_t_pose():
    rest = REST
    assert rest.shape == (55, 3)
    np.testing.assert_array_equal(rest[0], 0)
    height = rest[J["left_eye_smplhf"], 1] + 0.1 - rest_skeleton.FLOOR_Y
    assert 1.6 < height < 1.9
    # Left on +x, mirrored right side, arms level (T-pose), feet above the floor.
    assert rest[J["left_wrist"], 0] > 0.6
    np.testing.assert_allclose(rest[J["right_index3"]], rest[J["left_index3"]] * [-1, 1, 1])
    assert abs(rest[J["left_wrist"], 1] - rest[J["left_shoulder"], 1]) < 0.02
    assert rest[list(FOOT_JOINTS), 1].min() - rest_skeleton.FLOOR_Y == pytest.approx(rest_skeleton.FOOT_CLEARANCE)
    lengths = rest_skeleton.bone_lengths(rest)
    assert 0.35 < lengths["left_knee"] < 0.45 and 0.35 < lengths["left_ankle"] < 0.45
    assert all(length > 0.005 for name, length in lengths.items() if name != "pelvis")


def write_fake_smplx_model(path, seed=0, vertices=10475):
    """An SMPL-X-layout model file with random contents (no SMPL-X data): vertices scattered around
    the built-in joints, a regressor averaging each joint's vertices, rigid skinning weights."""
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, 55, size=vertices)
    regressor = np.zeros((55, vertices))
    for j in range(55):
        members = np.flatnonzero(owner == j)
        regressor[j, members] = 1.0 / len(members)
    weights = np.zeros((vertices, 55))
    weights[np.arange(vertices), owner] = 1.0
    np.savez_compressed(
        path,
        v_template=REST[owner] + rng.normal(scale=0.02, size=(vertices, 3)),
        shapedirs=rng.normal(scale=0.01, size=(vertices, 3, 20)),
        J_regressor=regressor,
        posedirs=np.zeros((vertices, 3, 486), np.float32),
        kintree_table=np.array([[2**32 - 1, *PARENTS[1:]], list(range(55))], np.int64),
        weights=weights,
        f=rng.integers(0, vertices, size=(100, 3)),
        hands_componentsl=np.eye(45), hands_componentsr=np.eye(45),
        hands_meanl=np.zeros(45), hands_meanr=np.zeros(45),
        lmk_faces_idx=np.zeros(51, np.int64), lmk_bary_coords=np.full((51, 3), 1 / 3),
        dynamic_lmk_faces_idx=np.zeros((79, 17), np.int64), dynamic_lmk_bary_coords=np.full((79, 17, 3), 1 / 3),
    )
    return path


def test_exact_rest_joints_and_kinematics_match_the_smplx_package(tmp_path):
    torch = pytest.importorskip("torch")
    smplx = pytest.importorskip("smplx")
    model_file = write_fake_smplx_model(tmp_path / "SMPLX_NEUTRAL.npz")
    model = smplx.create(str(model_file), model_type="smplx", gender="neutral", use_pca=False,
                         flat_hand_mean=True, num_betas=10)
    rng = np.random.default_rng(1)
    betas = rng.normal(size=10)
    poses = rng.normal(scale=0.5, size=(3, 55, 3))
    trans = rng.normal(size=(3, 3))

    def t(x):
        return torch.tensor(np.asarray(x), dtype=torch.float32)

    out = model(
        betas=t(np.repeat(betas[None], 3, 0)), global_orient=t(poses[:, 0]),
        body_pose=t(poses[:, 1:22].reshape(3, -1)), jaw_pose=t(poses[:, 22]), leye_pose=t(poses[:, 23]),
        reye_pose=t(poses[:, 24]), left_hand_pose=t(poses[:, 25:40].reshape(3, -1)),
        right_hand_pose=t(poses[:, 40:55].reshape(3, -1)), transl=t(trans), expression=torch.zeros(3, 10),
    )
    rest = rest_skeleton.smplx_rest_joints(tmp_path, betas, "neutral")  # the folder form
    positions, _ = kinematics.forward_kinematics(poses, trans, rest)
    np.testing.assert_allclose(positions, out.joints[:, :55].detach().numpy(), atol=2e-6)


def test_smplx_model_errors_say_what_to_do(tmp_path):
    with pytest.raises(rest_skeleton.SMPLXModelError, match="does not exist.*smpl-x.is.tue.mpg.de"):
        rest_skeleton.smplx_rest_joints(tmp_path / "SMPLX_NEUTRAL.npz")
    with pytest.raises(rest_skeleton.SMPLXModelError, match="no SMPLX_FEMALE.npz"):
        rest_skeleton.smplx_rest_joints(tmp_path, gender="female")
    (tmp_path / "SMPLX_NEUTRAL.pkl").write_bytes(b"not loaded")
    with pytest.raises(rest_skeleton.SMPLXModelError, match="pickle"):
        rest_skeleton.smplx_rest_joints(tmp_path / "SMPLX_NEUTRAL.pkl")
    np.savez(tmp_path / "other.npz", something=np.zeros(3))
    with pytest.raises(rest_skeleton.SMPLXModelError, match="v_template, shapedirs, J_regressor"):
        rest_skeleton.smplx_rest_joints(tmp_path / "other.npz")
    with pytest.raises(rest_skeleton.SMPLXModelError, match="gender"):
        rest_skeleton.smplx_rest_joints(tmp_path, gender="robot")
    model = write_fake_smplx_model(tmp_path / "SMPLX_MALE.npz", vertices=10475)
    with pytest.raises(rest_skeleton.SMPLXModelError, match="has 10"):
        rest_skeleton.smplx_rest_joints(model, np.ones(300))
    # Extra zero coefficients (BEAT2 stores 300) are fine.
    np.testing.assert_allclose(
        rest_skeleton.smplx_rest_joints(model, np.r_[np.ones(10), np.zeros(290)]),
        rest_skeleton.smplx_rest_joints(model, np.ones(10)),
    )
