"""States a rig's animation data can be in (NLA tweak mode, NLA tracks, slots, linked and
overridden rigs, drivers), made with the real bpy, and snapshots that show whether an operator
changed anything. Shared by the generate, import and retarget tests."""
from __future__ import annotations


def actions_state(bpy) -> list:
    """Every action with its user count and fake user flag."""
    return sorted((a.name, a.users, a.use_fake_user) for a in bpy.data.actions)


def anim_state(obj) -> dict | None:
    """What ``obj``'s animation data holds: action, slot, tweak mode, tracks and strips, drivers."""
    anim = obj.animation_data
    if anim is None:
        return None
    slot = getattr(anim, "action_slot", None)
    return {
        "action": anim.action.name if anim.action else None,
        "slot": slot.identifier if slot is not None else None,
        "tweak": anim.use_tweak_mode,
        "tracks": [(t.name, [(s.name, s.action.name if s.action else None) for s in t.strips])
                   for t in anim.nla_tracks],
        "drivers": sorted((d.data_path, d.array_index) for d in anim.drivers),
        "blend": (anim.action_blend_type, anim.action_influence),
    }


def push_down(obj) -> None:
    """Push the object's action into a new NLA track, as the NLA editor's Push Down does."""
    anim = obj.animation_data
    action = anim.action
    track = anim.nla_tracks.new()
    track.strips.new(action.name, int(action.frame_range[0]), action)
    anim.action = None


def enter_tweak_mode(obj) -> None:
    """Push the action down and edit its strip (Tab in the NLA editor)."""
    push_down(obj)
    strip = obj.animation_data.nla_tracks[-1].strips[0]
    strip.select = True
    obj.animation_data.nla_tracks.active = obj.animation_data.nla_tracks[-1]
    obj.animation_data.use_tweak_mode = True
    assert obj.animation_data.use_tweak_mode


def add_driver(obj, data_path: str, index: int = 0) -> None:
    driver = obj.driver_add(data_path, index).driver
    driver.type = "SCRIPTED"
    driver.expression = "1.0"


def link_from_library(bpy, obj, folder):
    """Write ``obj`` to a library .blend, then link it back into a fresh scene: the linked object."""
    path = str(folder / f"{obj.name}-library.blend")
    bpy.data.libraries.write(path, {obj})
    name = obj.name
    bpy.ops.wm.read_homefile(use_empty=True)
    with bpy.data.libraries.load(path, link=True) as (_, linked):
        linked.objects = [name]
    obj = linked.objects[0]
    bpy.context.scene.collection.objects.link(obj)
    return obj


def select_only(bpy, obj) -> None:
    for other in bpy.context.selected_objects:
        other.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
