"""Retarget an SMPL-X armature's action onto another armature (Blender glue).

Reads both rigs' rest frames and the source action's keyed channels, hands them to the bpy-free
math in ``rigs.retarget``, and keys the result into a NEW action on the target with the bulk
F-curve writer of ``rigs.blender.actions`` (Blender 4.2 and 5.0 action APIs alike). The source's
channels are read as keyed, in whatever rotation mode each bone uses, so any SMPL-X armature
convention (Gestura's, the SMPL-X add-on's) retargets the same way. Nothing is changed until
every check has passed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..bonemaps import BoneMap, detect_preset, resolve
from ..retarget import (
    RetargetError,
    Skeleton,
    euler_to_matrix,
    pose_matrices,
    retarget,
    rotation_channels,
)
from ..rotations import axis_angle_to_matrix, quaternion_to_matrix
from ..skeleton import JOINT_NAMES
from .actions import fcurve_samples, fill_fcurve, new_fcurve, new_object_action, object_fcurves, writable_fcurves

_CHANNELS = {"QUATERNION": ("rotation_quaternion", 4), "AXIS_ANGLE": ("rotation_axis_angle", 4)}


def _rotation_property(mode: str) -> tuple[str, int]:
    return _CHANNELS.get(mode, ("rotation_euler", 3))


def _path(bone: str, prop: str) -> str:
    return f'pose.bones["{bone}"].{prop}'


def armature_skeleton(obj) -> Skeleton:
    """The rest skeleton of armature object ``obj`` (bone order as in ``obj.data.bones``)."""
    bones = obj.data.bones
    names = [b.name for b in bones]
    index = {n: i for i, n in enumerate(names)}
    rest = np.array([np.array(b.matrix_local) for b in bones], np.float64).reshape(len(names), 4, 4)
    # matrix_local is rigid for Blender bones; normalising guards against float dust only.
    rest[:, :3, :3] /= np.linalg.norm(rest[:, :3, :3], axis=1, keepdims=True)
    return Skeleton(
        names,
        [index[b.parent.name] if b.parent else -1 for b in bones],
        rest,
        np.array([b.length for b in bones], np.float64),
        np.array(obj.matrix_world, np.float64),
    )


def current_basis(obj, skeleton: Skeleton) -> np.ndarray:
    """(J, 4, 4) each pose bone's present local pose (what unmapped bones keep)."""
    out = np.empty((len(skeleton.names), 4, 4))
    for i, name in enumerate(skeleton.names):
        out[i] = np.array(obj.pose.bones[name].matrix_basis)
    return out


def _rotation_matrices(mode: str, values: np.ndarray) -> np.ndarray:
    if mode == "QUATERNION":
        return quaternion_to_matrix(values)
    if mode == "AXIS_ANGLE":
        axis = values[:, 1:]
        norm = np.linalg.norm(axis, axis=-1, keepdims=True)
        return axis_angle_to_matrix(np.where(norm > 1e-12, axis / np.where(norm > 1e-12, norm, 1.0), 0.0) * values[:, :1])
    return euler_to_matrix(values, mode)


def action_frames(obj, action) -> np.ndarray:
    """Integer frames covering every key of ``obj``'s curves in ``action``."""
    fcurves = object_fcurves(obj, action)
    spans = [c.range() for c in (fcurves or ()) if len(c.keyframe_points)]
    if not spans:
        raise RetargetError(f"the action '{action.name}' has no keyframes for '{obj.name}': generate or import motion first")
    first = int(np.floor(min(s[0] for s in spans) + 1e-6))
    last = int(np.ceil(max(s[1] for s in spans) - 1e-6))
    return np.arange(first, last + 1, dtype=np.float64)


def read_basis(obj, action, skeleton: Skeleton, frames: np.ndarray) -> np.ndarray:
    """(N, J, 4, 4) local pose of every bone at ``frames`` as ``action`` keys it; channels it does
    not key keep the bone's present value."""
    by_path = {(c.data_path, c.array_index): c for c in (object_fcurves(obj, action) or ())}
    count = len(frames)
    basis = np.tile(np.eye(4), (count, len(skeleton.names), 1, 1))
    for i, name in enumerate(skeleton.names):
        pose_bone = obj.pose.bones[name]
        mode = pose_bone.rotation_mode
        prop, width = _rotation_property(mode)
        rotation = np.tile(np.array(getattr(pose_bone, prop), np.float64), (count, 1))
        location = np.tile(np.array(pose_bone.location, np.float64), (count, 1))
        keyed = False
        for axis in range(width):
            curve = by_path.get((_path(name, prop), axis))
            if curve is not None:
                rotation[:, axis] = fcurve_samples(curve, frames)
                keyed = True
        for axis in range(3):
            curve = by_path.get((_path(name, "location"), axis))
            if curve is not None:
                location[:, axis] = fcurve_samples(curve, frames)
                keyed = True
        if keyed:
            basis[:, i, :3, :3] = _rotation_matrices(mode, rotation)
            basis[:, i, :3, 3] = location
        else:
            basis[:, i] = np.array(pose_bone.matrix_basis)
    return basis


