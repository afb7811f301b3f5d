"""Sidebar panels (3D viewport, tab "Gestura")."""
import bpy

from . import main, rig, retarget

_MODULES = (main, rig, retarget)

CLASSES = tuple(cls for module in _MODULES for cls in module.CLASSES)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
