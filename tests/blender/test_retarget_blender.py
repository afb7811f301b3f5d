"""Retargeting in Blender, through the installed extension: an SMPL-X armature with a clip onto
rigs built here that differ from it in rest pose (A-pose), bone rolls, local axes, scale, facing
and rotation modes - a Mixamo-named rig and a Rigify-named one - plus refusals and the bone map
list."""
from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from test_retarget import FINGERS, BoneSpec, a_pose, aim_joint, rotation_about, target_specs

pytestmark = pytest.mark.blender

TOLERANCE_DEGREES = 2.0
TESTED_FRAMES = (1, 9, 23, 40)


def _sub(extension, name: str):
    """A submodule of the installed extension (``blender.rigs`` ...)."""
    return importlib.import_module(f"{extension.__name__}.{name}")


def _smplx_clip(ext, frames: int = 40, seed: int = 0):
    """A procedural SMPL-X clip: every joint swings on its own sine waves, the root wanders."""
    Motion = _sub(ext, "rigs.motion").Motion
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None] / 30.0
    amplitude = rng.uniform(0.1, 0.5, size=(1, 55, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(1, 55, 3))
    speed = rng.uniform(0.5, 2.0, size=(1, 55, 3))
    poses = amplitude * np.sin(2 * np.pi * speed * t + phase)
    trans = np.stack([0.1 * np.sin(t[:, 0, 0] * 2), 0.05 * np.sin(t[:, 0, 0] * 3), 0.2 * t[:, 0, 0]], axis=-1)
    return Motion(poses=poses, trans=trans, expressions=np.zeros((frames, 100)), fps=30.0)


@pytest.fixture
def source(bpy, extension, empty_scene):
    empty_scene.render.fps = 30
    empty_scene.render.fps_base = 1.0
    obj = _sub(extension, "blender.rigs").create_smplx_armature(bpy.context, "SMPLX", mannequin=False)
    _sub(extension, "blender.rigs").write_motion(obj, _smplx_clip(extension), "speech", start_frame=1, expressions=False)
    return obj


def _world_heads(obj) -> dict[str, np.ndarray]:
    m = np.array(obj.matrix_world)
    return {b.name: (m @ np.append(np.array(b.head), 1.0))[:3] for b in obj.pose.bones}


def _world_rotations(obj) -> dict[str, np.ndarray]:
    m = np.array(obj.matrix_world)[:3, :3]
    m = m / np.linalg.norm(m, axis=0)
    return {b.name: m @ np.array(b.matrix)[:3, :3] for b in obj.pose.bones}


def build_rig(bpy, name: str, specs: list[BoneSpec], matrix_world: np.ndarray, modes: dict[str, str] | None = None):
    """An armature object from bone specs (head, tail, roll from the Z-axis hint), unposed."""
    from mathutils import Matrix

    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for spec in specs:
        bone = data.edit_bones.new(spec.name)
        bone.head = spec.head
        bone.tail = spec.tail
        bone.align_roll(spec.z_axis)
    for spec in specs:
        if spec.parent:
            data.edit_bones[spec.name].parent = data.edit_bones[spec.parent]
    bpy.ops.object.mode_set(mode="OBJECT")
    obj.matrix_world = Matrix(matrix_world.tolist())
    for bone, mode in (modes or {}).items():
        obj.pose.bones[bone].rotation_mode = mode
    return obj


def _object_matrix(scale: float, turn_degrees: float = 0.0, offset=(0.0, 0.0, 0.0)) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation_about((0, 0, 1), np.radians(turn_degrees)) * scale
    m[:3, 3] = offset
    return m


def _source_joints_world(source) -> np.ndarray:
    from gestura.rigs.skeleton import JOINT_NAMES

    heads = _world_heads(source)
    return np.array([heads[n] for n in JOINT_NAMES])


def _rig_names(extension, preset: str) -> dict[str, str]:
    return {s: t for s, t in _sub(extension, "rigs.bonemaps").presets()[preset].bones.items()}


def _measure(bpy, source, target, names: dict[str, str], facing: np.ndarray, frames=TESTED_FRAMES):
    """Worst angle (degrees) per mapped joint over the tested frames: segment directions (joint to
    aim joint) and, for every bone, its world rotation between frames."""
    scene = bpy.context.scene
    direction, turn = {}, {}
    samples = []
    for frame in frames:
        scene.frame_set(frame)
        samples.append((_world_heads(source), _world_heads(target), _world_rotations(source), _world_rotations(target)))
    for s, t in names.items():
        aim = aim_joint(s)
        worst_dir, worst_turn = 0.0, 0.0
        for sh, th, sr, tr in samples:
            if aim is not None and aim in names and np.linalg.norm(samples[0][1][names[aim]] - samples[0][1][t]) > 1e-6:
                a = facing @ (sh[aim] - sh[s])
                b = th[names[aim]] - th[t]
                cos = np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)
                worst_dir = max(worst_dir, float(np.degrees(np.arccos(np.clip(cos, -1, 1)))))
            # Relative to the first tested frame, both bones turn alike in world space.
            d_s = facing @ sr[s] @ samples[0][2][s].T @ facing.T
            d_t = tr[t] @ samples[0][3][t].T
            cos = (np.trace(d_s.T @ d_t) - 1) / 2
            worst_turn = max(worst_turn, float(np.degrees(np.arccos(np.clip(cos, -1, 1)))))
        if aim is not None and aim in names and np.linalg.norm(samples[0][1][names[aim]] - samples[0][1][t]) > 1e-6:
            direction[s] = worst_dir
        turn[s] = worst_turn
    return direction, turn


