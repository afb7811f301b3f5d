"""gestura.generate in the real Blender, through the built and installed extension, on espeak-ng speech.

Runs on Blender 5.0 (torch available: the "auto" engine may pick it) and Blender 4.2 (no torch:
the NumPy engine). The checkpoint is a tiny randomly initialised model (tests/random_checkpoint.py).
"""
from __future__ import annotations

import math
import os
import re
import sys
import wave

import numpy as np
import pytest

from random_checkpoint import STYLES, TINY, write_random_checkpoint

pytestmark = pytest.mark.blender

BONE_PATH = re.compile(r'^pose\.bones\["([^"]+)"\]')


@pytest.fixture(scope="module")
def checkpoint_path(tmp_path_factory):
    return write_random_checkpoint(tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory):
    """About one second of speech, for the tests of scene states."""
    from conftest import espeak

    return espeak("Hello there.", tmp_path_factory.mktemp("short") / "short.wav")


@pytest.fixture
def gestura(bpy, extension, checkpoint_path, empty_scene):
    """The installed extension's module, its preferences pointing at the tiny model."""
    try:
        import torch

        # Two shared cores: more threads than that make the torch engine many times slower.
        torch.set_num_threads(1)
    except ImportError:
        pass
    prefs = bpy.context.preferences.addons[extension.__name__].preferences
    saved = (prefs.checkpoint, prefs.engine)
    prefs.checkpoint = str(checkpoint_path)
    prefs.engine = "AUTO"
    yield extension
    # Other test files share this Blender session and its preferences.
    prefs.checkpoint, prefs.engine = saved


def _submodule(extension, name):
    return sys.modules[f"{extension.__name__}.{name}"]


def fcurves(obj, action=None):
    """The F-curves of ``action`` (default: the object's) on Blender 4.2 (action.fcurves) and 5.0 (slots)."""
    action = action or obj.animation_data.action
    if hasattr(action, "fcurves"):
        return list(action.fcurves)
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    bag = action_get_channelbag_for_slot(action, obj.animation_data.action_slot)
    return list(bag.fcurves) if bag is not None else []


def keyed_bones(obj) -> set:
    return {m.group(1) for fc in fcurves(obj) if (m := BONE_PATH.match(fc.data_path))}


