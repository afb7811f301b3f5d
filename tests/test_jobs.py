"""What a generation reads and writes, decided without bpy: names, parts, batch inputs and outputs."""
import pytest

from gestura.jobs import JobError, action_name, bones_for_parts, collect_audio, output_paths, parse_parts
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
