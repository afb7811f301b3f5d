"""``gestura generate`` over folders of speech: .blend (with bpy), .npz and .bvh files that load back,
existing outputs skipped unless --overwrite, progress per file. Runs on Blender 5.0 (torch engine)
and 4.2 (NumPy engine): both venvs have the package and a bpy module.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import espeak
from random_checkpoint import write_random_checkpoint
from test_generate_operator import keyed_bones, lowest_points, sound_strips

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def checkpoint_path(tmp_path_factory):
    return write_random_checkpoint(tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    espeak("One, two, three.", folder / "count.wav")
    espeak("Good morning to you.", folder / "greeting.wav")
    (folder / "notes.txt").write_text("not audio: folders contribute only audio files\n")
    return folder


def gestura(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "gestura", "generate", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)


def test_a_folder_becomes_blend_files_that_load_back_and_existing_ones_are_skipped(bpy, clips, checkpoint_path, tmp_path):
    out = tmp_path / "blends"
    done = gestura(clips, "-o", out, "--format", "blend", "--checkpoint", checkpoint_path, "--seed", "6",
                   "--parts", "face,upper")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["count.blend", "greeting.blend"]
    assert "1/2 count.wav" in done.stderr and "2/2 greeting.wav" in done.stderr
    # stdout names what was written, and only that: Blender's "Saved copy as" named a temporary file.
    assert done.stdout.splitlines() == [f"{clips / name}.wav -> {out / name}.blend" for name in ("count", "greeting")]

    bpy.ops.wm.open_mainfile(filepath=str(out / "greeting.blend"), load_ui=False)
    (armature,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert armature.animation_data.action.name == "greeting_seed6"
    keyed = keyed_bones(armature)
    assert "jaw" in keyed and "right_elbow" in keyed and not any("index" in b or "knee" in b for b in keyed)
    assert bpy.context.scene.frame_start == 1 and bpy.context.scene.frame_end > 20
    if bpy.app.build_options.audaspace:
        assert [(s.name, s.frame_start) for s in sound_strips(bpy.context.scene)] == [("greeting", 1)]
    bpy.ops.wm.read_homefile(use_empty=True)

    stamp = (out / "count.blend").stat().st_mtime_ns
    # The NumPy engine from here on: no torch import per run (two shared cores).
    again = gestura(clips, "-o", out, "--format", "blend", "--checkpoint", checkpoint_path, "--engine", "numpy")
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stderr.count("exists, skipped") == 2
    assert (out / "count.blend").stat().st_mtime_ns == stamp

    (out / "greeting.blend").unlink()
    partly = gestura(clips, "-o", out, "--format", "blend", "--checkpoint", checkpoint_path, "--engine", "numpy")
    assert partly.returncode == 0 and "count.blend' exists, skipped" in partly.stderr
    assert (out / "greeting.blend").is_file() and (out / "count.blend").stat().st_mtime_ns == stamp

    forced = gestura(clips, "-o", out, "--format", "blend", "--checkpoint", checkpoint_path, "--overwrite",
                     "--engine", "numpy")
    assert forced.returncode == 0 and "skipped" not in forced.stderr
    assert (out / "count.blend").stat().st_mtime_ns != stamp


def test_npz_and_bvh_outputs_load_back(bpy, clips, checkpoint_path, tmp_path):
    from gestura.rigs.motion_io import load_npz

    npz = tmp_path / "count.npz"
    done = gestura(clips / "count.wav", "-o", npz, "--checkpoint", checkpoint_path, "--seed", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    motion = load_npz(npz)
    assert motion.fps == 30 and motion.num_frames > 20

    bvh_dir = tmp_path / "bvh"
    done = gestura(clips, "-o", bvh_dir, "--format", "bvh", "--checkpoint", checkpoint_path, "--engine", "numpy")
    assert done.returncode == 0, done.stderr[-2000:]
    bpy.ops.wm.read_homefile(use_empty=True)
    assert bpy.ops.import_anim.bvh(filepath=str(bvh_dir / "count.bvh")) == {"FINISHED"}
    imported = bpy.context.active_object
    assert imported.type == "ARMATURE" and len(imported.data.bones) >= 55
    assert imported.animation_data.action is not None
    bpy.ops.wm.read_homefile(use_empty=True)


def test_blend_and_bvh_outputs_stand_on_the_floor(bpy, clips, tmp_path):
    from gestura.rigs.rest_skeleton import FOOT_CLEARANCE
    from gestura.rigs.skeleton import FOOT_JOINTS, JOINT_NAMES

    # The bundled model (no --checkpoint), as `make demo` runs it: its speakers stand still.
    for suffix in ("blend", "bvh"):
        done = gestura(clips / "greeting.wav", "-o", tmp_path / f"greeting.{suffix}", "--engine", "numpy")
        assert done.returncode == 0, done.stderr[-2000:]
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "greeting.blend"), load_ui=False)
    (armature,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    bpy.context.scene.frame_set(1)
    foot, vertex = lowest_points(bpy, armature)
    # Before: the pelvis at the origin and the body from z -0.97 to 0.75.
    assert foot == pytest.approx(FOOT_CLEARANCE, abs=0.01) and -0.01 < vertex < 0.03
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render.fps = 30
    assert bpy.ops.import_anim.bvh(filepath=str(tmp_path / "greeting.bvh"), update_scene_fps=False) == {"FINISHED"}
    imported = bpy.context.active_object
    bpy.context.scene.frame_set(1)
    matrix = np.array(imported.matrix_world)
    feet = np.array([imported.pose.bones[JOINT_NAMES[j]].head for j in FOOT_JOINTS]) @ matrix[:3, :3].T + matrix[:3, 3]
    # Blender's BVH importer shows the feet where the .blend has them.
    assert feet[:, 2].min() == pytest.approx(foot, abs=1e-3)
    bpy.ops.wm.read_homefile(use_empty=True)


def test_bad_input_fails_with_one_line_and_writes_nothing(clips, checkpoint_path, tmp_path):
    out = tmp_path / "out"
    cases = [
        ((tmp_path / "missing.wav", "-o", out), "does not exist"),
        ((clips / "notes.txt", "-o", out / "notes.blend", "--checkpoint", checkpoint_path), "notes.txt"),
        ((clips, "-o", tmp_path / "one.blend"), "pass a folder"),
        ((clips, "-o", out, "--parts", "arms"), "unknown body part"),
    ]
    for args, expected in cases:
        done = gestura(*args)
        assert done.returncode == 2, (args, done.stderr[-2000:])
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("gestura generate: error:") and expected in last, done.stderr[-2000:]
    assert not list(tmp_path.glob("**/*.blend"))


def test_folders_take_every_audio_format_blender_reads(bpy):
    from gestura.inference.batch import AUDIO_EXTENSIONS, BLENDER_AUDIO_EXTENSIONS

    # What Blender's file browser and sequencer call audio is what blender_batch.py reads (aud).
    assert sorted(BLENDER_AUDIO_EXTENSIONS) == sorted(bpy.path.extensions_audio)
    assert set(BLENDER_AUDIO_EXTENSIONS) <= set(AUDIO_EXTENSIONS)


def test_blend_files_that_cannot_be_written_are_reported_one_line_each(clips, checkpoint_path, tmp_path):
    import resource

    def limit_file_size():  # the OS refuses files past 200 kB: a disk that fills while Blender saves
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    out = tmp_path / "blends"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "gestura", "generate", str(clips), "-o", str(out), "--format", "blend",
                           "--checkpoint", str(checkpoint_path), "--engine", "numpy", "-q"],
                          capture_output=True, text=True, timeout=600, env=env, preexec_fn=limit_file_size)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 3 and lines[2] == "gestura generate: error: 2 of 2 audio files failed (0 written)"
    for line, name in zip(lines, ("count", "greeting")):
        # Blender's reason ("File too large"; 4.2 reports a stale errno), or none when it did not
        # notice and left a file cut short ("Blender's save stopped early").
        assert line.startswith(f"gestura generate: error: {name}.wav: could not write '{out / name}.blend': "), line
    assert list(out.iterdir()) == []  # nothing half-written, not even Blender's "<name>.blend@"


def test_a_folder_with_a_file_this_python_cannot_decode_skips_it_in_one_line(clips, checkpoint_path, tmp_path):
    import shutil

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(clips / "count.wav", folder / "count.wav")
    # The command line decodes with soundfile (no aud here): an AAC file cannot be read.
    (folder / "talk.aac").write_bytes(b"\xff\xf1" + bytes(200))
    out = tmp_path / "out"
    done = gestura(folder, "-o", out, "--format", "npz", "--checkpoint", checkpoint_path, "--engine", "numpy")
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["count.npz"]
    skipped = [line for line in done.stderr.splitlines() if "talk.aac" in line]
    assert len(skipped) == 1 and skipped[0].startswith("gestura generate: warning: skipped 1 file"), done.stderr


def test_bad_settings_are_refused_once_before_any_file(clips, checkpoint_path, tmp_path):
    out = tmp_path / "o5"
    cases = [
        (("--style", "carol"), "gestura generate: error: style 'carol' is not in this model: choose one of alice, bob"),
        (("--temperature", "-1"), "gestura generate: error: temperature must be a finite number >= 0"),
        (("--temperature", "inf"), "gestura generate: error: temperature must be a finite number >= 0"),
        (("--top-k", "0"),
         "gestura generate: error: top-k must be 1 or more (draw from that many of the likeliest codes), got 0"),
        (("--top-p", "3"), "gestura generate: error: top-p must be more than 0 and at most 1"),
        (("--style-strength", "-2"), "gestura generate: error: style strength must be a finite number >= 0"),
        (("--plan-strength", "-2"), "gestura generate: error: plan strength must be a finite number >= 0"),
        (("--sampling-steps", "25"), "gestura generate: error: sampling steps apply to a diffusion (dim-gestor) "
                                     "model, and this one is vq-mamba: leave them out"),
    ]
    for options, expected in cases:
        done = gestura(clips / "count.wav", clips / "greeting.wav", "-o", f"{out}/", "--checkpoint",
                       checkpoint_path, "--engine", "numpy", *options)
        assert done.returncode == 2, (options, done.stderr[-2000:])
        assert [line for line in done.stderr.splitlines() if "error" in line or "failed" in line] == [
            done.stderr.strip().splitlines()[-1]], done.stderr[-2000:]
        assert done.stderr.strip().splitlines()[-1].startswith(expected), done.stderr[-2000:]
    assert not out.exists()
    # Also when every output exists and would be skipped: the setting is still wrong.
    out.mkdir()
    (out / "count.npz").write_bytes(b"taken")
    done = gestura(clips / "count.wav", "-o", f"{out}/", "--checkpoint", checkpoint_path, "--style", "carol")
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith(cases[0][1]), done.stderr[-2000:]
    assert (out / "count.npz").read_bytes() == b"taken"


def test_without_audio_support_the_missing_sound_strip_is_a_warning_line(bpy, clips, checkpoint_path, tmp_path):
    if bpy.app.build_options.audaspace:
        pytest.skip("this bpy has audio support: the sound strip is added (the 4.2.0 wheel has none)")
    out = tmp_path / "a.blend"
    done = gestura(clips / "count.wav", "-o", out, "--checkpoint", checkpoint_path, "--engine", "numpy")
    assert done.returncode == 0, done.stderr[-3000:]
    assert ("gestura generate: warning: This Blender build has no audio support, so no sound strip was added"
            in done.stderr.splitlines()), done.stderr[-3000:]
    assert out.is_file()
