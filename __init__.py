"""Gestura: speech-driven full-body gestures for SMPL-X armatures.

The repository root is both the Blender extension and the Python package ``gestura``.
Importing it must stay cheap and must not import bpy (the command line and training import
``gestura.inference`` / ``gestura.training`` outside Blender), so everything Blender-specific
is imported inside ``register``.
"""

__version__ = "0.1.0"


def _modules():
    from . import operators, panels, preferences, properties

    # Order matters: property groups before the classes that point at them, panels last.
    return (properties, preferences, operators, panels)


def register():
    for module in _modules():
        module.register()


def unregister():
    for module in reversed(_modules()):
        module.unregister()
