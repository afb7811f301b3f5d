"""Checkpoint round trip (numpy reader, torch model) and clear failures for bad files."""
import json
import struct

import numpy as np
import pytest
torch = pytest.importorskip("torch")

from gestura.inference import safetensors_np
from gestura.inference.architecture import parameter_count, tensor_shapes
from gestura.inference.checkpoint import (
    FORMAT_VERSION, CheckpointError, default_checkpoint_path, identity_stats, load_checkpoint, save_checkpoint,
)
from gestura.inference.config import CONFIGS, ConfigError, ModelConfig
from gestura.inference.torch_model.model import GesturaModel
from random_checkpoint import tiny_config

torch.set_num_threads(1)
TINY = tiny_config()
STYLES = ["alice", "bob"]


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = GesturaModel(TINY)
    stats = identity_stats()
    stats["face_std"] = np.full_like(stats["face_std"], 2.0)
    stats["joint_speed_mean"] = np.ones(55, np.float32)  # extra statistics are kept
    path = model.save(tmp_path / "tiny.safetensors", styles=STYLES, stats=stats)
    return model, path


def test_torch_state_dict_matches_architecture_spec_for_every_config():
    window_only = {"window": [1, 2, 4, 8], "global": [1], "local": [1]}
    for config in (TINY, CONFIGS["small"], CONFIGS["small"].with_(granularities=(1, 2, 4, 8)),
                   CONFIGS["small"].with_(granularities=window_only), CONFIGS["small"].with_(stroke_planner=True),
                   CONFIGS["small"].with_(stroke_planner=True, planner_pitch=True)):
        model = GesturaModel(config)
        got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert got == {k: tuple(v) for k, v in tensor_shapes(config).items()}
        assert sum(p.numel() for p in model.parameters()) == parameter_count(config)


def test_parameter_counts_of_the_shipped_configs():
    assert parameter_count(CONFIGS["small"]) * 4 < 30e6  # the bundled checkpoint stays under 30 MB
    assert 180e6 < parameter_count(CONFIGS["mambatalk"]) < 230e6  # MambaTalk's published ~200 M


def test_only_a_stroke_planner_hears_pitch_two_columns_after_the_speech_features():
    small = CONFIGS["small"]
    assert small.input_width == small.feature_dim
    assert small.with_(stroke_planner=True, planner_pitch=True).input_width == small.feature_dim + 2
    with pytest.raises(ConfigError, match="'planner_pitch' needs 'stroke_planner': only a stroke planner hears pitch"):
        small.with_(planner_pitch=True)
    with pytest.raises(ConfigError, match="'planner_pitch' must be true or false, got 1"):
        small.with_(stroke_planner=True, planner_pitch=1)


def test_carried_codes_default_to_the_whole_prefix_and_stay_within_it():
    small = CONFIGS["small"]
    assert small.carried_codes is None and small.generation_prefix == small.prefix_codes == 4
    assert small.with_(carried_codes=0).generation_prefix == 0
    assert small.with_(carried_codes=2).generation_prefix == 2
    for bad in (5, -1, 2.0, True):
        with pytest.raises(ConfigError, match="'carried_codes' must be a whole number from 0 to 'prefix_codes' "
                                              r"\(4\), or null"):
            small.with_(carried_codes=bad)


def test_decoder_lookahead_is_causal_by_default_and_at_most_one_code_per_part():
    small = CONFIGS["small"]
    assert small.decoder_lookahead == {"face": 0, "upper": 0, "hands": 0, "lower": 0}  # what older checkpoints had
    ahead = small.with_(decoder_lookahead={"face": 0, "upper": 2, "hands": 4, "lower": 0})
    assert ModelConfig.from_dict(json.loads(ahead.to_json())) == ahead
    for bad in ({"face": 0, "upper": 5, "hands": 0, "lower": 0}, {"face": 0, "upper": -1, "hands": 0, "lower": 0},
                {"face": 0, "upper": 2.0, "hands": 0, "lower": 0}, {"upper": 2}, 2):
        with pytest.raises(ConfigError, match=r"'decoder_lookahead' must give each part .* a whole number of frames "
                                              r"from 0 to 'frames_per_code' \(4\)"):
            small.with_(decoder_lookahead=bad)


def test_stroke_rates_are_one_positive_number_per_style_and_survive_json(tmp_path):
    small = CONFIGS["small"]
    assert small.apex_rates == ()  # a checkpoint without them keeps its threshold fixed
    rated = small.with_(apex_rates=[0.5, 1.7, 0.75, 0.25])
    assert rated.apex_rates == (0.5, 1.7, 0.75, 0.25)
    assert type(small).from_dict(json.loads(rated.to_json())) == rated
    for bad in ((0.5, 1.0), (0.5, 1.7, 0.0, 0.2), (0.5, 1.7, float("nan"), 0.2), "fast", 3):
        with pytest.raises(ConfigError, match=r"'apex_rates' must be empty or one positive number per style \(4\)"):
            small.with_(apex_rates=bad)


