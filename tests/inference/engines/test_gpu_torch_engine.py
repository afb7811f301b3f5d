"""On a CUDA GPU: the PyTorch engine gives the CPU's motion, for both model families, with the
mamba-ssm kernels when they import and without them. Skipped without CUDA.

CUDA does not compute in plain float32 everywhere: PyTorch lets cuDNN run convolutions in TF32
on Ampere and later GPUs (``torch.backends.cudnn.allow_tf32``, on by default), and mamba-ssm's
Triton SSD kernel takes TF32 for its float32 products (Triton's default), both about 3e-4
relative. Measured on an H200 (bench/gpu_check.sh, README "Engines"), over 8 s of the example
recording at temperature 0, pure path or kernels: the bundled model's axis-angle values within 3.3e-4 rad of
the CPU's (a code chosen differently moves a joint by 1e-2 rad or more, so none was),
translation within 1.8e-6 m, expressions within 3.4e-4; the code generator is held to 1e-3 rad,
1e-4 m and 1e-3 per expression here (the CPU engines: 1e-3, 1e-4, 1e-4). DiM-Gestor on random
weights carries that rounding through its guided sampling steps: on the pure path its poses
differed by an elementwise mean of 8e-4 rad (held here to a mean geodesic angle of 1e-2), through
the Triton kernel by 3.8e-2, half the values over 5e-3; so one denoiser call is held to 5e-3
relative (a few TF32 products deep), and the whole generation with the kernels only to running
with the CPU's frames. The audio is the bundled example recording, since a device machine may
have no espeak-ng to speak the other tests' speech.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gestura.inference import pipeline
from gestura.inference.audio import SAMPLE_RATE, load_audio
from gestura.inference.checkpoint import Checkpoint, default_checkpoint_path, identity_stats, load_checkpoint
from gestura.inference.engines.torch import TorchEngine
from gestura.inference.torch_model import mamba, mamba2
from gestura.inference.torch_model.model import GesturaModel

from conftest import REPO
from random_checkpoint import random_tensors, speech_stats, tiny_config, write_random_checkpoint
from test_engine_numpy import geodesic

pytestmark = pytest.mark.gpu

DIM = tiny_config(family="dim-gestor", d_model=64, headdim=32, mamba2_d_state=16, denoiser_layers=2,
                  speech_layers=1, span_codes=12, prefix_codes=4, sampling_steps=4)


@pytest.fixture(scope="module")
def speech():
    return load_audio(REPO / "examples" / "speech.wav")[: 8 * SAMPLE_RATE]


@pytest.fixture(params=[False, True], ids=["pure", "kernels"])
def kernels(request):
    if request.param and not (mamba.kernels_available() and mamba2.kernels_available()):
        pytest.skip("mamba-ssm is not installed (optional)")
    mamba.set_kernels(request.param)
    yield request.param
    mamba.set_kernels(True)


def both(request, checkpoint):
    """The motion on the CPU and on CUDA."""
    return [pipeline.generate(request, checkpoint=checkpoint, engine=TorchEngine(device)) for device in ("cpu", "cuda")]


def test_bundled_model_gives_the_cpu_motion_on_cuda(speech, kernels):
    if not default_checkpoint_path().is_file():
        pytest.skip(f"no bundled model at {default_checkpoint_path()}")
    cpu, gpu = both(pipeline.GenerationRequest(audio=speech, temperature=0.0), load_checkpoint(None))
    angle = geodesic(cpu.poses, gpu.poses).max()
    print(f"bundled model, CPU vs CUDA ({'kernels' if kernels else 'pure'}): {angle:.2e} rad, "
          f"{np.abs(cpu.trans - gpu.trans).max():.2e} m, expressions {np.abs(cpu.expressions - gpu.expressions).max():.2e}")
    assert cpu.num_frames == gpu.num_frames
    assert angle < 1e-3
    np.testing.assert_allclose(gpu.trans, cpu.trans, atol=1e-4, rtol=0)
    np.testing.assert_allclose(gpu.expressions, cpu.expressions, atol=1e-3, rtol=0)


@pytest.fixture(scope="module")
def dim_checkpoint(speech, tmp_path_factory):
    return load_checkpoint(write_random_checkpoint(tmp_path_factory.mktemp("dim") / "dim.safetensors", DIM,
                                                   ["calm", "lively"], seed=1, stats=speech_stats(speech)))


def test_one_dim_gestor_denoiser_call_is_the_cpu_one_on_cuda(kernels):
    checkpoint = Checkpoint(tensors=random_tensors(DIM, seed=3), config=DIM, stats=identity_stats(),
                            styles=["a", "b"], stage="full")
    model = GesturaModel.from_checkpoint(checkpoint).eval()
    g = torch.Generator().manual_seed(0)
    n = DIM.span_codes + DIM.prefix_codes
    features = torch.randn(2, n * DIM.frames_per_code + DIM.lookahead, DIM.feature_dim, generator=g)
    x = torch.randn(2, n, DIM.latent_dim, generator=g)
    known = torch.randn(2, n, DIM.latent_dim, generator=g)
    mask = (torch.rand(2, n, 4, generator=g) < 0.3).float()

    def run(device):
        model.to(device)
        on = [t.to(device) for t in (features, x, known, mask)]
        with torch.no_grad():
            cond, style = model.generator.condition(on[0], torch.tensor([-1, 1], device=device))
            return model.generator.denoise(on[1], torch.full((2,), 0.7, device=device), cond, style, on[2],
                                           on[3]).cpu()

    cpu, gpu = run("cpu"), run("cuda")
    error = ((gpu - cpu).norm() / cpu.norm()).item()
    print(f"DiM-Gestor denoiser, CPU vs CUDA ({'kernels' if kernels else 'pure'}): relative error {error:.2e}")
    assert cpu.abs().max() > 0.1
    assert error < 5e-3


def test_dim_gestor_generates_on_cuda_from_the_cpu_noise(speech, dim_checkpoint, kernels):
    request = pipeline.GenerationRequest(audio=speech, seed=3, style="lively", style_strength=1.5)
    cpu, gpu = both(request, dim_checkpoint)
    angle = geodesic(cpu.poses, gpu.poses)
    print(f"DiM-Gestor, CPU vs CUDA ({'kernels' if kernels else 'pure'}): geodesic max {angle.max():.2e}, "
          f"mean {angle.mean():.2e}, median {np.median(angle):.2e} rad")
    assert cpu.num_frames == gpu.num_frames and np.isfinite(gpu.poses).all()
    assert np.abs(cpu.poses).max() > 0.05
    if not kernels:  # the Triton kernel's TF32 rounding, carried through guided steps, is checked per call above
        assert angle.mean() < 1e-2
