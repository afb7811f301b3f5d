"""Install the built extension like "Install from Disk", enable, inspect, disable, remove.

Runs in its own Python process (a fresh bpy) so that removal is checked on a clean slate.
Prints one JSON object describing what was registered at each step.
"""
import json
import os
import sys
import tempfile

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="gestura-install-")
import bpy  # noqa: E402

MODULE = "bl_ext.user_default.gestura"
zip_path, operator_ids, panel_ids = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")


def registered():
    ops = [op for op in operator_ids if hasattr(bpy.ops.gestura, op.split(".", 1)[1]) and _op_exists(op)]
    return {
        "addon_enabled": MODULE in bpy.context.preferences.addons,
        "operators": ops,
        "panels": [p for p in panel_ids if hasattr(bpy.types, p)],
        "preferences": MODULE in bpy.context.preferences.addons
        and bpy.context.preferences.addons[MODULE].preferences is not None,
        "scene_settings": hasattr(bpy.types.Scene, "gestura"),
        "torch_imported": "torch" in sys.modules,
    }


def _op_exists(idname):
    try:
        getattr(bpy.ops.gestura, idname.split(".", 1)[1]).get_rna_type()
        return True
    except KeyError:
        return False


report = {"before": registered()}
report["install"] = sorted(
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
)
report["enabled"] = registered()
prefs = bpy.context.preferences.addons[MODULE].preferences
report["default_engine"] = prefs.engine
bpy.ops.preferences.addon_disable(module=MODULE)
report["disabled"] = registered()
repo = next(r for r in bpy.context.preferences.extensions.repos if r.module == "user_default")
report["uninstall"] = sorted(bpy.ops.extensions.package_uninstall(repo_directory=repo.directory, pkg_id="gestura"))
report["left_on_disk"] = sorted(name for name in os.listdir(repo.directory) if not name.startswith("."))
report["removed"] = registered()
print("REPORT " + json.dumps(report))
