"""Actions and their F-curves on both sides of Blender 4.4's change to slotted actions.

Blender 4.2/4.3: ``action.fcurves``. Blender 4.4+: an action holds slots, one per animated ID,
and each slot's F-curves sit in a channelbag; 5.0 removed ``action.fcurves`` altogether.
"""
from __future__ import annotations

import bpy
import numpy as np

SLOTTED = "slots" in bpy.types.Action.bl_rna.properties


def new_object_action(obj, name: str):
    """A new action assigned to ``obj``; its previous action stays in the file, untouched."""
    action = bpy.data.actions.new(name)
    anim = obj.animation_data or obj.animation_data_create()
    if anim.action is not None and anim.action.users == 1 and not anim.action.use_fake_user:
        # Unassigning would leave the user's action with no users: Blender would drop it on save.
        anim.action.use_fake_user = True
    if SLOTTED:
        slot = action.slots.new(id_type="OBJECT", name=obj.name)
        anim.action = action
        anim.action_slot = slot
    else:
        anim.action = action
    return action


def object_fcurves(obj, action=None):
    """The F-curve collection that animates ``obj`` in ``action`` (default: its assigned action).

    None when the action has nothing for the object.
    """
    anim = obj.animation_data
    if action is None:
        action = anim.action if anim is not None else None
    if action is None:
        return None
    if not SLOTTED:
        return action.fcurves
    from bpy_extras import anim_utils

    slot = None
    if anim is not None and anim.action == action and anim.action_slot is not None:
        slot = anim.action_slot
    if slot is None:
        slot = next((s for s in action.slots if s.target_id_type == "OBJECT"), None)
    if slot is None:
        return None
    channelbag = anim_utils.action_get_channelbag_for_slot(action, slot)
    return channelbag.fcurves if channelbag is not None else None


def writable_fcurves(obj, action):
    """The F-curve collection to add curves to for ``obj`` in its assigned ``action``."""
    if not SLOTTED:
        return action.fcurves
    from bpy_extras import anim_utils

    return anim_utils.action_ensure_channelbag_for_slot(action, obj.animation_data.action_slot).fcurves


def new_fcurve(fcurves, data_path: str, index: int, group: str):
    if SLOTTED:
        return fcurves.new(data_path, index=index, group_name=group)
    return fcurves.new(data_path, index=index, action_group=group)


def fill_fcurve(fcurve, frames: np.ndarray, values: np.ndarray) -> None:
    """Key ``values`` at ``frames`` in one go (keyframe_points.add + foreach_set)."""
    points = fcurve.keyframe_points
    points.add(len(frames))
    co = np.empty(2 * len(frames), np.float32)
    co[0::2] = frames
    co[1::2] = values
    points.foreach_set("co", co)
    fcurve.update()


def fcurve_samples(fcurve, frames: np.ndarray) -> np.ndarray:
    """Values of ``fcurve`` at integer ``frames``: read straight from the keys when there is one
    on every frame (what the writer makes), else evaluated frame by frame."""
    points = fcurve.keyframe_points
    co = np.empty(2 * len(points), np.float32)
    points.foreach_get("co", co)
    keyed_frames, values = co[0::2], co[1::2]
    if len(points) == len(frames) and np.array_equal(keyed_frames, frames.astype(np.float32)):
        return values.astype(np.float64)
    return np.array([fcurve.evaluate(float(f)) for f in frames])
