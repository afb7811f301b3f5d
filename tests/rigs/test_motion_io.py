import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from gestura.rigs import motion_io
from gestura.rigs.motion import Motion, MotionError
from gestura.rigs.resample import resample
from gestura.rigs.rotations import axis_angle_to_matrix


def random_motion(n=12, fps=30.0, seed=0) -> Motion:
    rng = np.random.default_rng(seed)
    return Motion(
        poses=rng.normal(scale=0.4, size=(n, 55, 3)),
        trans=rng.normal(size=(n, 3)),
        expressions=rng.normal(size=(n, 100)),
        fps=fps,
        betas=rng.normal(size=300),
    )


def beat2_arrays(n=5):
    m = random_motion(n)
    return {
        "poses": m.poses.reshape(n, 165).astype(np.float64),
        "trans": m.trans.astype(np.float64),
        "expressions": m.expressions.astype(np.float64),
        "betas": m.betas.astype(np.float64),
        "model": np.array("smplx2020"),
        "gender": np.array("neutral"),
        "mocap_frame_rate": np.array(30),
    }


def test_npz_round_trips_exactly(tmp_path):
    motion = random_motion(fps=25.0)
    path = motion_io.save_npz(motion, tmp_path / "clip.npz")
    back = motion_io.load_npz(path)
    for key in ("poses", "trans", "expressions", "betas"):
        np.testing.assert_array_equal(getattr(back, key), getattr(motion, key))
    assert back.fps == 25.0
    # Written again, the file reads back identical too.
    again = motion_io.load_npz(motion_io.save_npz(back, tmp_path / "again.npz"))
    np.testing.assert_array_equal(again.poses, motion.poses)


def test_written_file_has_the_beat2_keys_and_shapes(tmp_path):
    motion = random_motion(7)
    path = motion_io.save_npz(motion, tmp_path / "clip.npz")
    with np.load(path, allow_pickle=False) as data:
        assert data["poses"].shape == (7, 165)
        assert data["trans"].shape == (7, 3)
        assert data["expressions"].shape == (7, 100)
        assert data["betas"].shape == (300,)
        assert str(data["model"]) == "smplx2020" and str(data["gender"]) == "neutral"
        assert int(data["mocap_frame_rate"]) == 30
        # The pose vector is joint-major: [0:3] pelvis, [66:69] jaw (SMPLX.md).
        np.testing.assert_array_equal(data["poses"][:, 66:69], motion.poses[:, 22])


def test_reads_a_beat2_file(tmp_path):
    arrays = beat2_arrays()
    np.savez(tmp_path / "2_scott_0_1_1.npz", **arrays)
    motion = motion_io.load_npz(tmp_path / "2_scott_0_1_1.npz")
    np.testing.assert_allclose(motion.poses.reshape(5, 165), arrays["poses"], rtol=1e-6)
    np.testing.assert_allclose(motion.poses[:, 40], arrays["poses"][:, 120:123], rtol=1e-6)
    assert motion.fps == 30.0


def test_never_overwrites_unless_asked(tmp_path):
    path = tmp_path / "clip.npz"
    path.write_bytes(b"precious")
    with pytest.raises(MotionError, match="already exists"):
        motion_io.save_npz(random_motion(), path)
    assert path.read_bytes() == b"precious"
    with pytest.raises(MotionError, match="already exists"):
        motion_io.save_bvh(random_motion(), path)
    assert path.read_bytes() == b"precious"
    motion_io.save_npz(random_motion(), path, overwrite=True)
    assert motion_io.load_npz(path).num_frames == 12
    assert [p.name for p in tmp_path.iterdir()] == ["clip.npz"]  # no temporary left behind


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("poses"), r"key 'poses' is missing; expected an array of shape \(N, 165\)"),
        (lambda a: a.update(poses=np.zeros((5, 150))), r"key 'poses' has shape \(5, 150\), expected \(N, 165\)"),
        (lambda a: a.update(trans=np.zeros((4, 3))), r"key 'trans' has shape \(4, 3\), expected \(5, 3\)"),
        (lambda a: a.update(expressions=np.zeros((4, 100))), r"key 'expressions' has shape \(4, 100\), expected \(5, 100\)"),
        (lambda a: a["poses"].__setitem__((3, 7), np.nan), r"key 'poses' contains NaN.*frame 3"),
        (lambda a: a["trans"].__setitem__((1, 0), np.inf), r"key 'trans' contains NaN"),
        (lambda a: a["expressions"].__setitem__((2, 9), np.nan), r"key 'expressions' contains NaN.*frame 2"),
        (lambda a: a.update(mocap_frame_rate=np.array(0)), r"mocap_frame_rate' is 0.0, expected a positive"),
        (lambda a: a.update(poses=np.array([{"x": 1}] * 5, dtype=object)), r"key 'poses' holds Python objects"),
    ],
)
def test_bad_files_get_errors_naming_key_and_shape(tmp_path, change, message):
    arrays = beat2_arrays()
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(MotionError, match=message):
        motion_io.load_npz(path)


