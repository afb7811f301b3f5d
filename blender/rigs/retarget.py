"""Retarget an SMPL-X armature's action onto another armature (Blender glue).

Reads both rigs' rest frames and the source action's keyed channels, hands them to the bpy-free
math in ``rigs.retarget``, and keys the result into a NEW action on the target with the bulk
F-curve writer of ``blender.rigs.actions`` (Blender 4.2 and 5.0 action APIs alike). The source's
channels are read as keyed, in whatever rotation mode each bone uses, so any SMPL-X armature
convention (Gestura's, the SMPL-X add-on's) retargets the same way. Nothing is changed until
every check has passed.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import bpy
import numpy as np

from ...rigs.bonemaps import BoneMap, detect_preset, fitting_preset, resolve
from ...rigs.bonemaps.guess import GUESSED_DESCRIPTION, BoneGuess, guess_bone_map
from ...rigs.retarget import (
    RetargetError,
    Skeleton,
    default_aim_children,
    euler_to_matrix,
    pose_matrices,
    retarget,
    rotation_channels,
)
from ...rigs.rotations import axis_angle_to_matrix, nearest_rotation, quaternion_to_matrix
from ...rigs.skeleton import JOINT_NAMES
from .actions import (
    check_new_action,
    fcurve_samples,
    fill_fcurve,
    new_fcurve,
    new_object_action,
    object_fcurves,
    writable_fcurves,
)

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


def guess_for(target) -> BoneGuess:
    """The bone map guessed from ``target``'s bone names and hierarchy (see ``bonemaps.guess``)."""
    bones = target.data.bones
    return _guess(target.name, tuple(b.name for b in bones), tuple(b.parent.name if b.parent else "" for b in bones))


@functools.lru_cache(maxsize=16)
def _guess(name: str, names: tuple, parents: tuple) -> BoneGuess:
    # Cached: the panel shows the guess on every redraw.
    return guess_bone_map(names, parents, name)


def choose_bone_map(target, preset: str = "AUTO", custom: BoneMap | None = None) -> BoneMap:
    """The map to use: ``custom`` when given, a named bundled preset, the detected one, or (when
    no preset fits) the one guessed from the bone names and hierarchy."""
    from ...rigs.bonemaps import presets

    if custom is not None:
        return custom
    if preset and preset != "AUTO":
        found = presets()
        if preset not in found:
            raise RetargetError(f"no bone map preset '{preset}'; the presets are: {', '.join(found)}")
        return found[preset]
    names = [b.name for b in target.data.bones]
    detected = fitting_preset(names)
    if detected is not None:
        return detected
    guess = guess_for(target)
    if guess.ok:
        return guess.bone_map
    detected = detect_preset(names)
    if detected is not None:
        return detected  # looks like the preset: check_target names the bones it lacks
    raise RetargetError(
        f"'{target.name}' does not look like a Mixamo, Rigify or Unreal rig, nor like a body by its bone names "
        f"({'; '.join(guess.problems[:2])}): pick a preset, or fill the bone map list in the Retarget panel "
        "(or load a bone map file) and use the Custom map"
    )


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
        if self.unmapped_target:
            parts.append(f"target bones not driven (they keep their pose): {_names(self.unmapped_target)}")
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

    # The target's animation state first (NLA tweak mode, linked ...): refused before any work.
    check_new_action(target)
    frames = action_frames(source, action)
    src = armature_skeleton(source)
    tgt = armature_skeleton(target)
    src_pose = pose_matrices(src, read_basis(source, action, src, frames))
    unmapped_pose = current_basis(target, tgt)
    result = retarget(src, src_pose, tgt, resolution.pairs, target_basis=unmapped_pose, root_motion=root_motion,
                      root_target=bone_map.root or None,
                      target_aims=rest_direction_overrides(target, bone_map, resolution.pairs, src))

    name = action_name or f"{target.name}|{action.name}"
    keyed = [_path(bone, _rotation_property(target.pose.bones[bone].rotation_mode)[0]) for bone in result.bones]
    keyed += [f'pose.bones["{prop["bone"]}"]["{prop["property"]}"]' for prop in bone_map.keyed_properties]
    if result.root is not None and result.root_location is not None:
        keyed.append(_path(result.root, "location"))
    new_action = new_object_action(target, name, keyed)
    fcurves = writable_fcurves(target, new_action)
    for prop in bone_map.keyed_properties:
        path = f'pose.bones["{prop["bone"]}"]["{prop["property"]}"]'
        ends = np.unique(frames[[0, -1]])
        fill_fcurve(new_fcurve(fcurves, path, 0, prop["bone"]), ends, np.full(len(ends), float(prop["value"])))
    notes = []
    if bone_map.description == GUESSED_DESCRIPTION:
        notes.append("no preset matched, so the map was guessed from the bone names (Fill > Guessed from Bone "
                     "Names shows it, to check, edit or save)")
    rotations, root_location = result.rotations, result.root_location
    if parents_are_driven(target, result.bones):
        # Constraints or drivers move some parents (control rigs such as Rigify's): let Blender
        # evaluate them and key what makes each bone land where the math wants it.
        rotations, root_location, worst = refine_by_evaluation(bpy.context, target, result, frames)
        notes.append(f"constrained rig: corrected by evaluation, worst remaining error {worst:.2f} degrees")
    for k, bone in enumerate(result.bones):
        mode = target.pose.bones[bone].rotation_mode
        prop, width = _rotation_property(mode)
        values = rotation_channels(rotations[:, k], mode)
        for axis in range(width):
            fill_fcurve(new_fcurve(fcurves, _path(bone, prop), axis, bone), frames, values[:, axis])
    if result.root is not None and root_location is not None:
        for axis in range(3):
            fill_fcurve(new_fcurve(fcurves, _path(result.root, "location"), axis, result.root), frames,
                        root_location[:, axis])

    keyed = set(result.bones)
    return RetargetReport(
        action=new_action,
        bone_map=bone_map,
        frames=len(frames),
        keyed=list(result.bones),
        missing_optional=resolution.missing_optional,
        unmapped_source=[j for j in JOINT_NAMES if j not in resolution.pairs and not (not fingers and _is_finger(j))],
        unmapped_target=[b for b in tgt.names if b not in keyed and b != result.root],
        scale=result.scale,
        notes=notes,
    )


