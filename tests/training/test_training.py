"""Both training stages end to end on the CPU, on a tiny BEAT2-layout set the tests write:
checkpoints `gestura generate` loads, falling losses, exact resume, bad files skipped, evaluation."""
import hashlib
import json
import warnings

import numpy as np
import pytest
torch = pytest.importorskip("torch")
from beat2_fixture import ClipSpec, break_npz, default_clips, make_beat2
from loss_windows import window_ratio

from gestura import cli
from gestura.inference.checkpoint import load_checkpoint

# A model small enough to train in seconds on a shared 2-core machine.
TINY_VQ = ["--set", "vq_hidden=16", "--set", "code_dim=8", "--set", "codebook_size=16", "--set", "gmp_hidden=16"]
TINY_GEN = ["--set", "d_model=16", "--set", "speech_layers=1", "--set", "global_layers=1", "--set", "mlp_ratio=0",
            "--set", 'local_layers={"face": 1, "upper": 1, "hands": 1, "lower": 1}']
LOOP = ["--no-progress", "--threads", "1", "--window", "32", "--batch-size", "8"]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    # 6 s clips: BC ignores the first and last 2 s of each.
    return make_beat2(tmp_path_factory.mktemp("beat2"), default_clips(speakers=(2, 4), per_speaker=3, seconds=6.0))


def cold_poses_on_both_engines(checkpoint, wav, out_dir, name: str = "") -> list:
    """``gestura generate`` of ``wav`` in style 4_lawrence at temperature 0 with the torch and the
    numpy engine: their poses, in that order."""
    poses = []
    for engine in ("torch", "numpy"):
        out = out_dir / f"{name}{engine}.npz"
        assert cli.main(["generate", str(wav), "-o", str(out), "--checkpoint", str(checkpoint), "--style", "4_lawrence",
                         "--temperature", "0", "--engine", engine, "--device", "cpu"]) == 0
        with np.load(out, allow_pickle=False) as motion:
            poses.append(motion["poses"])
    return poses


def history(out):
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def losses(out):
    return [r["loss"] for r in history(out) if "loss" in r]


