"""The external engine driven from inside Blender (bpy), with the installed extension's code.

The worker runs in the project's own ``.venv`` Python (PyTorch): generation, progress, cancel.
Broken interpreters are real processes too: one that exits at start, one killed mid-run, one that
freezes, one without torch (the Blender 4.2 venv), and one that never answers.
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
import time

import numpy as np
import pytest

from conftest import EXTENSION_MODULE, REPO
from gestura.rigs.rotations import axis_angle_to_matrix

pytestmark = [
    pytest.mark.blender,
    pytest.mark.skipif(os.name != "posix", reason="the broken interpreters are POSIX shell scripts"),
]

VENV_PYTHON = REPO / ".venv" / "bin" / "python"
NO_TORCH_PYTHON = REPO / ".venv-blender42" / "bin" / "python"


@pytest.fixture(scope="module")
def ext(extension):
    """The installed extension's own modules (``bl_ext.user_default.gestura.inference...``)."""
    def module(name):
        return importlib.import_module(f"{EXTENSION_MODULE}.{name}")

    return module


@pytest.fixture(scope="module")
def venv_python():
    if not VENV_PYTHON.exists():
        pytest.skip(f"the project's venv Python {VENV_PYTHON} does not exist: run `make test` to build it")
    return str(VENV_PYTHON)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from random_checkpoint import write_random_checkpoint

    return str(write_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"))


def fake_python(folder, name, body: str) -> str:
    """An executable that the engine starts as if it were a Python interpreter."""
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def wrapped_worker(folder, venv_python, name, action: str, after: float) -> str:
    """The real worker in the venv Python, which ``action`` ("kill" or "freeze") hits ``after``
    seconds into the run (torch is imported first, so the worker is already working by then)."""
    signal_name = {"kill": "SIGKILL", "freeze": "SIGSTOP"}[action]
    script = folder / f"{name}.py"
    script.write_text(
        "import os, runpy, signal, threading\n"
        "import torch\n"
        f"threading.Timer({after}, lambda: os.kill(os.getpid(), signal.{signal_name})).start()\n"
        "runpy.run_module('gestura.inference.worker', run_name='__main__')\n"
    )
    return fake_python(folder, name, f'exec "{venv_python}" "{script}"')


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal(int(16000 * seconds))).astype(np.float32)


def test_generates_in_the_venv_python_and_matches_the_numpy_engine(ext, venv_python, tiny_checkpoint, speech_wav):
    pipeline = ext("inference.pipeline")
    worker = ext("inference.engines.external").ExternalWorker(venv_python)
    request = pipeline.GenerationRequest(audio=str(speech_wav), style="bob", seed=5, temperature=0.0)
    seen = []
    motion = pipeline.generate(request, checkpoint=tiny_checkpoint, engine=worker,
                               progress=lambda fraction, message: seen.append((fraction, message)))
    local = pipeline.generate(request, checkpoint=tiny_checkpoint, engine="numpy")

    assert motion.num_frames == local.num_frames > 100
    # The worker ran torch, this process numpy: the engines' documented agreement (on the rotations,
    # as below).
    np.testing.assert_allclose(axis_angle_to_matrix(motion.poses), axis_angle_to_matrix(local.poses), atol=1e-3)
    np.testing.assert_allclose(motion.trans, local.trans, atol=1e-4)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("External PyTorch" in m for _, m in seen) and any(m.startswith("Generated") for _, m in seen)
    assert process_gone(worker.last_pid)
    assert not os.path.exists(worker.last_folder), "the temporary files were left behind"
    # The worker ran the installed extension's code, not the repository's editable install.
    assert os.path.samefile(worker.worker_package, os.path.dirname(sys.modules[EXTENSION_MODULE].__file__))


def test_the_worker_generates_from_a_diffusion_checkpoint_like_the_numpy_engine(ext, venv_python, speech_wav,
                                                                                tmp_path):
    from random_checkpoint import tiny_config, write_random_checkpoint

    config = tiny_config(family="dim-gestor", headdim=8, mamba2_d_state=8, denoiser_layers=2, span_codes=8,
                         prefix_codes=2, sampling_steps=3)
    checkpoint = str(write_random_checkpoint(tmp_path / "dim.safetensors", config))
    pipeline = ext("inference.pipeline")
    request = pipeline.GenerationRequest(audio=str(speech_wav), seed=5, sampling_steps=2)
    motion = pipeline.generate(request, checkpoint=checkpoint,
                               engine=ext("inference.engines.external").ExternalWorker(venv_python))
    local = pipeline.generate(request, checkpoint=checkpoint, engine="numpy")
    assert motion.num_frames == local.num_frames > 100
    # The diffusion engines' tolerance, on the rotations: a joint turned by nearly 180 degrees has two
    # axis-angle forms far apart, and float rounding may pick either.
    np.testing.assert_allclose(axis_angle_to_matrix(motion.poses), axis_angle_to_matrix(local.poses), atol=5e-3)
    # The worker took the request's steps, not the checkpoint's 3.
    own = pipeline.generate(pipeline.GenerationRequest(audio=str(speech_wav), seed=5), checkpoint=checkpoint,
                            engine="numpy")
    assert np.abs(own.poses - local.poses).max() > 5e-2


