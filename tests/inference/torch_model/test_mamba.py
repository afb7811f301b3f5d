"""The selective scan: parallel, blocked and step forms equal the plain recurrence; blocks stream
exactly; the stacked mixers of generation equal the modules they are made of."""
import pytest
torch = pytest.importorskip("torch")

from gestura.inference.config import ModelConfig
from gestura.inference.torch_model import mamba
from gestura.inference.torch_model.mamba import (
    BiMambaBlock, BiMambaLayer, GranularBiMambaBlock, GranularBiMambaLayer, Mamba, MambaBlock, StackedMamba,
    bidirectional_block, pool_time, selective_scan_blocked, selective_scan_parallel, selective_scan_sequential,
    selective_scan_step, unpool_time,
)

torch.set_num_threads(1)


def _inputs(b=2, l=37, d=6, n=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, l, d, generator=g, dtype=dtype)
    # Large and tiny step sizes both: strong decay must not overflow the parallel form.
    dt = torch.nn.functional.softplus(torch.randn(b, l, d, generator=g, dtype=dtype) * 2)
    A = -torch.exp(torch.randn(d, n, generator=g, dtype=dtype) + 1)
    B = torch.randn(b, l, n, generator=g, dtype=dtype)
    C = torch.randn(b, l, n, generator=g, dtype=dtype)
    D = torch.randn(d, generator=g, dtype=dtype)
    h0 = torch.randn(b, d, n, generator=g, dtype=dtype)
    return x, dt, A, B, C, D, h0


def test_sequential_matches_hand_computed_recurrence():
    x, dt, A, B, C, D, h0 = _inputs(b=1, l=3, d=1, n=1)
    h = h0[0, 0, 0]
    for t in range(3):
        h = torch.exp(dt[0, t, 0] * A[0, 0]) * h + dt[0, t, 0] * B[0, t, 0] * x[0, t, 0]
        expected = C[0, t, 0] * h + D[0] * x[0, t, 0]
        y, _ = selective_scan_sequential(x[:, :t + 1], dt[:, :t + 1], A, B[:, :t + 1], C[:, :t + 1], D, h0)
        assert torch.allclose(y[0, t, 0], expected)


@pytest.mark.parametrize("chunk", [1, 4, 5, 16, 64])
def test_parallel_scan_equals_sequential_recurrence(chunk):
    x, dt, A, B, C, D, h0 = _inputs()
    y_ref, h_ref = selective_scan_sequential(x, dt, A, B, C, D, h0)
    y, h = selective_scan_parallel(x, dt, A, B, C, D, h0, chunk=chunk)
    assert torch.allclose(y, y_ref, atol=1e-10, rtol=1e-9)
    assert torch.allclose(h, h_ref, atol=1e-10, rtol=1e-9)


def test_parallel_scan_float32_long_sequence():
    x, dt, A, B, C, D, _ = _inputs(b=1, l=300, d=8, n=16, seed=3, dtype=torch.float32)
    y_ref, _ = selective_scan_sequential(x, dt, A, B, C, D)
    y, _ = selective_scan_parallel(x, dt, A, B, C, D)
    assert torch.isfinite(y).all()
    assert torch.allclose(y, y_ref, atol=1e-4, rtol=1e-4)


def test_parallel_scan_gradients_match_sequential():
    inputs = [t.clone().requires_grad_(True) for t in _inputs(l=20)]
    grads = []
    for fn in (selective_scan_sequential, selective_scan_parallel):
        for t in inputs:
            t.grad = None
        y, h = fn(*inputs)
        (y.pow(2).sum() + h.sum()).backward()
        grads.append([t.grad.clone() for t in inputs])
    for g_seq, g_par in zip(*grads):
        assert torch.allclose(g_seq, g_par, atol=1e-9, rtol=1e-8)


@pytest.mark.parametrize("block_floats", [1, 5 * 6 * 4, 1 << 17], ids=["one-step-blocks", "uneven-blocks", "whole"])
@pytest.mark.parametrize("grad", [True, False], ids=["autograd", "in-place"])
def test_blocked_scan_equals_sequential_recurrence(monkeypatch, block_floats, grad):
    # Blocks of 1, 5 and all 37 steps; without autograd the blocked form writes its states in place.
    monkeypatch.setattr(mamba, "_BLOCK_FLOATS", block_floats)
    x, dt, A, B, C, D, h0 = _inputs()
    y_ref, h_ref = selective_scan_sequential(x, dt, A, B, C, D, h0)
    with torch.set_grad_enabled(grad):
        y, h = selective_scan_blocked(x, dt, A, B, C, D, h0)
    assert torch.allclose(y, y_ref, atol=1e-10, rtol=1e-9)
    assert torch.allclose(h, h_ref, atol=1e-10, rtol=1e-9)
    y0, _ = selective_scan_blocked(x, dt, A, B, C, D)  # no incoming state: zeros
    assert torch.allclose(y0, selective_scan_sequential(x, dt, A, B, C, D)[0], atol=1e-10, rtol=1e-9)
    y_empty, h_empty = selective_scan_blocked(x[:, :0], dt[:, :0], A, B[:, :0], C[:, :0], D, h0)
    assert y_empty.shape == (2, 0, 6) and torch.equal(h_empty, h0)


