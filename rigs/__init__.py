"""SMPL-X skeleton facts and motion math (no bpy), plus the Blender glue in ``rigs.blender``.

Everything importable from here without Blender: ``skeleton``, ``rotations``, ``kinematics``,
``motion`` (the Motion structure and its file formats). Modules under ``rigs.blender`` import bpy
and are only imported by operators.
"""
