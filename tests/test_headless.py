"""Headless use: ``blender -b scene.blend --python-expr ...`` and ``blender -b -P blender_batch.py -- ...``.

"blender" here is this venv's Python with the bpy wheel, in a fresh process. The bpy module does
not read the user's preferences at start-up the way the Blender program does, so the
``--python-expr`` case first does that start-up step (``bpy.ops.wm.read_userpref()``, which
enables the installed extension as Blender would; by hand on the 4.2 wheel, see below); the
batch script needs nothing at all.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from random_checkpoint import write_random_checkpoint
from test_generate_operator import fcurves, keyed_bones, sound_strips

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def checkpoint_path(tmp_path_factory):
    return write_random_checkpoint(tmp_path_factory.mktemp("model") / "tiny.safetensors")


def blender(args, timeout=600):
    # The child inherits BLENDER_USER_RESOURCES (conftest): the extension the fixture installed.
    # One intra-op thread: the machine's two cores are shared (CONTRACTS.md).
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env)


def load_back(bpy, path: Path) -> dict:
    bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
    armatures = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    return {
        "armatures": armatures,
        "actions": sorted(a.name for a in bpy.data.actions),
        "keyed": keyed_bones(armatures[0]) if armatures and armatures[0].animation_data else set(),
        "strips": [(s.name, s.frame_start) for s in sound_strips(bpy.context.scene)],
        "range": (bpy.context.scene.frame_start, bpy.context.scene.frame_end),
    }


def test_python_expr_generates_into_the_opened_scene_and_saves(bpy, extension, checkpoint_path, speech_wav, tmp_path):
    prefs = bpy.context.preferences.addons[extension.__name__].preferences
    saved = (prefs.checkpoint, prefs.engine)
    prefs.checkpoint, prefs.engine = str(checkpoint_path), "AUTO"
    # What an installed, enabled extension looks like to the next Blender start.
    bpy.ops.wm.save_userpref()
    try:
        _python_expr_run(bpy, extension, checkpoint_path, speech_wav, tmp_path)
    finally:
        # Other test files share this Blender session, its preferences and their saved copy.
        prefs.checkpoint, prefs.engine = saved
        bpy.ops.wm.save_userpref()


def _python_expr_run(bpy, extension, checkpoint_path, speech_wav, tmp_path):
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render.fps = 30
    scene_file = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(scene_file))

    expr = (f"import bpy; bpy.ops.gestura.generate(audio_path={str(speech_wav)!r}, seed=3); "
            "bpy.ops.wm.save_mainfile()")
    if bpy.app.version >= (4, 3, 0):
        startup, ending = "bpy.ops.wm.read_userpref()", ""
    else:
        # The bpy 4.2 wheel segfaults in read_userpref (even with no add-on installed), so the
        # start-up step is done by hand: enable the installed extension and apply the saved
        # checkpoint preference. The command ends the way the Blender program would, after
        # everything is saved (see blender_batch._exit for the 4.2 wheel's exit crash).
        startup = (f"import addon_utils; addon_utils.enable({extension.__name__!r}, default_set=True); "
                   f"bpy.context.preferences.addons[{extension.__name__!r}].preferences.checkpoint = "
                   f"{str(checkpoint_path)!r}")
        ending = "; import os, sys; sys.stdout.flush(); os._exit(0)"
    done = blender(["-c", f"import bpy; {startup}; "
                          f"bpy.ops.wm.open_mainfile(filepath={str(scene_file)!r}); {expr}{ending}"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Generated" in done.stdout + done.stderr

    result = load_back(bpy, scene_file)
    assert len(result["armatures"]) == 1 and result["actions"].count("speech_seed3") == 1
    assert "right_index3" in result["keyed"] and "jaw" in result["keyed"]
    assert result["range"][0] == 1 and result["range"][1] > 100  # about five seconds at 30 fps
    if bpy.app.build_options.audaspace:
        assert result["strips"] == [("speech", 1)]
    bpy.ops.wm.read_homefile(use_empty=True)


@pytest.mark.parametrize("copy", ["installed extension", "source checkout"])
def test_batch_script_writes_a_blend_that_loads_back(bpy, extension, checkpoint_path, speech_wav, tmp_path, copy):
    script = (Path(extension.__file__).parent if copy == "installed extension" else REPO) / "blender_batch.py"
    out = tmp_path / "take.blend"
    done = blender([str(script), "--", "--audio", str(speech_wav), "--out", str(out), "--seed", "4",
                    "--parts", "upper,face", "--checkpoint", str(checkpoint_path), "--new-armature"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"wrote '{out}'" in done.stdout

    result = load_back(bpy, out)
    assert "speech_seed4" in result["actions"]
    armature = [a for a in result["armatures"] if a.animation_data and a.animation_data.action][0]
    keyed = keyed_bones(armature)
    assert "jaw" in keyed and "left_wrist" in keyed and not any("index" in b or "knee" in b for b in keyed)
    assert len(fcurves(armature)) > 0
    bpy.ops.wm.read_homefile(use_empty=True)


def test_batch_script_does_many_files_and_skips_existing_outputs(bpy, extension, checkpoint_path, speech_wav, tmp_path):
    from conftest import espeak

    clips = tmp_path / "clips"
    clips.mkdir()
    espeak("One two three.", clips / "count.wav")
    espeak("Good morning.", clips / "greeting.wav")
    out = tmp_path / "blends"
    out.mkdir()
    (out / "count.blend").write_bytes(b"already here")
    args = [str(REPO / "blender_batch.py"), "--", "--audio", str(clips), "--out", str(out),
            "--checkpoint", str(checkpoint_path)]
    done = blender(args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "count.blend' exists, skipped" in done.stdout
    # One line per file: none of Blender's own reports ("Saved copy as", "Read blend").
    lines = [line for line in done.stdout.splitlines() if "count" in line or "greeting" in line or "blend" in line]
    assert len(lines) == 2 and lines[1].startswith("[2/2] greeting.wav: wrote "), done.stdout
    assert load_back(bpy, out / "greeting.blend")["actions"] == ["greeting_seed0"]
    bpy.ops.wm.read_homefile(use_empty=True)


def test_batch_script_fails_with_one_clear_line_and_a_nonzero_status(extension, checkpoint_path, tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("not audio")
    folder = tmp_path / "somefolder"
    folder.mkdir()
    script = str(REPO / "blender_batch.py")
    model = ["--checkpoint", str(checkpoint_path)]
    # Bad options and arguments: status 2 (as argparse's), before any file; a file that fails: 1.
    cases = [
        ([script, "--", "--audio", str(tmp_path / "missing.wav"), "--out", str(tmp_path / "a.blend")], "does not exist",
         2),
        ([script, "--", "--audio", str(fake), "--out", str(tmp_path / "b.blend"), *model], "notes.wav", 1),
        ([script, "--", "--audio", str(fake), "--out", str(tmp_path / "c.blend"), "--parts", "arms"], "unknown body part",
         2),
        ([script, "--", "--audio", str(fake), "--out", str(tmp_path / "d.blend"), "--parts", ""], "no body part named",
         2),
        ([script, "--", "--audio", str(fake), "--out", str(tmp_path / "e.blend"), "--seed", "-5"],
         "seed -5 is out of range: use a whole number from 0 to 2147483647", 2),
        ([script, "--", "--audio", str(fake), "--out", str(fake / "out.blend")], "is a file, not a folder", 2),
        ([script, "--", "--audio", str(fake), "--out", str(tmp_path / "f.fbx")], "only .blend files can be written", 2),
        ([script, "--", "--audio", str(fake), "--out", str(tmp_path / "g.blend"), "--engine", "foo"],
         "--engine foo is not an engine: choose one of auto, numpy, torch, external", 2),
        ([script, "--", "--audio", str(fake), "--out", str(tmp_path / "h.blend"), "--checkpoint", str(folder)],
         f"checkpoint '{folder}' is a folder, not a checkpoint file", 2),
        ([script, "--", "--audio", str(fake), "--out", str(tmp_path / "i.blend"), *model, "--style", "carol"],
         "style 'carol' is not in this model: choose one of alice, bob", 2),
        ([script, "--", "--audio", str(fake), "--out", str(tmp_path / "j.blend"), *model, "--temperature", "-1"],
         "temperature must be a finite number >= 0", 2),
        ([script, "--", "--audio", str(fake), "--out", str(tmp_path / "k.blend"), *model, "--style-strength", "-1"],
         "style strength must be a finite number >= 0", 2),
        ([script, "--", "--audio", str(fake), "--out", str(tmp_path / "m.blend"), *model, "--plan-strength", "-1"],
         "plan strength must be a finite number >= 0", 2),
        ([script, "--", "--audio", str(fake), "--out", str(tmp_path / "l.blend"), *model, "--sampling-steps", "20"],
         "sampling steps apply to a diffusion (dim-gestor) model, and this one is vq-mamba: leave them out", 2),
    ]
    for args, expected, status in cases:
        done = blender(args)
        assert done.returncode == status, (args, done.stderr[-2000:])
        errors = [line for line in done.stderr.splitlines() if line.startswith("gestura batch: error:")]
        # One line: refused before the per-file loop, so no "1 of 1 audio files failed" after it.
        assert len(errors) == (2 if status == 1 else 1) and expected in errors[0], done.stderr[-2000:]
    assert not any(tmp_path.glob("*.blend"))


def test_batch_script_refuses_a_negative_start_frame_before_generating(extension, speech_wav, tmp_path):
    done = blender([str(REPO / "blender_batch.py"), "--", "--audio", str(speech_wav), "--out",
                    str(tmp_path / "a.blend"), "--start-frame", "-100"])
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        "gestura batch: error: argument --start-frame: -100 is negative, but a Blender scene cannot start before "
        "frame 0: use 0 or later")
    assert not any(tmp_path.glob("*.blend"))


def test_batch_script_carries_on_past_a_failed_file_and_leaves_no_temporary_folder(
        bpy, extension, checkpoint_path, tmp_path):
    from conftest import espeak

    clips = tmp_path / "clips"
    clips.mkdir()
    espeak("One two three.", clips / "count.wav")
    espeak("Good morning.", clips / "greeting.wav")
    out = tmp_path / "session.2024-05"
    (out / "count.blend").mkdir(parents=True)  # count's output name is taken by a folder
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(scratch))
    done = subprocess.run([sys.executable, str(REPO / "blender_batch.py"), "--", "--audio", str(clips),
                           "--out", str(out), "--checkpoint", str(checkpoint_path), "--engine", "numpy"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("gestura batch: error:")]
    assert errors == [
        f"gestura batch: error: {clips / 'count.wav'}: output '{out / 'count.blend'}' is a folder: rename or move it",
        "gestura batch: error: 1 of 2 audio files failed",
    ], done.stderr[-3000:]
    assert f"wrote '{out / 'greeting.blend'}'" in done.stdout
    assert load_back(bpy, out / "greeting.blend")["actions"] == ["greeting_seed0"]
    bpy.ops.wm.read_homefile(use_empty=True)
    assert not list(scratch.glob("gestura-batch-*"))


def test_batch_script_reads_aac_from_a_folder(bpy, extension, checkpoint_path, speech_wav, tmp_path):
    if not bpy.app.build_options.audaspace:
        pytest.skip("this bpy wheel has no audio support (the 4.2.0 wheel): no aac decoder")
    import aud

    clips = tmp_path / "clips"
    clips.mkdir()
    # A real AAC (ADTS) file, encoded by Blender's own sound library from the test speech.
    aud.Sound(str(speech_wav)).write(str(clips / "talk.aac"), 44100, aud.CHANNELS_MONO, aud.FORMAT_FLOAT32,
                                     aud.CONTAINER_AAC, aud.CODEC_AAC, 96000)
    out = tmp_path / "blends"
    # As in the Blender program, which ships no soundfile: the add-on decodes with aud (ffmpeg).
    script = str(REPO / "blender_batch.py")
    argv = [script, "--", "--audio", str(clips), "--out", str(out), "--checkpoint", str(checkpoint_path),
            "--engine", "numpy"]
    done = blender(["-c", f"import runpy, sys; sys.modules['soundfile'] = None; sys.argv = {argv!r}; "
                          f"runpy.run_path({script!r}, run_name='__main__')"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = load_back(bpy, out / "talk.blend")
    assert result["actions"] == ["talk_seed0"] and result["range"][1] > 100  # about five seconds at 30 fps
    bpy.ops.wm.read_homefile(use_empty=True)


def test_batch_script_says_a_files_notices_on_its_line(bpy, extension, checkpoint_path, tmp_path):
    import wave

    silent = tmp_path / "silent.wav"
    with wave.open(str(silent), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes(bytes(2 * 32000))
    out = tmp_path / "silent.blend"
    done = blender([str(REPO / "blender_batch.py"), "--", "--audio", str(silent), "--out", str(out),
                    "--checkpoint", str(checkpoint_path), "--engine", "numpy"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("[1/1] silent.wav: wrote")]
    assert (f"; warning: Audio file '{silent}' is silent (peak below -80 dBFS): "
            "the motion will not follow any speech") in line, line


def test_batch_script_with_relative_paths_writes_a_blend_whose_sound_is_found_from_anywhere(
        bpy, extension, checkpoint_path, speech_wav, tmp_path, monkeypatch):
    import shutil

    work = tmp_path / "x"
    (work / "clips").mkdir(parents=True)
    shutil.copy(speech_wav, work / "clips" / "a.wav")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(REPO / "blender_batch.py"), "--", "--audio", "clips/", "--out",
                           "blends/", "--checkpoint", str(checkpoint_path), "--engine", "numpy"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    monkeypatch.chdir(tmp_path)
    result = load_back(bpy, work / "blends" / "a.blend")
    assert result["actions"] == ["a_seed0"]
    if bpy.app.build_options.audaspace:
        (strip,) = sound_strips(bpy.context.scene)
        assert os.path.samefile(bpy.path.abspath(strip.sound.filepath), work / "clips" / "a.wav")
    bpy.ops.wm.read_homefile(use_empty=True)


def test_ctrl_c_stops_the_batch_at_once_with_one_line_and_status_130(extension, checkpoint_path, speech_wav,
                                                                      tmp_path):
    import shutil
    import signal

    clips = tmp_path / "clips"
    clips.mkdir()
    for index in range(4):
        shutil.copy(speech_wav, clips / f"take{index}.wav")
    out = tmp_path / "blends"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(scratch))
    child = subprocess.Popen([sys.executable, str(REPO / "blender_batch.py"), "--", "--audio", str(clips), "--out",
                              str(out), "--checkpoint", str(checkpoint_path), "--engine", "numpy"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in child.stdout:
        lines.append(line)
        if line.startswith("[1/4] take0.wav: wrote"):
            child.send_signal(signal.SIGINT)  # as Ctrl+C in the terminal
            break
    rest, errors = child.communicate(timeout=600)
    lines += rest.splitlines()
    assert child.returncode == 130, errors[-3000:]
    assert errors.strip().splitlines()[-1] == "gestura batch: interrupted", errors[-3000:]
    assert "Traceback" not in errors and "gestura batch: error" not in errors, errors[-3000:]
    # It stopped in the second file (generating, saving or reloading the template): no third one,
    # no temporary .blend beside the outputs, no template folder left.
    written = sorted(p.name for p in out.iterdir())
    assert written in (["take0.blend"], ["take0.blend", "take1.blend"]), written
    assert len([x for x in lines if ": wrote '" in x]) == len(written)
    assert not list(scratch.iterdir())


def test_batch_script_says_on_the_files_line_that_no_sound_strip_was_added(bpy, extension, checkpoint_path,
                                                                           speech_wav, tmp_path):
    if bpy.app.build_options.audaspace:
        pytest.skip("this bpy has audio support: the sound strip is added (the 4.2.0 wheel has none)")
    out = tmp_path / "take.blend"
    done = blender([str(REPO / "blender_batch.py"), "--", "--audio", str(speech_wav), "--out", str(out),
                    "--checkpoint", str(checkpoint_path), "--engine", "numpy"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith(f"[1/1] {speech_wav.name}: wrote")]
    assert line.endswith("; warning: This Blender build has no audio support, so no sound strip was added"), line