def _curves(extension, target):
    fcurves = _sub(extension, "blender.rigs.actions").object_fcurves(target)
    return {(c.data_path, c.array_index) for c in fcurves}


def test_mixamo_rig_in_a_pose_rolled_scaled_and_turned(bpy, extension, source):
    joints = _source_joints_world(source)
    names = _rig_names(extension, "mixamo")
    # An A-pose character 1.2x the source's size, modelled in centimetres under a 0.01 object
    # scale (as FBX imports are), facing +X instead of -Y, with random rolls and bone axes.
    specs = target_specs(a_pose(joints) / 0.01, names, seed=11, scale=1.2)
    target = build_rig(bpy, "MixamoGuy", specs, _object_matrix(0.01, 90.0, (2.0, 1.0, 0.0)),
                       modes={"mixamorig:LeftShoulder": "YXZ", "mixamorig:RightForeArm": "ZXY",
                              "mixamorig:Neck": "AXIS_ANGLE", "mixamorig:LeftLeg": "XYZ"})
    before = {b.name: np.array(b.matrix_basis) for b in target.pose.bones}
    actions_before = set(bpy.data.actions)

    result = bpy.ops.gestura.retarget(source=source.name, target=target.name, preset="AUTO")
    assert result == {"FINISHED"}
    action = target.animation_data.action
    assert action is not None and action not in actions_before and action.name == "MixamoGuy|speech"
    assert source.animation_data.action.name == "speech"  # the source keeps its clip

    facing = rotation_about((0, 0, 1), np.radians(90.0))
    direction, turn = _measure(bpy, source, target, names, facing)
    assert len(direction) == 39 and len(turn) == len(names)
    assert max(direction.values()) < TOLERANCE_DEGREES, direction
    assert max(turn.values()) < TOLERANCE_DEGREES, turn

    # Root motion: the hips move like the pelvis, turned to the target's facing, scaled by legs (1.2).
    scene = bpy.context.scene
    track = []
    for frame in (1, 40):
        scene.frame_set(frame)
        track.append((_world_heads(source)["pelvis"], _world_heads(target)["mixamorig:Hips"]))
    moved_source = track[1][0] - track[0][0]
    moved_target = track[1][1] - track[0][1]
    assert np.linalg.norm(moved_source) > 0.1
    np.testing.assert_allclose(moved_target, 1.2 * facing @ moved_source, atol=1e-3)

    # Unmapped helper bones are untouched: no curves, same local pose.
    curves = _curves(extension, target)
    for helper in ("root", "mixamorig:LeftArmTwist", "HeadTop_End"):
        assert not [c for c in curves if f'"{helper}"' in c[0]]
        np.testing.assert_allclose(np.array(target.pose.bones[helper].matrix_basis), before[helper])
    # Bones keyed in their own rotation modes.
    assert ('pose.bones["mixamorig:LeftShoulder"].rotation_euler', 2) in curves
    assert ('pose.bones["mixamorig:Neck"].rotation_axis_angle', 3) in curves
    assert ('pose.bones["mixamorig:Hips"].rotation_quaternion', 0) in curves
    assert ('pose.bones["mixamorig:Hips"].location', 2) in curves


