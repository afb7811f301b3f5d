"""Training and evaluation (no bpy): BEAT2-format datasets, the synthetic corpus, stage 1 and 2, metrics.

Not part of the Blender extension zip.
"""
