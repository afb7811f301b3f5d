"""``gestura generate``'s model options and ``gestura params``, end to end on real speech and a tiny
model (folders, .blend output and existing files: test_cli_batch.py)."""
import subprocess
import sys

import numpy as np
import pytest
torch = pytest.importorskip("torch")

from gestura.cli import main
from gestura.inference.architecture import parameter_count
from gestura.inference.config import CONFIGS
from gestura.inference.torch_model.model import GesturaModel
from gestura.rigs.motion_io import load_npz
from random_checkpoint import tiny_config

torch.set_num_threads(1)
CONFIG = tiny_config()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    return str(GesturaModel(CONFIG).save(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", styles=["a", "b"]))


def test_generate_npz_and_bvh(tiny, speech_wav, tmp_path, capsys):
    out = tmp_path / "take.npz"
    assert main(["generate", str(speech_wav), "-o", str(out), "--checkpoint", tiny, "--seed", "3"]) == 0
    motion = load_npz(out)
    assert motion.fps == 30 and motion.num_frames > 100
    # Same seed: same motion, on any number of threads.
    assert main(["generate", str(speech_wav), "-o", str(out), "--checkpoint", tiny, "--seed", "3", "--overwrite",
                 "--engine", "torch", "--threads", "2"]) == 0
    assert np.allclose(load_npz(out).poses, motion.poses, atol=1e-5)
    bvh = tmp_path / "take.bvh"
    capsys.readouterr()
    assert main(["generate", str(speech_wav), "-o", str(bvh), "--checkpoint", tiny, "--parts", "upper,hands",
                 "--temperature", "0", "--style", "b", "--engine", "numpy", "--threads", "2"]) == 0
    assert bvh.read_text().startswith("HIERARCHY")
    assert ("gestura generate: warning: --threads sets the torch engine's CPU threads; the numpy engine ignores it"
            in capsys.readouterr().err)


def test_bvh_output_stands_on_the_floor(tiny, speech_wav, tmp_path):
    from test_bvh import bvh_positions, parse_bvh

    from gestura.rigs.rest_skeleton import FOOT_CLEARANCE

    bvh = tmp_path / "take.bvh"
    assert main(["generate", str(speech_wav), "-o", str(bvh), "--checkpoint", tiny, "--seed", "3"]) == 0
    joints, _, values = parse_bvh(bvh.read_text())
    names = [j["name"] for j in joints]
    feet = [names.index(n) for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
    # Y up: the clip's lowest foot joint just above y = 0, as on the .blend's rig (before: -0.9 m).
    assert bvh_positions(joints, values)[:, feet, 1].min() == pytest.approx(FOOT_CLEARANCE, abs=1e-5)


def test_many_files_into_a_folder_with_progress(tiny, speech_wav, tmp_path, capsys):
    other = tmp_path / "second.wav"
    other.write_bytes(speech_wav.read_bytes())
    out = tmp_path / "out"
    assert main(["generate", str(speech_wav), str(other), "-o", str(out), "--checkpoint", tiny]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["second.npz", "speech.npz"]
    printed = capsys.readouterr()
    assert "1/2 speech.wav" in printed.err and "2/2 second.wav" in printed.err
    # With the progress on stderr, stdout still names every output, for scripts (it did not).
    assert printed.out.splitlines() == [f"{speech_wav} -> {out / 'speech.npz'}", f"{other} -> {out / 'second.npz'}"]
    # An existing output is skipped, said on stderr as the command's, and is not a failure.
    assert main(["generate", str(speech_wav), "-o", str(out), "--checkpoint", tiny]) == 0
    printed = capsys.readouterr()
    assert printed.err == f"gestura generate: '{out / 'speech.npz'}' exists, skipped (pass --overwrite to replace it)\n"
    assert printed.out == ""


def test_user_errors_are_one_line(tiny, speech_wav, tmp_path, capsys):
    cases = [
        (["generate", str(tmp_path / "none.wav"), "-o", str(tmp_path / "x.npz"), "--checkpoint", tiny], "does not exist"),
        (["generate", str(speech_wav), "-o", str(tmp_path / "x.npz"), "--checkpoint", str(speech_wav)], "cannot be read"),
        (["generate", str(speech_wav), "-o", str(tmp_path / "x.npz"), "--checkpoint", tiny, "--style", "zz"], "style 'zz'"),
        (["generate", str(speech_wav), "-o", str(tmp_path / "x.npz"), "--checkpoint", tiny, "--parts", "tail"], "tail"),
        (["generate", str(speech_wav), "-o", str(tmp_path / "x.npz"), "--checkpoint", tiny, "--style-strength", "-1"],
         "style strength must be a finite number >= 0"),
        (["generate", str(speech_wav), "-o", str(tmp_path / "x.npz"), "--checkpoint", tiny, "--plan-strength", "-1"],
         "plan strength must be a finite number >= 0 (0 = ignore the stroke plan"),
        (["generate", str(speech_wav), "-o", str(tmp_path / "x.npz"), "--checkpoint", tiny, "--seed", "-5"],
         "seed -5 is out of range: use a whole number from 0 to 2147483647 (the seeds the Blender panel takes)"),
        # 2^32 made seed 0's motion (a reported fault): out of the panel's range, so refused.
        (["generate", str(speech_wav), "-o", str(tmp_path / "x.npz"), "--checkpoint", tiny, "--seed", "4294967296"],
         "seed 4294967296 is out of range"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.npz").exists()


def test_sampling_steps_choose_a_diffusion_models_take(speech_wav, tmp_path, capsys):
    from random_checkpoint import write_random_checkpoint

    dim = str(write_random_checkpoint(tmp_path / "dim.safetensors", tiny_config(
        family="dim-gestor", headdim=8, mamba2_d_state=8, denoiser_layers=2, span_codes=8, prefix_codes=2,
        sampling_steps=3)))
    takes = {}
    for steps in ("3", "5"):
        out = tmp_path / f"steps{steps}.npz"
        assert main(["generate", str(speech_wav), "-o", str(out), "--checkpoint", dim, "--engine", "numpy",
                     "--sampling-steps", steps]) == 0
        takes[steps] = load_npz(out).poses
    own = tmp_path / "own.npz"
    assert main(["generate", str(speech_wav), "-o", str(own), "--checkpoint", dim, "--engine", "numpy"]) == 0
    assert np.array_equal(load_npz(own).poses, takes["3"]) and not np.allclose(takes["5"], takes["3"])
    assert main(["generate", str(speech_wav), "-o", str(tmp_path / "x.npz"), "--checkpoint", dim,
                 "--sampling-steps", "0"]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith("sampling steps must be a whole number from 1 to 1000, got 0") and err.count("\n") == 1


def test_silence_and_cancelling_stereo_are_told_in_one_true_line_each(tiny, speech_wav, tmp_path, capsys, recwarn):
    import soundfile

    voice, rate = soundfile.read(str(speech_wav), dtype="float32")
    voice = 0.9 * voice / np.abs(voice).max()
    silent, mono, stereo = tmp_path / "silent.wav", tmp_path / "mono.wav", tmp_path / "stereo.wav"
    soundfile.write(str(silent), np.zeros(rate * 2, np.float32), rate)
    soundfile.write(str(mono), voice, rate, subtype="PCM_16")
    # Speech in L and -speech in R: averaged, peak 1.5e-5 and a jaw that barely moves (0.022 rad vs 0.145).
    soundfile.write(str(stereo), np.stack([voice, -voice], 1), rate, subtype="PCM_16")
    common = ["--checkpoint", tiny, "--engine", "numpy", "-q"]

    assert main(["generate", str(silent), "-o", str(tmp_path / "silent.npz"), *common]) == 0
    # Once (not once per check of the same audio), one line, no Python warning with file and line.
    assert capsys.readouterr().err.splitlines() == [
        f"gestura generate: warning: Audio file '{silent}' is silent (peak below -80 dBFS): "
        "the motion will not follow any speech"]

    assert main(["generate", str(mono), "-o", str(tmp_path / "mono.npz"), *common]) == 0
    assert capsys.readouterr().err == ""
    assert main(["generate", str(stereo), "-o", str(tmp_path / "stereo.npz"), *common]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"gestura generate: warning: Audio file '{stereo}' has its left and right channels in opposite phase, "
        "so they cancel when mixed: using the left channel only"]
    # The speech survives the down-mix: the motion is the mono speech's, the jaw included.
    assert np.array_equal(load_npz(tmp_path / "stereo.npz").poses, load_npz(tmp_path / "mono.npz").poses)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_folders_and_empty_files_are_named_as_such(tiny, speech_wav, tmp_path, capsys):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    cases = [
        (["generate", str(empty), "-o", str(tmp_path / "x.npz"), "--checkpoint", tiny],
         f"'{empty}' is empty (0 bytes)"),
        (["generate", str(speech_wav), "-o", str(tmp_path / "x.npz"), "--checkpoint", str(tmp_path)],
         f"checkpoint '{tmp_path}' is a folder, not a checkpoint file"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.npz").exists()


def test_params_prints_both_configs(capsys):
    assert main(["params"]) == 0
    out = capsys.readouterr().out
    assert "small: 6,656,557 parameters" in out
    assert f"mambatalk: {parameter_count(CONFIGS['mambatalk']):,} parameters" in out


def test_output_piped_into_a_reader_that_stops_early_is_not_a_traceback():
    done = subprocess.run(f"'{sys.executable}' -m gestura params | head -n 1", shell=True, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.startswith("small: ") and done.stdout.count("\n") == 1
    assert done.stderr == ""


def test_output_folders_are_judged_by_what_is_on_disk(tiny, speech_wav, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "b.wav"
    other.write_bytes(speech_wav.read_bytes())
    (tmp_path / "out" / "session.2024-05").mkdir(parents=True)
    assert main(["generate", str(speech_wav), str(other), "-o", "out/session.2024-05", "--checkpoint", tiny,
                 "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "out" / "session.2024-05").iterdir()) == ["b.npz", "speech.npz"]
    # A folder to create, named with spaces, non-ASCII letters and a dot, and a trailing slash.
    assert main(["generate", str(speech_wav), "-o", "new take.v2/sortie é/", "--format", "bvh",
                 "--checkpoint", tiny, "-q"]) == 0
    assert (tmp_path / "new take.v2" / "sortie é" / "speech.bvh").read_text().startswith("HIERARCHY")


def test_malformed_command_lines_are_one_line_naming_the_command(capsys):
    cases = [
        (["generate", "a.wav", "-o", "x.npz", "--seed", "x"], "gestura generate: error: argument --seed: invalid int value"),
        (["train-vq", "--decoder-lookahead", "1.5"], "gestura train-vq: error: argument --decoder-lookahead: invalid int"),
        (["generate", "a.wav"], "gestura generate: error: the following arguments are required: -o/--output"),
        (["bogus"], "gestura: error: argument COMMAND: invalid choice: 'bogus'"),
        (["generate", "a.wav", "-o", "x.npz", "--bogus"], "gestura generate: error: unrecognized arguments: --bogus"),
        (["info", "extra"], "gestura info: error: unrecognized arguments: extra"),
        (["--bogus"], "gestura: error: unrecognized arguments: --bogus; a command comes first"),
        ([], "gestura: error: the following arguments are required: COMMAND"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit:
            main(argv)
        err = capsys.readouterr().err
        assert exit.value.code == 2 and err.startswith(message) and err.count("\n") == 1, (argv, err)
        assert err.rstrip().endswith("--help)")


def test_bad_outputs_and_arguments_are_refused_before_any_work(tiny, speech_wav, tmp_path, unwritable_folder, capsys):
    (tmp_path / "notes.txt").write_text("x")
    cases = [
        (["-o", str(tmp_path / "take.fbx")], "is a .fbx file, but only .npz, .bvh, .blend files can be written"),
        (["-o", str(tmp_path / "x.bvh"), "--format", "npz"], "names a .bvh file but the format .npz was asked for"),
        (["-o", str(tmp_path / "x.npz"), "--threads", "0"], "--threads 0: give 1 or more CPU threads"),
        (["-o", str(tmp_path / "x.npz"), "--parts", ""], "no body part named"),
        (["-o", str(tmp_path / "notes.txt" / "out" / "x.npz")], "'" + str(tmp_path / "notes.txt") + "' is a file"),
        (["-o", str(unwritable_folder / "x.npz")], "cannot write into output folder"),
        (["-o", str(unwritable_folder / "sub") + "/"], "cannot create output folder"),
    ]
    before = sorted(tmp_path.rglob("*"))
    for argv, message in cases:
        # A checkpoint that cannot be read: the outputs are refused before the model is loaded.
        assert main(["generate", str(speech_wav), *argv, "--checkpoint", str(speech_wav)]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("gestura generate: error: ") and message in err, (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(tmp_path.rglob("*")) == before


def test_a_batch_carries_on_past_failed_files_and_reports_each(tiny, speech_wav, tmp_path):
    import os
    import resource

    from conftest import espeak

    short = espeak("Hi.", tmp_path / "a.wav")
    blocked = tmp_path / "c.wav"
    blocked.write_bytes(short.read_bytes())
    out = tmp_path / "out"
    (out / "c.npz").mkdir(parents=True)  # c's output name is taken by a folder

    def limit_file_size():  # the long clip's file cannot be written: a disk that fills mid-write
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    done = subprocess.run([sys.executable, "-m", "gestura", "generate", str(short), str(speech_wav), str(blocked),
                           "-o", str(out), "--checkpoint", tiny, "--engine", "numpy", "-q"],
                          capture_output=True, text=True, timeout=600, preexec_fn=limit_file_size,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"gestura generate: error: c.wav: output '{out / 'c.npz'}' is a folder: rename or move it",
        f"gestura generate: error: speech.wav: could not write {out / 'speech.npz'}: File too large",
        "gestura generate: error: 2 of 3 audio files failed (1 written)",
    ]
    assert load_npz(out / "a.npz").num_frames > 5
    assert sorted(p.name for p in out.iterdir()) == ["a.npz", "c.npz"]  # nothing half-written


def test_a_checkpoint_of_the_per_frame_model_is_refused_in_one_line_saying_to_retrain(tiny, speech_wav, tmp_path, capsys):
    from gestura.inference import safetensors_np

    tensors, metadata = safetensors_np.load_file(tiny)
    old = tmp_path / "v1.safetensors"
    safetensors_np.save_file(tensors, old, {**metadata, "format_version": "1"})
    out = tmp_path / "take.npz"
    assert main(["generate", str(speech_wav), "-o", str(out), "--checkpoint", str(old), "--engine", "torch"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"gestura generate: error: checkpoint '{old}' has format version 1 (the per-frame model of earlier Gestura "
        "releases), this Gestura reads version 3: retrain it on your data with gestura train-vq and gestura train"]
    assert not out.exists()