def keys(obj) -> dict:
    out = {}
    for fc in fcurves(obj):
        co = np.zeros(2 * len(fc.keyframe_points), np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out[(fc.data_path, fc.array_index)] = co.reshape(-1, 2)
    return out


def scene_state(bpy) -> dict:
    scene = bpy.context.scene
    editor = scene.sequence_editor
    strips = []
    if editor is not None:
        collection = editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all
        strips = sorted(s.name for s in collection)
    return {
        "objects": sorted(o.name for o in bpy.data.objects),
        "actions": sorted(a.name for a in bpy.data.actions),
        "armatures": sorted(a.name for a in bpy.data.armatures),
        "meshes": sorted(m.name for m in bpy.data.meshes),
        "strips": strips,
        "range": (scene.frame_start, scene.frame_end),
        "selected": sorted(o.name for o in bpy.context.view_layer.objects if o is not None and o.select_get()),
        "active": getattr(bpy.context.view_layer.objects.active, "name", None),
    }


def expected_frame_count(wav_path, scene_fps: float) -> int:
    with wave.open(str(wav_path)) as w:
        seconds = w.getnframes() / w.getframerate()
    frames_30 = math.ceil(round(seconds * 16000) * 30 / 16000)
    return int(round((frames_30 - 1) * scene_fps / 30.0)) + 1


def sound_strips(scene):
    editor = scene.sequence_editor
    if editor is None:
        return []
    collection = editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all
    return [s for s in collection if s.type == "SOUND"]


def test_generate_keys_every_part_bone_over_the_speech_with_the_sound_in_place(bpy, gestura, speech_wav):
    from gestura.inference.batch import bones_for_parts
    from gestura.rigs.skeleton import PARTS

    scene = bpy.context.scene
    scene.render.fps = 25
    assert bpy.ops.gestura.generate(audio_path=str(speech_wav), seed=3, start_frame=5) == {"FINISHED"}

    obj = bpy.context.active_object
    assert obj.type == "ARMATURE"
    action = obj.animation_data.action
    assert action.name == "speech_seed3"
    assert keyed_bones(obj) == set(bones_for_parts(PARTS))
    assert "left_eye_smplhf" not in keyed_bones(obj)

    frames = expected_frame_count(speech_wav, 25.0)
    first, last = action.frame_range
    assert first == 5
    assert abs(last - (5 + frames - 1)) <= 1
    assert (scene.frame_start, scene.frame_end) == (5, int(round(last)))
    rotations = [k for (path, _), k in keys(obj).items() if path.endswith("rotation_quaternion")]
    assert all(len(k) == len(rotations[0]) for k in rotations) and abs(len(rotations[0]) - frames) <= 1
    # The model moved something: a random network is not the rest pose.
    assert max(np.ptp(k[:, 1]) for k in rotations) > 1e-3

    if bpy.app.build_options.audaspace:
        strips = sound_strips(scene)
        assert len(strips) == 1 and strips[0].frame_start == 5
        assert bpy.path.abspath(strips[0].sound.filepath) == str(speech_wav)
        # Generating again on the same clip and frame adds no second strip.
        assert bpy.ops.gestura.generate(audio_path=str(speech_wav), seed=4, start_frame=5) == {"FINISHED"}
        assert len(sound_strips(scene)) == 1
    else:
        # The bpy 4.2 wheel is built without audaspace: Blender cannot make sound strips there.
        assert sound_strips(scene) == []


def test_switching_hands_off_leaves_hand_bones_unkeyed(bpy, gestura, speech_wav):
    from gestura.inference.batch import bones_for_parts
    from gestura.rigs.skeleton import HAND_JOINTS, JOINT_NAMES

    bpy.context.scene.gestura.use_hands = False
    assert bpy.ops.gestura.generate(audio_path=str(speech_wav)) == {"FINISHED"}
    keyed = keyed_bones(bpy.context.active_object)
    assert keyed == set(bones_for_parts(("face", "upper", "lower")))
    assert not keyed & {JOINT_NAMES[j] for j in HAND_JOINTS}
    # The operator argument wins over the panel: only the hands.
    assert bpy.ops.gestura.generate(audio_path=str(speech_wav), parts={"hands"}, new_armature=True) == {"FINISHED"}
    assert keyed_bones(bpy.context.active_object) == {JOINT_NAMES[j] for j in HAND_JOINTS}


def test_same_seed_gives_identical_keys_and_another_seed_different_keys(bpy, gestura, speech_wav):
    runs = {}
    for label, seed in (("a", 7), ("b", 7), ("c", 8)):
        assert bpy.ops.gestura.generate(audio_path=str(speech_wav), seed=seed, new_armature=True) == {"FINISHED"}
        runs[label] = keys(bpy.context.active_object)
    assert runs["a"].keys() == runs["b"].keys() == runs["c"].keys()
    for channel in runs["a"]:
        np.testing.assert_array_equal(runs["a"][channel], runs["b"][channel])
    assert any(not np.allclose(runs["a"][c], runs["c"][c]) for c in runs["a"])


def test_style_strength_from_the_panel_reaches_the_model(bpy, gestura, speech_wav):
    # At strength 0 every style gives the same motion; at the panel's default they differ.
    settings = bpy.context.scene.gestura
    default = settings.style_strength
    assert default != 0.0
    runs = {}
    for style, strength in (("alice", 0.0), ("bob", 0.0), ("bob", default)):
        settings.style_strength = strength
        assert bpy.ops.gestura.generate(audio_path=str(speech_wav), style=style, new_armature=True) == {"FINISHED"}
        runs[style, strength] = keys(bpy.context.active_object)
    settings.property_unset("style_strength")
    alice, bob, bob_styled = runs.values()
    for channel in alice:
        np.testing.assert_array_equal(alice[channel], bob[channel])
    assert any(not np.allclose(bob[c], bob_styled[c]) for c in bob)


def test_plan_strength_from_the_panel_reaches_the_model_and_an_argument_wins_over_it(bpy, gestura, speech_wav):
    settings = bpy.context.scene.gestura
    assert settings.plan_strength == 3.0
    runs = {}
    for label, panel, argument in (("default", None, None), ("panel 1", 1.0, None), ("argument 1", None, 1.0)):
        if panel is not None:
            settings.plan_strength = panel
        given = {} if argument is None else {"plan_strength": argument}
        assert bpy.ops.gestura.generate(audio_path=str(speech_wav), seed=4, new_armature=True, **given) == {"FINISHED"}
        runs[label] = keys(bpy.context.active_object)
        settings.property_unset("plan_strength")
    for channel in runs["panel 1"]:
        np.testing.assert_array_equal(runs["panel 1"][channel], runs["argument 1"][channel])
    assert any(not np.allclose(runs["default"][c], runs["panel 1"][c]) for c in runs["default"])


def test_selected_smplx_armature_gets_a_new_action_and_keeps_the_old_one(bpy, gestura, speech_wav):
    assert bpy.ops.gestura.generate(audio_path=str(speech_wav), seed=1) == {"FINISHED"}
    obj = bpy.context.active_object
    first = obj.animation_data.action
    assert bpy.ops.gestura.generate(audio_path=str(speech_wav), seed=2) == {"FINISHED"}
    assert bpy.context.active_object == obj
    assert obj.animation_data.action != first and obj.animation_data.action.name == "speech_seed2"
    assert first.name in bpy.data.actions
    assert len([o for o in bpy.data.objects if o.type == "ARMATURE"]) == 1


def test_a_non_audio_file_is_cancelled_with_one_error_and_changes_nothing(bpy, gestura, tmp_path, speech_wav):
    assert bpy.ops.gestura.generate(audio_path=str(speech_wav), seed=1) == {"FINISHED"}
    bpy.context.scene.frame_end = 99
    before = scene_state(bpy)
    fake = tmp_path / "notes.wav"
    fake.write_text("these are meeting notes, not a recording\n")
    with pytest.raises(RuntimeError) as failure:
        bpy.ops.gestura.generate(audio_path=str(fake), seed=2)
    message = str(failure.value).strip()
    assert message.startswith("Error: ") and "notes.wav" in message and "\n" not in message
    assert scene_state(bpy) == before


def test_bad_settings_name_the_fix_and_change_nothing(bpy, gestura, speech_wav, tmp_path):
    before = scene_state(bpy)
    cases = [
        (dict(audio_path=str(tmp_path / "missing.wav")), "does not exist"),
        (dict(audio_path=str(speech_wav), style="nobody"), "alice"),
        (dict(audio_path=str(speech_wav), parts=set()), "at least one"),
        (dict(audio_path=str(speech_wav), checkpoint=str(tmp_path / "none.safetensors")), "checkpoint"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(RuntimeError, match=expected):
            bpy.ops.gestura.generate(**kwargs)
        assert scene_state(bpy) == before, kwargs


def test_a_selected_armature_that_is_not_smplx_is_refused(bpy, gestura, speech_wav):
    data = bpy.data.armatures.new("Mixamo")
    obj = bpy.data.objects.new("Mixamo", data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    before = scene_state(bpy)
    with pytest.raises(RuntimeError, match="not an SMPL-X rig"):
        bpy.ops.gestura.generate(audio_path=str(speech_wav))
    assert scene_state(bpy) == before


def test_undo_restores_the_scene_from_before_the_generation(bpy, gestura, speech_wav):
    scene = bpy.context.scene
    scene.frame_end = 42
    bpy.ops.ed.undo_push(message="before generating")
    before = scene_state(bpy)
    # The third argument (undo=True) makes a script call push its undo step like a button press.
    assert bpy.ops.gestura.generate("EXEC_DEFAULT", True, audio_path=str(speech_wav), seed=5) == {"FINISHED"}
    assert scene_state(bpy) != before
    assert bpy.ops.ed.undo() == {"FINISHED"}
    assert scene_state(bpy) == before
    assert bpy.ops.ed.redo() == {"FINISHED"}
    assert "speech_seed5" in bpy.data.actions


def test_the_modal_path_runs_on_a_thread_reports_progress_and_applies_on_the_main_thread(bpy, gestura, speech_wav):
    generate = _submodule(gestura, "blender.operators.generate")
    plan = generate.plan_generation(bpy.context, {"audio_path": str(speech_wav), "seed": 11, "style": STYLES[1]})
    assert plan.request.style == "bob" and plan.target_name is None
    before = scene_state(bpy)
    seen = []
    job_module = _submodule(gestura, "blender.generation_job")
    job = job_module.GenerationJob(lambda progress, cancel: generate.run_generation(
        plan, lambda f, m: (seen.append(f), progress(f, m)), cancel)).start()
    assert job.join(timeout=300)
    state = job.state()
    assert state.finished and not state.cancelled and state.elapsed > 0
    # Nothing is written while the thread runs: the scene only changes in apply_generation.
    assert scene_state(bpy) == before
    assert seen and all(0.0 <= f <= 1.0 for f in seen) and seen == sorted(seen)
    applied = generate.apply_generation(bpy.context, plan, job.outcome())
    assert applied.action.name == "speech_seed11"
    assert keyed_bones(applied.armature)


def test_cancelling_the_modal_job_leaves_the_scene_untouched(bpy, gestura, speech_wav):
    generate = _submodule(gestura, "blender.operators.generate")
    pipeline = _submodule(gestura, "inference.pipeline")
    job_module = _submodule(gestura, "blender.generation_job")
    plan = generate.plan_generation(bpy.context, {"audio_path": str(speech_wav)})
    before = scene_state(bpy)
    job = job_module.GenerationJob(lambda progress, cancel: generate.run_generation(plan, progress, cancel))
    job.cancel()  # before the first chunk: the pipeline must stop at its first cancel check
    job.start()
    assert job.join(timeout=300)
    with pytest.raises(pipeline.Cancelled):
        job.outcome()
    assert scene_state(bpy) == before


def test_style_menu_lists_the_checkpoint_styles_per_checkpoint(bpy, gestura, checkpoint_path, tmp_path):
    generate = _submodule(gestura, "blender.operators.generate")
    cache = _submodule(gestura, "blender.checkpoint_cache")
    assert cache.style_names(generate.checkpoint_path(bpy.context)) == STYLES
    other = write_random_checkpoint(tmp_path / "other.safetensors", styles=["carol", "dave"], seed=1)
    prefs = bpy.context.preferences.addons[gestura.__name__].preferences
    prefs.checkpoint = str(other)
    assert cache.style_names(generate.checkpoint_path(bpy.context)) == ["carol", "dave"]
    # Rewriting the file in place is seen too (the cache keys on size and modification time).
    write_random_checkpoint(other, styles=["erin", "frank"], seed=2)
    os.utime(other, ns=(1, 1))
    assert cache.style_names(generate.checkpoint_path(bpy.context)) == ["erin", "frank"]
    assert cache.default_style(generate.checkpoint_path(bpy.context)) == 0
    # The menu marks the model's default style, which need not be its first.
    write_random_checkpoint(other, TINY.with_(default_style=1), styles=["erin", "frank"], seed=2)
    os.utime(other, ns=(2, 2))
    assert cache.default_style(generate.checkpoint_path(bpy.context)) == 1

    prefs.checkpoint = str(checkpoint_path)
    assert bpy.ops.gestura.set_style(style="bob") == {"FINISHED"}
    assert bpy.context.scene.gestura.style == "bob"
    plan = generate.plan_generation(bpy.context, {"audio_path": __file__})
    assert plan.request.style == "bob"
    prefs.checkpoint = str(other)
    with pytest.raises(Exception, match="Style 'bob' is not in the model 'other.safetensors': choose one of erin, frank"):
        generate.plan_generation(bpy.context, {"audio_path": __file__})


def test_sampling_steps_reach_a_diffusion_model_and_a_code_model_ignores_a_leftover_value(
        bpy, gestura, checkpoint_path, short_wav, tmp_path):
    from random_checkpoint import tiny_config

    generate = _submodule(gestura, "blender.operators.generate")
    cache = _submodule(gestura, "blender.checkpoint_cache")
    settings = bpy.context.scene.gestura
    prefs = bpy.context.preferences.addons[gestura.__name__].preferences
    config = tiny_config(family="dim-gestor", headdim=8, mamba2_d_state=8, denoiser_layers=2, span_codes=8,
                         prefix_codes=2, sampling_steps=3)
    dim = write_random_checkpoint(tmp_path / "dim.safetensors", config)
    planned = write_random_checkpoint(tmp_path / "planned.safetensors",
                                      config.with_(stroke_planner=True, apex_rates=(0.5, 1.5)))
    # The panel shows Sampling Steps for the model family the header names, and Plan Strength for
    # a model that strokes on a plan.
    path = generate.checkpoint_path(bpy.context)
    assert (cache.model_family(path), cache.plans_strokes(path)) == ("vq-mamba", True)
    assert (cache.model_family(planned), cache.plans_strokes(planned)) == ("dim-gestor", True)
    prefs.checkpoint = str(dim)
    try:
        path = generate.checkpoint_path(bpy.context)
        assert (cache.model_family(path), cache.plans_strokes(path)) == ("dim-gestor", False)
        assert generate.plan_generation(bpy.context, {"audio_path": str(short_wav)}).request.sampling_steps is None
        runs = {}
        for steps in (0, 2):
            settings.sampling_steps = steps
            assert generate.plan_generation(bpy.context, {"audio_path": str(short_wav)}).request.sampling_steps == (
                steps or None)
            assert bpy.ops.gestura.generate(audio_path=str(short_wav), new_armature=True) == {"FINISHED"}
            runs[steps] = keys(bpy.context.active_object)
        assert any(not np.allclose(runs[0][c], runs[2][c]) for c in runs[0])
    finally:
        prefs.checkpoint = str(checkpoint_path)
    # Left at 2 from the diffusion model, hidden for a code model: not used, not an error.
    assert generate.plan_generation(bpy.context, {"audio_path": str(short_wav)}).request.sampling_steps is None
    settings.property_unset("sampling_steps")
    before = scene_state(bpy)
    with pytest.raises(RuntimeError, match=r"^Error: Sampling steps apply to a diffusion \(dim-gestor\) model, and "
                                           r"'tiny.safetensors' is vq-mamba: leave them out$"):
        bpy.ops.gestura.generate(audio_path=str(short_wav), sampling_steps=12)
    assert scene_state(bpy) == before


def test_new_seed_always_picks_a_different_seed(bpy, gestura):
    settings = bpy.context.scene.gestura
    settings.seed = 5
    for _ in range(5):
        previous = settings.seed
        assert bpy.ops.gestura.new_seed() == {"FINISHED"}
        assert settings.seed != previous and settings.seed >= 0


def _new_sound_strip(bpy, name, path, channel, frame):
    """A sound strip in the current scene; skips where the bpy build cannot make one."""
    if not bpy.app.build_options.audaspace:
        pytest.skip("this bpy build has no audaspace (the 4.2 wheel): Blender cannot create sound strips")
    editor = bpy.context.scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    return strips.new_sound(name, str(path), channel, frame)


def test_speech_from_a_sound_strip_starts_where_the_strip_starts(bpy, gestura, speech_wav):
    scene = bpy.context.scene
    strip = _new_sound_strip(bpy, "Dialogue", speech_wav, channel=3, frame=40)
    settings = scene.gestura
    settings.audio_source, settings.sound_strip = "STRIP", strip.name
    assert bpy.ops.gestura.generate(seed=2) == {"FINISHED"}
    action = bpy.context.active_object.animation_data.action
    assert action.frame_range[0] == 40 and scene.frame_start == 40
    assert [s.name for s in sound_strips(scene)] == ["Dialogue"]


def test_a_failure_while_writing_removes_everything_it_added(bpy, gestura, speech_wav):
    generate = _submodule(gestura, "blender.operators.generate")
    scene_module = _submodule(gestura, "blender.generate_scene")
    jobs = _submodule(gestura, "inference.batch")
    assert bpy.ops.gestura.generate(audio_path=str(speech_wav), seed=1) == {"FINISHED"}
    armature = bpy.context.active_object
    first = armature.animation_data.action
    plan = generate.plan_generation(bpy.context, {"audio_path": str(speech_wav), "seed": 2})
    motion = generate.run_generation(plan)
    before = scene_state(bpy)
    # An unknown part is only found once the new armature exists and keyframing starts.
    with pytest.raises(jobs.JobError):
        scene_module.apply_motion(bpy.context, motion, target_name=None, audio_path=plan.request.audio,
                                  start_frame=9, action_name="broken", parts=("upper", "tail"))
    assert scene_state(bpy) == before
    # The armature generated on keeps its action; a target deleted meanwhile is reported.
    assert armature.animation_data.action == first
    bpy.data.objects.remove(armature)
    before = scene_state(bpy)
    with pytest.raises(scene_module.SceneError, match="was deleted while generating"):
        generate.apply_generation(bpy.context, plan, motion)
    assert scene_state(bpy) == before


def test_packed_sound_in_a_strip_is_read_and_no_second_strip_is_added(bpy, gestura, speech_wav):
    import tempfile
    from pathlib import Path

    scene = bpy.context.scene
    strip = _new_sound_strip(bpy, "Packed", speech_wav, channel=1, frame=12)
    strip.sound.pack()
    assert strip.sound.packed_file is not None
    copies_before = set(Path(tempfile.gettempdir()).glob("gestura-strip-*"))
    assert bpy.ops.gestura.generate(sound_strip="Packed", seed=9) == {"FINISHED"}
    action = bpy.context.active_object.animation_data.action
    assert action.name == "speech_seed9" and action.frame_range[0] == 12
    assert [s.name for s in sound_strips(scene)] == ["Packed"]
    # No copy of ours is left (other processes sharing the temp folder may come and go meanwhile).
    assert set(Path(tempfile.gettempdir()).glob("gestura-strip-*")) <= copies_before



def lowest_points(bpy, obj) -> tuple[float, float]:
    """World z of the lowest foot joint (ankles, feet) and of the lowest vertex of the rig's body
    mesh, at the current frame."""
    from gestura.rigs.skeleton import FOOT_JOINTS, JOINT_NAMES

    matrix = np.array(obj.matrix_world)
    feet = np.array([obj.pose.bones[JOINT_NAMES[j]].head for j in FOOT_JOINTS]) @ matrix[:3, :3].T + matrix[:3, 3]
    (body,) = [c for c in obj.children if c.type == "MESH"]
    evaluated = body.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    co = np.zeros(3 * len(mesh.vertices))
    mesh.vertices.foreach_get("co", co)
    world = np.array(evaluated.matrix_world)
    lowest_vertex = float((co.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3])[:, 2].min())
    evaluated.to_mesh_clear()
    return float(feet[:, 2].min()), lowest_vertex


@pytest.mark.parametrize("rig", ["new armature", "Create SMPL-X Rig"])
def test_the_generated_body_stands_on_the_floor(bpy, gestura, speech_wav, rig):
    from gestura.rigs.rest_skeleton import FOOT_CLEARANCE

    # The bundled model: its speakers stand with planted feet, so frame 1 shows where they stand.
    bpy.context.preferences.addons[gestura.__name__].preferences.checkpoint = ""
    scene = bpy.context.scene
    if rig == "Create SMPL-X Rig":
        assert bpy.ops.gestura.create_rig() == {"FINISHED"}
        scene.frame_set(1)
        foot, vertex = lowest_points(bpy, bpy.context.active_object)
        assert foot == pytest.approx(FOOT_CLEARANCE, abs=1e-5) and 0.0 <= vertex < 0.02
    assert bpy.ops.gestura.generate(audio_path=str(speech_wav), seed=0) == {"FINISHED"}
    obj = bpy.context.active_object
    scene.frame_set(1)
    foot, vertex = lowest_points(bpy, obj)
    # Before: the pelvis at the origin, the body from z -0.97 to 0.75.
    assert foot == pytest.approx(FOOT_CLEARANCE, abs=0.01) and -0.01 < vertex < 0.03
    # Without the lower body nothing is keyed on the legs or the pelvis: a new rig stands at rest.
    assert bpy.ops.gestura.generate(audio_path=str(speech_wav), seed=0, parts={"face", "upper", "hands"},
                                    new_armature=True) == {"FINISHED"}
    scene.frame_set(1)
    assert lowest_points(bpy, bpy.context.active_object)[0] == pytest.approx(FOOT_CLEARANCE, abs=1e-5)


def test_a_generated_take_exported_and_imported_again_stands_where_it_stood(bpy, gestura, speech_wav, tmp_path):
    from gestura.rigs import motion_io

    scene = bpy.context.scene
    # The tiny random model's legs kick about: Generate stands its lowest foot on the floor, the
    # export keeps the model's own translation, and the import stands it there again.
    assert bpy.ops.gestura.generate(audio_path=str(speech_wav), seed=5) == {"FINISHED"}
    generated = bpy.context.active_object
    assert abs(generated.animation_data.action["smplx_floor_offset"]) > 0.01
    path = tmp_path / "take.npz"
    assert bpy.ops.gestura.export_motion(filepath=str(path), format="NPZ") == {"FINISHED"}
    frames = range(1, int(generated.animation_data.action.frame_range[1]) + 1, 7)
    before = []
    for frame in frames:
        scene.frame_set(frame)
        before.append(np.array(generated.matrix_world @ generated.pose.bones["pelvis"].head))
    assert bpy.ops.gestura.import_motion(filepath=str(path), new_armature=True) == {"FINISHED"}
    imported = bpy.context.active_object
    assert imported != generated
    assert imported.animation_data.action["smplx_floor_offset"] == pytest.approx(
        generated.animation_data.action["smplx_floor_offset"], abs=1e-6)
    for frame, pelvis in zip(frames, before):
        scene.frame_set(frame)
        np.testing.assert_allclose(imported.matrix_world @ imported.pose.bones["pelvis"].head, pelvis, atol=1e-5,
                                   err_msg=f"frame {frame}")
    assert motion_io.load_npz(path).num_frames == len(range(1, int(generated.animation_data.action.frame_range[1]) + 1))


# ---------------------------------------------------------------- states of the rig's animation data

@pytest.fixture
def rig(bpy, gestura):
    """A selected SMPL-X rig (no body) with one action, like a rig generated on before."""
    import importlib

    blender = importlib.import_module(f"{gestura.__name__}.blender.rigs")
    Motion = importlib.import_module(f"{gestura.__name__}.rigs.motion").Motion
    obj = blender.create_smplx_armature(bpy.context, "SMPLX", mannequin=False)
    n = 6
    blender.write_motion(obj, Motion(np.zeros((n, 55, 3)), np.zeros((n, 3)), np.zeros((n, 100))), "take1")
    from anim_states import select_only

    select_only(bpy, obj)
    return obj


def _refused_unchanged(bpy, obj, match, **kwargs):
    from anim_states import actions_state, anim_state

    actions, anim, scene = actions_state(bpy), anim_state(obj), scene_state(bpy)
    with pytest.raises(RuntimeError) as failure:
        bpy.ops.gestura.generate(**kwargs)
    message = str(failure.value).strip()
    assert re.search(match, message) and "\n" not in message, message
    assert actions_state(bpy) == actions and anim_state(obj) == anim and scene_state(bpy) == scene


def test_a_rig_in_nla_tweak_mode_is_refused_before_generating_and_left_as_it_was(bpy, rig, short_wav):
    from anim_states import enter_tweak_mode

    enter_tweak_mode(rig)
    _refused_unchanged(bpy, rig, r"^Error: 'SMPLX' is in NLA tweak mode: press Tab in the NLA editor to leave it",
                       audio_path=str(short_wav))


def test_a_driver_on_a_keyed_channel_is_refused_and_a_part_without_it_generates(bpy, rig, short_wav):
    from anim_states import add_driver, anim_state

    add_driver(rig, 'pose.bones["jaw"].rotation_quaternion', 1)
    _refused_unchanged(bpy, rig, r"'SMPLX' has a driver on pose\.bones\[\"jaw\"\]\.rotation_quaternion, which would "
                       r"override the new keys", audio_path=str(short_wav))
    # The jaw belongs to the face: without it, nothing keyed is driven.
    assert bpy.ops.gestura.generate(audio_path=str(short_wav), parts={"upper"}) == {"FINISHED"}
    assert anim_state(rig)["drivers"] == [('pose.bones["jaw"].rotation_quaternion', 1)]
    assert "jaw" not in keyed_bones(rig)


@pytest.mark.parametrize("active", [True, False], ids=["with-active-action", "tracks-only"])
def test_nla_tracks_stay_and_the_new_action_goes_on_top(bpy, rig, short_wav, active):
    from anim_states import anim_state, push_down

    take1 = rig.animation_data.action
    push_down(rig)
    if active:
        rig.animation_data.action = bpy.data.actions.new("take2")
    tracks = anim_state(rig)["tracks"]
    assert bpy.ops.gestura.generate(audio_path=str(short_wav), seed=4) == {"FINISHED"}
    state = anim_state(rig)
    assert state["action"] == "short_seed4" and state["tracks"] == tracks and not state["tweak"]
    assert take1.name in bpy.data.actions and ("take2" in bpy.data.actions) == active


def test_constraints_on_bones_are_kept_and_the_bones_keyed(bpy, rig, short_wav):
    constraint = rig.pose.bones["left_elbow"].constraints.new("LIMIT_ROTATION")
    assert bpy.ops.gestura.generate(audio_path=str(short_wav)) == {"FINISHED"}
    assert "left_elbow" in keyed_bones(rig) and rig.pose.bones["left_elbow"].constraints[0] == constraint


@pytest.mark.parametrize("rig_slot", ["its-own", "named-for-another-object", "none"])
def test_an_action_with_several_slots_stays_with_every_assignment(bpy, rig, short_wav, rig_slot):
    from anim_states import actions_state, anim_state

    if "slots" not in bpy.types.Action.bl_rna.properties:
        pytest.skip(f"Blender {bpy.app.version_string} has no action slots (they came in 4.4)")
    shared = rig.animation_data.action
    other = bpy.data.objects.new("Prop", None)
    bpy.context.scene.collection.objects.link(other)
    other_slot = shared.slots.new(id_type="OBJECT", name="Prop")
    other.animation_data_create().action = shared
    other.animation_data.action_slot = other_slot
    if rig_slot == "named-for-another-object":
        rig.animation_data.action_slot = shared.slots.new(id_type="OBJECT", name="Camera")
    elif rig_slot == "none":
        rig.animation_data.action_slot = None
    slots = [s.identifier for s in shared.slots]
    prop_state = anim_state(other)
    assert bpy.ops.gestura.generate(audio_path=str(short_wav), seed=1) == {"FINISHED"}
    assert rig.animation_data.action.name == "short_seed1"
    assert rig.animation_data.action_slot.identifier == "OBSMPLX"
    assert [s.identifier for s in shared.slots] == slots and anim_state(other) == prop_state
    assert ("take1", 1, False) in actions_state(bpy)  # Prop still uses it: no fake user needed


def test_a_linked_rig_is_refused_and_its_library_override_animated(bpy, gestura, rig, short_wav, tmp_path):
    from anim_states import link_from_library, select_only

    linked = link_from_library(bpy, rig, tmp_path)
    select_only(bpy, linked)
    _refused_unchanged(bpy, linked, r"^Error: 'SMPLX' is linked from 'SMPLX-library\.blend', so a new action on it "
                       r"would be lost", audio_path=str(short_wav))
    override = linked.override_create(remap_local_usages=True)
    override.override_library.is_system_override = True
    select_only(bpy, override)
    _refused_unchanged(bpy, override, r"^Error: 'SMPLX' is a non-editable library override",
                       audio_path=str(short_wav))
    override.override_library.is_system_override = False
    assert bpy.ops.gestura.generate(audio_path=str(short_wav), seed=2) == {"FINISHED"}
    assert override.animation_data.action.name == "short_seed2"
    assert linked.animation_data.action.name == "take1"


def test_the_rollback_skips_rigs_it_did_not_change_even_in_tweak_mode(bpy, gestura, rig, short_wav):
    from anim_states import actions_state, anim_state, enter_tweak_mode

    generate = _submodule(gestura, "blender.operators.generate")
    jobs = _submodule(gestura, "inference.batch")
    enter_tweak_mode(rig)
    rig.select_set(False)
    plan = generate.plan_generation(bpy.context, {"audio_path": str(short_wav), "new_armature": True})
    motion = generate.run_generation(plan)
    before, actions, anim = scene_state(bpy), actions_state(bpy), anim_state(rig)
    with pytest.raises(jobs.JobError):
        _submodule(gestura, "blender.generate_scene").apply_motion(
            bpy.context, motion, target_name=None, audio_path=plan.request.audio, start_frame=1,
            action_name="broken", parts=("upper", "tail"))
    assert scene_state(bpy) == before and actions_state(bpy) == actions and anim_state(rig) == anim


def test_a_negative_start_frame_is_refused(bpy, gestura, short_wav):
    before = scene_state(bpy)
    with pytest.raises(RuntimeError, match=r"^Error: Start frame -100 is negative, but a Blender scene cannot start "
                       r"before frame 0: use 0 or later$"):
        bpy.ops.gestura.generate(audio_path=str(short_wav), start_frame=-100)
    assert scene_state(bpy) == before
    assert bpy.ops.gestura.generate(audio_path=str(short_wav), start_frame=0) == {"FINISHED"}
    assert bpy.context.scene.frame_start == 0
    assert bpy.context.active_object.animation_data.action.frame_range[0] == 0


# ---------------------------------------------------------------- where the speech sits on the timeline

def _speech_part(speech_wav, folder, name, start_s=0.0, end_s=None, silence_s=0.0):
    """The speech file cut to [start_s, end_s) seconds with ``silence_s`` of silence in front, as
    a new wav: what a strip plays, made without Blender."""
    with wave.open(str(speech_wav)) as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, channels)
    first = round(start_s * rate)
    last = len(data) if end_s is None else min(len(data), round(end_s * rate))
    part = np.concatenate([np.zeros((round(silence_s * rate), channels), "<i2"), data[first:last]])
    path = folder / f"{name}.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(part.tobytes())
    return path


def _wav_samples(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0


def _mixdown(bpy, scene, strip, first, end, folder):
    """What Blender plays from frame ``first`` to before ``end``, mono at the sound's own rate."""
    import aud

    rate = int(aud.Sound(bpy.path.abspath(strip.sound.filepath)).specs[0])
    scene.frame_start, scene.frame_end = first, end - 1
    path = folder / "mixdown.wav"
    assert bpy.ops.sound.mixdown(filepath=str(path), container="WAV", codec="PCM", format="F32", mixrate=rate,
                                 channels="MONO") == {"FINISHED"}
    return np.asarray(aud.Sound(str(path)).data(), np.float32)[:, 0], rate


def _keys_of_new_rig(bpy, **kwargs):
    for obj in bpy.context.selected_objects:
        obj.select_set(False)
    # Temperature 0: Blender's sound of a trimmed strip and the cut file differ by resampling
    # rounding (under 2e-3); sampled codes can flip on such a difference, and a flipped code is
    # read by its whole span, so only the most likely codes compare (nearly) exactly.
    assert bpy.ops.gestura.generate(new_armature=True, seed=7, temperature=0.0, **kwargs) == {"FINISHED"}
    obj = bpy.context.active_object
    return obj.animation_data.action.frame_range[0], keys(obj)


# Each variant: the strip's settings, the scene's rate, and what Blender plays (checked against
# a scene mixdown when this was written): from which frame, and which part of the file.
STRIP_VARIANTS = {
    "plain": (dict(), (25, 1), 11, dict()),
    "trimmed-left-10": (dict(frame_offset_start=10), (25, 1), 21, dict(start_s=0.4)),
    "trimmed-right-25": (dict(frame_offset_end=25), (25, 1), 11, dict()),
    "sound-offset-later": (dict(sound_offset=0.2), (25, 1), 11, dict(silence_s=0.2)),
    "sound-offset-earlier": (dict(sound_offset=-0.2), (25, 1), 11, dict(start_s=0.2)),
    "animation-offset-5": (dict(animation_offset_start=5), (25, 1), 11, dict(start_s=0.2)),
    "trimmed-left-and-offset": (dict(frame_offset_start=5, animation_offset_start=5), (25, 1), 16, dict(start_s=0.4)),
    "in-a-meta-trimmed-10-and-10": (dict(meta_trim=(10, 10)), (25, 1), 21, dict(start_s=0.4)),
    "fps-base-2": (dict(frame_offset_start=10), (50, 2), 21, dict(start_s=0.4)),
    "24-fps": (dict(frame_offset_start=12), (24, 1), 23, dict(start_s=0.5)),
}


@pytest.mark.parametrize("variant", list(STRIP_VARIANTS))
def test_motion_from_a_sound_strip_lines_up_with_what_blender_plays(bpy, gestura, speech_wav, tmp_path, variant):
    settings, (fps, fps_base), first_frame, part = STRIP_VARIANTS[variant]
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, fps_base
    scene.frame_start = 50  # the scene's own range plays no part
    strip = _new_sound_strip(bpy, "Dialogue", speech_wav, channel=2, frame=11)
    for name, value in settings.items():
        if name == "meta_trim":
            editor = scene.sequence_editor
            meta = (editor.strips if hasattr(editor, "strips") else editor.sequences).new_meta("Scene", 1, 11)
            strip.move_to_meta(meta)
            meta.frame_offset_start, meta.frame_offset_end = value
            strip = meta.strips["Dialogue"]
            continue
        if name not in strip.bl_rna.properties:
            pytest.skip(f"sound strips of Blender {bpy.app.version_string} have no '{name}'")
        setattr(strip, name, value)
    heard = strip.parent_meta() or strip  # a meta strip's trims silence what they hide
    first = max(strip.frame_final_start, heard.frame_final_start)
    end = min(strip.frame_final_end, heard.frame_final_end)
    assert first == first_frame
    # The sound stops at the strip's right edge.
    part["end_s"] = part.get("start_s", 0.0) - part.get("silence_s", 0.0) + (end - first) * fps_base / fps
    start, from_strip = _keys_of_new_rig(bpy, sound_strip="Dialogue")
    assert start == first_frame and scene.frame_start == first_frame
    assert [s.name for s in sound_strips(scene)] == ["Dialogue"]

    reference = _speech_part(speech_wav, tmp_path, "played", **part)
    # The table is right: Blender's own mixdown of the strip's frames is the reference sound.
    played, rate = _mixdown(bpy, scene, strip, first, end, tmp_path)
    expected = _wav_samples(reference)
    # The mixdown runs a fraction of a frame past the last frame: only the strip's frames count.
    visible = round((end - first) * rate * fps_base / fps)
    played = played[:visible]
    assert len(played) == visible and len(expected) <= visible
    np.testing.assert_allclose(played[:len(expected)], expected, atol=2e-3)
    assert np.abs(played[len(expected):]).max(initial=0.0) < 1e-4  # where the file has ended, silence
    start, from_file = _keys_of_new_rig(bpy, audio_path=str(reference), start_frame=first_frame)
    assert start == first_frame and from_strip.keys() == from_file.keys()
    # Even the most likely code or a planned stroke can flip on that rounding where two choices
    # are near-equal, and that changes the rest of its window (the previous span's 4-code tail
    # and a 16-code span: 80 frames, 2.67 s; one window in the 24-fps variant with the bundled
    # model of format 3). Misaligned motion would differ everywhere: the keys must agree on all
    # but at most one window's worth of frames (plus the key it ends on).
    span_keys = int(np.ceil(80 / 30 * fps / fps_base)) + 1
    differ = set()
    for channel, values in from_strip.items():
        values, other = np.asarray(values), np.asarray(from_file[channel])
        np.testing.assert_array_equal(values[:, 0], other[:, 0], err_msg=str(channel))
        differ |= set(values[np.abs(values[:, 1] - other[:, 1]) > 1e-4, 0].tolist())
    assert len(differ) <= span_keys, sorted(differ)


def test_sound_strips_the_motion_cannot_follow_are_refused_and_change_nothing(bpy, gestura, speech_wav):
    scene = bpy.context.scene
    scene.render.fps = 25
    strip = _new_sound_strip(bpy, "Dialogue", speech_wav, channel=2, frame=11)
    before = scene_state(bpy)
    with pytest.raises(RuntimeError, match=r"^Error: Start frame 5 does not line up with sound strip 'Dialogue', "
                       r"which plays from frame 11: leave Start Frame unset, or move the strip$"):
        bpy.ops.gestura.generate(sound_strip="Dialogue", start_frame=5)
    assert scene_state(bpy) == before
    strip.frame_start = -20
    before = scene_state(bpy)
    with pytest.raises(RuntimeError, match=r"^Error: Sound strip 'Dialogue' starts at frame -20, but a scene cannot "
                       r"start before frame 0: move the strip to frame 0 or later, then generate again$"):
        bpy.ops.gestura.generate(sound_strip="Dialogue")
    assert scene_state(bpy) == before
    strip.frame_start = 11
    strip.sound_offset = 60.0  # the sound would start a minute after the strip's end
    before = scene_state(bpy)
    with pytest.raises(RuntimeError, match=r"^Error: Sound strip 'Dialogue' plays none of its sound between its edges"):
        bpy.ops.gestura.generate(sound_strip="Dialogue")
    assert scene_state(bpy) == before


def test_a_start_frame_too_late_for_the_scene_range_is_refused_and_rolled_back(bpy, gestura, short_wav):
    before = scene_state(bpy)
    with pytest.raises(RuntimeError, match=r"^Error: The motion would end at frame \d+, after Blender's last frame "
                       r"1048574: use an earlier start frame$"):
        bpy.ops.gestura.generate(audio_path=str(short_wav), start_frame=1048570)
    assert scene_state(bpy) == before


def test_a_rig_put_in_tweak_mode_while_generating_is_refused_when_applying(bpy, gestura, rig, short_wav):
    from anim_states import actions_state, anim_state, enter_tweak_mode

    generate = _submodule(gestura, "blender.operators.generate")
    plan = generate.plan_generation(bpy.context, {"audio_path": str(short_wav)})
    motion = generate.run_generation(plan)
    enter_tweak_mode(rig)  # in the UI the scene stays editable while the model runs
    before, actions, anim = scene_state(bpy), actions_state(bpy), anim_state(rig)
    with pytest.raises(ValueError, match=r"^'SMPLX' is in NLA tweak mode: press Tab in the NLA editor to leave it"):
        generate.apply_generation(bpy.context, plan, motion)
    assert scene_state(bpy) == before and actions_state(bpy) == actions and anim_state(rig) == anim


def test_a_trimmed_packed_strip_is_followed_and_leaves_no_temporary_file(bpy, gestura, speech_wav):
    import tempfile
    from pathlib import Path

    scene = bpy.context.scene
    scene.render.fps = 25
    strip = _new_sound_strip(bpy, "Packed", speech_wav, channel=1, frame=12)
    strip.sound.pack()
    strip.frame_offset_start = 10
    copies_before = set(Path(tempfile.gettempdir()).glob("gestura-strip-*"))
    assert bpy.ops.gestura.generate(sound_strip="Packed", seed=9) == {"FINISHED"}
    assert bpy.context.active_object.animation_data.action.frame_range[0] == 22
    # No copy of ours is left (other processes sharing the temp folder may come and go meanwhile).
    assert set(Path(tempfile.gettempdir()).glob("gestura-strip-*")) <= copies_before


def _silent_wav(path, seconds=2.0, rate=16000):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.zeros(int(seconds * rate), "<i2").tobytes())
    return path


def test_notices_reach_blenders_report_once_and_say_what_is_true(bpy, gestura, tmp_path, capfd):
    silent = _silent_wav(tmp_path / "silent.wav")
    capfd.readouterr()
    assert bpy.ops.gestura.generate(audio_path=str(silent), seed=1) == {"FINISHED"}
    # Blender prints reports with C stdio: flush its buffer, not only Python's.
    import ctypes

    sys.stdout.flush()
    ctypes.CDLL(None).fflush(None)
    out = capfd.readouterr().out
    # Blender prints an operator's reports in background mode: the warning is a report (status bar
    # and info log in the UI), said once, and no longer promises idle motion.
    expected = (f"Warning: Audio file '{silent}' is silent (peak below -80 dBFS): "
                "the motion will not follow any speech")
    assert [line for line in out.splitlines() if "silent" in line and "Warning" in line] == [expected], out


def test_the_modal_job_collects_its_notices_for_the_main_thread(bpy, gestura, tmp_path):
    generate = _submodule(gestura, "blender.operators.generate")
    job_module = _submodule(gestura, "blender.generation_job")
    silent = _silent_wav(tmp_path / "quiet.wav")
    plan = generate.plan_generation(bpy.context, {"audio_path": str(silent)})
    job = job_module.GenerationJob(lambda progress, cancel: generate.run_generation(plan, progress, cancel)).start()
    assert job.join(timeout=300)
    job.outcome()
    # Collected on the job's thread; the operator reports them when it writes the result.
    assert list(job.notices) == [f"Audio file '{silent}' is silent (peak below -80 dBFS): "
                                 "the motion will not follow any speech"]


def test_a_folder_or_an_empty_file_is_named_as_such_and_nothing_changes(bpy, gestura, tmp_path, speech_wav):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    before = scene_state(bpy)
    cases = [
        (dict(audio_path=str(tmp_path)), f"'{tmp_path}' is a folder, not an audio file"),
        (dict(audio_path=str(empty)), f"'{empty}' is empty"),
        (dict(audio_path=str(speech_wav), checkpoint=str(tmp_path)),
         f"'{tmp_path}' is a folder, not a checkpoint file"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(RuntimeError, match=re.escape(expected)):
            bpy.ops.gestura.generate(**kwargs)
        assert scene_state(bpy) == before, kwargs


def test_a_relative_audio_path_is_stored_so_the_saved_blend_finds_the_sound_from_anywhere(
        bpy, gestura, short_wav, tmp_path, monkeypatch):
    import shutil

    work = tmp_path / "x"
    (work / "clips").mkdir(parents=True)
    (work / "blends").mkdir()
    shutil.copy(short_wav, work / "clips" / "a.wav")
    monkeypatch.chdir(work)
    plan = _submodule(gestura, "blender.operators.generate").plan_generation(bpy.context, {"audio_path": "clips/a.wav"})
    assert str(plan.request.audio) == str(work / "clips" / "a.wav")
    assert bpy.ops.gestura.generate(audio_path="clips/a.wav") == {"FINISHED"}
    bpy.ops.wm.save_as_mainfile(filepath=str(work / "blends" / "a.blend"), check_existing=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    bpy.ops.wm.open_mainfile(filepath=str(work / "blends" / "a.blend"), load_ui=False)
    if _submodule(gestura, "blender.generate_scene").sound_supported():
        (strip,) = sound_strips(bpy.context.scene)
        assert os.path.samefile(bpy.path.abspath(strip.sound.filepath), work / "clips" / "a.wav")
