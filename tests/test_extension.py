"""The extension as users get it: validated and built by Blender's own tool, installed from disk."""
import json
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO, run_blender_ext

pytestmark = pytest.mark.blender


def test_blender_validates_the_repository(bpy):
    done = run_blender_ext(bpy, "validate", str(REPO))
    assert done.returncode == 0, done.stdout + done.stderr


def test_built_zip_leaves_out_training_tests_and_benchmarks(extension_zip):
    names = zipfile.ZipFile(extension_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "inference/__init__.py" in names and "rigs/skeleton.py" in names
    for excluded in ("training/", "tests/", "bench/", ".venv", "__pycache__", ".git/", "requirements/"):
        assert not [n for n in names if n.startswith(excluded) or f"/{excluded}" in n], excluded


def test_install_enable_disable_remove_leaves_nothing_registered(bpy, extension_zip):
    from bl_ext_names import operator_ids, panel_ids

    ops, panels = operator_ids(), panel_ids()
    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "blender_scripts" / "install_roundtrip.py"), str(extension_zip),
         ",".join(ops), ",".join(panels)],
        capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(lines[-1][len("REPORT "):])

    assert report["before"]["operators"] == [] and not report["before"]["addon_enabled"]
    assert report["install"] == ["FINISHED"]
    enabled = report["enabled"]
    assert enabled["addon_enabled"] and enabled["preferences"] and enabled["scene_settings"]
    assert enabled["operators"] == ops
    assert enabled["panels"] == panels
    assert report["default_engine"] == "AUTO"
    assert not enabled["torch_imported"], "enabling the add-on must not import torch"
    for state in ("disabled", "removed"):
        assert report[state]["operators"] == [] and report[state]["panels"] == [], state
        assert not report[state]["scene_settings"] and not report[state]["addon_enabled"], state
    assert report["uninstall"] == ["FINISHED"]
    assert report["left_on_disk"] == []
