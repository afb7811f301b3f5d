"""The Mamba-2 (SSD) mixer: the chunked scan equals the plain recurrence (and Mamba-1's scan, of
which SSD is the scalar-decay case), the mixer is mamba-ssm's layout and forward, gradients flow,
and it is causal."""
import pytest
torch = pytest.importorskip("torch")

import torch.nn.functional as F

from gestura.inference.architecture import mamba2_mixer_shapes
from gestura.inference.torch_model import mamba, mamba2
from gestura.inference.torch_model.mamba import selective_scan_sequential
from gestura.inference.torch_model.mamba2 import Mamba2, both_ways, ssd_scan_chunked, ssd_scan_sequential

torch.set_num_threads(1)


def _inputs(b=2, l=37, h=4, p=3, g=2, n=5, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, l, h, p, generator=gen, dtype=dtype)
    # Large and tiny step sizes both: strong decay must not overflow the chunked form.
    dt = F.softplus(torch.randn(b, l, h, generator=gen, dtype=dtype) * 2)
    A = -torch.exp(torch.randn(h, generator=gen, dtype=dtype) + 1)
    B = torch.randn(b, l, g, n, generator=gen, dtype=dtype)
    C = torch.randn(b, l, g, n, generator=gen, dtype=dtype)
    D = torch.randn(h, generator=gen, dtype=dtype)
    h0 = torch.randn(b, h, p, n, generator=gen, dtype=dtype)
    return x, dt, A, B, C, D, h0


def test_sequential_scan_is_mamba1_with_a_scalar_decay_per_head():
    # One group: channel (head i, j) of Mamba-1's scan with A[i] on every state entry and dt, D per head.
    x, dt, A, B, C, D, h0 = _inputs(g=1)
    b, l, h, p = x.shape
    n = B.shape[-1]
    y, state = ssd_scan_sequential(x, dt, A, B, C, D, h0)
    y1, state1 = selective_scan_sequential(
        x.reshape(b, l, h * p), dt.repeat_interleave(p, -1), A.repeat_interleave(p)[:, None].expand(h * p, n),
        B[:, :, 0], C[:, :, 0], D.repeat_interleave(p), h0.reshape(b, h * p, n))
    assert torch.allclose(y.reshape(b, l, h * p), y1, atol=1e-12)
    assert torch.allclose(state.reshape(b, h * p, n), state1, atol=1e-12)


def test_heads_read_their_groups_b_and_c():
    # Head i reads group i // (h // g): each group's heads scanned alone with that group's B and C.
    x, dt, A, B, C, D, h0 = _inputs(h=4, g=2)
    y, state = ssd_scan_sequential(x, dt, A, B, C, D, h0)
    for group, heads in ((0, slice(0, 2)), (1, slice(2, 4))):
        y_g, state_g = ssd_scan_sequential(x[:, :, heads], dt[:, :, heads], A[heads], B[:, :, group:group + 1],
                                           C[:, :, group:group + 1], D[heads], h0[:, heads])
        assert torch.allclose(y[:, :, heads], y_g) and torch.allclose(state[:, heads], state_g)


@pytest.mark.parametrize(("l", "chunk_size"), [(1, 64), (5, 4), (37, 16), (64, 16), (130, 64), (20, 64), (37, 1)],
                         ids=["one-step", "uneven", "uneven-3-chunks", "whole-chunks", "long", "chunk>l", "chunk-1"])
@pytest.mark.parametrize("ngroups", [1, 2])
@pytest.mark.parametrize("start", ["zero", "state"])
def test_chunked_scan_equals_sequential(l, chunk_size, ngroups, start):
    x, dt, A, B, C, D, h0 = _inputs(l=l, g=ngroups, seed=l)
    h0 = h0 if start == "state" else None
    y_ref, state_ref = ssd_scan_sequential(x, dt, A, B, C, D, h0)
    y, state = ssd_scan_chunked(x, dt, A, B, C, D, h0, chunk_size=chunk_size)
    assert y.shape == y_ref.shape and state.shape == state_ref.shape
    assert torch.allclose(y, y_ref, atol=1e-10, rtol=1e-9)
    assert torch.allclose(state, state_ref, atol=1e-10, rtol=1e-9)


def test_chunked_scan_float32_long_sequence_without_d():
    x, dt, A, B, C, _, _ = _inputs(b=1, l=300, h=8, p=16, g=2, n=16, seed=3, dtype=torch.float32)
    y_ref, state_ref = ssd_scan_sequential(x, dt, A, B, C)
    y, state = ssd_scan_chunked(x, dt, A, B, C)
    assert torch.isfinite(y).all()
    assert torch.allclose(y, y_ref, atol=1e-4, rtol=1e-4)
    assert torch.allclose(state, state_ref, atol=1e-4, rtol=1e-4)


def test_chunked_scan_gradients_match_sequential():
    inputs = [t.clone().requires_grad_(True) for t in _inputs(l=21)]
    grads = []
    for scan in (ssd_scan_sequential, lambda *a: ssd_scan_chunked(*a, chunk_size=8)):
        for t in inputs:
            t.grad = None
        y, state = scan(*inputs)
        (y.pow(2).sum() + state.sum()).backward()
        grads.append([t.grad.clone() for t in inputs])
    for g_seq, g_chunked in zip(*grads):
        assert torch.allclose(g_seq, g_chunked, atol=1e-9, rtol=1e-8)


