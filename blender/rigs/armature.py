"""The SMPL-X armature: building one, checking one, and reading its rest frames.

Bones are named after the SMPL-X joints and every bone's rest frame is the SMPL-X model frame
(head at the joint, tail straight up along +Y, no roll), so a joint's axis-angle rotation is the
pose bone's quaternion as it is. The armature data stays Y up like SMPL-X; the object gets one
+90 degree turn about X, which is the Y-up to Z-up change ((x, y, z) -> (x, -z, y)). The bones
stand on the object's origin (``standing_rest_joints``: the skeleton lifted by its rest pelvis
height), so SMPL-X ``trans`` keyed as the pelvis location puts the feet on the floor.

Armatures built differently (the SMPL-X Blender add-on's are Z up in armature space, other
rigs roll their bones) are handled by ``rig_frames``: each bone's rest frame expressed in SMPL-X
coordinates, which the keyframe writer uses to turn rotations into that bone's own frame.
"""
from __future__ import annotations

import math

import bpy
import numpy as np

from ...errors import GesturaError
from ...rigs.rest_skeleton import default_rest_joints, standing_rest_joints
from ...rigs.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS, children

# SMPL-X (Y up) coordinates to Blender (Z up): (x, y, z) -> (x, -z, y), a +90 degree turn about X.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


class RigError(GesturaError, ValueError):
    """The armature cannot take SMPL-X motion; the message lists what is wrong."""


def missing_smplx_bones(obj) -> list[str]:
    """SMPL-X joint names that ``obj`` has no bone for (all of them when it is no armature)."""
    if obj is None or obj.type != "ARMATURE":
        return list(JOINT_NAMES)
    bones = obj.data.bones
    return [name for name in JOINT_NAMES if name not in bones]


def require_smplx_bones(obj) -> None:
    """Raise RigError naming the missing bones, before anything is changed."""
    if obj is None:
        raise RigError("no armature selected: select an SMPL-X armature or create one with Create SMPL-X Rig")
    if obj.type != "ARMATURE":
        raise RigError(f"'{obj.name}' is a {obj.type.lower()}, not an armature: select an SMPL-X armature")
    missing = missing_smplx_bones(obj)
    if missing:
        shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
        raise RigError(
            f"armature '{obj.name}' is missing {len(missing)} SMPL-X bone(s): {shown}. Use an SMPL-X rig "
            "(Create SMPL-X Rig, or one from the SMPL-X Blender add-on), or retarget onto this one"
        )


def _bone_length(joint: int, rest: np.ndarray) -> float:
    """Display length only (bones point up whatever their child's direction): short enough that
    fingers and the face stay readable."""
    kids = children(joint)
    if kids:
        reach = min(float(np.linalg.norm(rest[c] - rest[joint])) for c in kids)
    else:
        reach = float(np.linalg.norm(rest[joint] - rest[PARENTS[joint]]))
    return float(np.clip(0.5 * reach, 0.012, 0.1))


def create_smplx_armature(context, name: str = "SMPLX", rest_joints=None, mannequin: bool = True):
    """A new SMPL-X armature object (and, by default, its mannequin body) in the active collection.

    ``rest_joints`` (55, 3) in the SMPL-X frame; None = the built-in adult skeleton. The bones are
    built that much higher that the floor under the rest feet is the object's origin (the rest
    pelvis height, ``standing_rest_joints``); x and z stay as given.
    """
    rest = default_rest_joints() if rest_joints is None else np.asarray(rest_joints, np.float64)
    if rest.shape != (NUM_JOINTS, 3) or not np.isfinite(rest).all():
        raise RigError(f"rest joints must be {NUM_JOINTS} finite 3D points, got shape {rest.shape}")
    rest = standing_rest_joints(rest)
    if context.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")

    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    collection = context.collection or context.scene.collection
    collection.objects.link(obj)
    obj.rotation_mode = "XYZ"
    obj.rotation_euler = (math.pi / 2, 0.0, 0.0)
    data.display_type = "OCTAHEDRAL"
    obj.show_in_front = True

    # Like Blender's own Add menu: the new rig ends up the only selected, active object.
    for other in context.selected_objects:
        other.select_set(False)
    context.view_layer.objects.active = obj
    obj.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        edit_bones = data.edit_bones
        for joint, joint_name in enumerate(JOINT_NAMES):
            bone = edit_bones.new(joint_name)
            head = rest[joint]
            bone.head = head
            bone.tail = head + np.array([0.0, _bone_length(joint, rest), 0.0])
            bone.roll = 0.0
            bone.use_deform = True
            if PARENTS[joint] >= 0:
                bone.parent = edit_bones[JOINT_NAMES[PARENTS[joint]]]
                bone.use_connect = False
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"

    if mannequin:
        from .mannequin import add_mannequin

        add_mannequin(context, obj, rest)
    context.view_layer.update()  # world matrices of the new objects, before anyone reads them
    return obj


def rig_frames(obj) -> tuple[np.ndarray, np.ndarray]:
    """(model, bone_frames) of an SMPL-X armature.

    ``model`` (3, 3) maps SMPL-X coordinates to armature space: identity for Gestura's rigs
    (Y-up armature data, turned at object level), Y_UP_TO_Z_UP for rigs whose armature space is
    Z up like the SMPL-X add-on's; told apart by where the head is above the pelvis.
    ``bone_frames`` (55, 3, 3): each bone's rest frame in SMPL-X coordinates (identity when the
    rig follows the SMPL-X convention).
    """
    bones = obj.data.bones
    head = np.array(bones["head"].head_local) - np.array(bones["pelvis"].head_local)
    model = Y_UP_TO_Z_UP if abs(head[2]) > abs(head[1]) else np.eye(3)
    frames = np.empty((NUM_JOINTS, 3, 3))
    for joint, name in enumerate(JOINT_NAMES):
        rest = np.array(bones[name].matrix_local.to_3x3())
        # Bones may carry scale in rare rigs; only their rotation matters for poses.
        rest = rest / np.linalg.norm(rest, axis=0, keepdims=True)
        frames[joint] = model.T @ rest
    return model, frames


def armature_rest_joints(obj) -> np.ndarray:
    """(55, 3) bone head positions of ``obj`` at rest, in SMPL-X coordinates."""
    model, _ = rig_frames(obj)
    heads = np.array([obj.data.bones[name].head_local for name in JOINT_NAMES])
    return heads @ model  # model.T @ h for each row
