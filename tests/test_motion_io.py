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
        (lambda a: a.pop("trans"), r"key 'trans' is missing; expected an array of shape \(N, 3\)"),
        (lambda a: a.update(poses=np.zeros((5, 156))), r"key 'poses' has shape \(5, 156\), expected \(N, 165\)"),
        (lambda a: a.update(trans=np.zeros((4, 3))), r"key 'trans' has shape \(4, 3\), expected \(5, 3\)"),
        (lambda a: a.update(expressions=np.zeros((5, 50))), r"key 'expressions' has shape \(5, 50\), expected \(5, 100\)"),
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


def test_unwritable_outputs_are_refused_before_writing_in_one_sentence(tmp_path, unwritable_folder):
    motion = random_motion(5)
    with pytest.raises(MotionError, match=r"cannot write .*locked/clip.npz: folder .* is not writable \("):
        motion_io.save_npz(motion, unwritable_folder / "clip.npz")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(MotionError, match="does not exist"):
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