def test_blocked_scan_gradients_match_sequential():
    inputs = [t.clone().requires_grad_(True) for t in _inputs(l=20)]
    grads = []
    for fn in (selective_scan_sequential, selective_scan_blocked):
        for t in inputs:
            t.grad = None
        y, h = fn(*inputs)
        (y.pow(2).sum() + h.sum()).backward()
        grads.append([t.grad.clone() for t in inputs])
    for g_seq, g_blocked in zip(*grads):
        assert torch.allclose(g_seq, g_blocked, atol=1e-9, rtol=1e-8)


def test_blocked_scan_runs_stacked_mixers_each_with_its_own_weights():
    # Leading axes (mixer, batch): mixer m has its own A and D, as StackedMamba passes them.
    runs = [_inputs(seed=s) for s in range(3)]
    stacked = [torch.stack([run[i] for run in runs]) for i in range(7)]
    x, dt, A, B, C, D, h0 = stacked
    y, h = selective_scan_blocked(x, dt, A.unsqueeze(1), B, C, D[:, None, None], h0)
    for m, run in enumerate(runs):
        y_ref, h_ref = selective_scan_sequential(*run)
        assert torch.allclose(y[m], y_ref, atol=1e-10, rtol=1e-9)
        assert torch.allclose(h[m], h_ref, atol=1e-10, rtol=1e-9)


def _perturbed(module):
    # Norm weights, biases and D away from their initial values, so a wrong one would show.
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name or "bias" in name or name.endswith("D") or "fuse" in name:
                p.add_(torch.randn_like(p) * 0.3)
    return module.eval()


def test_stacked_mamba_equals_each_mixer():
    torch.manual_seed(2)
    mixers = [_perturbed(Mamba(16, d_state=8).double()) for _ in range(3)]
    x = torch.randn(3, 2, 23, 16, dtype=torch.float64)
    with torch.inference_mode():
        y = StackedMamba(mixers)(x)
        for m, mixer in enumerate(mixers):
            assert torch.allclose(y[m], mixer(x[m])[0], atol=1e-10)


@pytest.mark.parametrize("mlp_ratio", [2.0, 0.0], ids=["mlp", "no-mlp"])
def test_bi_mamba_layer_equals_each_block(mlp_ratio):
    torch.manual_seed(3)
    config = ModelConfig(d_model=16, d_state=8, mlp_ratio=mlp_ratio)
    blocks = [_perturbed(BiMambaBlock(config).double()) for _ in range(4)]
    x = torch.randn(4, 2, 20, 16, dtype=torch.float64)
    with torch.inference_mode():
        y = BiMambaLayer(blocks)(x)
        for p, block in enumerate(blocks):
            assert torch.allclose(y[p], block(x[p])[0], atol=1e-10)


@pytest.mark.parametrize("n", [16, 94, 5])
def test_granular_layer_equals_each_block(n):
    # 94 = a window scan's frames (64 + 30 look-ahead): groups of 4 and 8 end in a shorter one.
    torch.manual_seed(4)
    config = ModelConfig(d_model=16, d_state=8)
    blocks = [_perturbed(GranularBiMambaBlock(config, (1, 2, 4, 8)).double()) for _ in range(3)]
    x = torch.randn(3, 2, n, 16, dtype=torch.float64)
    with torch.inference_mode():
        y = GranularBiMambaLayer(blocks)(x)
        for p, block in enumerate(blocks):
            assert torch.allclose(y[p], block(x[p])[0], atol=1e-10)


def test_time_pooling_means_groups_from_the_first_step_and_unpooling_repeats_them():
    x = torch.arange(7, dtype=torch.float64)[:, None] * torch.tensor([1.0, -2.0], dtype=torch.float64)
    pooled = pool_time(x, 3)
    assert pooled[:, 0].tolist() == [1.0, 4.0, 6.0]  # (0,1,2) (3,4,5) (6)
    assert unpool_time(pooled, 3, 7)[:, 0].tolist() == [1, 1, 1, 4, 4, 4, 6]
    assert pool_time(x, 1) is x


