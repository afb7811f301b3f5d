"""Blender side of the rig: SMPL-X armature, mannequin body, fast keyframes, expressions.

The only part of ``rigs`` that imports bpy; the math it relies on lives in the bpy-free modules
next to it and is tested there.
"""
from .armature import RigError, armature_rest_joints, create_smplx_armature, missing_smplx_bones, require_smplx_bones
from .expressions import EXPRESSION_PROPERTY, drive_expression_shape_keys
from .keyframes import read_motion, write_motion

__all__ = [
    "EXPRESSION_PROPERTY",
    "RigError",
    "armature_rest_joints",
    "create_smplx_armature",
    "drive_expression_shape_keys",
    "missing_smplx_bones",
    "read_motion",
    "require_smplx_bones",
    "write_motion",
]