def test_rigify_deform_rig_with_twist_bones(bpy, extension, source):
    joints = _source_joints_world(source)
    names = _rig_names(extension, "rigify_deform")
    specs = target_specs(a_pose(joints, 30.0), names, seed=12, scale=0.8)
    # Rigify splits the neck: an unmapped bone between neck and head.
    for spec in specs:
        if spec.name == "DEF-spine.006":
            spec.parent = "DEF-spine.005"
    neck = next(s for s in specs if s.name == "DEF-spine.004")
    head = next(s for s in specs if s.name == "DEF-spine.006")
    mid = 0.5 * (neck.head + head.head)
    specs.append(BoneSpec("DEF-spine.005", "DEF-spine.004", mid, head.head, np.array([0.0, -1.0, 0.0])))
    target = build_rig(bpy, "RigifyGuy", specs, _object_matrix(1.0, 0.0, (-1.5, 0.0, 0.0)),
                       modes={"DEF-shoulder.L": "YXZ", "DEF-hand.R": "ZXY"})

    result = bpy.ops.gestura.retarget(source=source.name, target=target.name)
    assert result == {"FINISHED"}
    direction, turn = _measure(bpy, source, target, names, np.eye(3))
    assert max(direction.values()) < TOLERANCE_DEGREES, direction
    assert max(turn.values()) < TOLERANCE_DEGREES, turn
    curves = _curves(extension, target)
    assert not [c for c in curves if '"DEF-spine.005"' in c[0] or '"root"' in c[0]]


def test_target_missing_required_bones_is_refused_and_left_unchanged(bpy, extension, source):
    joints = _source_joints_world(source)
    names = {s: t for s, t in _rig_names(extension, "mixamo").items() if s not in ("left_elbow", "right_knee")}
    target = build_rig(bpy, "Broken", target_specs(joints, names, seed=13), _object_matrix(1.0))
    actions_before = set(bpy.data.actions)
    with pytest.raises(RuntimeError, match="mixamorig:LeftForeArm, mixamorig:RightLeg"):
        bpy.ops.gestura.retarget(source=source.name, target=target.name, preset="mixamo")
    assert target.animation_data is None
    assert set(bpy.data.actions) == actions_before
    # Automatic detection does not mistake it for a Mixamo rig either.
    with pytest.raises(RuntimeError, match="does not look like"):
        bpy.ops.gestura.retarget(source=source.name, target=target.name)
    assert target.animation_data is None


def test_a_target_that_cannot_take_a_new_action_is_refused_and_left_unchanged(bpy, extension, source):
    from anim_states import actions_state, add_driver, anim_state, enter_tweak_mode

    joints = _source_joints_world(source)
    names = _rig_names(extension, "mixamo")
    target = build_rig(bpy, "Hero", target_specs(joints, names, seed=21), _object_matrix(1.0))
    assert bpy.ops.gestura.retarget(source=source.name, target=target.name, preset="mixamo") == {"FINISHED"}
    enter_tweak_mode(target)
    actions, anim = actions_state(bpy), anim_state(target)
    with pytest.raises(RuntimeError, match=r"^Error: 'Hero' is in NLA tweak mode: press Tab in the NLA editor to "
                       r"leave it, then try again$"):
        bpy.ops.gestura.retarget(source=source.name, target=target.name, preset="mixamo")
    assert actions_state(bpy) == actions and anim_state(target) == anim

    target.animation_data.use_tweak_mode = False
    elbow = names["left_elbow"]
    path = f'pose.bones["{elbow}"].{_rotation_path(target.pose.bones[elbow].rotation_mode)}'
    add_driver(target, path, 0)
    actions, anim = actions_state(bpy), anim_state(target)
    with pytest.raises(RuntimeError, match=r"^Error: 'Hero' has a driver on pose\.bones\[\"mixamorig:LeftForeArm\"\]"
                       r"\.rotation_\w+, which would override the new keys"):
        bpy.ops.gestura.retarget(source=source.name, target=target.name, preset="mixamo")
    assert actions_state(bpy) == actions and anim_state(target) == anim


def _rotation_path(mode: str) -> str:
    return {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}.get(mode, "rotation_euler")


