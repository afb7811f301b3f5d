"""Shared fixtures: the real bpy module, the real extension build and install, espeak-ng speech.

Blender tests are marked ``blender``; ``make test`` runs them on Blender 5.0 (the main venv, with
torch) and again on Blender 4.2 (a venv without torch).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Blender reads this when bpy is first imported: extensions installed by the tests go to a
# throw-away folder, never into the user's real Blender configuration. setdefault, because test
# modules that `from conftest import ...` execute this file a second time.
if "GESTURA_TEST_USER_RESOURCES" not in os.environ:
    os.environ["GESTURA_TEST_USER_RESOURCES"] = tempfile.mkdtemp(prefix="gestura-blender-user-")
os.environ["BLENDER_USER_RESOURCES"] = os.environ["GESTURA_TEST_USER_RESOURCES"]
EXTENSION_MODULE = "bl_ext.user_default.gestura"


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if any("gpu" in item.keywords for item in items) and not _has_cuda():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


_exit_status = 0


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    # Blender's own Rigify (enabled by a retarget test) makes the bpy 4.2 wheel segfault at process
    # exit, even disabled again: `import bpy, addon_utils; addon_utils.enable("rigify")` then exit
    # is enough (rc -11). 4.2 never frees an unregistered PropertyGroup class, Rigify's have
    # methods, their modules' globals keep the bpy module alive through Python's shutdown, and
    # Blender's exit (run when bpy is freed) never happens. No code of ours can avoid it, so once
    # pytest has reported, leave without the teardown. Only then: our own add-on must still exit
    # cleanly here (and test_extension checks it in a fresh process).
    bpy = sys.modules.get("bpy")
    if bpy is not None and "rigify" in sys.modules and not bpy.app.binary_path and bpy.app.version < (4, 3, 0):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)


@pytest.fixture(scope="session")
def bpy():
    return pytest.importorskip("bpy")


def blender_ext_tool(bpy) -> Path:
    """Blender's own extension tool, shipped inside the bpy wheel."""
    return Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


def run_blender_ext(bpy, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(blender_ext_tool(bpy)), *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="session")
def extension_zip(bpy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("extension")
    done = run_blender_ext(bpy, "build", "--source-dir", str(REPO), "--output-dir", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    (zip_path,) = out.glob("gestura-*.zip")
    return zip_path


@pytest.fixture(scope="session")
def extension(bpy, extension_zip):
    """The built extension, installed and enabled the way "Install from Disk" does it."""
    if EXTENSION_MODULE not in bpy.context.preferences.addons:
        result = bpy.ops.extensions.package_install_files(
            filepath=str(extension_zip), repo="user_default", enable_on_install=True
        )
        assert result == {"FINISHED"}
    return sys.modules[EXTENSION_MODULE]


@pytest.fixture
def empty_scene(bpy):
    """An empty scene; enabled extensions stay enabled."""
    bpy.ops.wm.read_homefile(use_empty=True)
    return bpy.context.scene


def espeak(text: str, path: Path, voice: str = "en", speed: int = 160, pitch: int = 50) -> Path:
    """Speak ``text`` into a wav file with espeak-ng (22.05 kHz mono, 16-bit)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.fail("espeak-ng is not installed: run `make test`, which installs it, or apt-get install espeak-ng")
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text], check=True)
    return path


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    """About five seconds of real speech."""
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    return espeak(
        "Hello there. Today I want to show you how the hands move when we talk, and why it matters.", path
    )


@pytest.fixture
def unwritable_folder(tmp_path):
    """An existing folder no file can be created in, for whoever runs the tests.

    Permission bits stop ordinary users; root ignores them, so as root the folder is made
    immutable (chattr +i, ext4/xfs), which stops root too. Skipped where neither works.
    """
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without immutable folders: no unwritable folder to test")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)