def test_state_dict_is_mamba2_mixer_shapes():
    mixer = Mamba2(48, d_state=16, d_conv=3, expand=2, headdim=12, ngroups=2)
    shapes = {f"blocks.0.mixer.{name}": tuple(t.shape) for name, t in mixer.state_dict().items()}
    assert shapes == mamba2_mixer_shapes("blocks.0.mixer.", 48, 16, 3, 2, 12, 2)


def test_initialisation_follows_mamba_ssm():
    torch.manual_seed(0)
    mixer = Mamba2(64, d_state=16, headdim=8)
    dt = F.softplus(mixer.dt_bias)
    A = torch.exp(mixer.A_log)
    assert mixer.nheads == 16
    assert ((dt >= 1e-3 * 0.999) & (dt <= 0.1 * 1.001)).all()
    assert ((A >= 1) & (A <= 16)).all()
    assert torch.equal(mixer.D, torch.ones(16)) and torch.equal(mixer.norm.weight, torch.ones(128))


@pytest.mark.parametrize(("kwargs", "message"), [(dict(headdim=24), "headdim"), (dict(headdim=16, ngroups=3), "ngroups")])
def test_shapes_that_do_not_divide_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Mamba2(64, **kwargs)  # d_inner 128: 24 does not divide it; 8 heads of 16 do not split in 3 groups


def _reference_forward(mixer: Mamba2, u: torch.Tensor) -> torch.Tensor:
    """mamba-ssm's ``Mamba2.forward`` without its kernels, written out: padded conv cut to L, the
    sequential scan, and ``rms_norm_ref`` of its gated norm (norm_before_gate=False, grouped)."""
    di, gn, h, g, n = mixer.d_inner, mixer.ngroups * mixer.d_state, mixer.nheads, mixer.ngroups, mixer.d_state
    b, l, _ = u.shape
    z, xBC, dt = torch.split(mixer.in_proj(u), [di, di + 2 * gn, h], dim=-1)
    conv = F.conv1d(xBC.transpose(1, 2), mixer.conv1d.weight, mixer.conv1d.bias, padding=mixer.d_conv - 1,
                    groups=di + 2 * gn)
    x, B, C = torch.split(F.silu(conv[..., :l]).transpose(1, 2), [di, gn, gn], dim=-1)
    y, _ = ssd_scan_sequential(x.reshape(b, l, h, -1), F.softplus(dt + mixer.dt_bias), -torch.exp(mixer.A_log),
                               B.reshape(b, l, g, n), C.reshape(b, l, g, n), mixer.D)
    y = y.reshape(b, l, di) * F.silu(z)
    groups = y.reshape(b, l, g, -1)
    y = (groups * torch.rsqrt(groups.pow(2).mean(-1, keepdim=True) + 1e-5)).reshape(b, l, di) * mixer.norm.weight
    return mixer.out_proj(y)


def _perturbed(mixer: Mamba2) -> Mamba2:
    """Non-trivial D, norm weights and conv (their initial values are ones or small)."""
    with torch.no_grad():
        for name in ("D", "norm.weight", "conv1d.bias"):
            param = mixer.get_parameter(name)
            param.add_(torch.randn_like(param) * 0.5)
    return mixer


@pytest.mark.parametrize("ngroups", [1, 2])
def test_forward_is_mamba_ssm_forward_written_out(ngroups):
    torch.manual_seed(ngroups)
    mixer = _perturbed(Mamba2(32, d_state=8, headdim=8, ngroups=ngroups, chunk_size=16)).double()
    u = torch.randn(2, 45, 32, dtype=torch.float64)
    assert torch.allclose(mixer(u), _reference_forward(mixer, u), atol=1e-10)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    mixer = Mamba2(32, d_state=8, headdim=8, ngroups=2, chunk_size=16)
    u = torch.randn(2, 40, 32, requires_grad=True)
    mixer(u).pow(2).mean().backward()
    for name, param in [("u", u), *mixer.named_parameters()]:
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_output_at_t_ignores_later_inputs_and_both_ways_hears_them():
    torch.manual_seed(0)
    mixer, mixer_back = (Mamba2(32, d_state=8, headdim=8, chunk_size=16) for _ in range(2))
    u = torch.randn(1, 50, 32)
    changed = u.clone()
    changed[:, 21:] = torch.randn(1, 29, 32)
    with torch.no_grad():
        assert torch.allclose(mixer(u)[:, :21], mixer(changed)[:, :21], atol=1e-6)
        assert not torch.allclose(mixer(u)[:, 21:], mixer(changed)[:, 21:], atol=1e-3)
        both = both_ways(mixer, mixer_back, u)
        assert torch.allclose(both, mixer(u) + mixer_back(u.flip(1)).flip(1))
        assert not torch.allclose(both_ways(mixer, mixer_back, changed)[:, :21], both[:, :21], atol=1e-3)


def test_one_kernel_switch_for_both_mixers():
    assert mamba2.set_kernels is mamba.set_kernels
    mamba2.set_kernels(False)
    try:
        assert not mamba2.kernels_enabled()
    finally:
        mamba2.set_kernels(True)
    assert mamba2.kernels_enabled() == mamba2.kernels_available()
