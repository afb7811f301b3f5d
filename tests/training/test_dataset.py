"""The BEAT2-layout reader on a tiny set the tests write: splits, speakers, alignment, contacts,
statistics, caching, and bad files skipped with a warning."""
from types import SimpleNamespace

import numpy as np
import pytest
from beat2_fixture import ClipSpec, break_npz, break_wav, default_clips, make_beat2, remove_wav, shorten_wav

from gestura.inference.features import FEATURE_DIM
from gestura.rigs.skeleton import PART_DIMS, PARTS
from gestura.training import dataset as ds


@pytest.fixture(scope="module")
def beat2(tmp_path_factory):
    return make_beat2(tmp_path_factory.mktemp("beat2"), default_clips(speakers=(2, 4), per_speaker=2, seconds=3.0))


def test_ids_speakers_and_styles():
    assert ds.speaker_of("2_scott_0_1_1") == 2
    assert ds.style_name("12_kieks_0_9_16") == "12_kieks"
    assert ds.parse_speakers("2,4-6") == {2, 4, 5, 6}
    assert ds.parse_speakers("all") is None
    with pytest.raises(ds.DatasetError):
        ds.parse_speakers("two")
    with pytest.raises(ds.ClipError):
        ds.speaker_of("scott_0_1_1")


def test_split_and_speaker_selection(beat2):
    train = ds.list_clips(beat2, "train")
    assert [r.id for r in train] == ["2_scott_0_1_1", "4_lawrence_0_1_1"]
    test = ds.list_clips(beat2, ("test",), speakers={4})
    assert [r.id for r in test] == ["4_lawrence_0_2_2"]
    with pytest.raises(ds.DatasetError, match="does not exist"):
        ds.list_clips(beat2 / "nowhere")
    (beat2 / "empty").mkdir()
    with pytest.raises(ds.DatasetError, match="train_test_split.csv is missing"):
        ds.list_clips(beat2 / "empty")


def test_clip_arrays_are_aligned_and_contacts_come_from_kinematics(beat2, tmp_path):
    data = ds.Beat2Dataset.load(beat2, "train", cache=tmp_path / "cache")
    assert data.styles == ["2_scott", "4_lawrence"]
    clip = data.clips[0]
    n = clip.num_frames
    assert n == 90  # 3 s at 30 fps, audio and motion agree
    assert clip.features.shape == (n, FEATURE_DIM)
    assert clip.positions.shape == (n, 55, 3)
    for part in PARTS:
        assert clip.parts[part].shape == (n, PART_DIMS[part])
    # The fixture keeps the feet still: every foot joint is in contact on every frame...
    assert clip.contacts.shape == (n, 4) and clip.contacts.min() == 1.0
    np.testing.assert_array_equal(clip.parts["lower"][:, 57:61], clip.contacts)


def test_sliding_feet_lose_contact(tmp_path):
    from beat2_fixture import procedural_motion

    root = make_beat2(tmp_path / "d", [ClipSpec("3_solomon_0_1_1", "train", 2.0)])
    path = root / "smplxflame_30" / "3_solomon_0_1_1.npz"
    data = dict(np.load(path))
    data["trans"][30:, 0] += np.arange(30) * 0.02  # 2 cm per frame from frame 30 on: > 1 cm
    np.savez(path, **data)
    clip = ds.Beat2Dataset.load(root, "train", cache=False).clips[0]
    assert clip.contacts[:30].min() == 1.0
    assert clip.contacts[31:].max() == 0.0
    assert procedural_motion  # the fixture's generator is importable for other tests


def test_statistics_are_per_dimension_and_floored(beat2):
    data = ds.Beat2Dataset.load(beat2, "train", cache=False)
    stats = ds.compute_stats(data.clips)
    frames = np.concatenate([c.parts["upper"] for c in data.clips])
    np.testing.assert_allclose(stats["upper_mean"], frames.mean(0), atol=1e-5)
    np.testing.assert_allclose(stats["upper_std"], np.maximum(frames.std(0), 1e-2), rtol=1e-4)
    assert stats["audio_mean"].shape == (FEATURE_DIM,)
    assert (stats["lower_std"] >= 1e-2).all()  # contacts never change in the fixture: floored, not 0
    assert stats["joint_speed_mean"].shape == (55,) and stats["joint_speed_mean"][20] > 0.05
    from gestura.inference.checkpoint import stats_shapes

    assert set(stats_shapes()) <= set(stats)
    start = data.clips[ds.start_frame(data.clips)]
    np.testing.assert_array_equal(stats["start_pose"], start.motion.poses[0].reshape(-1))
    np.testing.assert_array_equal(stats["start_expressions"], start.motion.expressions[0])


