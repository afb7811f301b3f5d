"""SMPL-X skeleton facts and motion math (no bpy).

Everything here imports without Blender: ``skeleton``, ``rotations``, ``kinematics``, ``motion``
(the Motion structure and its file formats), the retarget math and the bone maps. Their Blender
glue (armatures, keyframes, actions, retargeting onto bones) is ``blender/rigs/``.
"""
