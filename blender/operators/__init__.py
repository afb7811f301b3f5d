"""Blender operators. Each module lists its classes in ``CLASSES``; registration order follows ``_MODULES``."""
import bpy

from . import check_python, generate, rig, export, retarget

_MODULES = (check_python, generate, rig, export, retarget)

CLASSES = tuple(cls for module in _MODULES for cls in module.CLASSES)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    retarget.register_properties()


def unregister():
    retarget.unregister_properties()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
