"""On a CUDA GPU: the Mamba-2 mixer's pure chunked path on the GPU equals the CPU's, and with
mamba-ssm installed, its ``Mamba2`` loaded with our state_dict and our mixer on its kernel give
our pure output. Skipped without CUDA."""
import pytest
torch = pytest.importorskip("torch")

from gestura.inference.torch_model import mamba2
from gestura.inference.torch_model.mamba2 import Mamba2

pytestmark = pytest.mark.gpu


@pytest.fixture
def no_kernels():
    mamba2.set_kernels(False)
    yield
    mamba2.set_kernels(True)


def test_pure_chunked_path_on_gpu_matches_cpu(no_kernels):
    torch.manual_seed(0)
    mixer = Mamba2(128, d_state=32, headdim=32, ngroups=2).eval()
    x = torch.randn(2, 300, 128)
    with torch.no_grad():
        cpu_y = mixer(x)
        gpu_y = mixer.cuda()(x.cuda())
    assert torch.allclose(gpu_y.cpu(), cpu_y, atol=1e-4, rtol=1e-4)


def test_mamba_ssm_mamba2_matches_ours_with_the_same_weights(no_kernels):
    modules = pytest.importorskip("mamba_ssm.modules.mamba2", reason="mamba-ssm is not installed (optional)")
    assert mamba2.kernels_available()
    torch.manual_seed(0)
    d_model, d_state, d_conv, expand, headdim, ngroups, chunk_size = 256, 64, 4, 2, 64, 2, 64
    ours = Mamba2(d_model, d_state, d_conv, expand, headdim, ngroups, chunk_size).cuda().eval()
    theirs = modules.Mamba2(d_model, d_state=d_state, d_conv=d_conv, expand=expand, headdim=headdim, ngroups=ngroups,
                            rmsnorm=True, norm_before_gate=False, D_has_hdim=False, bias=False, conv_bias=True,
                            chunk_size=chunk_size, device="cuda").eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 500, d_model, device="cuda")  # 500: not a whole number of chunks
    with torch.no_grad():
        pure = ours(x)
        mamba2.set_kernels(True)
        kernel = ours(x)
        reference = theirs(x)
    print(f"mamba-ssm Mamba2 vs ours (pure): max |dy| = {(reference - pure).abs().max().item():.2e}; "
          f"our kernel path vs pure: {(kernel - pure).abs().max().item():.2e}")
    assert torch.allclose(reference, pure, atol=1e-3, rtol=1e-3)
    assert torch.allclose(kernel, pure, atol=1e-3, rtol=1e-3)