def test_cancel_stops_the_worker_mid_run(ext, venv_python, tiny_checkpoint):
    pipeline = ext("inference.pipeline")
    worker = ext("inference.engines.external").ExternalWorker(venv_python)
    request = pipeline.GenerationRequest(audio=noise(120.0))
    fractions = []
    cancelled_at = []

    def cancel():
        if fractions and fractions[-1] > 0 and not cancelled_at:
            cancelled_at.append(time.monotonic())
        return bool(cancelled_at)

    with pytest.raises(pipeline.Cancelled):
        pipeline.generate(request, checkpoint=tiny_checkpoint, engine=worker,
                          progress=lambda fraction, message: fractions.append(fraction), cancel=cancel)
    assert cancelled_at, "generation ended before it could be cancelled"
    assert time.monotonic() - cancelled_at[0] < worker.cancel_grace + 4.0
    assert 0 < max(fractions) < 1.0
    assert process_gone(worker.last_pid) and not os.path.exists(worker.last_folder)


def test_cancel_while_the_worker_is_starting(ext, venv_python, tiny_checkpoint):
    pipeline = ext("inference.pipeline")
    worker = ext("inference.engines.external").ExternalWorker(venv_python)
    started = time.monotonic()
    with pytest.raises(pipeline.Cancelled):
        pipeline.generate(pipeline.GenerationRequest(audio=noise(2.0)), checkpoint=tiny_checkpoint,
                          engine=worker, cancel=lambda: time.monotonic() - started > 0.3)
    assert process_gone(worker.last_pid)


def test_worker_killed_mid_run_is_reported(ext, venv_python, tiny_checkpoint, tmp_path):
    external = ext("inference.engines.external")
    pipeline = ext("inference.pipeline")
    worker = external.ExternalWorker(wrapped_worker(tmp_path, venv_python, "dies", "kill", after=1.5))
    progress = []
    with pytest.raises(external.ExternalWorkerError, match="stopped unexpectedly .*SIGKILL") as caught:
        pipeline.generate(pipeline.GenerationRequest(audio=noise(600.0)), checkpoint=tiny_checkpoint,
                          engine=worker, progress=lambda fraction, message: progress.append(message))
    assert isinstance(caught.value, pipeline.GenerationError)
    assert any("External PyTorch" in m for m in progress), "it should have died after getting ready"
    assert not os.path.exists(worker.last_folder)


def test_worker_that_freezes_is_stopped_after_the_stall_timeout(ext, venv_python, tiny_checkpoint, tmp_path):
    external = ext("inference.engines.external")
    pipeline = ext("inference.pipeline")
    worker = external.ExternalWorker(wrapped_worker(tmp_path, venv_python, "freezes", "freeze", after=1.5),
                                     stall_timeout=2.0)
    with pytest.raises(external.ExternalWorkerError, match="showed no progress for 2 s"):
        pipeline.generate(pipeline.GenerationRequest(audio=noise(600.0)), checkpoint=tiny_checkpoint, engine=worker)
    assert process_gone(worker.last_pid) and not os.path.exists(worker.last_folder)


def test_interpreter_that_never_answers_times_out(ext, tiny_checkpoint, tmp_path):
    external = ext("inference.engines.external")
    pipeline = ext("inference.pipeline")
    worker = external.ExternalWorker(fake_python(tmp_path, "silent", "exec sleep 120"), startup_timeout=1.5)
    started = time.monotonic()
    with pytest.raises(external.ExternalWorkerError, match="did not get ready for 2 s"):
        pipeline.generate(pipeline.GenerationRequest(audio=noise(1.0)), checkpoint=tiny_checkpoint, engine=worker)
    assert time.monotonic() - started < 15
    assert process_gone(worker.last_pid)


def test_interpreter_that_fails_at_start_is_reported_with_its_message(ext, tiny_checkpoint, tmp_path):
    external = ext("inference.engines.external")
    pipeline = ext("inference.pipeline")
    broken = fake_python(tmp_path, "broken", 'echo "Fatal Python error: failed to get the Python codec" >&2\nexit 3')
    with pytest.raises(external.ExternalWorkerError,
                       match=r"stopped before it was ready \(exit code 3\): Fatal Python error: failed to get"):
        pipeline.generate(pipeline.GenerationRequest(audio=noise(1.0)), checkpoint=tiny_checkpoint,
                          engine=external.ExternalWorker(broken))


