"""Actions and their F-curves on both sides of Blender 4.4's change to slotted actions.

Blender 4.2/4.3: ``action.fcurves``. Blender 4.4+: an action holds slots, one per animated ID,
and each slot's F-curves sit in a channelbag; 5.0 removed ``action.fcurves`` altogether.
"""
from __future__ import annotations

import bpy
import numpy as np

from .armature import RigError

SLOTTED = "slots" in bpy.types.Action.bl_rna.properties


def check_new_action(obj, keyed_paths=()) -> None:
    """Raise RigError, in one sentence, when a new action must not replace ``obj``'s action.

    Every place that puts motion on a rig (generate, import, retarget) assigns its action through
    ``new_object_action``, which runs this first; operators also call it before any other work so
    that a refusal comes before waiting for a model and changes nothing. ``keyed_paths``: the data
    paths (``pose.bones["x"].rotation_quaternion`` ...) the new action will key.

    Each state of the animation data, and why it works or is refused:
    - NLA tweak mode: refused. Blender makes the action read-only while a strip is edited; leaving
      tweak mode on the animator's behalf would change what they are editing, and writing into
      the strip's action would overwrite that take.
    - NLA tracks, with or without an active action: works. The new action becomes the active
      action above the tracks, the way Blender layers a fresh take over pushed-down strips; the
      tracks, their strips and the previous action (kept with a fake user) are untouched, and the
      action's blend type and influence stay as the animator set them.
    - Slotted actions (4.4+), an action with several slots, a slot shared with another object:
      works. The new action has its own slot for ``obj``; the previous action, all its slots and
      every other user's assignment stay as they were.
    - Linked rig (from a library, no override): refused. Edits to linked data are not saved, so
      the new action would be gone when the file is opened again.
    - Library override: works when editable (the way linked characters are animated); refused
      when it is a system override, which Blender's own tools treat as read-only.
    - A driver on a channel the new action keys: refused. Drivers win over keys, so the motion
      would silently not play on that bone; the animator removes the driver or leaves the bone out.
    - Constraints, and drivers on other channels: works. They are the rig's own layer over its
      keys (IK, copy rotation, correctives), applied as Blender applies them to hand-made keys.
    """
    library = getattr(obj, "library", None)
    if library is not None:
        raise RigError(
            f"'{obj.name}' is linked from '{library.name}', so a new action on it would be lost when the "
            "file is saved: make a library override (Object > Library Override > Make), then try again"
        )
    override = getattr(obj, "override_library", None)
    if override is not None and override.is_system_override:
        raise RigError(
            f"'{obj.name}' is a non-editable library override: make it editable "
            "(Object > Library Override > Make), then try again"
        )
    anim = obj.animation_data
    if anim is None:
        return
    if anim.use_tweak_mode:
        raise RigError(
            f"'{obj.name}' is in NLA tweak mode: press Tab in the NLA editor to leave it, then try again"
        )
    keyed = set(keyed_paths)
    driven = sorted({d.data_path for d in anim.drivers if d.data_path in keyed})
    if driven:
        more = f" and {len(driven) - 1} more" if len(driven) > 1 else ""
        raise RigError(
            f"'{obj.name}' has a driver on {driven[0]}{more}, which would override the new keys: "
            "delete the driver (right-click the value > Delete Driver) or leave that bone out, then try again"
        )


def new_object_action(obj, name: str, keyed_paths=()):
    """A new action assigned to ``obj``; its previous action stays in the file, untouched.

    Raises RigError (see ``check_new_action``) before changing anything.
    """
    check_new_action(obj, keyed_paths)
    had_anim = obj.animation_data is not None
    anim = obj.animation_data or obj.animation_data_create()
    previous, previous_slot = anim.action, getattr(anim, "action_slot", None)
    # Unassigning would leave the user's action with no users: Blender would drop it on save.
    protect = previous is not None and previous.users == 1 and not previous.use_fake_user
    action = bpy.data.actions.new(name)
    try:
        if protect:
            previous.use_fake_user = True
        if SLOTTED:
            slot = action.slots.new(id_type="OBJECT", name=obj.name)
            anim.action = action
            anim.action_slot = slot
        else:
            anim.action = action
    except BaseException:
        # A state check_new_action does not know of: leave no empty action and no changed assignment.
        if anim.action != previous:
            anim.action = previous
            if SLOTTED:
                anim.action_slot = previous_slot
        if protect:
            previous.use_fake_user = False
        bpy.data.actions.remove(action)
        if not had_anim:
            obj.animation_data_clear()
        raise
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