def test_fingers_off_leaves_fingers_unkeyed(bpy, extension, source):
    joints = _source_joints_world(source)
    names = _rig_names(extension, "unreal_mannequin")
    target = build_rig(bpy, "UE4", target_specs(joints * 100, names, seed=14), _object_matrix(0.01))
    assert bpy.ops.gestura.retarget(source=source.name, target=target.name, fingers=False, root_motion=False) == {"FINISHED"}
    curves = _curves(extension, target)
    assert not [c for c in curves if "index_01_l" in c[0] or "thumb_02_r" in c[0]]
    assert not [c for c in curves if c[0].endswith(".location")]
    body = {s: t for s, t in names.items() if not any(f in s for f in FINGERS)}
    direction, _ = _measure(bpy, source, target, body, np.eye(3))
    assert max(direction.values()) < TOLERANCE_DEGREES, direction

    # What was left out is reported by name.
    glue = _sub(extension, "blender.rigs.retarget")
    ue4 = _sub(extension, "rigs.bonemaps").presets()["unreal_mannequin"]
    with_fingers = {s: t for s, t in names.items() if s not in ("left_foot", "right_index3")}
    sparse = build_rig(bpy, "UE4Sparse", target_specs(joints, with_fingers, seed=17), _object_matrix(1.0))
    report = glue.retarget_armature(source, sparse, ue4)
    assert sorted(report.missing_optional) == ["ball_l", "index_03_r"]
    assert {"jaw", "left_eye_smplhf", "left_foot", "right_index3"} <= set(report.unmapped_source)
    assert {"root", "upperarm_lTwist", "upperarm_rTwist", "HeadTop_End"} == set(report.unmapped_target)
    summary = report.summary()
    assert "ball_l" in summary and "jaw" in summary and "HeadTop_End" in summary


def test_custom_bone_map_list_fill_edit_save_load(bpy, extension, source, tmp_path):
    joints = _source_joints_world(source)
    # A home-made rig with names no preset knows: body only, some joints left out.
    body = ("pelvis", "spine1", "spine2", "spine3", "neck", "head", "left_hip", "left_knee", "left_ankle",
            "right_hip", "right_knee", "right_ankle", "left_shoulder", "left_elbow", "left_wrist",
            "right_shoulder", "right_elbow", "right_wrist")
    names = {s: f"my_{s}" for s in body}
    target = build_rig(bpy, "Custom", target_specs(a_pose(joints), names, seed=15, helpers=False), _object_matrix(1.0))
    bpy.context.view_layer.objects.active = target
    target.gestura_retarget.source = source

    assert bpy.ops.gestura.retarget_map_fill(preset="EMPTY") == {"FINISHED"}
    pairs = target.gestura_retarget.pairs
    assert len(pairs) == 55 and target.gestura_retarget.preset == "CUSTOM"
    for pair in pairs:
        pair.target = names.get(pair.source, "")
    path = tmp_path / "custom_map.json"
    assert bpy.ops.gestura.retarget_map_save(filepath=str(path)) == {"FINISHED"}
    saved = json.loads(path.read_text())
    assert saved["bones"] == names
    with pytest.raises(RuntimeError, match="already exists"):
        bpy.ops.gestura.retarget_map_save(filepath=str(path))

    pairs.clear()
    assert bpy.ops.gestura.retarget_map_load(filepath=str(path)) == {"FINISHED"}
    assert {p.source: p.target for p in pairs} == names

    # The panel's settings drive the operator: source from the list's armature, Custom map.
    assert bpy.ops.gestura.retarget() == {"FINISHED"}
    direction, turn = _measure(bpy, source, target, names, np.eye(3))
    assert max(direction.values()) < TOLERANCE_DEGREES, direction
    assert max(turn.values()) < TOLERANCE_DEGREES, turn

    # A list naming a bone the rig lacks is refused with that name.
    pairs[0].target = "no_such_bone"
    with pytest.raises(RuntimeError, match="no_such_bone"):
        bpy.ops.gestura.retarget()


def test_generated_rigify_rig_by_its_fk_controls(bpy, extension, source):
    """A real Rigify rig (generated here from Rigify's human metarig, face left out): its FK controls
    sit under constraint-driven bones, which the retargeting corrects for by evaluating the rig.
    The deform bones then point where the SMPL-X bones point."""
    import addon_utils

    was_enabled = addon_utils.check("rigify")[1]
    addon_utils.enable("rigify", default_set=True)
    try:
        bpy.ops.object.armature_human_metarig_add()
        metarig = bpy.context.active_object
        metarig.location = (1.5, 0.0, 0.0)
        bpy.ops.object.mode_set(mode="EDIT")
        edit_bones = metarig.data.edit_bones
        for bone in [b for b in edit_bones if b.name == "face" or any(p.name == "face" for p in b.parent_recursive)]:
            edit_bones.remove(bone)
        bpy.ops.object.mode_set(mode="OBJECT")
        assert bpy.ops.pose.rigify_generate() == {"FINISHED"}
        rig = next(o for o in bpy.data.objects if o.type == "ARMATURE" and o not in (source, metarig))
        bpy.context.view_layer.objects.active = rig

        glue = _sub(extension, "blender.rigs.retarget")
        assert glue.choose_bone_map(rig).preset == "rigify_fk"
        assert bpy.ops.gestura.retarget(source=source.name, target=rig.name) == {"FINISHED"}
        curves = _curves(extension, rig)
        assert ('pose.bones["upper_arm_parent.L"]["IK_FK"]', 0) in curves  # arms switched to FK
        assert ('pose.bones["torso"].location', 0) in curves  # the torso carries the root motion

        presets = _sub(extension, "rigs.bonemaps").presets()
        deform = {s: t for s, t in presets["rigify_deform"].bones.items() if s != "jaw"}
        direction, _ = _measure(bpy, source, rig, deform, np.eye(3))
        assert len(direction) == 39 and max(direction.values()) < TOLERANCE_DEGREES, direction
        controls = {s: t for s, t in presets["rigify_fk"].bones.items() if s != "jaw"}
        _, turn = _measure(bpy, source, rig, controls, np.eye(3))
        assert max(turn.values()) < TOLERANCE_DEGREES, turn
    finally:
        if not was_enabled:
            addon_utils.disable("rigify", default_set=True)