def rest_direction_overrides(target, bone_map: BoneMap, pairs: dict, source: Skeleton) -> dict:
    """For maps onto control bones, each control's rest direction as its deform bones show it:
    from the deform bone of its joint to the deform bone of the joint it aims at."""
    if not bone_map.rest_directions_from:
        return {}
    from ...rigs.bonemaps import presets

    deform = presets().get(bone_map.rest_directions_from)
    if deform is None:
        raise RetargetError(f"the '{bone_map.name}' map measures rest directions on the unknown preset "
                            f"'{bone_map.rest_directions_from}'")
    bones = target.data.bones
    aims = default_aim_children(source)
    out = {}
    for s, t in pairs.items():
        c = aims.get(s, "")
        names = (deform.bones.get(s), deform.bones.get(c))
        if c in pairs and all(n is not None and n in bones for n in names):
            out[t] = np.array(bones[names[1]].head_local) - np.array(bones[names[0]].head_local)
    return out


def parents_are_driven(target, bones) -> bool:
    """True when a mapped bone or any of its ancestors is moved by constraints or does not inherit
    its parent's rotation, or the rig has drivers: its chain is then not the plain parent chain
    the math assumes."""
    anim = target.animation_data
    if anim is not None and len(anim.drivers):
        return True
    seen = set()
    for name in bones:
        bone = target.pose.bones[name]
        while bone is not None and bone.name not in seen:
            seen.add(bone.name)
            if len(bone.constraints) or not bone.bone.use_inherit_rotation:
                return True
            bone = bone.parent
    return False


_MAX_PASSES = 12
_CONVERGED_DEGREES = 0.05


