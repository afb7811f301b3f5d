"""The "Rig" and "Export" panels of the Gestura tab."""
import bpy

from ..operators.rig import selected_armature
from .main import SidebarPanel


class GESTURA_PT_rig(SidebarPanel, bpy.types.Panel):
    bl_idname = "GESTURA_PT_rig"
    bl_label = "Rig"

    def draw(self, context):
        from ..rigs import missing_smplx_bones

        layout = self.layout
        column = layout.column(align=True)
        column.operator("gestura.create_rig", icon="ARMATURE_DATA")
        column.operator("gestura.import_motion", icon="IMPORT")
        obj = selected_armature(context)
        if obj is None:
            layout.label(text="No armature selected: motion goes onto a new rig", icon="INFO")
            return
        missing = missing_smplx_bones(obj)
        if missing:
            layout.label(text=f"'{obj.name}' lacks {len(missing)} SMPL-X bones", icon="ERROR")
        else:
            action = obj.animation_data.action if obj.animation_data else None
            layout.label(text=f"{obj.name}: {action.name if action else 'no action'}", icon="CHECKMARK")


class GESTURA_PT_export(SidebarPanel, bpy.types.Panel):
    bl_idname = "GESTURA_PT_export"
    bl_label = "Export"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        column = self.layout.column(align=True)
        column.enabled = selected_armature(context) is not None
        for fmt, label in (("NPZ", "Export NPZ (BEAT2)"), ("BVH", "Export BVH"), ("FBX", "Export FBX")):
            column.operator("gestura.export_motion", text=label, icon="EXPORT").format = fmt


CLASSES = (GESTURA_PT_rig, GESTURA_PT_export)
