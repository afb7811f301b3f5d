"""Files the user saved with an earlier version keep working after the layout change of issue 14.

tests/fixtures/saved_settings_4_2.blend was written by tests/blender_scripts/make_saved_settings_blend.py
with the code of main before the Blender layer moved (Blender 4.2): its scene holds non-default
Gestura settings, which the installed extension must read back unchanged (scene RNA path
``scene.gestura``, property names and enum items are what a saved file depends on).
"""
from __future__ import annotations

import importlib
import shutil

import pytest

from conftest import EXTENSION_MODULE, REPO

pytestmark = pytest.mark.blender

FIXTURE = REPO / "tests" / "fixtures" / "saved_settings_4_2.blend"


def test_scene_settings_saved_by_the_previous_layout_read_back(bpy, extension, tmp_path):
    copy = tmp_path / "saved.blend"
    shutil.copyfile(FIXTURE, copy)  # never let Blender touch the committed fixture
    bpy.ops.wm.open_mainfile(filepath=str(copy))
    try:
        settings = bpy.context.scene.gestura
        assert (settings.audio_source, settings.audio_path, settings.sound_strip) == (
            "STRIP", "//speech/take_03.wav", "take_03")
        assert (settings.style, settings.seed, settings.start_frame) == ("oliver", 1234, 25)
        assert settings.temperature == pytest.approx(0.25)
        assert settings.style_strength == pytest.approx(1.5)
        assert (settings.use_face, settings.use_upper, settings.use_hands, settings.use_lower) == (
            False, True, False, True)
        assert (settings.engine, settings.new_armature) == ("TORCH", True)
    finally:
        bpy.ops.wm.read_homefile(use_empty=True)


def test_preferences_stay_keyed_by_the_extension_package(bpy, extension):
    """userpref.blend stores add-on preferences under the add-on's module name."""
    addon = bpy.context.preferences.addons[EXTENSION_MODULE]
    assert addon.preferences is not None
    assert type(addon.preferences).bl_idname == EXTENSION_MODULE


def test_engine_menus_come_from_the_engine_table(bpy, extension):
    registry = importlib.import_module(f"{EXTENSION_MODULE}.inference.engines.registry")
    scene_items = [item.identifier for item in bpy.context.scene.gestura.bl_rna.properties["engine"].enum_items]
    addon = bpy.context.preferences.addons[EXTENSION_MODULE]
    prefs_items = [item.identifier for item in addon.preferences.bl_rna.properties["engine"].enum_items]
    names = [name.upper() for name in registry.ENGINE_NAMES]
    assert scene_items == ["PREFERENCES", *names] and prefs_items == names