def _angle_degrees(a: np.ndarray, b: np.ndarray) -> float:
    cos = (np.trace(a.T @ b) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def _set_rotation(pose_bone, rotation: np.ndarray) -> None:
    from mathutils import Matrix

    m = Matrix(rotation.tolist())
    mode = pose_bone.rotation_mode
    if mode == "QUATERNION":
        pose_bone.rotation_quaternion = m.to_quaternion()
    elif mode == "AXIS_ANGLE":
        axis, angle = m.to_quaternion().to_axis_angle()
        pose_bone.rotation_axis_angle = (angle, *axis)
    else:
        pose_bone.rotation_euler = m.to_euler(mode, pose_bone.rotation_euler)


def refine_by_evaluation(context, target, result, frames: np.ndarray):
    """Key what makes each mapped bone land on the armature-space rotation the math wants, with
    everything Blender evaluates (constraints, drivers, isolated rotations) in between.

    Per frame: evaluate, then for each bone parents-first take the frame its parent really
    carries it in, predict how that frame moves with the corrections just made above it (as a
    plain child would), and solve its local rotation; repeat until nothing is off. Plain chains
    settle in one pass, constrained ones in a few. Returns (rotations, root location, worst
    remaining degrees)."""
    from mathutils import Matrix

    scene, view_layer = context.scene, context.view_layer
    pose_bones = [target.pose.bones[name] for name in result.bones]
    index = {b.name: k for k, b in enumerate(pose_bones)}
    order = sorted(range(len(pose_bones)), key=lambda k: _depth(pose_bones[k]))
    ancestor = []
    for bone in pose_bones:
        parent = bone.parent
        while parent is not None and parent.name not in index:
            parent = parent.parent
        ancestor.append(index[parent.name] if parent is not None else -1)
    root = target.pose.bones[result.root] if result.root is not None and result.root_head is not None else None
    rotations = result.rotations.copy()
    root_location = None if result.root_location is None else result.root_location.copy()
    frame_before, subframe_before = scene.frame_current, scene.frame_subframe
    worst_final = 0.0
    try:
        for n, frame in enumerate(frames):
            scene.frame_set(int(frame))
            if n:
                # Start from the previous frame's solution, moved by what the plain chain moves.
                rotations[n] = rotations[n - 1] @ np.swapaxes(result.rotations[n - 1], -1, -2) @ result.rotations[n]
            for k, bone in enumerate(pose_bones):
                _set_rotation(bone, rotations[n, k])
            if root is not None and root_location is not None:
                root.location = root_location[n]
            for _ in range(_MAX_PASSES):
                view_layer.update()
                worst = 0.0
                if root is not None and root_location is not None:
                    current = np.array(root.matrix)
                    worst = max(worst, 1e3 * float(np.linalg.norm(current[:3, 3] - result.root_head[n])))
                    current[:3, 3] = result.root_head[n]
                    local = target.convert_space(pose_bone=root, matrix=Matrix(current.tolist()),
                                                 from_space="POSE", to_space="LOCAL")
                    root.location = np.array(local)[:3, 3]
                moved = [None] * len(pose_bones)
                for k in order:
                    bone = pose_bones[k]
                    pose = nearest_rotation(np.array(bone.matrix)[:3, :3])
                    local = nearest_rotation(np.array(bone.matrix_basis)[:3, :3])
                    worst = max(worst, _angle_degrees(pose, result.wanted[n, k]))
                    carried = pose @ local.T
                    if ancestor[k] >= 0 and moved[ancestor[k]] is not None:
                        carried = moved[ancestor[k]] @ carried
                    solved = nearest_rotation(carried.T @ result.wanted[n, k])
                    moved[k] = result.wanted[n, k] @ pose.T
                    _set_rotation(bone, solved)
                if worst < _CONVERGED_DEGREES:
                    break
            worst_final = max(worst_final, worst)
            for k, bone in enumerate(pose_bones):
                rotations[n, k] = nearest_rotation(np.array(bone.matrix_basis)[:3, :3])
            if root is not None and root_location is not None:
                root_location[n] = np.array(root.location)
    finally:
        scene.frame_set(frame_before, subframe=subframe_before)
    return rotations, root_location, worst_final


def _depth(bone) -> int:
    depth, parent = 0, bone.parent
    while parent is not None:
        depth, parent = depth + 1, parent.parent
    return depth


def _is_finger(joint: str) -> bool:
    from ...rigs.bonemaps import FINGER_JOINTS

    return joint in FINGER_JOINTS
