"""Gestura: speech-driven full-body gestures for SMPL-X armatures.

The repository root is both the Blender extension and the Python package ``gestura``.
Importing it must stay cheap and must not import bpy (the command line and training import
``gestura.inference`` / ``gestura.training`` outside Blender), so everything Blender-specific
is imported inside ``register``: the Blender layer is the package ``blender/``.
"""

__version__ = "0.1.0"


def register():
    from . import blender

    blender.register()


def unregister():
    from . import blender

    blender.unregister()