def test_the_default_style_is_one_of_the_styles_and_belongs_to_them(tmp_path):
    small = CONFIGS["small"]
    assert small.default_style == 0
    lively = small.with_(default_style=1, apex_rates=(0.5, 1.7, 0.75, 0.25))
    assert type(small).from_dict(json.loads(lively.to_json())) == lively
    for bad in (4, -1, True, 1.0, "2_bodhi"):
        with pytest.raises(ConfigError, match=r"'default_style' must be a style index from 0 to 3"):
            small.with_(default_style=bad)
    # Another set of styles (a model trained on other speakers) starts from the first again.
    assert lively.for_styles(2) == small.with_(num_styles=2)
    path = save_checkpoint(tmp_path / "lively.safetensors",
                           {k: np.zeros(v, np.float32) for k, v in tensor_shapes(lively, "vq").items()},
                           lively, styles=["a", "b", "c", "d"], stage="vq")
    checkpoint = load_checkpoint(path)
    assert checkpoint.style_index(None) == 1 and checkpoint.style_index("d") == 3


def test_the_start_pose_statistics_come_as_a_pair_of_the_right_shapes(tmp_path):
    tensors = {k: np.zeros(v, np.float32) for k, v in tensor_shapes(TINY, "vq").items()}
    stats = {**identity_stats(), "start_pose": np.zeros(165, np.float32), "start_expressions": np.zeros(100, np.float32)}
    path = save_checkpoint(tmp_path / "start.safetensors", tensors, TINY, stats=stats, styles=STYLES, stage="vq")
    assert load_checkpoint(path).stats["start_pose"].shape == (165,)
    with pytest.raises(CheckpointError, match=r"come together, but only \['start_pose'\] is there"):
        save_checkpoint(tmp_path / "half.safetensors", tensors, TINY, styles=STYLES, stage="vq",
                        stats={k: v for k, v in stats.items() if k != "start_expressions"})
    with pytest.raises(CheckpointError, match="'start_pose' have shape"):
        save_checkpoint(tmp_path / "bad.safetensors", tensors, TINY, styles=STYLES, stage="vq",
                        stats={**stats, "start_pose": np.zeros(55, np.float32)})


def test_round_trip_restores_weights_config_stats_and_styles(tiny_checkpoint):
    model, path = tiny_checkpoint
    ckpt = load_checkpoint(path)
    assert ckpt.config == TINY and ckpt.styles == STYLES and ckpt.stage == "full"
    assert ckpt.metadata["format_version"] == str(FORMAT_VERSION)
    assert np.all(ckpt.stats["face_std"] == 2.0) and ckpt.stats["joint_speed_mean"].shape == (55,)
    for name, value in model.state_dict().items():
        assert np.array_equal(ckpt.tensors[name], value.numpy()), name
    again = GesturaModel.from_checkpoint(path)
    for name, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], value)
    # The numpy writer is real safetensors: the reference library reads it too.
    safetensors = pytest.importorskip("safetensors.numpy")
    reference = safetensors.load_file(str(path))
    assert set(reference) == set(ckpt.tensors) | {"stats." + k for k in ckpt.stats}


def test_reader_reads_files_of_the_reference_writer(tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy")
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, -2], np.int64)}
    safetensors.save_file(arrays, str(tmp_path / "x.safetensors"), metadata={"k": "v"})
    tensors, metadata = safetensors_np.load_file(tmp_path / "x.safetensors")
    assert metadata == {"k": "v"}
    for k in arrays:
        assert np.array_equal(tensors[k], arrays[k]) and tensors[k].dtype == arrays[k].dtype


def test_stage_one_checkpoint_loads_without_generator(tmp_path):
    model = GesturaModel(TINY, with_generator=False)
    path = model.save(tmp_path / "vq.safetensors", styles=STYLES)
    ckpt = load_checkpoint(path)
    assert ckpt.stage == "vq" and not any(k.startswith("generator.") for k in ckpt.tensors)
    with pytest.raises(CheckpointError, match="stage 1 only"):
        GesturaModel.from_checkpoint(path, with_generator=True)
    assert GesturaModel.from_checkpoint(path).generator is None
    # Stage 2 training starts a full model from stage-1 weights.
    full = GesturaModel(TINY)
    full.load_tensors(ckpt.tensors, "vq")
    assert torch.equal(full.vq["hands"].codebook.weight, model.vq["hands"].codebook.weight)


def _rewrite(path, out, edit_tensors=None, edit_metadata=None):
    tensors, metadata = safetensors_np.load_file(path)
    if edit_tensors:
        edit_tensors(tensors)
    if edit_metadata:
        edit_metadata(metadata)
    safetensors_np.save_file(tensors, out, metadata)
    return out


