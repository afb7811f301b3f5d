"""Motion onto an SMPL-X armature as keyframes, and back.

Writing uses ``keyframe_points.add`` + ``foreach_set`` per F-curve: one call per curve instead of
one ``keyframe_insert`` per bone and frame, which is what makes long clips take well under a
second. Each joint's axis-angle becomes its pose bone's quaternion (no correction on rigs that
follow the SMPL-X bone convention, a fixed change of frame on others, see ``rig_frames``); the
root translation becomes the pelvis bone's location; the 100 expression coefficients become the
armature's ``smplx_expressions`` property.

Feet on the floor: Gestura's armatures stand on their origin in the rest pose, so ``trans`` keyed
as it is stands as the data stood. With ``on_floor``, ``write_motion`` adds one vertical offset
for the clip (its lowest foot joint ``FOOT_CLEARANCE`` above the rig's origin, whatever the file's
own floor or the rig's rest) and stores it on the action; ``read_motion`` takes it off again, so
an export gives back the translation that was written.
"""
from __future__ import annotations

import bpy
import numpy as np

from ...rigs.kinematics import floor_offset
from ...rigs.motion import Motion
from ...rigs.resample import resample
from ...rigs.rest_skeleton import FOOT_CLEARANCE
from ...rigs.rotations import (
    axis_angle_to_quaternion,
    matrix_to_quaternion,
    quaternion_multiply,
    quaternion_to_axis_angle,
    sign_continuous,
)
from ...rigs.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_EXPRESSIONS, NUM_JOINTS
from .actions import fcurve_samples, fill_fcurve, new_fcurve, new_object_action, object_fcurves, writable_fcurves
from .armature import RigError, armature_rest_joints, require_smplx_bones, rig_frames
from .expressions import EXPRESSION_PROPERTY, drive_expression_shape_keys, ensure_expression_property

BETAS_PROPERTY = "smplx_betas"
# Metres along SMPL-X y that write_motion(on_floor=True) added to the keyed pelvis location.
FLOOR_OFFSET_PROPERTY = "smplx_floor_offset"
EXPRESSION_GROUP = "Expressions"


def _rotation_path(name: str) -> str:
    return f'pose.bones["{name}"].rotation_quaternion'


def _location_path(name: str) -> str:
    return f'pose.bones["{name}"].location'