@pytest.fixture(scope="module")
def vq_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("vq")
    # 100 steps: with 4 frames per code the tiny model sits on a plateau (loss about 1.8-1.9) until
    # step 45-55, where one dead-code reset can lift a step above the start (2.12 at step 50 on one
    # machine), and leaves it by step 70 on every seed tried.
    code = cli.main(["train-vq", "--data", str(data), "--out", str(out), "--steps", "100", "--lr", "3e-3", "--reset-dead", "5",
                     "--log-every", "1", *TINY_VQ, *LOOP])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def gen_run(data, vq_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    code = cli.main(["train", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"), "--out", str(out),
                     "--steps", "30", "--lr", "3e-3", "--log-every", "1", *TINY_GEN, *LOOP])
    assert code == 0
    return out


def test_stage1_writes_a_vq_checkpoint_log_and_plot_and_its_loss_falls(vq_run):
    ckpt = load_checkpoint(vq_run / "vq.safetensors")
    assert ckpt.stage == "vq"
    assert ckpt.styles == ["2_scott", "4_lawrence"]
    assert json.loads(ckpt.metadata["trained_parts"]) == ["face", "upper", "hands", "lower"]
    assert ckpt.stats["joint_speed_mean"].shape == (55,)
    # The last 10 steps against the first 10: 0.48-0.55 over seeds 0-2 on one machine (0.62-0.89 at 60 steps).
    curve = losses(vq_run)
    assert window_ratio(curve, 10) < 0.8, curve
    rec = history(vq_run)[-1]
    for part in ("face", "upper", "hands", "lower"):
        assert 1.0 <= rec[f"{part}_perplexity"] <= 16
    assert "lower_foot_skate" in rec and "gmp_loss" in rec
    log = (vq_run / "train.log").read_text()
    assert "train-vq: starting" in log and "steps/s" in log and "done: 100 steps" in log
    assert (vq_run / "loss.png").stat().st_size > 5000


def test_stage2_checkpoint_loads_in_gestura_generate(gen_run, data, tmp_path):
    ckpt = load_checkpoint(gen_run / "gestura.safetensors")
    assert ckpt.stage == "full" and ckpt.config.num_styles == 2 and ckpt.styles == ["2_scott", "4_lawrence"]
    assert "ema_decay" not in ckpt.metadata  # the code generator exports its last step's weights unless asked
    # The last 5 steps against the first 5: 0.60-0.65 over seeds 0-2 on one machine.
    curve = losses(gen_run)
    assert window_ratio(curve, 5) < 0.8, curve
    rec = history(gen_run)[-1]
    assert {f"{p}_{k}" for p in ("face", "upper", "hands", "lower") for k in ("ce", "acc")} | {"apex_bce"} <= set(rec)
    # The stroke-apex threshold was calibrated on the data's stroke rate and travels in the checkpoint.
    threshold = ckpt.config.apex_threshold
    assert 0 < threshold < 1 and threshold != type(ckpt.config)().apex_threshold
    # So were the styles' stroke rates that lower it for a voice the head is unsure of.
    assert len(ckpt.config.apex_rates) == 2 and all(0 < rate < 10 for rate in ckpt.config.apex_rates)
    out = tmp_path / "gen.npz"
    wav = data / "wave16k" / "4_lawrence_0_3_3.wav"
    code = cli.main(["generate", str(wav), "-o", str(out), "--checkpoint", str(gen_run / "gestura.safetensors"),
                     "--style", "4_lawrence", "--device", "cpu"])
    assert code == 0
    with np.load(out, allow_pickle=False) as motion:
        assert motion["poses"].shape[0] == 180 and np.isfinite(motion["poses"]).all()


def test_a_multi_granularity_generator_trains_and_its_checkpoint_records_the_setting(data, vq_run, tmp_path):
    out = tmp_path / "granular"
    assert cli.main(["train", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"), "--out", str(out),
                     "--steps", "3", "--set", "granularities=[1, 2, 4, 8]", *TINY_GEN, *LOOP]) == 0
    ckpt = load_checkpoint(out / "gestura.safetensors")
    assert ckpt.config.granularities == {scan: (1, 2, 4, 8) for scan in ("window", "global", "local")}
    assert "generator.global_blocks.0.scales.3.mixer_back.A_log" in ckpt.tensors
    wav = data / "wave16k" / "2_scott_0_3_3.wav"
    assert cli.main(["generate", str(wav), "-o", str(tmp_path / "g.npz"), "--checkpoint", str(out / "gestura.safetensors"),
                     "--engine", "numpy"]) == 0


TINY_DIM = ["--set", "d_model=16", "--set", "headdim=8", "--set", "mamba2_d_state=8", "--set", "denoiser_layers=2",
            "--set", "speech_layers=1", "--set", "span_codes=6", "--set", "prefix_codes=2"]


@pytest.mark.parametrize("block", ["mamba2", "attention"])
def test_a_dim_gestor_model_trains_its_loss_falls_and_generates_with_both_engines(data, vq_run, tmp_path, block):
    out = tmp_path / "dim"
    assert cli.main(["train", "--family", "dim-gestor", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"),
                     "--out", str(out), "--steps", "40", "--lr", "3e-3", "--log-every", "1", *TINY_DIM,
                     "--set", f"denoiser_block={block}", *LOOP]) == 0
    # The denoising loss starts near 1 (the latents are normalised, the zero-initialised output
    # predicts their mean) and the last 5 steps sit clearly below the first 5 on every seed tried.
    curve = losses(out)
    assert window_ratio(curve, 5) < 0.9, curve
    ckpt = load_checkpoint(out / "gestura.safetensors")
    assert ckpt.config.family == "dim-gestor" and ckpt.config.denoiser_block == block
    assert ckpt.metadata["ema_decay"] == "0.999"  # a diffusion model is sampled from its weights' average
    std = ckpt.tensors["generator.latent_std"]
    assert std.shape == (4 * 8,) and np.all(std > 0) and not np.allclose(std, 1.0)  # measured on the data
    wav = data / "wave16k" / "2_scott_0_3_3.wav"
    for engine in ("numpy", "torch"):
        target = tmp_path / f"{engine}.npz"
        assert cli.main(["generate", str(wav), "-o", str(target), "--checkpoint", str(out / "gestura.safetensors"),
                         "--engine", engine, "--device", "cpu"]) == 0
        with np.load(target, allow_pickle=False) as motion:
            assert motion["poses"].shape[0] == 180 and np.isfinite(motion["poses"]).all()


def test_resume_continues_exactly_where_it_stopped(data, tmp_path, capsys):
    args = ["--data", str(data), "--part", "upper", "--lr", "3e-3", "--log-every", "2", "--reset-dead", "3", *TINY_VQ, *LOOP]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert cli.main(["train-vq", "--out", str(straight), "--steps", "8", *args]) == 0
    assert cli.main(["train-vq", "--out", str(resumed), "--steps", "4", *args]) == 0
    capsys.readouterr()
    assert cli.main(["train-vq", "--out", str(resumed), "--steps", "8", *args]) == 0
    # The summary's first loss is the run's (step 2), not the first after resuming (step 6).
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["first"] == history(resumed)[0]["loss"] != history(resumed)[2]["loss"]
    assert "resuming at step 4" in (resumed / "train.log").read_text()
    assert [r["step"] for r in history(resumed) if "loss" in r] == [2, 4, 6, 8]
    a = load_checkpoint(straight / "vq.safetensors").tensors
    b = load_checkpoint(resumed / "vq.safetensors").tensors
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # A state written with other settings is refused rather than silently mixed.
    assert cli.main(["train-vq", "--out", str(resumed), "--steps", "10", *args, "--set", "code_dim=4"]) == 2


def test_ema_exports_the_weights_moving_average_and_a_resumed_run_continues_it(data, tmp_path):
    from safetensors.numpy import load_file

    args = ["--data", str(data), "--part", "upper", "--lr", "3e-3", "--log-every", "2", "--ema", "0.9", "--reset-dead", "0",
            *TINY_VQ, *LOOP]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert cli.main(["train-vq", "--out", str(straight), "--steps", "8", *args]) == 0
    assert cli.main(["train-vq", "--out", str(resumed), "--steps", "4", *args]) == 0
    assert cli.main(["train-vq", "--out", str(resumed), "--steps", "8", *args]) == 0
    ckpt = load_checkpoint(straight / "vq.safetensors")
    assert ckpt.metadata["ema_decay"] == "0.9"
    assert "EMA decay 0.9" in (straight / "train.log").read_text()
    state = load_file(str(straight / "state.safetensors"))
    averaged = [k[len("extra.ema."):] for k in state if k.startswith("extra.ema.")]
    assert averaged and int(state["extra.ema_updates"][0]) == 8
    moved = 0
    for name in averaged:
        key = name[len("model."):] if name.startswith("model.") else name
        # The checkpoint holds the average, not the last step's weights (which the state keeps).
        np.testing.assert_allclose(ckpt.tensors[key], state[f"extra.ema.{name}"], rtol=1e-6, atol=1e-7, err_msg=name)
        moved += not np.allclose(state[f"model.{name}"], state[f"extra.ema.{name}"])
    assert moved > len(averaged) // 2
    again = load_checkpoint(resumed / "vq.safetensors").tensors
    for name in ckpt.tensors:
        np.testing.assert_allclose(ckpt.tensors[name], again[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # The fixture has no val clips: the log does not claim the average was validated.
    assert "weights exported: their moving average (EMA decay 0.9)" in (straight / "train.log").read_text()
    # Resumed with another decay, or with none, the log says what became of the state's average
    # (the last --ema given wins).
    assert cli.main(["train-vq", "--out", str(resumed), "--steps", "9", *args, "--ema", "0.5"]) == 0
    assert "made at EMA decay 0.9 up to step 8, goes on at 0.5" in (resumed / "train.log").read_text()
    assert cli.main(["train-vq", "--out", str(resumed), "--steps", "10", *args, "--ema", "0"]) == 0
    assert "the state's moving average (EMA decay 0.5) is dropped" in (resumed / "train.log").read_text()
    assert "ema_decay" not in load_checkpoint(resumed / "vq.safetensors").metadata


def test_stage2_resume_refuses_a_changed_loss_and_continues_an_unchanged_one(data, vq_run, tmp_path):
    args = ["train", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"), "--out", str(tmp_path),
            "--lr", "3e-3", "--log-every", "1", *TINY_GEN, *LOOP]
    assert cli.main([*args, "--steps", "2"]) == 0
    for changed in (["--apex-weight", "4"], ["--part-drop", "0.5"], ["--audio-augment", "1"]):
        assert cli.main([*args, "--steps", "3", *changed]) == 2, changed
    assert cli.main([*args, "--steps", "3"]) == 0
    assert "resuming at step 2" in (tmp_path / "train.log").read_text()


def test_augmented_audio_copies_line_up_with_the_clean_features_and_windows_hear_all_of_them(data, vq_run, tmp_path,
                                                                                             capsys):
    from gestura.training.dataset import Beat2Dataset, compute_stats
    from gestura.training.train_generator import augmented_features, normalized_features, speech_batch

    clips = Beat2Dataset.load(data, ("train",), None, cache=False).clips[:2]
    stats = compute_stats(clips)
    copies = augmented_features(clips, stats, 2, seed=0)
    assert [len(c) for c in copies] == [2, 2]
    clean = [normalized_features(c, stats) for c in clips]
    for clip_copies, features in zip(copies, clean):
        for copy in clip_copies:
            assert copy.shape == features.shape and copy.dtype == np.float32
            assert not np.allclose(copy, features, atol=0.1)
    np.testing.assert_array_equal(augmented_features(clips, stats, 2, seed=0)[1][0], copies[1][0])

    config = load_checkpoint(vq_run / "vq.safetensors").config
    length = 32
    windows = [(0, 0)] * 60
    _, batch = speech_batch(windows, clean, [0, 1], config, length, "cpu", copies, np.random.default_rng(0))
    heard = batch["features"].numpy()
    sources = [clean[0]] + copies[0]
    which = [[np.array_equal(w, s[:length + config.lookahead]) for s in sources].index(True) for w in heard]
    assert set(which) == {0, 1, 2}

    # From the command line: refused when negative, logged when used.
    args = ["train", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"), *TINY_GEN, *LOOP]
    assert cli.main([*args, "--out", str(tmp_path / "bad"), "--audio-augment", "-1"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "gestura train: error: --audio-augment -1 is negative: give 0 (off) or a number of copies")
    assert not (tmp_path / "bad").exists()
    assert cli.main([*args, "--out", str(tmp_path / "ok"), "--steps", "2", "--audio-augment", "1"]) == 0
    assert "each clip also heard as 1 other recording(s)" in (tmp_path / "ok" / "train.log").read_text()


def test_corrupt_file_is_skipped_with_a_warning_and_training_goes_on(tmp_path):
    clips = [ClipSpec(f"2_scott_0_{i}_{i}", "train", 3.0) for i in (1, 2, 3)]
    root = make_beat2(tmp_path / "bad", clips)
    break_npz(root, "2_scott_0_2_2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = cli.main(["train-vq", "--data", str(root), "--out", str(tmp_path / "o"), "--steps", "2",
                         "--part", "face", *TINY_VQ, *LOOP])
    assert code == 0
    messages = [str(w.message) for w in caught]
    assert any("2_scott_0_2_2" in m and "cannot read" in m for m in messages), messages
    assert (tmp_path / "o" / "vq.safetensors").is_file()
    assert "skipped 2_scott_0_2_2" in (tmp_path / "o" / "train.log").read_text()


def test_parts_trained_separately_combine_in_stage2(data, tmp_path, capsys):
    common = ["--data", str(data), "--steps", "2", *TINY_VQ, *LOOP]
    assert cli.main(["train-vq", "--part", "upper", "--out", str(tmp_path / "u"), *common]) == 0
    assert cli.main(["train-vq", "--part", "face,hands,lower", "--out", str(tmp_path / "r"), *common]) == 0
    gen = ["train", "--data", str(data), "--steps", "2", "--out", str(tmp_path / "g"), *TINY_GEN, *LOOP]
    assert cli.main([*gen, "--vq", str(tmp_path / "u" / "vq.safetensors")]) == 2
    assert "face, hands, lower not trained" in capsys.readouterr().err
    assert cli.main([*gen, "--vq", str(tmp_path / "u" / "vq.safetensors"), str(tmp_path / "r" / "vq.safetensors")]) == 0
    ckpt = load_checkpoint(tmp_path / "g" / "gestura.safetensors")
    upper = load_checkpoint(tmp_path / "u" / "vq.safetensors")
    np.testing.assert_array_equal(ckpt.tensors["vq.upper.codebook.weight"], upper.tensors["vq.upper.codebook.weight"])


def test_plan_decoders_fine_tune_teaches_the_body_decoders_the_plan_and_keeps_everything_else(
        data, gen_run, tmp_path, capsys):
    """``--decoder-only --plan-decoders``: the upper-body decoder gains ``plan_in`` (trained on the
    data's stroke plan) and the checkpoint says ``plan_decoders``; codes, generator, the other
    decoders and the statistics stay; generation then reads the plan. Refused without --decoder-only."""
    from gestura.inference.pipeline import GenerationRequest, generate

    init = gen_run / "gestura.safetensors"
    args = ["train-vq", "--data", str(data), "--init", str(init), "--plan-decoders", "--part", "upper",
            "--steps", "6", "--lr", "3e-2", "--log-every", "1", *LOOP]
    assert cli.main([*args, "--out", str(tmp_path / "no")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "gestura train-vq: error: --plan-decoders teaches the decoders of a trained model to read the stroke plan: "
        "add --decoder-only and name the model with --init")
    assert not (tmp_path / "no").exists()

    assert cli.main([*args, "--decoder-only", "--out", str(tmp_path / "p")]) == 0
    before, after = load_checkpoint(init), load_checkpoint(tmp_path / "p" / "gestura.safetensors")
    assert not before.config.plan_decoders and after.config == before.config.with_(plan_decoders=True)
    added = set(after.tensors) - set(before.tensors)
    assert added == {f"vq.{p}.plan_in.{w}" for p in ("upper", "hands") for w in ("weight", "bias")}
    assert np.abs(after.tensors["vq.upper.plan_in.weight"]).max() > 0  # trained on the data's apexes...

    assert not np.abs(after.tensors["vq.hands.plan_in.weight"]).any()  # ...an untrained part's adds nothing
    changed = {k for k in before.tensors if not np.array_equal(before.tensors[k], after.tensors[k])}
    assert changed and all(k.startswith(("vq.upper.up.", "vq.upper.decoder.")) for k in changed), sorted(changed)
    assert json.loads(after.metadata["decoders_fine_tuned"])["plan_decoders"] is True
    motion = generate(GenerationRequest(audio=np.zeros(16000 * 3, np.float32) + 0.01 * np.sin(np.arange(48000) / 7.0),
                                        seed=1), checkpoint=after, engine="numpy")
    assert motion.num_frames == 90 and np.isfinite(motion.poses).all()


def test_decoder_lookahead_fine_tune_sets_the_trained_parts_lookahead_and_is_refused_beyond_one_code(
        data, gen_run, tmp_path, capsys):
    """``--decoder-only --decoder-lookahead 2 --code-noise 0.3 --part upper``: only the upper
    decoder changes, the checkpoint says it looks 2 frames ahead and how it was tuned, and
    generation gives every frame of the clip. More than one code (``frames_per_code``) of
    look-ahead, or a code-noise share of 1, is refused with one line, before anything is written."""
    from gestura.inference.pipeline import GenerationRequest, generate

    init = gen_run / "gestura.safetensors"
    args = ["train-vq", "--data", str(data), "--init", str(init), "--decoder-only", "--part", "upper",
            "--steps", "4", "--lr", "3e-3", "--log-every", "1", *LOOP]
    # Both before any clip is read (on BEAT2 that takes minutes).
    assert cli.main([*args, "--decoder-lookahead", "5", "--out", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "gestura train-vq: error: --decoder-lookahead must be 0 to frames_per_code (4) frames, got 5"
    assert "clips" not in err
    assert cli.main([*args, "--code-noise", "1", "--out", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "gestura train-vq: error: --code-noise is the share of codes swapped, from 0 up to (not including) 1, got 1.0")
    assert "clips" not in err
    # Without --decoder-only the whole model would train on: the look-ahead is another config.
    whole = [a for a in args if a != "--decoder-only"]
    assert cli.main([*whole, "--decoder-lookahead", "2", "--out", str(tmp_path / "no")]) == 2
    said = capsys.readouterr().err.splitlines()[-1]
    assert said.startswith(f"gestura train-vq: error: --init {init} has another model config (") and said.endswith(
        " differ): use its --config/--set, or --decoder-only to tune that model's decoders")
    assert "decoder_lookahead" in said
    assert not (tmp_path / "no").exists()

    assert cli.main([*args, "--decoder-lookahead", "2", "--code-noise", "0.3", "--out", str(tmp_path / "a")]) == 0
    said = capsys.readouterr().err
    assert "train-vq: the decoders of upper look 2 frames ahead (--init's 0)" in said
    assert "train-vq: the decoders of upper; loss weights rec 1 rot 1 vel 1 acc 1 jerk 0 foot 1; code noise 0.3" in said
    before, after = load_checkpoint(init), load_checkpoint(tmp_path / "a" / "gestura.safetensors")
    assert after.config == before.config.with_(decoder_lookahead={"face": 0, "upper": 2, "hands": 0, "lower": 0})
    changed = {k for k in before.tensors if not np.array_equal(before.tensors[k], after.tensors[k])}
    assert changed and all(k.startswith(("vq.upper.up.", "vq.upper.decoder.")) for k in changed), sorted(changed)
    record = json.loads(after.metadata["decoders_fine_tuned"])
    assert record["decoder_lookahead"] == 2 and record["code_noise"] == 0.3
    motion = generate(GenerationRequest(audio=0.01 * np.sin(np.arange(48000, dtype=np.float32) / 7.0), seed=1),
                      checkpoint=after, engine="numpy")
    assert motion.num_frames == 90 and np.isfinite(motion.poses).all()


def test_a_decoder_that_looks_ahead_is_trained_on_the_frames_its_output_stands_for():
    """Stage 1's loss pairs a look-ahead-l decoder's output at frame t + l with frame t
    (``config.decoder_lookahead``): the reconstruction term is that of the shifted pair."""
    import torch

    from gestura.inference.checkpoint import identity_stats
    from gestura.inference.torch_model.model import GesturaModel
    from gestura.training.train_vq import Stage1
    from random_checkpoint import tiny_config

    torch.manual_seed(0)
    model = GesturaModel(tiny_config(decoder_lookahead={"face": 0, "upper": 3, "hands": 0, "lower": 0}),
                         with_generator=False)
    weights = {"rec": 1.0, "rot": 0.0, "vel": 0.0, "acc": 0.0, "jerk": 0.0, "foot": 0.0}
    stage = Stage1(model, ("upper",), identity_stats(), weights, train_gmp=False)
    x = torch.randn(2, 16, model.vq["upper"].dim)
    _, logs = stage({"upper": x})
    with torch.no_grad():
        recon = model.vq["upper"](x)["recon"]
    assert float(logs["upper_rec"]) == pytest.approx(float(torch.nn.functional.mse_loss(recon[:, 3:], x[:, :-3])))
    assert float(logs["upper_rec"]) != pytest.approx(float(torch.nn.functional.mse_loss(recon, x)))


def test_code_noise_swaps_a_share_of_codes_for_one_of_their_eight_nearest():
    import torch

    from gestura.training.train_vq import near_code_swaps

    book = torch.arange(20, dtype=torch.float32)[:, None] ** 1.5  # codes on a line, spaced unevenly
    codes = torch.arange(20).repeat(500)
    same = near_code_swaps(codes, book, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(same, codes)
    noisy = near_code_swaps(codes, book, 0.25, torch.Generator().manual_seed(0))
    swapped = noisy != codes
    assert 0.22 < float(swapped.float().mean()) < 0.28
    distance = (book - book.T).abs()
    for code, new in zip(codes[swapped].tolist(), noisy[swapped].tolist()):
        rank = int((distance[code] < distance[code, new]).sum())  # itself at 0, then the nearest others
        assert 1 <= rank <= 8, (code, new)
    assert set(noisy[codes == 0].tolist()) == set(range(9))  # code 0's nearest: 1 to 8


def test_decoders_learn_to_read_a_dim_gestor_models_own_latents_and_nothing_else_changes(
        data, vq_run, gen_run, tmp_path, capsys):
    """``--decoder-only --denoised T``: the decoders of --part read the diffusion model's
    reconstructions of the windows' latents; generator, codebooks, encoders and the other decoders
    stay, the checkpoint says how its decoders were tuned, and it generates. Refused, with nothing
    written, without --decoder-only, on a code model, outside (0, 1] and with windows no longer
    than the given prefix."""
    from gestura.inference.pipeline import GenerationRequest, generate

    dim = tmp_path / "dim"
    assert cli.main(["train", "--family", "dim-gestor", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"),
                     "--out", str(dim), "--steps", "3", "--log-every", "1", *TINY_DIM, *LOOP]) == 0
    init = dim / "gestura.safetensors"
    args = ["train-vq", "--data", str(data), "--init", str(init), "--decoder-only", "--part", "upper",
            "--steps", "4", "--lr", "3e-2", "--log-every", "1", *LOOP]
    prefix_frames = 2 * 4  # TINY_DIM's prefix_codes, 4 frames per code
    refusals = (
        ([a for a in args if a != "--decoder-only"] + ["--denoised", "0.5"],
         "--denoised teaches the decoders of a trained diffusion model to read its latents: add --decoder-only and "
         "name the model with --init"),
        ([a if a != str(init) else str(gen_run / "gestura.safetensors") for a in args] + ["--denoised", "0.5"],
         f"--init {gen_run / 'gestura.safetensors'} is not a full dim-gestor checkpoint: --denoised reads the latents "
         "of a diffusion model (gestura train --family dim-gestor ...)"),
        (args + ["--denoised", "0"], "--denoised is the noise level to denoise from, a time in (0, 1], got 0.0"),
        (args + ["--denoised", "0.5", "--code-noise", "0.1"],
         "--code-noise swaps the codes the decoders read, and with --denoised they read the diffusion model's "
         "latents instead: leave one out"),
        (args + ["--denoised", "0.5", "--window", str(prefix_frames)],
         f"--denoised gives each window its first 2 codes as generation does: use a --window of more than "
         f"{prefix_frames} frames and a --stride that is a multiple of 4"),
    )
    for i, (bad, message) in enumerate(refusals):
        assert cli.main([*bad, "--out", str(tmp_path / f"no{i}")]) == 2
        assert capsys.readouterr().err.splitlines()[-1] == f"gestura train-vq: error: {message}"
        assert not (tmp_path / f"no{i}" / "gestura.safetensors").exists()

    assert cli.main([*args, "--denoised", "0.5", "--out", str(tmp_path / "d")]) == 0
    before, after = load_checkpoint(init), load_checkpoint(tmp_path / "d" / "gestura.safetensors")
    assert after.config == before.config and set(after.tensors) == set(before.tensors)
    changed = {k for k in before.tensors if not np.array_equal(before.tensors[k], after.tensors[k])}
    assert changed and all(k.startswith(("vq.upper.up.", "vq.upper.decoder.")) for k in changed), sorted(changed)
    assert json.loads(after.metadata["decoders_fine_tuned"])["denoised"] == 0.5
    motion = generate(GenerationRequest(audio=0.01 * np.sin(np.arange(48000, dtype=np.float32) / 7.0), seed=1),
                      checkpoint=after, engine="numpy")
    assert motion.num_frames == 90 and np.isfinite(motion.poses).all()
    # Decoders that read the data's plan beside a denoiser that reads none: each gets its own.
    assert cli.main([*args, "--denoised", "0.5", "--plan-decoders", "--out", str(tmp_path / "dp")]) == 0
    planned = load_checkpoint(tmp_path / "dp" / "gestura.safetensors")
    assert planned.config.plan_decoders and not planned.config.stroke_planner


def test_a_reconstruction_from_time_t_keeps_the_given_codes_and_hears_the_rest_only_below_pure_noise(data, vq_run,
                                                                                                    tmp_path):
    """``denoised_latents``: the given prefix comes back exactly; from t = 1 (pure noise) the
    other codes' clean latents are not heard, from t = 0.5 they are; the same generator seed
    gives the same latents."""
    from gestura.inference.torch_model.model import GesturaModel
    from gestura.training.denoised_latents import denoised_latents, denoising_times

    assert denoising_times(0.5, 10) == pytest.approx([0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    assert denoising_times(1.0, 4) == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    with pytest.raises(ValueError, match=r"a time in \(0, 1\], got 0"):
        denoising_times(0.0, 10)
    assert cli.main(["train", "--family", "dim-gestor", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"),
                     "--out", str(tmp_path / "dim"), "--steps", "3", "--log-every", "1", *TINY_DIM, *LOOP]) == 0
    model = GesturaModel.from_checkpoint(tmp_path / "dim" / "gestura.safetensors").eval()
    config = model.config
    n, c = 8, config.latent_dim
    features = torch.randn(2, n * config.frames_per_code + config.lookahead, config.feature_dim,
                           generator=torch.Generator().manual_seed(0))
    style = torch.tensor([0, 1])
    clean = torch.randn(2, n, c, generator=torch.Generator().manual_seed(1))
    other = clean.clone()
    other[:, 2:] = torch.randn(2, n - 2, c, generator=torch.Generator().manual_seed(2))

    def run(latents, t, seed=3):
        return denoised_latents(model.generator, features, style, latents, None, t, 10, 2,
                                torch.Generator().manual_seed(seed))

    out = run(clean, 0.5)
    assert torch.equal(out[:, :2], clean[:, :2]) and torch.equal(out, run(clean, 0.5))
    assert not torch.allclose(out[:, 2:], run(other, 0.5)[:, 2:])
    assert not torch.allclose(out, run(clean, 0.5, seed=4))
    torch.testing.assert_close(run(other, 1.0)[:, 2:], run(clean, 1.0)[:, 2:])


def test_a_reconstruction_is_guided_by_the_plan_as_generation_is_at_low_noise_only(tmp_path):
    """``denoised_latents`` of a model with a stroke planner guides as ``DiffusionStream`` does: a
    plan strength other than 1 changes a reconstruction whose steps reach ``PLAN_GUIDANCE_TIME``,
    and none that stays above it."""
    import torch

    from gestura.inference.torch_model.model import GesturaModel
    from gestura.training.denoised_latents import denoised_latents
    from random_checkpoint import tiny_config, write_random_checkpoint

    config = tiny_config(family="dim-gestor", d_model=32, headdim=16, mamba2_d_state=8, denoiser_layers=2,
                         speech_layers=1, span_codes=8, prefix_codes=2, sampling_steps=4, stroke_planner=True,
                         apex_rates=(0.5, 1.5))
    model = GesturaModel.from_checkpoint(write_random_checkpoint(tmp_path / "dim.safetensors", config, seed=1)).eval()
    n, r = 8, config.frames_per_code
    features = torch.randn(2, n * r + config.lookahead, config.feature_dim, generator=torch.Generator().manual_seed(0))
    clean = torch.randn(2, n, config.latent_dim, generator=torch.Generator().manual_seed(1))
    plan = torch.zeros(2, n * r)
    plan[:, [5, 17, 30]] = 1.0

    def run(t, steps, strength):
        return denoised_latents(model.generator, features, torch.tensor([0, 1]), clean, plan, t, steps, 2,
                                torch.Generator().manual_seed(3), plan_strength=strength)

    assert not torch.allclose(run(0.5, 4, 3.0), run(0.5, 4, 1.0))
    torch.testing.assert_close(run(1.0, 1, 3.0), run(1.0, 1, 1.0), rtol=0, atol=0)
    assert torch.equal(run(0.5, 4, 3.0)[:, :2], clean[:, :2])


def test_decoder_fine_tuning_keeps_every_code_and_the_generator_and_stage2_continues_from_it(
        data, vq_run, gen_run, tmp_path, capsys):
    """``--decoder-only`` on a full checkpoint: a full checkpoint with only the decoders changed,
    so every clip keeps its codes and the generator stays valid; the jerk term is in the loss
    (its log). Then ``gestura train --init`` continues stage 2 from it. That it smooths is measured on the bundled model (test_synth_weights.py)."""
    from gestura.inference.engines.numpy import NumpyEngine
    from gestura.inference.parts import motion_to_parts, normalize
    from gestura.rigs.skeleton import PARTS
    from gestura.training.dataset import Beat2Dataset

    init = gen_run / "gestura.safetensors"
    args = ["train-vq", "--data", str(data), "--init", str(init), "--decoder-only", "--w-jerk", "20",
            "--steps", "6", "--lr", "3e-3", "--log-every", "1", *LOOP]
    # Refused with one line, before anything is written: no --init, or a --set that would change shapes.
    assert cli.main([a for a in args if a not in ("--init", str(init))] + ["--out", str(tmp_path / "no")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "gestura train-vq: error: --decoder-only fine-tunes the decoders of an existing model: name it with --init")
    assert cli.main([*args, "--out", str(tmp_path / "no"), "--set", "code_dim=4"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "gestura train-vq: error: --decoder-only keeps the --init model's config: leave out --set")
    assert not (tmp_path / "no").exists()

    assert cli.main([*args, "--out", str(tmp_path / "d")]) == 0
    before, after = load_checkpoint(init), load_checkpoint(tmp_path / "d" / "gestura.safetensors")
    assert after.stage == "full" and after.styles == before.styles and after.config == before.config
    changed = {k for k in before.tensors if not np.array_equal(before.tensors[k], after.tensors[k])}
    assert changed and all(k.split(".")[2] in ("up", "decoder") for k in changed), sorted(changed)
    assert {k.split(".")[1] for k in changed} == set(PARTS)
    for name, value in before.stats.items():
        np.testing.assert_array_equal(after.stats[name], value)
    assert json.loads(after.metadata["decoders_fine_tuned"])["steps"] == 6
    assert all("upper_jerk" in r for r in history(tmp_path / "d") if "loss" in r)
    clip = Beat2Dataset.load(data, ("train",), None, cache=False).clips[0]
    features = normalize(motion_to_parts(clip.motion), before.stats)
    codes = []
    for checkpoint in (before, after):
        engine = NumpyEngine()
        engine.prepare(checkpoint)
        codes.append({p: engine.encode(p, features[p][: len(features[p]) // 4 * 4]) for p in PARTS})
    for part in PARTS:
        np.testing.assert_array_equal(codes[0][part], codes[1][part])
    # Tuned again, the checkpoint keeps the record of both runs.
    assert cli.main(["train-vq", "--data", str(data), "--init", str(tmp_path / "d" / "gestura.safetensors"),
                     "--decoder-only", "--steps", "1", "--log-every", "1", *LOOP, "--out", str(tmp_path / "d2")]) == 0
    twice = json.loads(load_checkpoint(tmp_path / "d2" / "gestura.safetensors").metadata["decoders_fine_tuned"])
    assert twice["steps"] == 1 and twice["after"] == json.loads(after.metadata["decoders_fine_tuned"])

    # Stage 2 trained further from this model (--init, the same file as --vq) starts from its
    # generator, keeps its fine-tuned decoders, and says both in the checkpoint.
    tuned = tmp_path / "d" / "gestura.safetensors"
    further = ["train", "--data", str(data), "--vq", str(tuned), "--init", str(tuned), "--steps", "2",
               "--log-every", "1", *LOOP]
    assert cli.main([*further, "--lr", "0", "--out", str(tmp_path / "g")]) == 0
    again = load_checkpoint(tmp_path / "g" / "gestura.safetensors")
    calibrated = {"apex_threshold": 0.5, "apex_rates": ()}  # calibrated again at the end, so they may differ
    assert again.config.with_(**calibrated) == after.config.with_(**calibrated)
    for name, value in after.tensors.items():  # lr 0: nothing moved
        np.testing.assert_array_equal(again.tensors[name], value, err_msg=name)
    assert again.metadata["init"] == str(tuned.resolve())
    assert again.metadata["decoders_fine_tuned"] == after.metadata["decoders_fine_tuned"]
    # What cannot continue is refused with one line, before anything is written.
    refusals = (
        (["--init", str(vq_run / "vq.safetensors")], f"--init {vq_run / 'vq.safetensors'} holds stage 1 only: pass it "
                                                     "to --vq, or give a full checkpoint to --init"),
        (["--set", "d_model=8"], f"--init {tuned} has another model (d_model differ): leave out --family/--set "
                                 "values it was not trained with"),
        (["--speakers", "2"], f"--init {tuned} was trained on speakers 2_scott, 4_lawrence, this data has 2_scott: "
                              "train with the same --speakers, or start fresh without --init"),
    )
    for extra, message in refusals:
        args = list(further)
        if extra[0] == "--init":
            args[args.index("--init") + 1] = extra[1]
        else:
            args += extra
        assert cli.main([*args, "--out", str(tmp_path / "no")]) == 2
        assert capsys.readouterr().err.splitlines()[-1] == f"gestura train: error: {message}"
    assert not (tmp_path / "no").exists()
    # Its default style stays with it too: the recipe names it once, and a continued model was
    # refused ("default_style differ") unless it was named again.
    assert cli.main([*further, "--lr", "0", "--set", "default_style=1", "--out", str(tmp_path / "s")]) == 0
    styled = tmp_path / "s" / "gestura.safetensors"
    assert cli.main(["train", "--data", str(data), "--vq", str(styled), "--init", str(styled), "--steps", "1", "--lr", "0",
                     "--log-every", "1", *LOOP, "--out", str(tmp_path / "s2")]) == 0
    assert load_checkpoint(tmp_path / "s2" / "gestura.safetensors").config.default_style == 1


def test_a_dim_gestor_model_reads_the_plan_of_a_stroke_planner_it_borrows(data, vq_run, tmp_path, capsys):
    """``--planner-from``: the planner, its threshold, its styles' stroke rates and the audio
    statistics it hears by come in unchanged and stay frozen; both engines generate alike with it."""
    gen, planner = tmp_path / "gen", tmp_path / "planner"
    # A diffusion model's blocks always have an MLP, so the planner's model needs one too.
    assert cli.main(["train", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"), "--out", str(gen),
                     "--steps", "2", "--log-every", "1", *TINY_GEN, "--set", "mlp_ratio=2", *LOOP]) == 0
    assert cli.main(["train", "--stroke-planner", "--data", str(data), "--init", str(gen / "gestura.safetensors"),
                     "--steps", "10", "--lr", "3e-3", "--log-every", "1", "--out", str(planner), *LOOP]) == 0
    source = load_checkpoint(planner / "gestura.safetensors")
    args = ["train", "--family", "dim-gestor", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"),
            "--planner-from", str(planner / "gestura.safetensors"), "--steps", "30", "--lr", "3e-3", "--log-every", "1",
            *TINY_DIM, *LOOP]
    assert cli.main([*args, "--out", str(tmp_path / "dim")]) == 0
    assert "reads a stroke plan, made in generation by the planner of" in capsys.readouterr().err
    dim = load_checkpoint(tmp_path / "dim" / "gestura.safetensors")
    assert dim.config.family == "dim-gestor" and dim.config.stroke_planner
    assert (dim.config.apex_threshold, dim.config.apex_rates) == (source.config.apex_threshold, source.config.apex_rates)
    assert dim.tensors["generator.cond_in.weight"].shape[1] == 4 * (2 * 16 + 1)  # frame pairs and the plan
    planner_tensors = [k for k in source.tensors if k.startswith("generator.planner.")]
    assert planner_tensors
    for name in planner_tensors:
        np.testing.assert_array_equal(dim.tensors[name], source.tensors[name], err_msg=name)
    for name in ("audio_mean", "audio_std"):
        np.testing.assert_array_equal(dim.stats[name], source.stats[name])
    assert dim.metadata["planner_from"] == str((planner / "gestura.safetensors").resolve())
    assert window_ratio(losses(tmp_path / "dim"), 5) < 0.9

    wav = data / "wave16k" / "4_lawrence_0_3_3.wav"
    poses = cold_poses_on_both_engines(tmp_path / "dim" / "gestura.safetensors", wav, tmp_path)
    assert poses[0].shape[0] == 180
    np.testing.assert_allclose(poses[0], poses[1], atol=1e-3)

    refusals = (
        (["train", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"), "--planner-from",
          str(planner / "gestura.safetensors"), *LOOP],
         "--planner-from gives a diffusion model a stroke plan: add --family dim-gestor (a vq-mamba model trains its "
         "own planner with --stroke-planner)"),
        ([a if a != str(planner / "gestura.safetensors") else str(gen / "gestura.safetensors") for a in args],
         f"--planner-from {gen / 'gestura.safetensors'} has no stroke planner: give a model trained with gestura train "
         "--stroke-planner (the bundled model has one)"),
        ([*args, "--set", "lookahead=20"],
         f"the stroke planner of {planner / 'gestura.safetensors'} does not fit this model (lookahead differs): --set "
         "d_model, mlp_ratio, speech_layers, speech_window_layers, d_state and lookahead as that model has them"),
    )
    for argv, message in refusals:
        assert cli.main([*argv, "--out", str(tmp_path / "no")]) == 2
        assert capsys.readouterr().err.splitlines()[-1] == f"gestura train: error: {message}"
    assert not (tmp_path / "no").exists()


def quieter_copy(data, root, gain: float):
    """A copy of the BEAT2-layout folder ``data`` at ``root`` with every wave scaled by ``gain``."""
    import shutil

    import soundfile

    shutil.copytree(data, root, ignore=shutil.ignore_patterns(".gestura_cache"))
    for path in (root / "wave16k").glob("*.wav"):
        wave, rate = soundfile.read(path, dtype="float32")
        soundfile.write(path, wave * gain, rate, subtype="PCM_16")
    return root


def test_a_stroke_planner_trains_for_a_model_and_changes_nothing_else_in_it(data, vq_run, gen_run, tmp_path, capsys):
    """``--stroke-planner``: only ``generator.planner`` is new, started from the model's own head
    path; the body, the statistics and the speakers stay; both engines generate with it alike."""
    init = gen_run / "gestura.safetensors"
    args = ["train", "--stroke-planner", "--data", str(data), "--init", str(init), "--steps", "30", "--lr", "3e-3",
            "--log-every", "1", *LOOP]
    assert cli.main([*args, "--out", str(tmp_path / "p")]) == 0
    said = capsys.readouterr()
    assert "train: apex_threshold" in said.out + said.err and "the stroke planner plans as many" in said.out + said.err
    before, after = load_checkpoint(init), load_checkpoint(tmp_path / "p" / "gestura.safetensors")
    assert after.config.stroke_planner and not before.config.stroke_planner
    calibrated = {"apex_threshold": 0.5, "apex_rates": ()}  # the planner's own calibration
    assert after.config.with_(stroke_planner=False, **calibrated) == before.config.with_(**calibrated)
    assert after.styles == before.styles
    for name, value in before.tensors.items():
        np.testing.assert_array_equal(after.tensors[name], value, err_msg=name)
    for name, value in before.stats.items():
        np.testing.assert_array_equal(after.stats[name], value)
    planner = {k for k in after.tensors if k.startswith("generator.planner.")}
    assert planner == set(after.tensors) - set(before.tensors)
    assert not np.array_equal(after.tensors["generator.planner.apex.weight"], before.tensors["generator.apex.weight"])
    assert json.loads(after.metadata["stroke_planner"])["steps"] == 30
    assert after.metadata["vq"] == before.metadata["vq"]
    # The last 5 steps against the first 5: 0.72-0.74 over seeds 0-2 on one machine.
    curve = losses(tmp_path / "p")
    assert window_ratio(curve, 5) < 0.9, curve

    wav = data / "wave16k" / "4_lawrence_0_3_3.wav"
    poses = cold_poses_on_both_engines(tmp_path / "p" / "gestura.safetensors", wav, tmp_path)
    assert poses[0].shape[0] == 180
    np.testing.assert_allclose(poses[0], poses[1], atol=1e-3)

    # Stage 2 trained further from it keeps its planner, and the audio statistics the planner and the
    # speech scans learnt with, on data whose own differ (the same clips 12 dB quieter); a first run
    # put the new data's statistics in, so the planner heard every clip 12 dB off.
    planned = tmp_path / "p" / "gestura.safetensors"
    quiet = quieter_copy(data, tmp_path / "quiet", 0.25)
    assert cli.main(["train", "--data", str(quiet), "--vq", str(planned), "--init", str(planned), "--steps", "2",
                     "--lr", "0", "--log-every", "1", *LOOP, "--no-cache", "--out", str(tmp_path / "g")]) == 0
    again = load_checkpoint(tmp_path / "g" / "gestura.safetensors")
    assert again.config.stroke_planner
    for name in planner:
        np.testing.assert_array_equal(again.tensors[name], after.tensors[name], err_msg=name)
    for name in ("audio_mean", "audio_std"):
        np.testing.assert_array_equal(again.stats[name], after.stats[name])
    from gestura.training.dataset import Beat2Dataset, compute_stats
    own = compute_stats(Beat2Dataset.load(quiet, ("train",), None, cache=False).clips)["audio_mean"]
    assert np.abs(own - after.stats["audio_mean"]).max() > 1.0  # the test's data does differ
    assert again.metadata["stroke_planner"] == after.metadata["stroke_planner"]
    # A new generator on its VQ-VAEs (--vq, no --init) is a model of its own: no stroke planner.
    assert cli.main(["train", "--data", str(data), "--vq", str(planned), "--steps", "1", "--lr", "0", "--log-every", "1",
                     *LOOP, "--set", "carried_codes=1", "--out", str(tmp_path / "new")]) == 0
    new = load_checkpoint(tmp_path / "new" / "gestura.safetensors")
    assert not new.config.stroke_planner and not new.config.planner_pitch and new.config.carried_codes == 1
    assert not any(k.startswith("generator.planner.") for k in new.tensors)
    # Nor the carried codes of the model it takes the VQ-VAEs from: a DiM-Gestor window on them is
    # given every code of the previous window's tail it was trained with (it was given 1).
    assert cli.main(["train", "--family", "dim-gestor", "--data", str(data), "--vq", str(tmp_path / "new" / "gestura.safetensors"),
                     "--steps", "1", "--lr", "0", "--log-every", "1", *LOOP, *TINY_DIM, "--set", "mlp_ratio=2",
                     "--out", str(tmp_path / "dim")]) == 0
    dim = load_checkpoint(tmp_path / "dim" / "gestura.safetensors").config
    assert dim.carried_codes is None and dim.generation_prefix == dim.prefix_codes == 2

    # A planner that hears pitch starts as the planner it continues (the pitch columns of its input
    # at zero): at lr 0 the same motion; and it keeps hearing pitch when trained again.
    pitched = tmp_path / "pitch" / "gestura.safetensors"
    assert cli.main(["train", "--stroke-planner", "--planner-pitch", "--data", str(data), "--init", str(planned),
                     "--steps", "1", "--lr", "0", "--log-every", "1", *LOOP, "--out", str(pitched.parent)]) == 0
    heard = load_checkpoint(pitched)
    assert heard.config.planner_pitch and json.loads(heard.metadata["stroke_planner"])["pitch"]
    audio_in = heard.tensors["generator.planner.audio_in.weight"]
    assert audio_in.shape[1] == after.tensors["generator.planner.audio_in.weight"].shape[1] + 2
    assert np.all(audio_in[:, -2:] == 0)
    for pitched_poses in cold_poses_on_both_engines(pitched, wav, tmp_path, "pitch-"):
        np.testing.assert_allclose(pitched_poses, poses[0], atol=1e-3)
    assert cli.main(["train", "--stroke-planner", "--data", str(data), "--init", str(pitched), "--steps", "1",
                     "--log-every", "1", *LOOP, "--out", str(tmp_path / "pitch2")]) == 0
    assert load_checkpoint(tmp_path / "pitch2" / "gestura.safetensors").config.planner_pitch

    # What it cannot do is refused with one line, before anything is written.
    refusals = (
        ([a for a in args if a not in ("--init", str(init))],
         "--stroke-planner trains a planner for an existing model: name it with --init"),
        ([a for a in args if a != "--stroke-planner"] + ["--planner-pitch"],
         "--planner-pitch is for a stroke planner: add --stroke-planner --init CKPT"),
        ([*args, "--vq", str(vq_run / "vq.safetensors")],
         "--stroke-planner keeps the --init model as it is: leave out --family, --set and --vq"),
        ([*args, "--set", "d_model=8"], "--stroke-planner keeps the --init model as it is: leave out --family, --set and --vq"),
        ([a if a != str(init) else str(vq_run / "vq.safetensors") for a in args],
         f"--init {vq_run / 'vq.safetensors'} is not a full vq-mamba checkpoint: a stroke planner makes the plan of the "
         "span generator, train that first (gestura train --vq ...)"),
        (["train", "--data", str(data), "--out", str(tmp_path / "no"), *LOOP],
         "--vq is required: name the stage-1 checkpoint(s) from gestura train-vq (or train a stroke planner for an "
         "existing model with --stroke-planner --init CKPT)"),
    )
    for argv, message in refusals:
        assert cli.main([*argv, "--out", str(tmp_path / "no")]) == 2
        assert capsys.readouterr().err.splitlines()[-1] == f"gestura train: error: {message}"
    assert not (tmp_path / "no").exists()


def test_bad_arguments_fail_with_one_clear_line(data, vq_run, tmp_path, capsys):
    assert cli.main(["train-vq", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"), *LOOP]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["train-vq", "--data", str(data), "--out", str(tmp_path / "o"), "--part", "tail", *LOOP]) == 2
    assert "unknown part" in capsys.readouterr().err
    assert cli.main(["train-vq", "--data", str(data), "--out", str(tmp_path / "o"), "--set", "nope=1", *LOOP]) == 2
    assert "model config" in capsys.readouterr().err
    for value, problem in (("[2, 1]", "must be increasing positive integers"), ("[1, 2, 4]", "choose a count that divides"),
                           ('{"window": [1, 2]}', "or one per scan ['window', 'global', 'local']")):
        assert cli.main(["train-vq", "--data", str(data), "--out", str(tmp_path / "o"), "--set", f"granularities={value}",
                         *LOOP]) == 2
        assert problem in capsys.readouterr().err.splitlines()[-1]
    # Windows of whole codes (4 frames per code); stage 2's longer than its prefix of 4 codes.
    assert cli.main(["train-vq", "--data", str(data), "--out", str(tmp_path / "o"), *TINY_VQ, *LOOP, "--window", "30"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "gestura train-vq: error: --window 30 is not a whole number of codes: use a multiple of frames_per_code (4)")
    assert not (tmp_path / "o").exists()
    for window in ("30", "16"):
        assert cli.main(["train", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"), "--out", str(tmp_path / "o"),
                         *TINY_GEN, *LOOP, "--window", window]) == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"gestura train: error: --window {window} must be a multiple of frames_per_code (4) longer than the "
            "prefix (4 codes, 16 frames)")
    assert not (tmp_path / "o").exists()
    assert cli.main(["train", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"), "--out", str(tmp_path / "o"),
                     "--set", "family=dim-gestor", *LOOP]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "gestura train: error: --set family=... is not how the family is chosen: use --family")
    assert cli.main(["train", "--family", "dim-gestor", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"),
                     "--out", str(tmp_path / "o"), "--set", "headdim=12", *TINY_DIM[:2], *LOOP]) == 2
    assert "'headdim' (12) must divide the Mamba-2 inner width 32" in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "o").exists()
    assert cli.main(["train-vq", "--data", str(data), "--out", str(tmp_path / "o"), "--ema", "0.999", *LOOP]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "gestura train-vq: error: --ema 0.999 averages the codebooks that --reset-dead 10 re-seeds: add --reset-dead 0, "
        "or train without --ema")
    with pytest.raises(SystemExit, match="2"):
        cli.main(["train", "--data", str(data), "--vq", str(vq_run / "vq.safetensors"), "--out", str(tmp_path / "o"),
                  "--ema", "1", *LOOP])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "gestura train: error: argument --ema: '1' is not a decay: give a number in (0, 1) such as 0.999, or 0 for "
        "none (see gestura train --help)")
    assert not (tmp_path / "o").exists()


def test_eval_prints_a_table_and_writes_json(data, gen_run, tmp_path, capsys):
    fgd = tmp_path / "fgd"
    assert cli.main(["train-fgd", "--data", str(data), "--out", str(fgd), "--steps", "4", "--hidden", "16",
                     "--latent", "8", *LOOP]) == 0
    report = tmp_path / "eval.json"
    assert cli.main(["eval", "--data", str(data), "--checkpoint", str(gen_run / "gestura.safetensors"),
                     "--fgd-encoder", str(fgd / "fgd_encoder.safetensors"), "--json", str(report),
                     "--no-progress", "--threads", "1", "--rest-seeds", "2"]) == 0
    table = capsys.readouterr().out
    assert "BC" in table and "not comparable with published FGD" in table
    result = json.loads(report.read_text())
    # Which encoder measured FGD, by its bytes: figures compare only under the same one.
    digest = hashlib.sha256((fgd / "fgd_encoder.safetensors").read_bytes()).hexdigest()
    assert result["fgd_encoder_sha256"] == digest and f"encoder sha256 {digest[:16]}" in table
    assert result["clips"] == ["2_scott_0_3_3", "4_lawrence_0_3_3"]
    for row in ("generated", "ground_truth"):
        for key in ("bc", "speed", "l1_diversity", "fgd", "jitter", "body_jitter", "foot_sliding", "apex_ratio",
                    "syllable_apex", "syllable_apex_shifted", "frozen_arms", "raised_arms", "body_timing", "jaw_timing"):
            assert np.isfinite(result[row][key]), (row, key)
    # The fixture carries no planned apexes (derived from its motion) and is no synthetic corpus
    # (nothing to compare rest in silence or a second seed with).
    assert result["apex_source"] == "derived"
    assert np.isfinite(result["generated"]["corpus_correlation"]) and result["ground_truth"]["corpus_correlation"] is None
    assert result["another_draw"] is None and "the synthesizer with other seeds" not in table
    assert 0 <= result["generated"]["rest_in_silence"] and result["ground_truth"]["rest_in_silence"] is None
    assert len(result["rest_in_silence_setup"]["generated_per_seed"]) == 2
    assert "apex ratio" in table and "rest in silence: 2_scott_0_3_3 + 6 s of zeros + 4_lawrence_0_3_3" in table
    assert "syllable apex with each clip's audio shifted by half its length (chance)" in table
    assert result["ground_truth"]["fgd"] == pytest.approx(0.0, abs=1e-6)
    assert result["generated"]["fgd"] > 0
    # The data's own motion has its speed minima on the audio's onsets (see beat2_fixture).
    assert result["ground_truth"]["bc"] > 0.6
    assert sorted(result["styles"]) == ["2_scott", "4_lawrence"]
    for row in result["styles"].values():
        assert set(row["generated"]) == set(row["ground_truth"]) == {"wrist_speed", "hand_height", "stroke_rate"}
    assert "4_lawrence: " in table
    # No synthetic corpus: no rest pose to measure hand heights from, so no height ratio.
    assert result["rest_hand_height"] is None and "no rest pose known" in table
    ratios = [v for row in result["styles"].values() for v in row["ratio"].values() if v is not None]
    assert all(row["ratio"]["hand_height"] is None for row in result["styles"].values()) and ratios
    assert result["styles_within_tolerance"]["of"] == len(ratios)
    assert f"{result['styles_within_tolerance']['within']} of {len(ratios)} within 25 % of the speaker's" in table
    # The apex head's plan against the data's apexes, at the checkpoint's threshold.
    plan = result["stroke_plan"]
    assert plan["threshold"] == load_checkpoint(gen_run / "gestura.safetensors").config.apex_threshold
    assert -1 <= plan["head_correlation"] <= 1 and plan["tolerance_frames"] == 3
    assert all(np.isnan(plan[k]) or 0 <= plan[k] <= 1 for k in ("plan_precision", "plan_recall"))
    assert plan["stroke_rates"]  # a model trained now plans at its styles' rates where its head is unsure
    assert (f"stroke plan (the apex head, threshold {plan['threshold']:.3f}, lower where the style's stroke rate "
            f"asks): correlation with the data's apexes") in table
    refused = tmp_path / "refused.json"
    assert cli.main(["eval", "--data", str(data), "--checkpoint", str(gen_run / "gestura.safetensors"),
                     "--json", str(refused), "--no-progress", "--sampling-steps", "5"]) == 2
    assert capsys.readouterr().err.strip().endswith("sampling steps apply to a diffusion (dim-gestor) model, and "
                                                    "this one is vq-mamba: leave them out")
    assert not refused.exists()


def test_eval_averages_every_figure_over_the_takes_asked_for(data, tmp_path, capsys):
    from gestura.inference.pipeline import GenerationRequest, generate, resolve_checkpoint
    from gestura.training.dataset import Beat2Dataset, joint_positions
    from gestura.training.evaluate import style_stats

    # The bundled model: it gestures, so its takes differ by seed (the tiny test models hardly move).
    checkpoint = str(resolve_checkpoint(None).path)
    report = tmp_path / "takes.json"
    assert cli.main(["eval", "--data", str(data), "--checkpoint", checkpoint, "--json", str(report), "--no-progress",
                     "--threads", "1", "--rest-seeds", "0", "--takes", "2", "--seed", "5"]) == 0
    table = capsys.readouterr().out
    assert "(generated: 2 takes per clip)" in table and "generated, mean of 2 takes" in table and "highest take" in table
    result = json.loads(report.read_text())
    clips = Beat2Dataset.load(str(data), ("test",), None, keep_wave=True).clips
    # Clip i's scored take has seed 5 + i, its second take seed 5 + len(clips) + i.
    positions, styles = [], []
    for seed in (5, 5 + len(clips)):
        for i, clip in enumerate(clips):
            request = GenerationRequest(audio=clip.wave, seed=seed + i)  # the fixture's speakers are not the model's
            positions.append(joint_positions(generate(request, checkpoint=checkpoint, engine="torch"))[:clip.num_frames])
            styles.append(clip.ref.style)
    expected = style_stats(positions, styles)
    one_take = style_stats(positions[:len(clips)], styles[:len(clips)])
    assert max(abs(one_take[s]["wrist_speed"] / expected[s]["wrist_speed"] - 1) for s in expected) > 0.01, \
        "the second takes hardly change the statistics: the test no longer tells one take from two"
    for style, row in result["styles"].items():
        for key, value in row["generated"].items():
            assert value == pytest.approx(expected[style][key], rel=1e-4, abs=1e-6), (style, key)
    assert result["takes"] == 2 and len(result["generated_takes"]) == 2
    # Every generated figure is the mean of the two takes' (rest in silence has seeds of its own).
    for key, value in result["generated"].items():
        if key not in ("rest_in_silence", "fgd"):  # rest has seeds of its own; no --fgd-encoder given
            assert value == pytest.approx(np.mean([take[key] for take in result["generated_takes"]])), key
    assert result["generated_takes"][0]["jitter"] != result["generated_takes"][1]["jitter"]
    refused = tmp_path / "refused.json"
    assert cli.main(["eval", "--data", str(data), "--checkpoint", checkpoint, "--json", str(refused),
                     "--no-progress", "--takes", "0"]) == 2
    assert capsys.readouterr().err.strip().endswith("--takes must be 1 or more, got 0")
    assert not refused.exists()


def test_stroke_rates_are_planned_apexes_per_second_of_speech_by_style():
    from gestura.training.train_generator import apex_rates

    # (features, data apexes, style, seconds of speech) per clip, as the calibration takes them;
    # the head planned 3, 5 and 8 apexes on them. Style 2 has no clip: it gets the overall rate.
    clips = [(None, 4, 0, 10.0), (None, 6, 0, 10.0), (None, 9, 1, 4.0)]
    assert apex_rates([3, 5, 8], clips, 3) == pytest.approx((0.4, 2.0, 16 / 24))


def test_a_speakers_figures_compare_as_ratios_and_hand_heights_from_the_rest_pose():
    from gestura.training.evaluate import style_ratios

    generated = {"wrist_speed": 0.2, "stroke_rate": 1.0, "hand_height": 0.10}
    truth = {"wrist_speed": 0.4, "stroke_rate": 0.8, "hand_height": 0.05}
    assert style_ratios(generated, truth, -0.05) == pytest.approx(
        {"wrist_speed": 0.5, "stroke_rate": 1.25, "hand_height": 1.5})
    assert style_ratios(generated, {**truth, "stroke_rate": 0.0}, None) == pytest.approx(
        {"wrist_speed": 0.5, "stroke_rate": None, "hand_height": None})


def test_the_rest_hand_height_is_the_synthesizers_on_silence(tmp_path):
    from types import SimpleNamespace

    from gestura.training.evaluate import rest_hand_height

    clips = [SimpleNamespace(ref=SimpleNamespace(id=i, style=i.rsplit("_", 3)[0])) for i in ("1_avery_0_1_1", "4_dmitri_0_2_2")]
    assert rest_hand_height(tmp_path, clips) is None  # not a gestura synth corpus
    (tmp_path / "synth.json").write_text("{}")
    rest = rest_hand_height(tmp_path, clips)
    # Hands at rest hang by the thighs: a few cm below the pelvis, for every style.
    assert -0.10 < rest < 0.0


def test_training_commands_are_cheap_to_import():
    import subprocess
    import sys

    code = "import sys; from gestura import cli; cli.build_parser(); assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_processes_get_disjoint_equal_shards_and_the_schedule_is_a_function_of_the_step():
    from gestura.training.loop import Dist, epoch_order, lr_at

    shards = [epoch_order(50, seed=1, epoch=3, batch=4, dist=Dist(rank=r, world=2)) for r in (0, 1)]
    assert shards[0].shape == shards[1].shape == (6, 4)  # 50 // (4 x 2) full steps each
    assert not set(shards[0].ravel()) & set(shards[1].ravel())
    np.testing.assert_array_equal(shards[0], epoch_order(50, seed=1, epoch=3, batch=4, dist=Dist(rank=0, world=2)))
    assert not np.array_equal(shards[0], epoch_order(50, seed=1, epoch=4, batch=4, dist=Dist(rank=0, world=2)))
    few = epoch_order(3, seed=0, epoch=0, batch=8, dist=Dist())  # fewer windows than a batch: cycled
    assert few.shape == (1, 8) and set(few.ravel()) == {0, 1, 2}
    assert lr_at(0, 100, 1e-3, warmup=10, schedule="constant") == pytest.approx(1e-4)
    assert lr_at(50, 100, 1e-3, warmup=10, schedule="constant") == pytest.approx(1e-3)
    assert lr_at(100, 100, 1e-3, warmup=0, schedule="cosine") == pytest.approx(1e-4)
