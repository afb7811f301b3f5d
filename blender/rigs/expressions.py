"""The 100 FLAME expression coefficients on the armature, and drivers onto expression shape keys.

The coefficients live in one animatable float-array custom property on the armature object, so
they travel with the rig (and its action) even when no face mesh exists. A mesh bound to the
armature that has SMPL-X-style expression shape keys gets drivers from that property. The SMPL-X
Blender add-on names its expression keys ``Exp000``, ``Exp001``, ... (three digits, as its
"Reset Face Expression" and pose loader use them); those names are what is looked for.
"""
from __future__ import annotations

import bpy

from ...rigs.skeleton import NUM_EXPRESSIONS

EXPRESSION_PROPERTY = "smplx_expressions"
EXPRESSION_KEY_FORMAT = "Exp{:03d}"
# Shape key values are clamped to their slider range (0..1 by default); coefficients are not.
_SLIDER_LIMIT = 10.0


def ensure_expression_property(obj) -> None:
    if EXPRESSION_PROPERTY not in obj.keys() or len(obj[EXPRESSION_PROPERTY]) != NUM_EXPRESSIONS:
        obj[EXPRESSION_PROPERTY] = [0.0] * NUM_EXPRESSIONS
        ui = obj.id_properties_ui(EXPRESSION_PROPERTY)
        ui.update(
            description="SMPL-X / FLAME expression coefficients (drive Exp000.. shape keys of the body)",
            soft_min=-3.0, soft_max=3.0,
        )


def expression_meshes(armature) -> list:
    """Meshes deformed by ``armature`` (children or Armature-modifier users) with shape keys."""
    meshes = []
    for obj in bpy.data.objects:
        if obj.type != "MESH" or obj.data.shape_keys is None:
            continue
        bound = obj.parent == armature or any(
            m.type == "ARMATURE" and m.object == armature for m in obj.modifiers
        )
        if bound:
            meshes.append(obj)
    return meshes


def drive_expression_shape_keys(armature) -> int:
    """Add drivers from the armature's coefficients to every ``Exp###`` shape key of its meshes.

    Keys that already have a driver are left alone, so calling this again changes nothing.
    Returns how many drivers were added.
    """
    ensure_expression_property(armature)
    added = 0
    for mesh in expression_meshes(armature):
        key = mesh.data.shape_keys
        driven = set()
        if key.animation_data is not None:
            driven = {d.data_path for d in key.animation_data.drivers}
        for index in range(NUM_EXPRESSIONS):
            block = key.key_blocks.get(EXPRESSION_KEY_FORMAT.format(index))
            if block is None:
                continue
            if block.path_from_id("value") in driven:
                continue
            block.slider_min = min(block.slider_min, -_SLIDER_LIMIT)
            block.slider_max = max(block.slider_max, _SLIDER_LIMIT)
            curve = block.driver_add("value")
            driver = curve.driver
            driver.type = "AVERAGE"
            variable = driver.variables.new()
            variable.name = "coefficient"
            variable.type = "SINGLE_PROP"
            target = variable.targets[0]
            target.id_type = "OBJECT"
            target.id = armature
            target.data_path = f'["{EXPRESSION_PROPERTY}"][{index}]'
            added += 1
    return added