def test_a_coarse_branch_hears_only_the_means_of_its_groups():
    # With one granularity of 4, moving values inside a group of 4 (keeping its mean) changes
    # nothing but the gates; with the gates at their initial 1 the block's branch output is the same.
    torch.manual_seed(6)
    block = bidirectional_block(ModelConfig(d_model=16, d_state=8), (4,)).double()
    h = torch.randn(1, 12, 16, dtype=torch.float64)
    moved = h.clone()
    moved[0, 4:8] = h[0, 4:8].flip(0)
    with torch.no_grad():
        y, _ = block.mix(h)
        y_moved, _ = block.mix(moved)
    assert torch.allclose(y, y_moved, atol=1e-12)
    assert torch.allclose(y[0, 4], y[0, 7], atol=1e-12)  # one value per group
    fine = bidirectional_block(ModelConfig(d_model=16, d_state=8), (1, 4)).double()
    with torch.no_grad():
        assert not torch.allclose(fine.mix(h)[0], fine.mix(moved)[0], atol=1e-6)


def test_the_granular_block_keeps_the_parameter_count():
    plain, granular = (bidirectional_block(ModelConfig(d_model=32), g) for g in ((1,), (1, 2, 4, 8)))
    assert isinstance(plain, BiMambaBlock) and isinstance(granular, GranularBiMambaBlock)
    count = [sum(p.numel() for p in block.parameters()) for block in (plain, granular)]
    assert count[1] - count[0] == 4 * (32 + 1)  # the fuse gates only


def test_depthwise_conv_without_autograd_equals_conv1d():
    # Generation runs the mixer's depthwise conv as multiply-adds; training runs conv1d.
    from gestura.inference.torch_model.layers import CausalConv1d

    torch.manual_seed(4)
    conv = CausalConv1d(6, 6, 4, groups=6).double()
    x, state = torch.randn(2, 6, 9, dtype=torch.float64), torch.randn(2, 6, 3, dtype=torch.float64)
    expected, expected_state = conv(x, state)
    with torch.no_grad():
        y, new_state = conv(x, state)
    assert torch.allclose(y, expected, atol=1e-12)
    assert torch.equal(new_state, expected_state)


def test_step_form_equals_parallel():
    x, dt, A, B, C, D, h0 = _inputs()
    y_par, h_par = selective_scan_parallel(x, dt, A, B, C, D, h0, chunk=8)
    h = h0
    for t in range(x.shape[1]):
        y_t, h = selective_scan_step(x[:, t], dt[:, t], A, B[:, t], C[:, t], D, h)
        assert torch.allclose(y_t, y_par[:, t], atol=1e-10)
    assert torch.allclose(h, h_par, atol=1e-10)


@pytest.fixture(params=["parallel", "blocked", "sequential"])
def scan_mode(request):
    mamba.set_scan_mode(request.param)
    yield request.param
    mamba.set_scan_mode("auto")


def test_mamba_mixer_forms_agree():
    torch.manual_seed(0)
    mixer = Mamba(16, d_state=8).double()
    x = torch.randn(2, 70, 16, dtype=torch.float64)
    outs = []
    for mode in ("parallel", "blocked", "sequential"):
        mamba.set_scan_mode(mode)
        outs.append(mixer(x)[0])
    mamba.set_scan_mode("auto")
    with torch.inference_mode():  # auto without autograd on the CPU: the blocked form
        outs.append(mixer(x)[0])
    for out in outs[:-1] + outs[-1:]:
        assert torch.allclose(out, outs[2], atol=1e-10)


def test_mamba_mixer_chunked_with_state_equals_whole_sequence(scan_mode):
    torch.manual_seed(0)
    mixer = Mamba(16, d_state=8, d_conv=4, expand=2).double()
    x = torch.randn(2, 50, 16, dtype=torch.float64)
    whole, _ = mixer(x)
    pieces, state = [], None
    for lo, hi in ((0, 1), (1, 7), (7, 8), (8, 33), (33, 50)):  # single steps and chunks mixed
        y, state = mixer(x[:, lo:hi], state)
        pieces.append(y)
    assert torch.allclose(torch.cat(pieces, 1), whole, atol=1e-10)


def test_mamba_block_with_mlp_streams():
    torch.manual_seed(1)
    block = MambaBlock(ModelConfig(d_model=32)).double()
    x = torch.randn(1, 40, 32, dtype=torch.float64)
    whole, _ = block(x)
    state, out = None, []
    for t in range(40):
        y, state = block(x[:, t:t + 1], state)
        out.append(y)
    assert torch.allclose(torch.cat(out, 1), whole, atol=1e-10)


def test_kernels_are_optional():
    # On a machine without mamba-ssm the module imports and reports it; the pure path runs.
    assert isinstance(mamba.kernels_available(), bool)
    if not mamba.kernels_available():
        assert not mamba.kernels_enabled()
