"""Retarget an SMPL-X armature's motion onto another rig, and edit the bone map used for it.

The target armature carries its settings (``Object.gestura_retarget``): the source armature, the
preset (Automatic, a bundled one, or Custom = the editable list of SMPL-X joint -> target bone
pairs), fingers and root motion. ``gestura.retarget`` runs headless too: pass ``source`` and
``target`` object names and a ``preset``.
"""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, IntProperty, PointerProperty, StringProperty

from ...errors import GesturaError
from ...rigs.bonemaps import BoneMap, BoneMapError, bone_map_from_dict, load_bone_map, presets, save_bone_map
from ...rigs.retarget import RetargetError
from ...rigs.skeleton import JOINT_NAMES

PRESET_ITEMS = (
    (("AUTO", "Automatic", "Pick the preset from the target's bone names, or guess the map when none fits"),)
    + tuple((key, m.name, m.description) for key, m in presets().items())
    + (("CUSTOM", "Custom (list)", "The bone map list of this armature, edited by hand or loaded from a file"),)
)
FILL_ITEMS = tuple(item for item in PRESET_ITEMS if item[0] != "CUSTOM") + (
    ("GUESS", "Guessed from Bone Names", "The map guessed from this armature's bone names and hierarchy; "
     "joints it could not place are left empty"),
    ("EMPTY", "All Joints, Empty", "Every SMPL-X joint with no target bone yet, to fill in by hand"),
)


def _is_armature(_self, obj) -> bool:
    return obj.type == "ARMATURE"


class GesturaBonePair(bpy.types.PropertyGroup):
    source: StringProperty(name="SMPL-X Joint", description="SMPL-X joint name (source bone)")
    target: StringProperty(name="Target Bone", description="Bone of this armature that follows the joint")
    optional: BoolProperty(name="Optional", description="A missing target bone is skipped instead of refused")


class GesturaRetargetSettings(bpy.types.PropertyGroup):
    source: PointerProperty(
        name="Source", type=bpy.types.Object, poll=_is_armature,
        description="SMPL-X armature whose action is retargeted onto this armature",
    )
    preset: EnumProperty(name="Bone Map", items=PRESET_ITEMS, default="AUTO",
                         description="Which bones of this armature follow which SMPL-X joints")
    fingers: BoolProperty(name="Fingers", default=True, description="Retarget the finger joints too")
    root_motion: BoolProperty(name="Root Motion", default=True,
                              description="Move the hips like the source's pelvis, scaled by leg length")
    pairs: CollectionProperty(type=GesturaBonePair)
    active_pair: IntProperty(name="Active Pair")


# Module functions, not classmethods: Blender 4.2 keeps a reference to a PropertyGroup class even
# after unregister_class, so a function on the class would keep this module's globals, and through
# them the bpy module, alive past Python's shutdown; Blender's exit (run when bpy is freed) then never
# happens and the 4.2 wheel segfaults at process exit. The poll above is safe only because
# ``from __future__ import annotations`` leaves the class's annotations as strings.
def register_properties():
    bpy.types.Object.gestura_retarget = PointerProperty(type=GesturaRetargetSettings)


def unregister_properties():
    del bpy.types.Object.gestura_retarget


def list_bone_map(target) -> BoneMap:
    """The target's edited list as a bone map; empty target names are left out."""
    pairs = [p for p in target.gestura_retarget.pairs if p.target.strip()]
    data = {
        "name": f"{target.name} (custom)",
        "bones": {p.source.strip(): p.target.strip() for p in pairs},
        "optional": [p.source.strip() for p in pairs if p.optional and p.source.strip() in JOINT_NAMES],
    }
    if not data["bones"]:
        raise BoneMapError(f"the bone map list of '{target.name}' is empty: fill it from a preset or load a map file")
    sources = [p.source.strip() for p in pairs]
    repeated = sorted({s for s in sources if sources.count(s) > 1})
    if repeated:
        raise BoneMapError(f"the bone map list names these SMPL-X joints more than once: {', '.join(repeated)}")
    return bone_map_from_dict(data, origin=f"the bone map list of '{target.name}'")


