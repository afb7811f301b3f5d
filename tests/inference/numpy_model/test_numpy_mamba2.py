"""numpy_model.mamba2: the chunked scan against the recurrence, the recurrence against torch's,
and the mixer against torch's on the same weights."""
from __future__ import annotations

import numpy as np
import pytest

from gestura.inference.numpy_model.mamba2 import Mamba2, both_ways, ssd_scan_chunked, ssd_scan_sequential


def _scan_inputs(rng, batch, l, h=4, p=3, g=2, n=5):
    x = rng.normal(size=(*batch, l, h, p)).astype(np.float32)
    dt = np.log1p(np.exp(rng.normal(size=(*batch, l, h)) * 2)).astype(np.float32)
    A = -np.exp(rng.normal(size=h) + 1).astype(np.float32)
    B, C = rng.normal(size=(2, *batch, l, g, n)).astype(np.float32)
    D = rng.normal(size=h).astype(np.float32)
    h0 = rng.normal(size=(*batch, h, p, n)).astype(np.float32)
    return x, dt, A, B, C, D, h0


@pytest.mark.parametrize(("batch", "l", "chunk_size"), [((), 1, 64), ((), 37, 16), ((2,), 64, 16), ((2,), 130, 64),
                                                         ((2, 3), 20, 64), ((), 300, 64)],
                         ids=["one-step", "uneven", "whole-chunks", "long-uneven", "chunk>l", "300"])
@pytest.mark.parametrize("ngroups", [1, 2])
@pytest.mark.parametrize("start", ["zero", "state"])
def test_chunked_scan_equals_sequential(batch, l, chunk_size, ngroups, start):
    x, dt, A, B, C, D, h0 = _scan_inputs(np.random.default_rng(l), batch, l, g=ngroups)
    h0 = h0 if start == "state" else None
    y_ref, state_ref = ssd_scan_sequential(x, dt, A, B, C, D, h0)
    y, state = ssd_scan_chunked(x, dt, A, B, C, D, h0, chunk_size=chunk_size)
    assert y.dtype == state.dtype == np.float32
    assert y.shape == y_ref.shape == x.shape and state.shape == state_ref.shape == (*batch, 4, 3, 5)
    np.testing.assert_allclose(y, y_ref, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(state, state_ref, atol=1e-4, rtol=1e-4)


def test_sequential_scan_matches_the_torch_reference():
    torch = pytest.importorskip("torch")
    from gestura.inference.torch_model.mamba2 import ssd_scan_sequential as torch_scan

    args = _scan_inputs(np.random.default_rng(0), (2,), 40)
    y, state = ssd_scan_sequential(*args)
    y_ref, state_ref = torch_scan(*(torch.from_numpy(a) for a in args))
    np.testing.assert_allclose(y, y_ref.numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(state, state_ref.numpy(), atol=1e-5, rtol=1e-5)


def _torch_mixer(seed, ngroups, chunk_size=64):
    torch = pytest.importorskip("torch")
    from gestura.inference.torch_model.mamba2 import Mamba2 as TorchMamba2

    torch.manual_seed(seed)
    mixer = TorchMamba2(32, d_state=8, headdim=8, ngroups=ngroups, chunk_size=chunk_size).eval()
    with torch.no_grad():  # non-trivial D, norm and conv bias (initially ones or small)
        for name in ("D", "norm.weight", "conv1d.bias"):
            param = mixer.get_parameter(name)
            param.add_(torch.randn_like(param) * 0.5)
    return mixer


def _numpy_mixer(mixer, prefix, ngroups, chunk_size=64):
    tensors = {prefix + name: t.numpy() for name, t in mixer.state_dict().items()}
    return Mamba2(tensors, prefix, 8, ngroups, chunk_size)


@pytest.mark.parametrize("ngroups", [1, 2])
@pytest.mark.parametrize("shape", [(150,), (2, 70), (3,)], ids=["unbatched-uneven", "batched", "short"])
def test_mixer_matches_torch(ngroups, shape):
    torch = pytest.importorskip("torch")
    mixer = _torch_mixer(ngroups, ngroups)
    u = np.random.default_rng(1).normal(size=(*shape, 32)).astype(np.float32)
    with torch.no_grad():
        expected = mixer(torch.from_numpy(u).reshape(-1, shape[-1], 32)).reshape(*shape, 32).numpy()
    y = _numpy_mixer(mixer, "blocks.0.mixer.", ngroups)(u)
    assert y.dtype == np.float32 and y.shape == u.shape
    np.testing.assert_allclose(y, expected, atol=1e-4, rtol=1e-4)


def test_both_ways_matches_torch():
    torch = pytest.importorskip("torch")
    from gestura.inference.torch_model.mamba2 import both_ways as torch_both_ways

    forward, backward = _torch_mixer(0, 1, chunk_size=16), _torch_mixer(1, 1, chunk_size=16)
    u = np.random.default_rng(2).normal(size=(2, 45, 32)).astype(np.float32)
    with torch.no_grad():
        expected = torch_both_ways(forward, backward, torch.from_numpy(u)).numpy()
    y = both_ways(_numpy_mixer(forward, "f.", 1, 16), _numpy_mixer(backward, "b.", 1, 16), u)
    np.testing.assert_allclose(y, expected, atol=1e-4, rtol=1e-4)


def test_a_headdim_that_does_not_fit_the_tensors_raises():
    pytest.importorskip("torch")
    tensors = {"m." + name: t.numpy() for name, t in _torch_mixer(0, 1).state_dict().items()}
    with pytest.raises(ValueError, match="headdim"):
        Mamba2(tensors, "m.", 16, 1)