def test_generated_clip_onto_a_mixamo_rig(bpy, extension, empty_scene, speech_wav, tmp_path):
    """A clip the real pipeline generated from espeak speech (a tiny random model, NumPy engine,
    so it runs on Blender 4.2 without torch) retargets like the procedural one."""
    from random_checkpoint import write_random_checkpoint

    checkpoint = write_random_checkpoint(tmp_path / "tiny.safetensors")
    pipeline = _sub(extension, "inference.pipeline")
    request = pipeline.GenerationRequest(audio=str(speech_wav), style="alice", seed=3, temperature=0.7)
    motion = pipeline.generate(request, checkpoint=str(checkpoint), engine="numpy")
    assert motion.num_frames > 100
    empty_scene.render.fps, empty_scene.render.fps_base = 30, 1.0
    rig = _sub(extension, "blender.rigs")
    source = rig.create_smplx_armature(bpy.context, "Speaker", mannequin=False)
    rig.write_motion(source, motion, "Speaker_gestures", expressions=False)

    names = _rig_names(extension, "mixamo")
    target = build_rig(bpy, "MixamoGuy", target_specs(a_pose(_source_joints_world(source)) / 0.01, names, seed=16),
                       _object_matrix(0.01))
    assert bpy.ops.gestura.retarget(source=source.name, target=target.name) == {"FINISHED"}
    last = motion.num_frames
    frames = (1, last // 3, 2 * last // 3, last)
    direction, turn = _measure(bpy, source, target, names, np.eye(3), frames)
    assert len(direction) == 39 and max(direction.values()) < TOLERANCE_DEGREES, direction
    assert max(turn.values()) < TOLERANCE_DEGREES, turn


def test_a_clip_stood_on_the_floor_retargets_onto_a_standing_character_standing(bpy, extension, empty_scene, tmp_path):
    """Import's Feet on Floor lifts a clip whose own floor lies elsewhere; a character standing on
    its floor (feet at its origin, as rigs are modelled) then stands on it too."""
    from gestura.rigs.skeleton import FOOT_JOINTS, JOINT_NAMES

    empty_scene.render.fps, empty_scene.render.fps_base = 30, 1.0
    clip = _smplx_clip(extension)
    clip.trans[:, 1] += 0.3
    path = _sub(extension, "rigs.motion_io").save_npz(clip, tmp_path / "2_scott_0_3_3.npz")
    bpy.ops.object.select_all(action="DESELECT")
    assert bpy.ops.gestura.import_motion(filepath=str(path), new_armature=True) == {"FINISHED"}
    source = bpy.context.active_object

    y_up_to_z_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    standing = _sub(extension, "rigs.rest_skeleton").standing_rest_joints() @ y_up_to_z_up.T
    names = _rig_names(extension, "mixamo")
    target = build_rig(bpy, "MixamoGuy", target_specs(a_pose(standing) / 0.01, names, seed=5), _object_matrix(0.01))
    assert bpy.ops.gestura.retarget(source=source.name, target=target.name) == {"FINISHED"}
    feet = [JOINT_NAMES[j] for j in FOOT_JOINTS]
    for frame in (1, 20, 40):
        bpy.context.scene.frame_set(frame)
        source_heads, target_heads = _world_heads(source), _world_heads(target)
        source_feet = min(source_heads[f][2] for f in feet)
        target_feet = min(target_heads[names[f]][2] for f in feet)
        # Before: the source rig's rest stood 0.975 m low, so the lift reached the hips as root motion.
        assert target_feet == pytest.approx(source_feet, abs=0.02), frame
