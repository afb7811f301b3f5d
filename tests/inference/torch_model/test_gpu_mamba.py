"""On a CUDA GPU: the mamba-ssm kernel, the pure-PyTorch parallel scan on the GPU and the CPU
sequential scan give the same outputs with the same weights. Skipped without CUDA."""
import pytest
torch = pytest.importorskip("torch")

from gestura.inference.config import CONFIGS
from gestura.inference.torch_model import mamba
from gestura.inference.torch_model.mamba import Mamba
from gestura.inference.torch_model.model import GesturaModel
from gestura.rigs.skeleton import PARTS

pytestmark = pytest.mark.gpu


@pytest.fixture
def modes():
    yield
    mamba.set_kernels(True)
    mamba.set_scan_mode("auto")


def _mixer_outputs(mixer, x, kernels: bool, mode: str):
    mamba.set_kernels(kernels)
    mamba.set_scan_mode(mode)
    with torch.no_grad():
        return mixer(x)


def test_pure_parallel_scan_on_gpu_matches_cpu_sequential(modes):
    torch.manual_seed(0)
    mixer = Mamba(128, d_state=16)
    x = torch.randn(2, 300, 128)
    cpu_y, (_, cpu_h) = _mixer_outputs(mixer, x, False, "sequential")
    gpu = mixer.cuda()
    gpu_y, (_, gpu_h) = _mixer_outputs(gpu, x.cuda(), False, "parallel")
    assert torch.allclose(gpu_y.cpu(), cpu_y, atol=1e-4, rtol=1e-4)
    assert torch.allclose(gpu_h.cpu(), cpu_h, atol=1e-4, rtol=1e-4)


def test_mamba_ssm_kernel_matches_pure_path_with_same_weights(modes):
    pytest.importorskip("mamba_ssm", reason="mamba-ssm is not installed (optional)")
    assert mamba.kernels_available()
    torch.manual_seed(0)
    mixer = Mamba(256, d_state=16).cuda()
    x = torch.randn(4, 512, 256, device="cuda")
    pure_y, (_, pure_h) = _mixer_outputs(mixer, x, False, "parallel")
    kernel_y, (_, kernel_h) = _mixer_outputs(mixer, x, True, "auto")
    err = (kernel_y - pure_y).abs().max().item()
    print(f"mamba-ssm vs pure PyTorch: max |dy| = {err:.2e}, max |dh| = {(kernel_h - pure_h).abs().max().item():.2e}")
    assert torch.allclose(kernel_y, pure_y, atol=1e-3, rtol=1e-3)
    assert torch.allclose(kernel_h, pure_h, atol=1e-3, rtol=1e-3)
    # Streaming continues from the kernel's last state on the pure path.
    more = torch.randn(4, 7, 256, device="cuda")
    mamba.set_kernels(True)
    with torch.no_grad():
        _, state = mixer(x)
        cont, _ = mixer(more, state)
        whole, _ = mixer(torch.cat([x, more], 1))
    assert torch.allclose(cont, whole[:, -7:], atol=1e-3, rtol=1e-3)


def test_small_model_generator_same_on_gpu_and_cpu(modes):
    torch.manual_seed(0)
    config = CONFIGS["small"]
    model = GesturaModel(config).eval()
    n, r = 12, config.frames_per_code
    feats = torch.randn(1, n * r + config.lookahead, config.input_width)
    codes = torch.randint(0, config.codebook_size, (1, n, len(PARTS)))
    codes[:, n // 2:] = -1  # the second half of the span is hidden, as in training
    plan = (torch.rand(1, n * r) < 0.1).float()

    def run(device):
        model.to(device)
        with torch.no_grad():
            logits, apex = model.generator(feats.to(device), torch.tensor([0], device=device), model.codebooks(),
                                           codes.to(device), plan.to(device))
        return {p: v.cpu() for p, v in logits.items()}, apex.cpu()

    (cpu_logits, cpu_apex), (gpu_logits, gpu_apex) = run("cpu"), run("cuda")
    for p in PARTS:
        assert torch.allclose(gpu_logits[p], cpu_logits[p], atol=1e-3, rtol=1e-3)
    assert torch.allclose(gpu_apex, cpu_apex, atol=1e-3, rtol=1e-3)