def test_newer_format_version_fails_clearly(tiny_checkpoint, tmp_path):
    _, path = tiny_checkpoint
    bad = _rewrite(path, tmp_path / "v99.safetensors", edit_metadata=lambda m: m.update(format_version="99"))
    with pytest.raises(CheckpointError, match=rf"format version 99, this Gestura reads version {FORMAT_VERSION}: "
                                              r"it was written by a newer Gestura; update Gestura to use it"):
        load_checkpoint(bad)


def test_version_one_checkpoint_is_refused_with_a_one_line_retrain_message(tiny_checkpoint, tmp_path):
    # Version 1 held the per-frame generator; its weights cannot drive the span generator.
    _, path = tiny_checkpoint
    old = _rewrite(path, tmp_path / "v1.safetensors", edit_metadata=lambda m: m.update(format_version="1"))
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(old)
    message = str(error.value)
    assert message == (f"checkpoint '{old}' has format version 1 (the per-frame model of earlier Gestura releases), "
                       "this Gestura reads version 3: retrain it on your data with gestura train-vq and gestura train")
    assert "\n" not in message
    assert FORMAT_VERSION == 3


def test_a_version_two_generator_is_refused_but_its_stage_one_still_trains_a_new_one(tiny_checkpoint, tmp_path):
    # Version 2's body read the apex head's probabilities, not a stroke plan; its VQ-VAEs are unchanged.
    model, path = tiny_checkpoint
    old = _rewrite(path, tmp_path / "v2.safetensors", edit_metadata=lambda m: m.update(format_version="2"))
    with pytest.raises(CheckpointError, match=r"format version 2 \(the span model without stroke plans of earlier "
                                              r"Gestura releases\), this Gestura reads version 3: retrain it"):
        load_checkpoint(old)
    vq = tmp_path / "vq.safetensors"
    model.save(vq, styles=STYLES, stage="vq")
    # Audio statistics of another feature set: stage 1 never uses them.
    stage1 = _rewrite(vq, tmp_path / "vq-v2.safetensors", edit_metadata=lambda m: m.update(format_version="2"),
                      edit_tensors=lambda t: t.update({"stats.audio_mean": np.zeros(130, np.float32),
                                                       "stats.audio_std": np.ones(130, np.float32)}))
    loaded = load_checkpoint(stage1)
    assert loaded.stage == "vq" and "audio_mean" not in loaded.stats


def test_truncated_file_fails_clearly(tiny_checkpoint, tmp_path):
    _, path = tiny_checkpoint
    data = path.read_bytes()
    for cut in (len(data) - 100, 20, 4):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated|too short"):
            load_checkpoint(bad)


def test_wrong_shapes_fail_clearly(tiny_checkpoint, tmp_path):
    _, path = tiny_checkpoint

    def widen(t):
        t["vq.face.codebook.weight"] = np.zeros((TINY.codebook_size, TINY.code_dim + 1), np.float32)

    with pytest.raises(CheckpointError, match=r"'vq.face.codebook.weight' has shape \(16, 9\).*needs \(16, 8\)"):
        load_checkpoint(_rewrite(path, tmp_path / "shape.safetensors", edit_tensors=widen))

    # Weights of one config with the metadata of another.
    def other_config(m):
        m["config"] = json.dumps(TINY.with_(d_model=32).to_dict())

    with pytest.raises(CheckpointError, match="do not match the config"):
        load_checkpoint(_rewrite(path, tmp_path / "config.safetensors", edit_metadata=other_config))

    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(_rewrite(path, tmp_path / "missing.safetensors",
                                 edit_tensors=lambda t: t.pop("generator.style.weight")))


def test_not_a_checkpoint_and_missing_file(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(struct.pack("<Q", 5) + b"hello" + b"\0" * 8)
    with pytest.raises(CheckpointError, match="unreadable safetensors header"):
        load_checkpoint(junk)
    # An audio file given as the checkpoint: said so, not as a header of 2.4e15 bytes (a reported fault).
    wav = tmp_path / "speech.wav"
    wav.write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt " + b"\0" * 64)
    with pytest.raises(CheckpointError, match=r"speech.wav' is not a safetensors file \(its first 8 bytes are not a "
                                              r"header length\)\. Re-download or re-export it"):
        load_checkpoint(wav)
    other = tmp_path / "other.safetensors"
    safetensors_np.save_file({"w": np.zeros(2, np.float32)}, other, {"format": "pt"})
    with pytest.raises(CheckpointError, match="not a Gestura checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_save_refuses_inconsistent_inputs(tmp_path):
    model = GesturaModel(TINY)
    with pytest.raises(CheckpointError, match="distinct style names"):
        model.save(tmp_path / "x.safetensors", styles=["only-one"])
    stats = identity_stats()
    stats["audio_std"][0] = 0.0
    with pytest.raises(CheckpointError, match="non-positive std"):
        model.save(tmp_path / "x.safetensors", styles=STYLES, stats=stats)
    assert not (tmp_path / "x.safetensors").exists()


def test_default_checkpoint_path_is_in_weights():
    path = default_checkpoint_path()
    assert path.name == "gestura-small.safetensors" and path.parent.name == "weights"