def fill_pairs(target, bone_map: BoneMap | None, blank=()) -> int:
    """Replace the target's list with ``bone_map`` (None: every joint, no target); the joints in
    ``blank`` get empty rows, to fill in."""
    pairs = target.gestura_retarget.pairs
    pairs.clear()
    for joint in JOINT_NAMES:
        if bone_map is not None and joint not in bone_map.bones and joint not in blank:
            continue
        item = pairs.add()
        item.source = joint
        item.target = bone_map.bones.get(joint, "") if bone_map is not None else ""
        item.optional = bone_map is not None and joint in bone_map.optional
    target.gestura_retarget.active_pair = 0
    return len(pairs)


def _armature(context, name: str, role: str):
    obj = bpy.data.objects.get(name) if name else None
    if name and obj is None:
        raise RetargetError(f"there is no object named '{name}' to use as the {role}")
    return obj


def _resolve_objects(context, source_name: str, target_name: str):
    target = _armature(context, target_name, "target") or context.active_object
    if target is None or target.type != "ARMATURE":
        raise RetargetError("select the armature to retarget onto (the target) or pass target=<name>")
    source = _armature(context, source_name, "source")
    if source is None and hasattr(target, "gestura_retarget"):
        source = target.gestura_retarget.source
    if source is None:
        # Another selected armature with the SMPL-X bones.
        candidates = [o for o in context.selected_objects if o != target and o.type == "ARMATURE"
                      and all(j in o.data.bones for j in ("pelvis", "left_wrist", "right_ankle"))]
        source = candidates[0] if len(candidates) == 1 else None
    if source is None:
        raise RetargetError("no source: set the SMPL-X armature in the Retarget panel or pass source=<name>")
    return source, target


class GESTURA_OT_retarget(bpy.types.Operator):
    """Key the source SMPL-X armature's action onto the target armature as a new action"""

    bl_idname = "gestura.retarget"
    bl_label = "Retarget Motion"
    bl_options = {"REGISTER", "UNDO"}

    source: StringProperty(name="Source", description="SMPL-X armature object (default: the panel's source)")
    target: StringProperty(name="Target", description="Armature object to key (default: the active object)")
    preset: EnumProperty(name="Bone Map", items=PRESET_ITEMS, default="AUTO",
                         description="Bone map (default: the target's panel setting)")
    fingers: BoolProperty(name="Fingers", default=True, description="Retarget fingers (default: the panel setting)")
    root_motion: BoolProperty(name="Root Motion", default=True,
                              description="Move the hips with the source's pelvis (default: the panel setting)")
    action_name: StringProperty(name="Action Name", description="Name of the new action (default: target|source action)")

    def execute(self, context):
        from ..rigs.retarget import choose_bone_map, retarget_armature

        try:
            source, target = _resolve_objects(context, self.source, self.target)
            # Arguments not given come from the target's panel settings.
            settings = target.gestura_retarget
            preset, fingers, root_motion = (
                getattr(self, name) if self.properties.is_property_set(name) else getattr(settings, name)
                for name in ("preset", "fingers", "root_motion")
            )
            custom = list_bone_map(target) if preset == "CUSTOM" else None
            bone_map = choose_bone_map(target, preset, custom)
            if context.mode == "EDIT_ARMATURE":
                # Bone edits reach the armature only when edit mode ends.
                bpy.ops.object.mode_set(mode="OBJECT")
            report = retarget_armature(source, target, bone_map, fingers=fingers,
                                       root_motion=root_motion, action_name=self.action_name or None)
        except GesturaError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, report.summary())
        return {"FINISHED"}


class _TargetOperator:
    @classmethod
    def poll(cls, context):
        return context.active_object is not None and context.active_object.type == "ARMATURE"


