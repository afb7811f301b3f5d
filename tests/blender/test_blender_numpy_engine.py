"""The installed extension generates with the NumPy engine: in Blender 4.2 without torch (the
``.venv-blender42`` run) and in Blender 5.0 with the engine forced to numpy.

A fresh Blender process where soundfile and scipy cannot be imported (Blender ships neither)
decodes the speech with Blender's own ``aud`` (or the wave module where the bpy wheel lacks
audaspace), generates, and never imports torch even when it is installed.
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import EXTENSION_MODULE, REPO

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from random_checkpoint import write_random_checkpoint

    return str(write_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"))


def test_installed_extension_generates_and_keys_an_armature_with_the_numpy_engine(
        bpy, extension, empty_scene, speech_wav, tiny_checkpoint):
    pipeline = importlib.import_module(f"{EXTENSION_MODULE}.inference.pipeline")
    engines = importlib.import_module(f"{EXTENSION_MODULE}.inference.engines.registry")
    features = importlib.import_module(f"{EXTENSION_MODULE}.inference.features")
    audio = importlib.import_module(f"{EXTENSION_MODULE}.inference.audio")
    if not engines.torch_available():
        # Blender without PyTorch: "auto" is the NumPy engine.
        assert engines.resolve_engine("auto", "auto").name == "numpy"

    engine = engines.resolve_engine("numpy", "auto")
    request = pipeline.GenerationRequest(audio=str(speech_wav), style="alice", seed=11, temperature=0.7)
    steps = []
    motion = pipeline.generate(request, checkpoint=tiny_checkpoint, engine=engine,
                               progress=lambda fraction, message: steps.append(fraction))
    frames = features.num_frames(len(audio.load_audio(speech_wav)))
    assert motion.num_frames == frames > 100 and motion.fps == 30.0
    assert np.isfinite(motion.poses).all() and np.ptp(motion.poses[:, 16:22], axis=0).max() > 0.01
    assert steps[-1] == 1.0 and len(steps) >= 3

    armature = importlib.import_module(f"{EXTENSION_MODULE}.blender.rigs.armature")
    keyframes = importlib.import_module(f"{EXTENSION_MODULE}.blender.rigs.keyframes")
    empty_scene.render.fps, empty_scene.render.fps_base = 30, 1.0  # one key per generated frame
    obj = armature.create_smplx_armature(bpy.context, "Speaker", mannequin=False)
    keyframes.write_motion(obj, motion, "Speaker_gestures")
    back = keyframes.read_motion(obj)
    assert back.num_frames == motion.num_frames
    np.testing.assert_allclose(back.poses[:, 16:22], motion.poses[:, 16:22], atol=1e-3)



def test_installed_extension_generates_with_a_diffusion_checkpoint(bpy, extension, speech_wav, tmp_path):
    # DiM-Gestor in a stock Blender: the checkpoint's family alone picks the diffusion stream.
    from random_checkpoint import tiny_config, write_random_checkpoint

    config = tiny_config(family="dim-gestor", headdim=8, mamba2_d_state=8, denoiser_layers=2, span_codes=8,
                         prefix_codes=2, sampling_steps=3)
    path = str(write_random_checkpoint(tmp_path / "dim.safetensors", config))
    pipeline = importlib.import_module(f"{EXTENSION_MODULE}.inference.pipeline")
    engines = importlib.import_module(f"{EXTENSION_MODULE}.inference.engines.registry")
    steps = []
    request = pipeline.GenerationRequest(audio=str(speech_wav), seed=2)
    motion = pipeline.generate(request, checkpoint=path, engine=engines.resolve_engine("numpy", "auto"),
                               progress=lambda fraction, message: steps.append(fraction))
    assert np.isfinite(motion.poses).all() and np.ptp(motion.poses[:, 16:22], axis=0).max() > 0.01
    windows = -(-motion.num_frames // (4 * config.span_codes))
    assert steps[-1] == 1.0 and len(steps) >= windows * config.sampling_steps

_FRESH_BLENDER = r"""
import json, os, sys, tempfile
os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="gestura-fresh-")
for name in ("soundfile", "scipy"):
    sys.modules[name] = None  # Blender ships neither: imports of them fail
import bpy
result = bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default", enable_on_install=True)
assert result == {"FINISHED"}, result
import importlib
ext = "bl_ext.user_default.gestura"
pipeline = importlib.import_module(ext + ".inference.pipeline")
audio_blender = importlib.import_module(ext + ".inference.audio_blender")
request = pipeline.GenerationRequest(audio=sys.argv[2], temperature=0.0)
motion = pipeline.generate(request, checkpoint=sys.argv[3], engine="numpy")
print("REPORT " + json.dumps({
    "frames": motion.num_frames,
    "moving": float(abs(motion.poses).max()),
    "aud": audio_blender.aud_available(),
    "torch_imported": "torch" in sys.modules and sys.modules["torch"] is not None,
}), flush=True)
"""


def test_fresh_blender_without_soundfile_or_scipy_generates_and_never_imports_torch(
        bpy, extension_zip, speech_wav, tiny_checkpoint):
    done = subprocess.run([sys.executable, "-c", _FRESH_BLENDER, str(extension_zip), str(speech_wav), tiny_checkpoint],
                          capture_output=True, text=True, timeout=300, cwd=str(REPO.parent))
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT "):])
    assert report["frames"] > 100 and report["moving"] > 0.01
    assert report["aud"] == bool(getattr(bpy.app.build_options, "audaspace", True))
    assert not report["torch_imported"]