def test_missing_or_broken_files(tmp_path):
    with pytest.raises(MotionError, match="does not exist"):
        motion_io.load_npz(tmp_path / "nope.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(MotionError, match="not a readable npz"):
        motion_io.load_npz(tmp_path / "text.npz")


def test_amass_style_file_without_face_gets_neutral_expressions(tmp_path):
    arrays = beat2_arrays()
    del arrays["expressions"], arrays["mocap_frame_rate"]
    arrays["mocap_framerate"] = np.array(120.0)
    arrays["betas"] = arrays["betas"][:16]
    np.savez(tmp_path / "amass.npz", **arrays)
    motion = motion_io.load_npz(tmp_path / "amass.npz")
    np.testing.assert_array_equal(motion.expressions, 0)
    assert motion.fps == 120.0 and motion.betas.shape == (16,)


def test_resample_same_rate_is_a_copy_and_round_numbers_keep_frames():
    motion = random_motion(31)
    same = resample(motion, 30)
    np.testing.assert_array_equal(same.poses, motion.poses)
    doubled = resample(motion, 60)
    assert doubled.num_frames == 61 and doubled.fps == 60.0
    # Every other frame is an original frame (same rotation; the vector may differ by 2 pi).
    np.testing.assert_allclose(axis_angle_to_matrix(doubled.poses[::2]), axis_angle_to_matrix(motion.poses), atol=1e-5)
    np.testing.assert_allclose(doubled.trans[::2], motion.trans, atol=1e-6)
    np.testing.assert_allclose(doubled.expressions[1], (motion.expressions[0] + motion.expressions[1]) / 2, atol=1e-5)


def test_resample_slerps_rotations_at_constant_speed():
    # A joint turning steadily about z at 30 fps, resampled to 24 fps: still a steady turn.
    n = 31
    motion = Motion.rest(n)
    motion.poses[:, 16, 2] = np.linspace(0, 2.0, n)
    out = resample(motion, 24)
    assert out.num_frames == 25
    np.testing.assert_allclose(out.poses[:, 16, 2], np.linspace(0, 2.0, 25), atol=1e-6)
    np.testing.assert_allclose(out.poses[:, 16, :2], 0, atol=1e-7)
    with pytest.raises(MotionError, match="positive"):
        resample(motion, 0)


# Files written by other SMPL-family tools (synthetic arrays in their layouts; no real data).
# Each case writes one "truth" motion (Y up, standing) the way a tool would, and the reader must
# give the truth back with one notice per conversion.

RX_90 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # +90 degrees about X: Y up -> Z up
RX_180 = np.diag([1.0, -1.0, -1.0])  # Y up -> a camera's Y down


def truth(n=6, seed=1) -> Motion:
    rng = np.random.default_rng(seed)
    poses = rng.normal(scale=0.3, size=(n, 55, 3))
    poses[:, 0] = rng.normal(scale=0.15, size=(n, 3))  # standing, turned a little
    return Motion(poses, rng.normal(scale=0.3, size=(n, 3)), rng.normal(size=(n, 100)), betas=rng.normal(size=10))


def turned_root(motion: Motion, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root axis-angle and translation of ``motion`` seen in another world frame."""
    from gestura.rigs.rotations import matrix_to_axis_angle

    return matrix_to_axis_angle(world @ axis_angle_to_matrix(motion.poses[:, 0])), motion.trans @ world.T


def amass_smplx(m: Motion) -> dict:
    root, trans = turned_root(m, RX_90)
    poses = m.poses.copy()
    poses[:, 0] = root
    flat = poses.reshape(len(poses), 165)
    return {"gender": np.array("neutral"), "surface_model_type": np.array("smplx"),
            "mocap_frame_rate": np.array(120.0), "mocap_time_length": np.array(len(poses) / 120),
            "trans": trans, "poses": flat, "betas": np.zeros(16), "num_betas": np.array(16),
            "root_orient": flat[:, :3], "pose_body": flat[:, 3:66], "pose_hand": flat[:, 75:],
            "pose_jaw": flat[:, 66:69], "pose_eye": flat[:, 69:75]}


def amass_smplh(m: Motion) -> dict:
    root, trans = turned_root(m, RX_90)
    joints = np.concatenate([root[:, None], m.poses[:, 1:22], m.poses[:, 25:]], axis=1)
    return {"trans": trans, "gender": np.array("female"), "mocap_framerate": np.array(60.0),
            "betas": np.ones(16), "dmpls": np.zeros((len(root), 8)), "poses": joints.reshape(len(root), 156)}


def fit_axis_angle(m: Motion) -> dict:
    n = m.num_frames
    p = m.poses
    return {"global_orient": p[:, 0], "body_pose": p[:, 1:22].reshape(n, 63), "jaw_pose": p[:, 22],
            "leye_pose": p[:, 23], "reye_pose": p[:, 24], "left_hand_pose": p[:, 25:40].reshape(n, 45),
            "right_hand_pose": p[:, 40:55].reshape(n, 45), "expression": m.expressions[:, :10],
            "transl": m.trans, "betas": np.tile(m.betas, (n, 1))}


def fit_camera_matrices(m: Motion) -> dict:
    root, trans = turned_root(m, RX_180)
    mats = axis_angle_to_matrix(m.poses)
    return {"global_orient": axis_angle_to_matrix(root)[:, None], "body_pose": mats[:, 1:22],
            "jaw_pose": mats[:, 22:23], "left_hand_pose": mats[:, 25:40], "right_hand_pose": mats[:, 40:55],
            "expression": m.expressions[:, :50], "betas": m.betas}


def fit_pca_hands(m: Motion) -> dict:
    arrays = fit_axis_angle(m)
    arrays.update(left_hand_pose=np.ones((m.num_frames, 12)), right_hand_pose=np.ones((m.num_frames, 12)),
                  fps=np.array(25))
    return arrays


def smpl_matrices(m: Motion) -> dict:  # 4D-Humans-like SMPL output: 23 body joints, matrices
    mats = axis_angle_to_matrix(m.poses)
    body = np.concatenate([mats[:, 1:22], np.tile(np.eye(3), (m.num_frames, 2, 1, 1))], axis=1)
    return {"global_orient": mats[:, :1], "body_pose": body, "betas": m.betas, "transl": m.trans[:, None],
            "frame_rate": np.array(30.0)}


def poses_joint_axis(m: Motion) -> dict:
    return {"poses": m.poses, "trans": m.trans, "expressions": m.expressions, "fps": np.array(30)}


def poses_matrices(m: Motion) -> dict:
    return {"poses": axis_angle_to_matrix(m.poses), "trans": m.trans, "expressions": m.expressions,
            "framerate": np.array(30)}


HANDS, FACE, EYES = slice(25, 55), slice(22, 25), slice(23, 25)
NO_FPS = re.escape(
    "no frame rate in the file (mocap_frame_rate, mocap_framerate, fps, frame_rate, framerate): assumed 30 fps"
)
NO_FACE = re.escape("no facial expressions ('expressions' or 'expression') in the file: the face stays neutral")
Z_TURN = r"turned from a Z-up world to Y up \(-90 degrees about X\): AMASS keys \((surface_model_type|mocap_framerate)"


@pytest.mark.parametrize(
    "layout, rest_joints, expressions, fps, trans, notices",
    [
        # AMASS SMPL-X N/G: Z up, 120 fps, no face; the keys say it is AMASS.
        (amass_smplx, [], 0, 120.0, True, [Z_TURN, NO_FACE]),
        # AMASS SMPL+H: 52 joints, mocap_framerate; jaw and eyes at rest, its betas dropped.
        (amass_smplh, FACE, 0, 60.0, True, [
            r"SMPL\+H poses \(52 joints\): mapped onto SMPL-X's 55 joints with the jaw and eyes at rest, and its body "
            r"shape \(betas\), which is not SMPL-X's, left out", Z_TURN, NO_FACE]),
        # Fitting tools: separate axis-angle keys, 10 expressions, no frame rate.
        (fit_axis_angle, [], 10, 30.0, True, [
            "'expression' holds 10 expression coefficients: padded to the rig's 100 with zeros", NO_FPS]),
        # Rotation matrices in camera coordinates (Y down), no eyes, no translation, 50 expressions.
        (fit_camera_matrices, EYES, 50, 30.0, False, [
            "no leye_pose, reye_pose in the file: those joints stay at rest",
            "no translation \\('trans' or 'transl'\\) in the file: the body stays in place",
            "'expression' holds 50 expression coefficients: padded", NO_FPS,
            r"turned from camera coordinates \(Y down\) to Y up \(180 degrees about X\): "
            r"the body's up direction was -Y in most frames"]),
        # PCA hands cannot be decoded without the licensed model: flat hands, said so.
        (fit_pca_hands, HANDS, 10, 25.0, True, [
            "'left_hand_pose' and 'right_hand_pose' hold 12 PCA coefficients, which only the licensed SMPL-X model's "
            "hand components turn into finger rotations: the hands are flat", "'expression' holds 10"]),
        # SMPL (23 body joints) as matrices: its hand joints dropped, fingers/face at rest.
        (smpl_matrices, slice(22, 55), 0, 30.0, True, [
            r"SMPL 'body_pose' \(23 joints\): its two hand joints have no SMPL-X match and were left out",
            "no jaw_pose, leye_pose, reye_pose, left_hand_pose, right_hand_pose in the file: those joints stay at rest",
            NO_FACE]),
        (poses_joint_axis, [], 100, 30.0, True, []),
        (poses_matrices, [], 100, 30.0, True, []),
    ],
)
def test_other_tools_layouts_read_as_the_same_motion(tmp_path, layout, rest_joints, expressions, fps, trans, notices):
    from gestura.rigs.motion_formats import read_motion

    m = truth()
    path = tmp_path / f"{layout.__name__}.npz"
    np.savez(path, **layout(m))
    motion, said = read_motion(path)
    expected = axis_angle_to_matrix(m.poses)
    expected[:, rest_joints] = np.eye(3)
    np.testing.assert_allclose(axis_angle_to_matrix(motion.poses), expected, atol=1e-5)
    np.testing.assert_allclose(motion.trans, m.trans if trans else 0, atol=1e-6)
    np.testing.assert_allclose(motion.expressions[:, :expressions], m.expressions[:, :expressions], atol=1e-6)
    np.testing.assert_array_equal(motion.expressions[:, expressions:], 0)
    assert motion.fps == fps
    # One line per conversion, each saying what was done (in any order).
    assert len(said) == len(notices), said
    for pattern in notices:
        assert [line for line in said if re.match(pattern, line)], (pattern, said)
    assert not any("\n" in line for line in said)


def test_beat2_files_read_without_notices_and_keep_their_betas(tmp_path):
    from gestura.rigs.motion_formats import read_motion

    np.savez(tmp_path / "2_scott_0_1_1.npz", **beat2_arrays())
    motion, notices = read_motion(tmp_path / "2_scott_0_1_1.npz")
    assert notices == [] and motion.betas.shape == (300,)


def test_amass_rest_pose_stands_upright(tmp_path):
    # AMASS stores a person standing in its Z-up world with the root turned +90 degrees about X.
    from gestura.rigs.kinematics import motion_joints
    from gestura.rigs.motion_formats import read_motion
    from gestura.rigs.skeleton import JOINT_INDEX

    n = 3
    poses = np.zeros((n, 165))
    poses[:, :3] = (np.pi / 2, 0, 0)
    trans = np.tile((0.2, 0.5, 0.9), (n, 1))
    np.savez(tmp_path / "rest.npz", poses=poses, trans=trans, surface_model_type=np.array("smplx"),
             mocap_frame_rate=np.array(30.0), betas=np.zeros(16), gender=np.array("neutral"))
    motion, notices = read_motion(tmp_path / "rest.npz")
    np.testing.assert_allclose(motion.poses[:, 0], 0, atol=1e-6)  # upright in Y-up SMPL-X
    np.testing.assert_allclose(motion.trans, np.tile((0.2, 0.9, -0.5), (n, 1)), atol=1e-6)
    joints = motion_joints(motion)
    head, pelvis = joints[:, JOINT_INDEX["head"]], joints[:, JOINT_INDEX["pelvis"]]
    assert (head[:, 1] - pelvis[:, 1] > 0.5).all()
    # The user can overrule the keys: Y up keeps the file's rotation as it is.
    kept, _ = read_motion(tmp_path / "rest.npz", up_axis="Y")
    np.testing.assert_allclose(kept.poses[:, 0], poses[:, :3], atol=1e-6)


def test_a_beat2_layout_file_lying_down_is_only_flagged(tmp_path):
    from gestura.rigs.motion_formats import read_motion

    m = truth()
    arrays = beat2_arrays(m.num_frames)
    root, trans = turned_root(m, RX_90)
    arrays["poses"][:, :3], arrays["trans"] = root, trans
    np.savez(tmp_path / "zup.npz", **arrays)
    motion, notices = read_motion(tmp_path / "zup.npz")
    np.testing.assert_allclose(motion.poses[:, 0], root, atol=1e-6)  # BEAT2's keys: Y up, as written
    assert notices == ["the body's up direction is +Z in most frames, not +Y as in BEAT2 files: "
                       "if it lies down, import it again with Up Axis set to Z Up"]
    turned, notices = read_motion(tmp_path / "zup.npz", up_axis="Z")
    np.testing.assert_allclose(axis_angle_to_matrix(turned.poses[:, 0]), axis_angle_to_matrix(m.poses[:, 0]), atol=1e-5)
    assert notices == ["turned from a Z-up world to Y up (-90 degrees about X): Up Axis was set"]


def test_unused_object_keys_do_not_matter_and_bare_npy_poses_read(tmp_path):
    from gestura.rigs.motion_formats import read_motion

    m = truth()
    arrays = amass_smplx(m)
    arrays["gender"] = np.array("male", dtype=object)  # some exports pickle the gender string
    np.savez(tmp_path / "amass.npz", **arrays)
    motion, _ = read_motion(tmp_path / "amass.npz")
    np.testing.assert_allclose(axis_angle_to_matrix(motion.poses), axis_angle_to_matrix(m.poses), atol=1e-5)
    np.save(tmp_path / "poses.npy", m.poses.reshape(-1, 165))
    motion, notices = read_motion(tmp_path / "poses.npy")
    np.testing.assert_allclose(motion.poses, m.poses, atol=1e-6)
    said = [line.split(" (")[0] for line in notices]
    assert said == ["no translation", "no facial expressions", "no frame rate in the file"]


@pytest.mark.parametrize(
    "name, write, message",
    [
        ("fit.pkl", lambda p: p.write_bytes(pickle.dumps({"poses": np.zeros((2, 165))})),
         r"^'fit.pkl' is a Python pickle, which Gestura never opens because unpickling can run code: if you trust "
         r"it, convert it to 'fit\.npz' in your own Python \(README, \"Pickled motion files\"\)$"),
        ("renamed.npz", lambda p: p.write_bytes(pickle.dumps({"poses": np.zeros((2, 165))}, protocol=4)),
         r"^'renamed.npz' is a Python pickle, which Gestura never opens"),
        ("dict.npy", lambda p: np.save(p, {"poses": np.zeros((2, 165))}, allow_pickle=True),
         r"^'dict.npy' holds Python objects \(a pickle\), .*convert it to 'dict\.npz' in your own Python "
         r"\(README, \"Pickled motion files\"\)$"),
        ("mats.npz", lambda p: np.savez(p, poses=np.ones((2, 55, 3, 3)), trans=np.zeros((2, 3))),
         r"key 'poses' has shape \(2, 55, 3, 3\), expected \(N, 165\)"),
        ("nobody.npz", lambda p: np.savez(p, global_orient=np.zeros((2, 3))),
         r"key 'body_pose' is missing; a pose needs both 'global_orient' and 'body_pose'"),
        ("other.npz", lambda p: np.savez(p, joints=np.zeros((2, 22, 3))),
         r"key 'poses' is missing; .* or 'global_orient' and 'body_pose' as SMPL-X fitting tools write them "
         r"\(found joints\)"),
        ("hands.npz", lambda p: np.savez(p, global_orient=np.zeros((2, 3)), body_pose=np.zeros((2, 63)),
                                         left_hand_pose=np.zeros((2, 60))),
         r"key 'left_hand_pose' has shape \(2, 60\), expected \(N, 45\)"),
        ("face.npz", lambda p: np.savez(p, global_orient=np.zeros((2, 3)), body_pose=np.zeros((2, 63)),
                                        expression=np.zeros((3, 10))),
         r"key 'expression' has shape \(3, 10\), expected \(2, 100\)"),
        ("folder", lambda p: p.mkdir(), r"is a folder; choose a motion file"),
    ],
)
def test_files_that_cannot_be_read_get_one_sentence(tmp_path, name, write, message):
    path = tmp_path / name
    write(path)
    with pytest.raises(MotionError, match=message) as error:
        motion_io.load_npz(path)
    assert "\n" not in str(error.value)


def test_a_file_that_does_not_say_which_way_is_up_and_tumbles_is_read_as_y_up_with_a_notice(tmp_path):
    from gestura.rigs.motion_formats import read_motion

    rng = np.random.default_rng(0)
    root = rng.normal(scale=2.0, size=(40, 3))  # tumbling: no axis holds the body's up direction
    np.savez(tmp_path / "fit.npz", global_orient=root, body_pose=np.zeros((40, 63)), transl=np.zeros((40, 3)),
             expression=np.zeros((40, 100)), mocap_frame_rate=np.array(30))
    motion, notices = read_motion(tmp_path / "fit.npz")
    np.testing.assert_allclose(axis_angle_to_matrix(motion.poses[:, 0]), axis_angle_to_matrix(root), atol=1e-5)
    assert notices[-1] == ("the file does not say which way is up and the body's up direction changes too much to "
                           "tell: read as Y up (if it imports lying down, import it again with another Up Axis)")


def test_more_than_100_expressions_keep_the_first_100(tmp_path):
    from gestura.rigs.motion_formats import read_motion

    arrays = beat2_arrays()
    arrays["expressions"] = np.arange(5 * 120, dtype=float).reshape(5, 120)
    np.savez(tmp_path / "face.npz", **arrays)
    motion, notices = read_motion(tmp_path / "face.npz")
    np.testing.assert_array_equal(motion.expressions, arrays["expressions"][:, :100])
    assert notices == ["'expressions' holds 120 expression coefficients: the rig drives the first 100 (the strongest), "
                       "the rest are left out"]


def test_unwritable_outputs_are_refused_before_writing_in_one_sentence(tmp_path, unwritable_folder):
    motion = random_motion(5)
    with pytest.raises(MotionError, match=r"cannot write .*locked/clip.npz: folder .* is not writable \("):
        motion_io.save_npz(motion, unwritable_folder / "clip.npz")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(MotionError, match=r"notes\.txt is a file, not a folder; choose another folder"):
        motion_io.save_bvh(motion, tmp_path / "notes.txt" / "clip.bvh")
    (tmp_path / "clip.npz").mkdir()
    with pytest.raises(MotionError, match="clip.npz is a folder: name a file inside it"):
        motion_io.save_npz(motion, tmp_path / "clip.npz", overwrite=True)
    assert list(unwritable_folder.iterdir()) == [] and list((tmp_path / "clip.npz").iterdir()) == []


WRITE_WITH_A_SIZE_LIMIT = """
import resource, sys
import numpy as np
from gestura.rigs import motion_io
from gestura.rigs.motion import Motion, MotionError
# The OS refuses writes past 20 kB (EFBIG; Python ignores SIGXFSZ): a disk that fills mid-write.
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
motion = Motion(np.zeros((300, 55, 3)), np.zeros((300, 3)), np.zeros((300, 100)))
try:
    motion_io.save_npz(motion, sys.argv[1], overwrite=True)
except MotionError as error:
    print(error)
"""


def test_a_write_that_fails_midway_is_one_sentence_and_leaves_the_old_file(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "clip.npz"
    target.write_bytes(b"the user's file")
    done = subprocess.run([sys.executable, "-c", WRITE_WITH_A_SIZE_LIMIT, str(target)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout == f"could not write {target}: File too large\n"
    assert target.read_bytes() == b"the user's file"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.npz"]  # no temporary file left


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_that_exists_but_takes_no_files_is_not_called_missing():
    # /proc exists and refuses new names with ENOENT; the message said "No such file or directory".
    with pytest.raises(MotionError, match=r"^cannot write /proc/clip\.npz: folder /proc is not writable "
                                          r"\(it does not take new files\)$"):
        motion_io.check_output("/proc/clip.npz")
