"""Sidebar panels (3D viewport, tab "Gestura")."""
import bpy

from . import main, rig, retarget

_MODULES = (main, rig, retarget)

CLASSES = tuple(cls for module in _MODULES for cls in module.CLASSES)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
