"""The "Retarget" section of the Gestura tab: SMPL-X motion onto the active armature, and its bone map."""
import bpy

from ..operators.retarget import PRESET_ITEMS
from .main import SidebarPanel


class GESTURA_UL_bone_pairs(bpy.types.UIList):
    """One row per SMPL-X joint -> target bone pair; the target is picked from the armature's bones."""

    bl_idname = "GESTURA_UL_bone_pairs"

    def draw_item(self, _context, layout, data, item, _icon, _active_data, _active_propname, _index):
        armature = data.id_data.data
        row = layout.row(align=True)
        row.prop(item, "source", text="", emboss=False)
        row.prop_search(item, "target", armature, "bones", text="", icon="BONE_DATA")
        row.prop(item, "optional", text="", icon="CHECKBOX_HLT" if item.optional else "CHECKBOX_DEHLT", emboss=False)


def _preset_label(key: str) -> str:
    return next((name for k, name, _ in PRESET_ITEMS if k == key), key)


class GESTURA_PT_retarget(SidebarPanel, bpy.types.Panel):
    bl_idname = "GESTURA_PT_retarget"
    bl_label = "Retarget onto Rig"
    bl_order = 30
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        target = context.active_object
        if target is None or target.type != "ARMATURE":
            layout.label(text="Select the armature to retarget onto", icon="INFO")
            return
        settings = target.gestura_retarget
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.label(text=f"Target: {target.name}", icon="ARMATURE_DATA")
        layout.prop(settings, "source")
        layout.prop(settings, "preset")
        if settings.preset == "AUTO":
            from ...rigs.bonemaps import fitting_preset

            found = fitting_preset(b.name for b in target.data.bones)
            row = layout.row()
            row.alignment = "RIGHT"
            if found is not None:
                row.label(text=f"Detected: {found.name}", icon="CHECKMARK")
            else:
                from ..rigs.retarget import guess_for

                guess = guess_for(target)
                if guess.ok:
                    row.label(text=f"No preset fits: {len(guess.bone_map.bones)} joints guessed from bone names",
                              icon="QUESTION")
                    if guess.unmapped:
                        note = layout.row()
                        note.alignment = "RIGHT"
                        note.label(text=f"Not mapped: {', '.join(guess.unmapped)}")
                else:
                    row.label(text=f"Not recognised ({guess.problems[0]}): fill the list below", icon="ERROR")
                show = layout.row()
                show.alignment = "RIGHT"
                show.operator("gestura.retarget_map_fill", text="Show Guessed Map in List", icon="IMPORT").preset = "GUESS"
        layout.prop(settings, "fingers")
        layout.prop(settings, "root_motion")

        box = layout.box()
        box.use_property_split = False
        header = box.row(align=True)
        header.label(text="Bone Map List")
        header.operator_menu_enum("gestura.retarget_map_fill", "preset", text="Fill", icon="IMPORT")
        row = box.row()
        row.template_list("GESTURA_UL_bone_pairs", "", settings, "pairs", settings, "active_pair", rows=4)
        column = row.column(align=True)
        column.operator("gestura.retarget_map_add", text="", icon="ADD")
        column.operator("gestura.retarget_map_remove", text="", icon="REMOVE")
        row = box.row(align=True)
        row.operator("gestura.retarget_map_load", text="Load", icon="FILEBROWSER")
        row.operator("gestura.retarget_map_save", text="Save", icon="FILE_TICK")
        if settings.preset != "CUSTOM" and len(settings.pairs):
            box.label(text=f"The list is used when Bone Map is {_preset_label('CUSTOM')}", icon="INFO")

        column = layout.column()
        column.enabled = settings.source is not None and settings.source != target
        op = column.operator("gestura.retarget", icon="ARMATURE_DATA")
        op.source = settings.source.name if settings.source else ""
        op.target = target.name
        op.preset = settings.preset
        op.fingers = settings.fingers
        op.root_motion = settings.root_motion


CLASSES = (GESTURA_UL_bone_pairs, GESTURA_PT_retarget)