class GESTURA_OT_retarget_map_fill(_TargetOperator, bpy.types.Operator):
    """Fill the active armature's bone map list from a preset, to edit it"""

    bl_idname = "gestura.retarget_map_fill"
    bl_label = "Fill Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    preset: EnumProperty(name="From", items=FILL_ITEMS, default="AUTO")

    def execute(self, context):
        from ..rigs.retarget import choose_bone_map, guess_for

        target = context.active_object
        if self.preset == "GUESS":
            guess = guess_for(target)
            fill_pairs(target, guess.bone_map, blank=guess.unmapped)
            target.gestura_retarget.preset = "CUSTOM"
            message = (f"Bone map list filled with {len(guess.bone_map.bones)} guessed pairs; left empty: "
                       f"{', '.join(guess.unmapped) or 'none'}")
            if guess.problems:
                self.report({"WARNING"}, f"{message}; not found: {'; '.join(guess.problems)}")
            else:
                self.report({"INFO"}, message)
            return {"FINISHED"}
        try:
            bone_map = None if self.preset == "EMPTY" else choose_bone_map(target, self.preset)
        except RetargetError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        count = fill_pairs(target, bone_map)
        target.gestura_retarget.preset = "CUSTOM"
        self.report({"INFO"}, f"Bone map list filled with {count} pairs" + (f" from '{bone_map.name}'" if bone_map else ""))
        return {"FINISHED"}


class GESTURA_OT_retarget_map_add(_TargetOperator, bpy.types.Operator):
    """Add a pair to the bone map list"""

    bl_idname = "gestura.retarget_map_add"
    bl_label = "Add Bone Pair"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.active_object.gestura_retarget
        settings.pairs.add()
        settings.active_pair = len(settings.pairs) - 1
        return {"FINISHED"}


class GESTURA_OT_retarget_map_remove(_TargetOperator, bpy.types.Operator):
    """Remove the selected pair from the bone map list"""

    bl_idname = "gestura.retarget_map_remove"
    bl_label = "Remove Bone Pair"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.active_object.gestura_retarget
        if not 0 <= settings.active_pair < len(settings.pairs):
            self.report({"ERROR"}, "no pair selected in the bone map list")
            return {"CANCELLED"}
        settings.pairs.remove(settings.active_pair)
        settings.active_pair = min(settings.active_pair, len(settings.pairs) - 1)
        return {"FINISHED"}


class GESTURA_OT_retarget_map_save(_TargetOperator, bpy.types.Operator):
    """Save the bone map list to a json file, to use it on other rigs of the same kind"""

    bl_idname = "gestura.retarget_map_save"
    bl_label = "Save Bone Map"

    filepath: StringProperty(subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})
    overwrite: BoolProperty(name="Overwrite", default=False, description="Replace an existing file")

    def invoke(self, context, _event):
        if not self.filepath:
            self.filepath = f"{bpy.path.clean_name(context.active_object.name)}_bonemap.json"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        try:
            path = save_bone_map(list_bone_map(context.active_object), bpy.path.abspath(self.filepath), self.overwrite)
        except (BoneMapError, OSError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Bone map saved to {path}")
        return {"FINISHED"}


class GESTURA_OT_retarget_map_load(_TargetOperator, bpy.types.Operator):
    """Load a bone map json file into the active armature's list"""

    bl_idname = "gestura.retarget_map_load"
    bl_label = "Load Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    def invoke(self, context, _event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        try:
            bone_map = load_bone_map(bpy.path.abspath(self.filepath))
        except BoneMapError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        target = context.active_object
        count = fill_pairs(target, bone_map)
        target.gestura_retarget.preset = "CUSTOM"
        self.report({"INFO"}, f"Loaded {count} pairs from '{bone_map.name}'")
        return {"FINISHED"}


CLASSES = (
    GesturaBonePair,
    GesturaRetargetSettings,
    GESTURA_OT_retarget,
    GESTURA_OT_retarget_map_fill,
    GESTURA_OT_retarget_map_add,
    GESTURA_OT_retarget_map_remove,
    GESTURA_OT_retarget_map_save,
    GESTURA_OT_retarget_map_load,
)
