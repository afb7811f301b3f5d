"""Retargeting onto a real motion-capture skeleton no preset knows (Boxing_Toes.bvh, imported with
Blender's own BVH importer): the bone map is guessed from its names and hierarchy, shown in the
bone map list before anything is keyed, saved as a map file, and the motion follows the SMPL-X
bones in T-pose and A-pose rests, in one undo step."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from test_retarget_blender import TESTED_FRAMES, TOLERANCE_DEGREES, _measure, _sub, _world_heads, source  # noqa: F401

pytestmark = pytest.mark.blender

# CI checks shared/ out beside the clone (SOURCES.md there says where the file comes from);
# GESTURA_SHARED points elsewhere for checkouts that live deeper (git worktrees).
SHARED = Path(os.environ.get("GESTURA_SHARED") or Path(__file__).resolve().parents[2] / ".." / "shared")
BOXING = SHARED / "real-rigs" / "Boxing_Toes.bvh"
# The two-bone spine takes SMPL-X's three: its chord (Ab's head to the neck's) follows the source's
# (spine1's head to the neck's) to within this (measured on this clip, whose joints swing up to
# 0.5 rad on each axis: 2.2 degrees at worst over all 40 frames, where mapping only the chain's ends,
# spine1 -> Ab and spine3 -> Chest, is 3.5 off and spine2 -> Ab, spine3 -> Chest 9.4); every
# one-to-one bone within TOLERANCE_DEGREES.
CHAIN_TOLERANCE_DEGREES = 3.0
GUESSED = {
    "pelvis": "Hips", "spine3": "Ab, Chest", "neck": "Neck", "head": "Head",
    "left_collar": "LeftCollar", "left_shoulder": "LeftShoulder", "left_elbow": "LeftElbow", "left_wrist": "LeftWrist",
    "right_collar": "RightCollar", "right_shoulder": "RightShoulder", "right_elbow": "RightElbow",
    "right_wrist": "RightWrist", "left_hip": "LeftHip", "left_knee": "LeftKnee", "left_ankle": "LeftAnkle",
    "left_foot": "LeftToes", "right_hip": "RightHip", "right_knee": "RightKnee", "right_ankle": "RightAnkle",
    "right_foot": "RightToes",
}


def import_boxing(bpy):
    if not BOXING.is_file():
        pytest.skip(f"{BOXING} is absent: check out shared/ beside the repository to test on real skeletons")
    assert bpy.ops.import_anim.bvh(filepath=str(BOXING)) == {"FINISHED"}
    rig = bpy.context.active_object
    assert rig.type == "ARMATURE" and len(rig.data.bones) == 21
    return rig


def lower_arms(bpy, rig, degrees: float = 40.0) -> None:
    """Re-rest the rig in an A-pose: each upper arm and everything below it turned down about the
    forward axis at the shoulder joint."""
    from mathutils import Matrix, Vector

    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    bones = rig.data.edit_bones
    for side, sign in (("Left", 1.0), ("Right", -1.0)):
        upper = bones[f"{side}Shoulder"]
        pivot = Vector(upper.head)
        turn = Matrix.Translation(pivot) @ Matrix.Rotation(np.radians(sign * degrees), 4, "Y") @ Matrix.Translation(-pivot)
        for bone in [upper] + list(upper.children_recursive):
            bone.transform(turn)
    bpy.ops.object.mode_set(mode="OBJECT")


def _direction(heads, a: str, b: str) -> np.ndarray:
    v = heads[b] - heads[a]
    return v / np.linalg.norm(v)


def check_follows(bpy, source, rig) -> None:
    one_to_one = {s: t for s, t in GUESSED.items() if "," not in t}
    direction, turn = _measure(bpy, source, rig, one_to_one, np.eye(3))
    # Collars, upper arms, forearms, thighs, shins, feet and the neck aim at mapped bones (wrists at
    # fingers this rig lacks).
    assert len(direction) == 13, sorted(direction)
    assert max(direction.values()) < TOLERANCE_DEGREES, direction
    assert max(turn.values()) < TOLERANCE_DEGREES, turn
    # The spine chain: its end turns exactly like spine3, its chord follows the source's.
    _, chest_turn = _measure(bpy, source, rig, {"spine3": "Chest"}, np.eye(3))
    assert chest_turn["spine3"] < TOLERANCE_DEGREES, chest_turn
    scene = bpy.context.scene
    worst = 0.0
    for frame in TESTED_FRAMES:
        scene.frame_set(frame)
        s, t = _world_heads(source), _world_heads(rig)
        cos = np.dot(_direction(s, "spine1", "neck"), _direction(t, "Ab", "Neck"))
        worst = max(worst, float(np.degrees(np.arccos(np.clip(cos, -1, 1)))))
    assert worst < CHAIN_TOLERANCE_DEGREES, worst


def test_boxing_bvh_is_guessed_shown_saved_and_retargeted(bpy, extension, source, tmp_path):
    rig = import_boxing(bpy)
    glue = _sub(extension, "blender.rigs.retarget")
    guess = glue.guess_for(rig)
    assert guess.ok and guess.bone_map.bones == GUESSED, guess.bone_map.bones
    assert guess.unmapped == ["spine1", "spine2", "jaw", "left_eye_smplhf", "right_eye_smplhf"]

    # Shown in the bone map list before anything is keyed; unmapped joints as empty rows to fill in.
    boxing_action = rig.animation_data.action
    boxing_name = boxing_action.name
    actions_before = set(bpy.data.actions)
    bpy.context.view_layer.objects.active = rig
    assert bpy.ops.gestura.retarget_map_fill(preset="GUESS") == {"FINISHED"}
    rows = {p.source: p.target for p in rig.gestura_retarget.pairs}
    assert rows == {**GUESSED, **{j: "" for j in guess.unmapped}}
    assert rig.animation_data.action == boxing_action and set(bpy.data.actions) == actions_before
    # ... and saved as a map file, which reads back as the same map.
    path = tmp_path / "boxing.json"
    assert bpy.ops.gestura.retarget_map_save(filepath=str(path)) == {"FINISHED"}
    assert json.loads(path.read_text())["bones"] == GUESSED

    # Automatic falls back to the guess (the list is not used) and keys in one undo step.
    rig.gestura_retarget.preset = "AUTO"
    bpy.ops.ed.undo_push(message="before retargeting")
    assert bpy.ops.gestura.retarget("EXEC_DEFAULT", True, source=source.name, target=rig.name) == {"FINISHED"}
    action = rig.animation_data.action
    assert action.name == f"{rig.name}|speech" and action != boxing_action
    check_follows(bpy, source, rig)
    assert bpy.ops.ed.undo() == {"FINISHED"}
    rig = bpy.data.objects["Boxing_Toes"]
    assert rig.animation_data.action.name == boxing_name
    assert f"{rig.name}|speech" not in bpy.data.actions


def test_boxing_bvh_in_an_a_pose(bpy, extension, source):
    rig = import_boxing(bpy)
    lower_arms(bpy, rig)
    elbow = np.array(rig.data.bones["LeftElbow"].head_local) - np.array(rig.data.bones["LeftShoulder"].head_local)
    assert elbow[2] < -0.5 * np.linalg.norm(elbow)  # the arm now hangs 40 degrees down
    assert bpy.ops.gestura.retarget(source=source.name, target=rig.name, preset="AUTO") == {"FINISHED"}
    check_follows(bpy, source, rig)


def test_a_rig_that_is_no_body_is_still_refused(bpy, extension, source):
    data = bpy.data.armatures.new("Tail")
    rig = bpy.data.objects.new("Tail", data)
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    parent = None
    for k in range(3):
        bone = data.edit_bones.new(f"Bone{k}")
        bone.head, bone.tail = (0, 0, k), (0, 0, k + 1)
        bone.parent = parent
        parent = bone
    bpy.ops.object.mode_set(mode="OBJECT")
    actions_before = set(bpy.data.actions)
    with pytest.raises(RuntimeError, match="does not look like a Mixamo, Rigify or Unreal rig.*no left arm"):
        bpy.ops.gestura.retarget(source=source.name, target=rig.name)
    assert rig.animation_data is None and set(bpy.data.actions) == actions_before
