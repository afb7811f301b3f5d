"""Write tests/fixtures/saved_settings_4_2.blend: a scene with non-default Gestura settings.

Kept to show how the fixture was made: it was run ONCE, with the code of main before issue 14
moved the Blender layer into ``blender/`` (commit c5a35c5), on the Blender 4.2 wheel so that both
4.2 and 5.0 can open it:
    .venv-blender42/bin/python tests/blender_scripts/make_saved_settings_blend.py OUT.blend
The test that reads it back is tests/blender/test_saved_files.py.
"""
import sys

import bpy

import gestura

gestura.register()
bpy.ops.wm.read_homefile(use_empty=True)
settings = bpy.context.scene.gestura
settings.audio_source = "STRIP"
settings.audio_path = "//speech/take_03.wav"
settings.sound_strip = "take_03"
settings.style = "oliver"
settings.seed = 1234
settings.temperature = 0.25
settings.style_strength = 1.5
settings.use_face = False
settings.use_hands = False
settings.start_frame = 25
settings.engine = "TORCH"
settings.new_armature = True
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[1], compress=True)
print("wrote", sys.argv[1])
