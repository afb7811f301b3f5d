"""The Blender layer: everything that imports bpy.

``properties`` (scene settings), ``preferences`` (add-on preferences), ``operators/``, ``panels/``,
``generate_scene`` (what a generation changes in the scene, and undoing it), ``checkpoint_cache``,
``generation_job`` (the background-job runner of the modal operator), ``blend_output`` (the
``.blend`` writer of ``gestura generate``) and ``rigs/`` (armatures, keyframes, retargeting glue).
The math lives in ``inference/`` and ``rigs/``; this layer only translates between Blender data
and arrays, and nothing outside it imports it (except the root ``register``).
"""

# The extension's own package ("gestura", or "bl_ext.<repository>.gestura" when installed):
# Blender keys the add-on's preferences by it, so it must stay the root package's name.
ADDON_PACKAGE = __name__.rpartition(".")[0]


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
