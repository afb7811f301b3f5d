"""The "Gestura" tab of the 3D viewport sidebar: speech, style and generation settings.

Panel order in the tab (``bl_order``): 0 Generate from Audio (with its Options sub-panel), then the
rig work's panels (create rig, import/export motion), which use higher ``bl_order`` values.
"""
import bpy

from .. import ADDON_PACKAGE, checkpoint_cache
from ..generate_scene import sound_supported
from ..operators.generate import checkpoint_path, job_running


class SidebarPanel:
    """Where every Gestura panel sits: the 3D viewport's sidebar, tab "Gestura"."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Gestura"


class GESTURA_PT_generate(SidebarPanel, bpy.types.Panel):
    bl_idname = "GESTURA_PT_generate"
    bl_label = "Generate from Audio"
    bl_order = 0

    def draw(self, context):
        settings = context.scene.gestura
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False

        layout.row().prop(settings, "audio_source", expand=True)
        if settings.audio_source == "FILE":
            layout.prop(settings, "audio_path", text="File")
        elif context.scene.sequence_editor:
            editor = context.scene.sequence_editor
            # Blender 5.0 renamed sequences_all to strips_all.
            collection = "strips_all" if hasattr(editor, "strips_all") else "sequences_all"
            layout.prop_search(settings, "sound_strip", editor, collection, text="Strip")
        else:
            row = layout.row()
            row.alignment = "RIGHT"
            row.label(text="The scene has no sound strips", icon="INFO")

        row = layout.row()
        split = row.split(factor=0.4)
        label = split.row()
        label.alignment = "RIGHT"
        label.label(text="Style")
        split.menu("GESTURA_MT_styles", text=settings.style or "Model Default")
        row = layout.row(align=True)
        row.prop(settings, "seed")
        row.operator("gestura.new_seed", text="", icon="FILE_REFRESH")
        layout.prop(settings, "temperature", slider=False)
        layout.prop(settings, "style_strength", slider=False)
        family, plans = _model_kind(context)
        if family == "dim-gestor":  # code models have no sampling steps
            layout.prop(settings, "sampling_steps")
        if plans:  # plan strength guides a model that strokes on a plan
            layout.prop(settings, "plan_strength", slider=False)
        layout.prop(settings, "start_frame")

        column = layout.column(heading="Parts", align=True)
        column.prop(settings, "use_face")
        column.prop(settings, "use_upper")
        column.prop(settings, "use_hands")
        column.prop(settings, "use_lower")

        layout.separator()
        status = context.window_manager.gestura_status
        if status.running or job_running():
            text = f"{status.message} ({status.progress:.0%})" if status.running else "Stopping"
            layout.progress(factor=status.progress, type="BAR", text=text)
            row = layout.row()
            row.alignment = "CENTER"
            row.label(text="Esc cancels; the scene stays unchanged", icon="CANCEL")
        else:
            row = layout.row()
            row.scale_y = 1.5
            row.operator("gestura.generate", text="Generate from Audio", icon="PLAY_SOUND")
            target = _target_hint(context)
            row = layout.row()
            row.alignment = "CENTER"
            row.label(text=target)


def _target_hint(context) -> str:
    settings = context.scene.gestura
    obj = context.active_object
    if settings.new_armature or obj is None or not obj.select_get():
        return "Builds a new SMPL-X armature"
    if obj.type != "ARMATURE" and obj.parent is not None and obj.parent.type == "ARMATURE":
        obj = obj.parent
    if obj.type != "ARMATURE":
        return "Builds a new SMPL-X armature"
    return f"Animates '{obj.name}'"


def _styles(context) -> tuple[list, int]:
    """The loaded model's style names and the index of its default style."""
    try:
        path = checkpoint_path(context)
        return checkpoint_cache.style_names(path), checkpoint_cache.default_style(path)
    except Exception:  # noqa: BLE001 - drawing must never fail; generating reports the problem
        return [], 0


def _model_kind(context) -> tuple[str, bool]:
    """The chosen checkpoint's model family and whether it strokes on a plan; ("", True) when no
    path can be had (the panel then shows what the bundled model reads)."""
    try:
        path = checkpoint_path(context)
        return checkpoint_cache.model_family(path), checkpoint_cache.plans_strokes(path)
    except Exception:  # noqa: BLE001 - drawing must never fail; generating reports the problem
        return "", True


class GESTURA_MT_styles(bpy.types.Menu):
    bl_idname = "GESTURA_MT_styles"
    bl_label = "Style"

    def draw(self, context):
        layout = self.layout
        current = context.scene.gestura.style
        names, default_index = _styles(context)
        if not names:
            layout.label(text="No model found: set one in the add-on preferences", icon="ERROR")
        for index, name in enumerate(names):
            default = " (default)" if index == default_index else ""
            icon = "CHECKMARK" if name == current or (not current and index == default_index) else "BLANK1"
            layout.operator("gestura.set_style", text=name + default, icon=icon).style = name


class GESTURA_PT_generate_options(SidebarPanel, bpy.types.Panel):
    bl_idname = "GESTURA_PT_generate_options"
    bl_label = "Options"
    bl_parent_id = "GESTURA_PT_generate"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        settings = context.scene.gestura
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(settings, "engine")
        layout.prop(settings, "new_armature")
        if not sound_supported():
            layout.label(text="No audio in this Blender build: no sound strip is added", icon="ERROR")
        row = layout.row()
        row.operator("preferences.addon_show", text="Model and Device...", icon="PREFERENCES").module = ADDON_PACKAGE


CLASSES = (GESTURA_MT_styles, GESTURA_PT_generate, GESTURA_PT_generate_options)