def test_the_start_pose_is_the_first_frame_most_clips_start_near():
    # Four clips start at rest (a little sway apart), one with an arm raised: generation starts
    # from the clip whose first frame is nearest the others, a real frame of the data.
    clips = []
    for lift in (0.0, 0.01, 0.02, 0.5, 0.03):
        positions = np.tile(np.arange(55)[None, :, None] * 0.01, (5, 1, 3))
        positions[0, 21, 1] += lift
        positions[0] += 3.0 * lift  # where the clip stands (the pelvis) does not count
        clips.append(SimpleNamespace(positions=positions))
    assert ds.start_frame(clips) == 2


def test_cache_is_used_and_invalidated_when_a_file_changes(beat2, tmp_path):
    cache = tmp_path / "cache"
    first = ds.Beat2Dataset.load(beat2, "train", cache=cache)
    files = sorted(cache.glob("*.npz"))
    assert len(files) == 2
    stamp = files[0].stat().st_mtime_ns
    again = ds.Beat2Dataset.load(beat2, "train", cache=cache)
    assert files[0].stat().st_mtime_ns == stamp  # read, not rewritten
    np.testing.assert_array_equal(first.clips[0].features, again.clips[0].features)
    np.testing.assert_array_equal(first.clips[0].parts["hands"], again.clips[0].parts["hands"])


def test_bad_files_are_reported_and_skipped(tmp_path):
    clips = [ClipSpec(f"2_scott_0_{i}_{i}", "train", 2.0) for i in range(1, 6)]
    root = make_beat2(tmp_path / "bad", clips)
    break_npz(root, "2_scott_0_1_1")
    break_wav(root, "2_scott_0_2_2")
    remove_wav(root, "2_scott_0_3_3")
    shorten_wav(root, "2_scott_0_4_4", 0.5)
    with pytest.warns(ds.DataWarning) as record:
        data = ds.Beat2Dataset.load(root, "train", cache=tmp_path / "c")
    assert [c.ref.id for c in data.clips] == ["2_scott_0_5_5"]
    messages = "\n".join(str(w.message) for w in record)
    assert "2_scott_0_1_1" in messages and "cannot read" in messages
    assert "2_scott_0_2_2" in messages and "audio" in messages
    assert "2_scott_0_3_3" in messages and "missing" in messages
    assert "2_scott_0_4_4" in messages and "0.50 s of audio" in messages
    assert len(data.skipped) == 4


def test_motion_is_read_as_the_import_operator_reads_it(tmp_path):
    # An AMASS SMPL+H file (52 joints, Z up, 60 fps under AMASS's 'mocap_framerate') among the
    # clips: upright and at 30 fps, as Import SMPL-X Motion shows it, not refused or slowed down.
    poses = np.zeros((61, 156))
    poses[:, :3] = (np.pi / 2, 0.0, 0.0)  # standing in AMASS's Z-up world
    np.savez(tmp_path / "amass.npz", poses=poses, trans=np.tile((0.0, 0.0, 0.9), (61, 1)),
             mocap_framerate=np.array(60.0), gender=np.array("male"), betas=np.zeros(16))
    motion = ds.read_motion_npz(tmp_path / "amass.npz")
    assert motion.num_frames == 31 and motion.fps == 30.0
    np.testing.assert_allclose(motion.poses[:, 0], 0, atol=1e-6)
    np.testing.assert_allclose(motion.trans, np.tile((0.0, 0.9, 0.0), (31, 1)), atol=1e-6)
    (tmp_path / "fit.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(ds.ClipError, match="'fit.pkl' is a Python pickle"):
        ds.read_motion_npz(tmp_path / "fit.pkl")


def test_windows_cover_clips_and_pad_short_ones(beat2):
    data = ds.Beat2Dataset.load(beat2, "train", cache=False)
    index = ds.window_index(data.clips, length=32, stride=16)
    assert index.shape[1] == 2
    assert {tuple(r) for r in index if r[0] == 0} == {(0, s) for s in range(0, 90 - 32 + 1, 16)}
    long = ds.window_index(data.clips, length=200, stride=100)
    assert [tuple(r) for r in long] == [(0, 0), (1, 0)]
    w = ds.take_window(data.clips[0].features, 0, 200)
    assert w.shape == (200, FEATURE_DIM)
    np.testing.assert_array_equal(w[150], data.clips[0].features[-1])


def test_espeak_speech_set_is_read(tmp_path):
    root = make_beat2(tmp_path / "speech", [ClipSpec("5_stewart_0_1_1", "train", 3.0)], audio="espeak")
    clip = ds.Beat2Dataset.load(root, "train", cache=False).clips[0]
    assert clip.num_frames >= 30
    assert np.isfinite(clip.features).all()
