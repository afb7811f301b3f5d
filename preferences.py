"""Add-on preferences: which engine and device run the model, and which checkpoint."""
import bpy
from bpy.props import EnumProperty, StringProperty


class GESTURA_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    engine: EnumProperty(
        name="Engine",
        items=(
            ("AUTO", "Auto", "External worker if configured and healthy, else PyTorch if importable, else NumPy"),
            ("NUMPY", "NumPy", "Runs in any Blender with nothing installed"),
            ("TORCH", "PyTorch", "PyTorch inside Blender's Python (must be installed there)"),
            ("EXTERNAL", "External Python", "PyTorch in a separate Python interpreter (CUDA without touching Blender)"),
        ),
        default="AUTO",
    )
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
        layout = self.layout
        layout.prop(self, "engine")
        layout.prop(self, "device")
        layout.prop(self, "checkpoint")
        row = layout.row()
        row.prop(self, "external_python")
        row.operator("gestura.check_external_python")


CLASSES = (GESTURA_AP_preferences,)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)


def get(context=None) -> GESTURA_AP_preferences:
    context = context or bpy.context
    return context.preferences.addons[__package__].preferences
