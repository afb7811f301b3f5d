"""What a generation reads and writes, decided without bpy: names, parts, batch inputs and outputs."""
from pathlib import Path

import pytest

import os

from gestura.inference.batch import (BLENDER_AUDIO_EXTENSIONS, JobError, action_name, bones_for_parts, check_output_folder,
                          collect_audio, output_paths, parse_parts)
from gestura.rigs.skeleton import HAND_JOINTS, JOINT_NAMES, PARTS


def test_action_name_is_audio_stem_and_seed_and_fits_blender_names():
    assert action_name("/takes/interview 03.wav", 7) == "interview 03_seed7"
    long = action_name("/x/" + "é" * 60 + ".wav", 123)
    assert long.endswith("_seed123") and len(long.encode()) <= 63
    long.encode().decode("utf-8")  # never cut inside a character


def test_parts_parse_in_model_order_and_unknown_parts_name_the_choices():
    assert parse_parts(None) == PARTS and parse_parts("all") == PARTS
    assert parse_parts("hands, face") == ("face", "hands")
    with pytest.raises(JobError, match="face, upper, hands, lower"):
        parse_parts("arms")
    for nothing in ("", " ", ","):  # an empty --parts names no part; it does not mean all of them
        with pytest.raises(JobError, match="no body part named"):
            parse_parts(nothing)


def test_bones_follow_parts_and_eyes_are_never_keyed():
    everything = bones_for_parts(PARTS)
    assert len(everything) == 53 and "left_eye_smplhf" not in everything and "jaw" in everything
    no_hands = set(bones_for_parts(("face", "upper", "lower")))
    assert no_hands == set(everything) - {JOINT_NAMES[j] for j in HAND_JOINTS}
    assert bones_for_parts(("face",)) == ("jaw",)


def test_collect_audio_takes_files_and_folders_in_name_order(tmp_path):
    for name in ("b.wav", "a.flac", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    single = tmp_path / "b.wav"
    assert collect_audio([tmp_path]) == [tmp_path / "a.flac", tmp_path / "b.wav"]
    assert collect_audio([single, tmp_path]) == [single, tmp_path / "a.flac"]
    with pytest.raises(JobError, match="does not exist"):
        collect_audio([tmp_path / "missing.wav"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(JobError, match="no audio files"):
        collect_audio([tmp_path / "empty"])


def test_output_paths_file_for_one_input_folder_for_many(tmp_path):
    a, b = tmp_path / "in" / "a.wav", tmp_path / "in2" / "b.wav"
    assert output_paths([a], tmp_path / "take.blend", ".blend") == [tmp_path / "take.blend"]
    assert output_paths([a, b], tmp_path / "out", ".blend") == [tmp_path / "out" / "a.blend", tmp_path / "out" / "b.blend"]
    with pytest.raises(JobError, match="pass a folder"):
        output_paths([a, b], tmp_path / "take.blend", ".blend")
    with pytest.raises(JobError, match="rename one"):
        output_paths([a, tmp_path / "in2" / "a.wav"], tmp_path / "out", ".blend")


def test_folders_take_every_format_blender_plays(tmp_path):
    # blender_batch.py reads through Blender's aud: .aac, .m4a, .opus... must not be skipped.
    for ext in BLENDER_AUDIO_EXTENSIONS:
        (tmp_path / f"clip{ext}").write_bytes(b"x")
    names = {p.name for p in collect_audio([tmp_path])}
    assert {"clip.aac", "clip.m4a", "clip.opus", "clip.mp3", "clip.wma"} <= names
    assert len(names) == len(BLENDER_AUDIO_EXTENSIONS)


FORMATS = (".npz", ".bvh", ".blend")


def _setup(root):
    (root / "out" / "session.2024-05").mkdir(parents=True)
    (root / "out" / "take.npz").mkdir()  # a folder named like a file
    (root / "notes").write_text("a file without an extension")
    (root / "old.bvh").write_text("HIERARCHY")


# (output as typed, number of audio files, folder format) -> the output paths (relative to the
# test folder, "{stem}" per audio file) or the error's words. What is on disk decides first.
OUTPUT_CASES = [
    ("out/session.2024-05", 2, None, ["out/session.2024-05/a.npz", "out/session.2024-05/b.npz"]),
    ("out/session.2024-05", 1, ".blend", ["out/session.2024-05/a.blend"]),
    ("out/session.2024-05/", 2, ".bvh", ["out/session.2024-05/a.bvh", "out/session.2024-05/b.bvh"]),
    ("out/take.npz", 1, None, ["out/take.npz/a.npz"]),
    ("new/take.npz/", 1, None, ["new/take.npz/a.npz"]),
    ("new/run.v2", 2, None, ["new/run.v2/a.npz", "new/run.v2/b.npz"]),
    ("new/with space/sortie é", 1, ".bvh", ["new/with space/sortie é/a.bvh"]),
    ("new/clip é 1.blend", 1, None, ["new/clip é 1.blend"]),
    ("take.NPZ", 1, None, ["take.NPZ"]),
    ("old.bvh", 1, None, ["old.bvh"]),
    ("take.npz", 2, None, "names one file but 2 audio files"),
    ("take.fbx", 1, None, "is a .fbx file, but only .npz, .bvh, .blend files can be written"),
    ("take.wav", 1, None, "is a .wav file"),
    ("x.bvh", 1, ".npz", "names a .bvh file but the format .npz was asked for"),
    ("notes", 2, None, "is an existing file"),
    ("notes/", 2, None, "is a file, not a folder"),
]


@pytest.mark.parametrize("out, count, folder_format, expected", OUTPUT_CASES)
def test_output_paths_are_judged_by_what_is_on_disk(tmp_path, monkeypatch, out, count, folder_format, expected):
    _setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    audio = [tmp_path / "in" / "a.wav", tmp_path / "in" / "b.opus"][:count]
    if isinstance(expected, str):
        with pytest.raises(JobError, match=expected):
            output_paths(audio, out, FORMATS, folder_format)
    else:
        assert output_paths(audio, out, FORMATS, folder_format) == [Path(p) for p in expected]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing created


def test_output_folders_are_checked_before_any_work(tmp_path, unwritable_folder):
    check_output_folder(tmp_path / "new" / "deeper")  # can be created: fine, and nothing is made
    assert not (tmp_path / "new").exists()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(JobError, match="cannot be created: '.*notes.txt' is a file, not a folder"):
        check_output_folder(tmp_path / "notes.txt" / "out")
    with pytest.raises(JobError, match="cannot write into output folder '.*locked': (Permission denied|"
                                       "Operation not permitted)"):
        check_output_folder(unwritable_folder)
    with pytest.raises(JobError, match="cannot create output folder '.*locked/sub': cannot write into"):
        check_output_folder(unwritable_folder / "sub")
    assert os.listdir(unwritable_folder) == []