def choose_bone_map(target, preset: str = "AUTO", custom: BoneMap | None = None) -> BoneMap:
    """The map to use: ``custom`` when given, a named bundled preset, or the detected one."""
    from ..bonemaps import presets

    if custom is not None:
        return custom
    if preset and preset != "AUTO":
        found = presets()
        if preset not in found:
            raise RetargetError(f"no bone map preset '{preset}'; the presets are: {', '.join(found)}")
        return found[preset]
    detected = detect_preset(b.name for b in target.data.bones)
    if detected is None:
        raise RetargetError(
            f"'{target.name}' does not look like a Mixamo, Rigify or Unreal rig: pick a preset, or fill the "
            "bone map list in the Retarget panel (or load a bone map file) and use the Custom map"
        )
    return detected


@dataclass
class RetargetReport:
    action: object
    bone_map: BoneMap
    frames: int
    keyed: list[str]  # target bones keyed
    missing_optional: list[str]  # target bones the map names that the rig lacks (skipped)
    unmapped_source: list[str]  # SMPL-X joints the map leaves out
    unmapped_target: list[str]  # target bones nothing drives (they keep their pose)
    scale: float
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"Retargeted {self.frames} frames onto {len(self.keyed)} bones of the target with "
                 f"'{self.bone_map.name}' (root motion x{self.scale:.3g})"]
        if self.missing_optional:
            parts.append(f"not on the target, skipped: {_names(self.missing_optional)}")
        if self.unmapped_source:
            parts.append(f"SMPL-X joints not mapped: {_names(self.unmapped_source)}")
        return "; ".join(parts + self.notes)


def _names(names: list[str], limit: int = 12) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_target(target, bone_map: BoneMap, fingers: bool = True):
    """Resolve ``bone_map`` on ``target``; RetargetError listing every missing required bone."""
    if target is None or target.type != "ARMATURE":
        raise RetargetError("the retarget target must be an armature object: select the character's armature")
    resolution = resolve(bone_map, [b.name for b in target.data.bones], fingers=fingers)
    if not resolution.ok:
        raise RetargetError(
            f"armature '{target.name}' lacks {len(resolution.missing_required)} bone(s) the '{bone_map.name}' map "
            f"needs: {', '.join(resolution.missing_required)}. Pick another preset or edit the bone map"
        )
    return resolution


def retarget_armature(source, target, bone_map: BoneMap, *, fingers: bool = True, root_motion: bool = True,
                      action_name: str | None = None, source_action=None) -> RetargetReport:
    """Key ``source``'s action (SMPL-X armature) onto ``target`` as a new action; returns what was done.

    Raises RetargetError, before changing anything, when either rig or the map is unusable.
    """
    if source is None or source.type != "ARMATURE":
        raise RetargetError("the retarget source must be an SMPL-X armature with an action")
    if source == target:
        raise RetargetError("source and target are the same armature: pick the character to retarget onto")
    missing_source = [name for name in JOINT_NAMES if name not in source.data.bones]
    if missing_source:
        raise RetargetError(f"source '{source.name}' is not an SMPL-X armature; it lacks: {_names(missing_source)}")
    action = source_action or (source.animation_data.action if source.animation_data else None)
    if action is None:
        raise RetargetError(f"source '{source.name}' has no action: generate or import motion onto it first")
    resolution = check_target(target, bone_map, fingers)
    if not resolution.pairs:
        raise RetargetError(f"the '{bone_map.name}' map matches no bone of '{target.name}'")
    for prop in bone_map.keyed_properties:
        bone = target.pose.bones.get(prop["bone"])
        if bone is None or prop["property"] not in bone:
            raise RetargetError(
                f"the '{bone_map.name}' map keys the property '{prop['property']}' of bone '{prop['bone']}', "
                f"which '{target.name}' does not have"
            )

    frames = action_frames(source, action)
    src = armature_skeleton(source)
    tgt = armature_skeleton(target)
    src_pose = pose_matrices(src, read_basis(source, action, src, frames))
    unmapped_pose = current_basis(target, tgt)
    result = retarget(src, src_pose, tgt, resolution.pairs, target_basis=unmapped_pose, root_motion=root_motion)

    name = action_name or f"{target.name}|{action.name}"
    new_action = new_object_action(target, name)
    fcurves = writable_fcurves(target, new_action)
    for k, bone in enumerate(result.bones):
        mode = target.pose.bones[bone].rotation_mode
        prop, width = _rotation_property(mode)
        values = rotation_channels(result.rotations[:, k], mode)
        for axis in range(width):
            fill_fcurve(new_fcurve(fcurves, _path(bone, prop), axis, bone), frames, values[:, axis])
    if result.root is not None and result.root_location is not None:
        for axis in range(3):
            fill_fcurve(new_fcurve(fcurves, _path(result.root, "location"), axis, result.root), frames,
                        result.root_location[:, axis])
    for prop in bone_map.keyed_properties:
        path = f'pose.bones["{prop["bone"]}"]["{prop["property"]}"]'
        fill_fcurve(new_fcurve(fcurves, path, 0, prop["bone"]), np.unique(frames[[0, -1]]),
                    np.full(len(np.unique(frames[[0, -1]])), float(prop["value"])))

    keyed = set(result.bones)
    return RetargetReport(
        action=new_action,
        bone_map=bone_map,
        frames=len(frames),
        keyed=list(result.bones),
        missing_optional=resolution.missing_optional,
        unmapped_source=[j for j in JOINT_NAMES if j not in resolution.pairs and not (not fingers and _is_finger(j))],
        unmapped_target=[b for b in tgt.names if b not in keyed],
        scale=result.scale,
    )


def _is_finger(joint: str) -> bool:
    from ..bonemaps import FINGER_JOINTS

    return joint in FINGER_JOINTS
