"""numpy_model.mamba: the reference scan against torch's, each fast path against its reference,
and the blocks against torch's on the same weights."""
from __future__ import annotations

import numpy as np
import pytest

from gestura.inference.numpy_model.mamba import (BiMambaBlock, BiMambaLayer, GranularBiMambaBlock, Mamba, MambaBlock,
                                                 bidirectional_block, bidirectional_layer, pool_time, selective_scan,
                                                 selective_scan_fast, unpool_time)

from model_pair import assert_close, small_config


def _scan_inputs(rng, batch, t, d=12, n=16, a_batch=()):
    u = rng.normal(size=(*batch, t, d)).astype(np.float32)
    dt = np.log1p(np.exp(rng.normal(size=(*batch, t, d)) * 2)).astype(np.float32)
    A = -np.exp(rng.normal(size=(*a_batch, d, n)) + 1).astype(np.float32)
    B, C = rng.normal(size=(2, *batch, t, n)).astype(np.float32)
    D = rng.normal(size=d).astype(np.float32)
    h0 = rng.normal(size=(*batch, d, n)).astype(np.float32)
    return u, dt, A, B, C, D, h0


def test_reference_scan_matches_the_torch_reference():
    torch = pytest.importorskip("torch")
    from gestura.inference.torch_model.mamba import selective_scan_sequential

    u, dt, A, B, C, D, h0 = _scan_inputs(np.random.default_rng(0), (), 50)
    y, h = selective_scan(u, dt, A, B, C, D, h0)
    y_ref, h_ref = selective_scan_sequential(*(torch.from_numpy(x)[None] for x in (u, dt)), torch.from_numpy(A),
                                             *(torch.from_numpy(x)[None] for x in (B, C)), torch.from_numpy(D),
                                             torch.from_numpy(h0)[None])
    np.testing.assert_allclose(y, y_ref[0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h, h_ref[0].numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("batch", "a_batch", "t"), [((), (), 1), ((), (), 300), ((2,), (), 20), ((3, 2), (3, 1), 21)],
                         ids=["one-step", "long", "styles", "stacked-mixers"])
def test_fast_scan_equals_the_reference(batch, a_batch, t):
    # 300 steps cross the fast scan's blocks of steps; "stacked-mixers" gives each mixer its own A.
    args = _scan_inputs(np.random.default_rng(t), batch, t, a_batch=a_batch)
    y, h = selective_scan(*args)
    y_fast, h_fast = selective_scan_fast(*args)
    assert y_fast.dtype == h_fast.dtype == np.float32 and y_fast.shape == y.shape and h_fast.shape == h.shape
    assert_close(y_fast, y, 1e-5)
    assert_close(h_fast, h, 1e-5)
    # In pieces with the carried state, as a stream runs it.
    u, dt, A, B, C, D, h0 = args
    first, rest = slice(0, t // 2), slice(t // 2, t)
    y1, h1 = selective_scan_fast(u[..., first, :], dt[..., first, :], A, B[..., first, :], C[..., first, :], D, h0)
    y2, h2 = selective_scan_fast(u[..., rest, :], dt[..., rest, :], A, B[..., rest, :], C[..., rest, :], D, h1)
    assert_close(np.concatenate([y1, y2], axis=-2), y, 1e-5)
    assert_close(h2, h, 1e-5)


def _random_tensors(config, prefix, seed, factors=None):
    """A causal block's tensors (``factors`` None), or a bidirectional block's at those pooling factors."""
    from gestura.inference.architecture import bi_mamba_block_shapes, mamba_block_shapes

    rng = np.random.default_rng(seed)
    shapes = mamba_block_shapes(prefix, config) if factors is None else bi_mamba_block_shapes(prefix, config, factors)
    tensors = {name: (0.3 * rng.normal(size=shape)).astype(np.float32) for name, shape in shapes.items()}
    for name in tensors:
        if name.endswith("A_log"):
            tensors[name] = np.log(rng.uniform(0.5, 8.0, tensors[name].shape)).astype(np.float32)
    return tensors


@pytest.mark.parametrize("mlp_ratio, granularities", [(2.0, (1,)), (0.0, (1,)), (2.0, (1, 2, 4, 8))],
                         ids=["mlp", "no-mlp", "granular"])
def test_a_stacked_layer_equals_its_blocks_and_a_stacked_mixer_its_mixers(mlp_ratio, granularities):
    config = small_config(mlp_ratio=mlp_ratio)
    blocks = [bidirectional_block(_random_tensors(config, f"b{i}", i, granularities), f"b{i}", config, granularities)
              for i in range(3)]
    x = np.random.default_rng(3).normal(size=(3, 2, 9, config.d_model)).astype(np.float32)
    stacked, _ = bidirectional_layer(blocks)(x)
    for i, block in enumerate(blocks):
        assert_close(stacked[i], block(x[i])[0], 1e-5)
    mixers = [b.mixer if granularities == (1,) else b.scales[0][0] for b in blocks]
    together, _ = Mamba.stack(mixers)(x)
    for i, mixer in enumerate(mixers):
        assert_close(together[i], mixer(x[i])[0], 1e-5)


def test_time_pooling_means_groups_from_the_first_step_and_unpooling_repeats_them():
    x = np.arange(7, dtype=np.float32)[:, None] * np.array([1.0, -2.0], np.float32)
    pooled = pool_time(x, 3)
    np.testing.assert_allclose(pooled[:, 0], [1.0, 4.0, 6.0])  # (0,1,2) (3,4,5) (6)
    np.testing.assert_allclose(pooled[:, 1], [-2.0, -8.0, -12.0])
    np.testing.assert_array_equal(unpool_time(pooled, 3, 7)[:, 0], [1, 1, 1, 4, 4, 4, 6])
    assert pool_time(x, 1) is x and pool_time(x, 8).shape == (1, 2)


def test_mixers_run_the_fast_scan_and_agree_with_the_reference_scan():
    config = small_config()
    block = MambaBlock(_random_tensors(config, "m", 5), "m", config)
    x = np.random.default_rng(5).normal(size=(40, config.d_model)).astype(np.float32)
    assert block.mixer.scan is selective_scan_fast
    fast, (_, h_fast) = block(x)
    block.mixer.scan = selective_scan
    ref, (_, h_ref) = block(x)
    assert_close(fast, ref, 1e-5)
    assert_close(h_fast, h_ref, 1e-5)


def test_blocks_match_torch_and_the_causal_block_streams_exactly():
    torch = pytest.importorskip("torch")
    from gestura.inference.torch_model import mamba as torch_mamba

    torch.manual_seed(2)
    config = small_config()
    causal, both = torch_mamba.MambaBlock(config).eval(), torch_mamba.BiMambaBlock(config).eval()
    x = torch.randn(2, 37, config.d_model)
    with torch.no_grad():
        y_causal, _ = causal(x)
        y_both, _ = both(x)
    tensors = {f"c.{k}": v.numpy() for k, v in causal.state_dict().items()}
    tensors.update({f"b.{k}": v.numpy() for k, v in both.state_dict().items()})
    np_causal, np_both = MambaBlock(tensors, "c", config), BiMambaBlock(tensors, "b", config)
    assert_close(np_causal(x.numpy())[0], y_causal.numpy())
    assert_close(np_both(x.numpy())[0], y_both.numpy())
    assert_close(BiMambaLayer([np_both])(x.numpy()[None])[0][0], y_both.numpy())
    granular = torch_mamba.GranularBiMambaBlock(config, (1, 2, 4, 8)).eval()
    with torch.no_grad():
        for name, p in granular.named_parameters():
            if "fuse" in name:  # gates away from their initial 1, so a wrong one shows
                p.normal_(0.0, 0.5)
        y_granular, _ = granular(x)
    np_granular = GranularBiMambaBlock({f"g.{k}": v.numpy() for k, v in granular.state_dict().items()}, "g", config,
                                       (1, 2, 4, 8))
    assert_close(np_granular(x.numpy())[0], y_granular.numpy())
    state, pieces = None, []
    for lo, hi in ((0, 1), (1, 17), (17, 18), (18, 37)):
        y, state = np_causal(x[0, lo:hi].numpy(), state)
        pieces.append(y)
    np.testing.assert_allclose(np.concatenate(pieces), np_causal(x[0].numpy())[0], rtol=0, atol=1e-5)