def test_interpreter_without_torch_is_reported(ext, tiny_checkpoint):
    if not NO_TORCH_PYTHON.exists():
        pytest.skip(f"{NO_TORCH_PYTHON} (the venv without torch) does not exist: run `make test` to build it")
    external = ext("inference.engines.external")
    pipeline = ext("inference.pipeline")
    worker = external.ExternalWorker(str(NO_TORCH_PYTHON))
    with pytest.raises(external.ExternalWorkerError, match="has no PyTorch.*install torch"):
        pipeline.generate(pipeline.GenerationRequest(audio=noise(1.0)), checkpoint=tiny_checkpoint, engine=worker)
    with pytest.warns(RuntimeWarning, match="has no PyTorch"):
        assert not external.external_healthy(str(NO_TORCH_PYTHON))


def test_missing_interpreter_and_auto_choice(ext, venv_python, tmp_path):
    external = ext("inference.engines.external")
    engines = ext("inference.engines.registry")
    with pytest.raises(external.ExternalWorkerError, match="is not an executable file"):
        external.ExternalWorker(str(tmp_path / "no-python")).run(None)
    with pytest.raises(external.ExternalWorkerError, match="No external Python is set"):
        external.ExternalWorker("").run(None)
    # The error names the setting the user sees, not an internal argument.
    with pytest.raises(engines.EngineError) as error:
        engines.resolve_engine("external", "auto")
    assert "Preferences > Add-ons > Gestura > External Python" in str(error.value)
    assert "python=" not in str(error.value)
    # Inside Blender, "auto" takes a healthy external Python ...
    assert external.in_blender()
    assert engines.resolve_engine("auto", "auto", python=venv_python).name == "external"
    # ... and without one (or with a broken one) what this Python can run itself.
    fallback = "torch" if engines.torch_available() else "numpy"
    assert engines.resolve_engine("auto", "auto").name == fallback
    with pytest.warns(RuntimeWarning, match="no-python' does not exist: generating in Blender's own Python instead"):
        assert engines.resolve_engine("auto", "auto", python=str(tmp_path / "no-python")).name == fallback


def test_the_generate_operator_without_an_external_python_names_the_preference(bpy, ext, speech_wav, tiny_checkpoint):
    prefs = bpy.context.preferences.addons[EXTENSION_MODULE].preferences
    saved = prefs.external_python
    prefs.external_python = ""
    try:
        with pytest.raises(RuntimeError, match=r"^Error: the external engine needs a Python with PyTorch: choose one "
                                               r"in Preferences > Add-ons > Gestura > External Python"):
            bpy.ops.gestura.generate(audio_path=str(speech_wav), engine="EXTERNAL", checkpoint=tiny_checkpoint)
    finally:
        prefs.external_python = saved


def test_a_request_error_in_the_worker_comes_back_as_its_message(ext, venv_python, tiny_checkpoint):
    external = ext("inference.engines.external")
    pipeline = ext("inference.pipeline")
    request = pipeline.GenerationRequest(audio=noise(1.0), style="nobody")
    with pytest.raises(external.ExternalWorkerError, match="style 'nobody' is not in this model: choose one of alice, bob"):
        pipeline.generate(request, checkpoint=tiny_checkpoint, engine=external.ExternalWorker(venv_python))


def test_cuda_request_without_cuda_runs_on_the_cpu_and_the_warning_reaches_blender(ext, venv_python, tiny_checkpoint):
    external = ext("inference.engines.external")
    pipeline = ext("inference.pipeline")
    report = ext("inference.probe").probe_interpreter(venv_python)
    if report.cuda:
        pytest.skip("this venv's PyTorch has CUDA: the CPU fallback is not exercised")
    worker = external.ExternalWorker(venv_python)
    request = pipeline.GenerationRequest(audio=noise(2.0), device="cuda")
    with pytest.warns(RuntimeWarning, match="^External Python: CUDA was requested .* generating on the CPU$"):
        motion = pipeline.generate(request, checkpoint=tiny_checkpoint, engine=worker)
    assert motion.num_frames == 60


def test_interpreter_without_numpy_is_told_what_to_install(ext, venv_python, tiny_checkpoint, tmp_path):
    external = ext("inference.engines.external")
    pipeline = ext("inference.pipeline")
    # The venv Python with numpy made unimportable: PyTorch imports, Gestura cannot.
    script = tmp_path / "no_numpy.py"
    script.write_text("import runpy, sys\nsys.modules['numpy'] = None\n"
                      "runpy.run_module('gestura.inference.worker', run_name='__main__')\n")
    worker = external.ExternalWorker(fake_python(tmp_path, "no-numpy", f'exec "{venv_python}" "{script}"'))
    with pytest.raises(external.ExternalWorkerError, match="lacks 'numpy'.*pip install numpy"):
        pipeline.generate(pipeline.GenerationRequest(audio=noise(1.0)), checkpoint=tiny_checkpoint, engine=worker)