def _expression_path() -> str:
    return f'["{EXPRESSION_PROPERTY}"]'


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def _conjugate(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def _joint_list(bones) -> list[int]:
    if bones is None:
        return list(range(NUM_JOINTS))
    unknown = [b for b in bones if b not in JOINT_INDEX]
    if unknown:
        raise RigError(f"not SMPL-X joint names: {', '.join(unknown)}")
    return sorted({JOINT_INDEX[b] for b in bones})


def keyed_paths(bones=None, expressions: bool = True) -> list[str]:
    """Data paths ``write_motion`` keys for these ``bones`` (None = all) and ``expressions``."""
    joints = _joint_list(bones)
    paths = [_rotation_path(JOINT_NAMES[j]) for j in joints]
    if 0 in joints:
        paths.append(_location_path("pelvis"))
    if expressions:
        paths.append(_expression_path())
    return paths


def write_motion(obj, motion: Motion, action_name: str, start_frame: int = 1, bones=None, expressions: bool = True,
                 on_floor: bool = False):
    """Key ``motion`` onto armature ``obj`` in a NEW action, which becomes the object's action.

    The motion is resampled to the scene's frame rate first and starts at ``start_frame``.
    ``bones``: joint names to key (None = all 55); the pelvis location is keyed when the pelvis
    is. ``expressions``: key the 100 coefficients (and drive ``Exp###`` shape keys of the body).
    ``on_floor``: shift the keyed pelvis location once, so that the clip's lowest foot joint is
    ``FOOT_CLEARANCE`` above the rig's origin; the shift (m) is stored as the action's
    ``smplx_floor_offset`` and ``read_motion`` removes it (nothing is shifted when the pelvis is
    not keyed). Checks everything before changing anything; a wrong armature raises RigError.
    """
    require_smplx_bones(obj)
    joints = _joint_list(bones)
    scene = bpy.context.scene
    fps = scene_fps(scene)
    if abs(motion.fps - fps) > 1e-6:
        motion = resample(motion, fps)
    n = motion.num_frames
    frames = start_frame + np.arange(n, dtype=np.float64)

    _, bone_frames = rig_frames(obj)
    quaternions = axis_angle_to_quaternion(motion.poses.astype(np.float64))  # (N, 55, 4)
    frame_quaternions = matrix_to_quaternion(bone_frames)  # (55, 4)
    if not np.allclose(bone_frames, np.eye(3), atol=1e-6):
        # Rotation R about SMPL-X axes is A^-1 R A in a bone whose rest frame is A.
        quaternions = quaternion_multiply(quaternion_multiply(_conjugate(frame_quaternions), quaternions), frame_quaternions)
    quaternions = sign_continuous(quaternions)
    floor = 0.0
    if on_floor and 0 in joints:
        # On the motion as keyed (after resampling), so an exported clip imported again at the
        # same rate gets the same offset.
        floor = floor_offset(motion, armature_rest_joints(obj), FOOT_CLEARANCE)
    trans = motion.trans.astype(np.float64) + np.array([0.0, floor, 0.0])
    location = trans @ bone_frames[0]  # A0^T t, row-wise

    action = new_object_action(obj, action_name, keyed_paths(bones, expressions))
    fcurves = writable_fcurves(obj, action)
    for joint in joints:
        name = JOINT_NAMES[joint]
        obj.pose.bones[name].rotation_mode = "QUATERNION"
        for axis in range(4):
            fill_fcurve(new_fcurve(fcurves, _rotation_path(name), axis, name), frames, quaternions[:, joint, axis])
    if 0 in joints:
        for axis in range(3):
            fill_fcurve(new_fcurve(fcurves, _location_path("pelvis"), axis, "pelvis"), frames, location[:, axis])
    if expressions:
        ensure_expression_property(obj)
        for index in range(NUM_EXPRESSIONS):
            curve = new_fcurve(fcurves, _expression_path(), index, EXPRESSION_GROUP)
            fill_fcurve(curve, frames, motion.expressions[:, index])
        drive_expression_shape_keys(obj)
    action[BETAS_PROPERTY] = motion.betas.astype(np.float64).tolist()
    action[FLOOR_OFFSET_PROPERTY] = floor
    return action


def _frame_span(curves) -> tuple[int, int]:
    first, last = None, None
    for curve in curves:
        if len(curve.keyframe_points):
            lo, hi = curve.range()
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
    if first is None:
        raise RigError("the action has no SMPL-X keyframes to read")
    return int(np.floor(first + 1e-6)), int(np.ceil(last - 1e-6))


def read_motion(obj, action=None, with_floor_offset: bool = False) -> Motion:
    """The motion that ``action`` (default: the object's current action) gives armature ``obj``,
    one frame per scene frame over the keyed range, at the scene's frame rate. Channels that are
    not keyed read as rest (and zero expressions).

    ``trans`` is what was written: the floor offset ``write_motion`` added is taken off, unless
    ``with_floor_offset`` (the translation as keyed, where the viewport shows the body)."""
    require_smplx_bones(obj)
    fcurves = object_fcurves(obj, action)
    if fcurves is None:
        raise RigError(f"'{obj.name}' has no action to read: import or generate motion first")
    by_path = {}
    for curve in fcurves:
        by_path[(curve.data_path, curve.array_index)] = curve
    wanted = [_rotation_path(n) for n in JOINT_NAMES] + [_location_path("pelvis"), _expression_path()]
    ours = [c for (path, _), c in by_path.items() if path in wanted]
    first, last = _frame_span(ours)
    frames = np.arange(first, last + 1, dtype=np.float64)
    n = len(frames)

    quaternions = np.zeros((n, NUM_JOINTS, 4))
    quaternions[..., 0] = 1.0
    for joint, name in enumerate(JOINT_NAMES):
        for axis in range(4):
            curve = by_path.get((_rotation_path(name), axis))
            if curve is not None:
                quaternions[:, joint, axis] = fcurve_samples(curve, frames)
    location = np.zeros((n, 3))
    for axis in range(3):
        curve = by_path.get((_location_path("pelvis"), axis))
        if curve is not None:
            location[:, axis] = fcurve_samples(curve, frames)
    expressions = np.zeros((n, NUM_EXPRESSIONS))
    for index in range(NUM_EXPRESSIONS):
        curve = by_path.get((_expression_path(), index))
        if curve is not None:
            expressions[:, index] = fcurve_samples(curve, frames)

    _, bone_frames = rig_frames(obj)
    if not np.allclose(bone_frames, np.eye(3), atol=1e-6):
        frame_quaternions = matrix_to_quaternion(bone_frames)
        quaternions = quaternion_multiply(quaternion_multiply(frame_quaternions, quaternions), _conjugate(frame_quaternions))
    trans = location @ bone_frames[0].T

    source = action if action is not None else obj.animation_data.action
    if not with_floor_offset:
        trans[:, 1] -= float(source.get(FLOOR_OFFSET_PROPERTY, 0.0))
    stored = source.get(BETAS_PROPERTY)
    betas = np.zeros(300) if stored is None else np.array(list(stored), np.float64)
    return Motion(
        poses=quaternion_to_axis_angle(quaternions),
        trans=trans,
        expressions=expressions,
        fps=scene_fps(bpy.context.scene),
        betas=betas,
    )
