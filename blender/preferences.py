"""Add-on preferences: which engine and device run the model, and which checkpoint."""
import bpy
from bpy.props import EnumProperty, StringProperty

from ..inference.engines.registry import engine_enum_items
from . import ADDON_PACKAGE


class GESTURA_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE  # preferences saved by earlier versions are found under this name

    engine: EnumProperty(name="Engine", items=engine_enum_items(), default="AUTO")
    device: EnumProperty(
        name="Device",
        items=(
            ("AUTO", "Auto", "CUDA when available, else CPU"),
            ("CUDA", "CUDA", "NVIDIA GPU (falls back to the CPU with a warning)"),
            ("CPU", "CPU", "Processor"),
        ),
        default="AUTO",
    )
    checkpoint: StringProperty(
        name="Checkpoint",
        subtype="FILE_PATH",
        description="Model checkpoint (.safetensors); empty uses the bundled default model",
    )
    external_python: StringProperty(
        name="External Python",
        subtype="FILE_PATH",
        description="Python interpreter with PyTorch (and optionally CUDA and mamba-ssm) for the external engine",
    )

    def draw(self, context):
        from . import checkpoint_cache

        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "engine")
        layout.prop(self, "device")
        layout.prop(self, "checkpoint")
        try:
            path = checkpoint_cache.resolve_path(bpy.path.abspath(self.checkpoint) if self.checkpoint else "")
            found = path.is_file()
        except Exception:  # noqa: BLE001 - drawing must never fail
            path, found = None, False
        if not self.checkpoint:
            row = layout.row()
            row.alignment = "RIGHT"
            name = path.name if path else "none"
            row.label(text=f"Bundled model: {name}" if found else "The bundled model is missing", icon="NONE" if found else "ERROR")
        elif not found:
            layout.label(text="No file at this path", icon="ERROR")
        row = layout.row(align=True)
        row.prop(self, "external_python")
        row.operator("gestura.check_external_python")


CLASSES = (GESTURA_AP_preferences,)


register, unregister = bpy.utils.register_classes_factory(CLASSES)


def get(context=None):
    """The add-on's preferences, or None when the package is registered without being an enabled add-on."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None
