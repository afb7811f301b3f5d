"""``torch_model/mamba.py`` in numpy: the Mamba v1 mixer, ``MambaBlock`` (causal, streamed),
``BiMambaBlock`` (both directions over a whole span) and the selective scan
``h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t``, ``y_t = C_t . h_t + D u_t``.

Two scans with one signature: ``selective_scan``, the plain recurrence (reference), and
``selective_scan_fast``, which computes the decays and inputs of a block of steps in one
vectorised pass each and keeps only the running sum in the Python loop, in a (d_state, d_inner)
layout where each broadcast runs over contiguous rows. ``Mamba`` runs the fast one (about 3x
faster on a 20-code span of 8 stacked mixers, 2 styles, d_inner 256).

Stacking: a ``Mamba`` may hold the weights of several mixers on a leading axis (``Mamba.stack``),
so one Python loop runs them all; ``BiMambaLayer`` uses that to run a BiMambaBlock's two
directions, or the same layer of several parts' local stacks, as one mixer. A span is ~20
codes, where the cost of a Python-level step is as large as its arithmetic.
"""
from __future__ import annotations

import numpy as np

from .layers import F32, DepthwiseConv, GatedMLP, Linear, rms_norm, sigmoid, silu, softplus

# Decays and inputs are computed for as many steps at once as fit in about this many floats:
# small enough to stay in cache (fresh multi-megabyte temporaries cost page faults: a 20-code span
# of 8 stacked mixers ran 3x slower computed whole), large enough to vectorise well.
_SCAN_FLOATS = 1 << 17


def selective_scan(u, dt, A, B, C, D, h):
    """The reference recurrence, one step after another.

    u, dt (..., T, di); A (..., di, N) broadcasting against the batch axes; B, C (..., T, N);
    D (..., di); h (..., di, N) the state before the first step -> y (..., T, di), last state."""
    ys = []
    for t in range(u.shape[-2]):
        decay = np.exp(dt[..., t, :, None] * A)
        h = decay * h + (dt[..., t, :] * u[..., t, :])[..., None] * B[..., t, None, :]
        ys.append(np.add.reduce(h * C[..., t, None, :], axis=-1))
    y = np.stack(ys, axis=-2) if ys else np.zeros(u.shape, F32)
    return y + D * u, h


def selective_scan_fast(u, dt, A, B, C, D, h):
    """``selective_scan`` (same arguments and results, to float rounding) with the decays
    ``2^(dt log2(e) A)`` and inputs of a block of steps computed in one pass each, time-major and
    with d_inner last, and only ``h <- decay h + input`` left in the loop."""
    total = u.shape[-2]
    A_t = np.ascontiguousarray(np.swapaxes(A, -1, -2))  # (..., N, di)
    prev = np.ascontiguousarray(np.swapaxes(h, -1, -2))  # (..., N, di)
    dt_t, u_t = np.moveaxis(dt, -2, 0), np.moveaxis(u, -2, 0)  # (T, ..., di)
    b_t, c_t = np.moveaxis(B, -2, 0), np.moveaxis(C, -2, 0)  # (T, ..., N)
    ys = []
    steps = max(1, _SCAN_FLOATS // prev.size)
    for start in range(0, total, steps):
        block = slice(start, min(start + steps, total))
        decay = np.multiply(dt_t[block, ..., None, :], A_t, order="C")  # (t, ..., N, di)
        np.exp(decay, out=decay)
        states = np.multiply((dt_t[block] * u_t[block])[..., None, :], b_t[block, ..., :, None], order="C")
        step = np.empty(states.shape[1:], F32)
        for i in range(states.shape[0]):
            np.multiply(decay[i], prev, out=step)
            states[i] += step
            prev = states[i]
        ys.append(np.matmul(c_t[block, ..., None, :], states)[..., 0, :])  # (t, ..., di)
    y = np.moveaxis(np.concatenate(ys), 0, -2) if ys else np.zeros(u.shape, F32)
    return y + D * u, np.ascontiguousarray(np.swapaxes(prev, -1, -2))


class Mamba:
    """The Mamba v1 mixer: x (..., T, d) -> (..., T, d), state = (conv state (..., k-1, di), h (..., di, N)).

    A stacked mixer (``Mamba.stack``) takes x (M, B, T, d): mixer m reads x[m]."""

    def __init__(self, tensors: dict, prefix: str, config) -> None:
        self.d_inner, self.d_state, self.dt_rank = len(tensors[f"{prefix}.D"]), config.d_state, config.dt_rank_value
        self.in_proj = Linear(tensors, f"{prefix}.in_proj", bias=False)
        self.conv1d = DepthwiseConv(tensors, f"{prefix}.conv1d")
        self.x_proj = Linear(tensors, f"{prefix}.x_proj", bias=False)
        self.dt_proj = Linear(tensors, f"{prefix}.dt_proj")
        self.A = (-np.exp(tensors[f"{prefix}.A_log"])).astype(F32)  # (di, N)
        self.D = tensors[f"{prefix}.D"]
        self.out_proj = Linear(tensors, f"{prefix}.out_proj", bias=False)
        self.scan = selective_scan_fast

    @classmethod
    def stack(cls, mixers: list) -> "Mamba":
        """One mixer running ``mixers`` side by side: weights stacked on a leading axis, shaped
        (M, 1, ...) to broadcast over the batch axis of x (M, B, T, d)."""
        first = mixers[0]
        stacked = cls.__new__(cls)
        stacked.d_inner, stacked.d_state, stacked.dt_rank = first.d_inner, first.d_state, first.dt_rank
        stacked.scan = first.scan
        stacked.in_proj = _StackedLinear([m.in_proj for m in mixers])
        stacked.x_proj = _StackedLinear([m.x_proj for m in mixers])
        stacked.dt_proj = _StackedLinear([m.dt_proj for m in mixers])
        stacked.out_proj = _StackedLinear([m.out_proj for m in mixers])
        stacked.conv1d = DepthwiseConv.stack([m.conv1d for m in mixers])
        stacked.A = _stack([m.A for m in mixers])  # (M, 1, di, N)
        stacked.D = _stack([m.D[None] for m in mixers])  # (M, 1, 1, di)
        return stacked

    def __call__(self, x: np.ndarray, state=None):
        conv_state, h = state if state is not None else (None, None)
        di, r, n = self.d_inner, self.dt_rank, self.d_state
        uz = self.in_proj(x)
        u, conv_state = self.conv1d(uz[..., :di], conv_state)
        u = silu(u)
        proj = self.x_proj(u)
        dt = softplus(self.dt_proj(proj[..., :r]))
        if h is None:
            h = np.zeros((*u.shape[:-2], di, n), F32)
        y, h = self.scan(u, dt, self.A, proj[..., r:r + n], proj[..., r + n:r + 2 * n], self.D, h)
        return self.out_proj(y * silu(uz[..., di:])), (conv_state, h)


def _stack(arrays: list) -> np.ndarray:
    return np.ascontiguousarray(np.stack(arrays)[:, None])


class _StackedLinear:
    """Several Linear layers side by side: x (M, ..., in) -> (M, ..., out), layer m on x[m]."""

    def __init__(self, layers: list) -> None:
        self.weight = np.ascontiguousarray(np.stack([layer.weight_t for layer in layers]))  # (M, in, out)
        self.bias = None if layers[0].bias is None else _stack([layer.bias[None] for layer in layers])[:, 0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # One product per layer over all its rows (a 3-D matmul), not one per batch entry.
        y = np.matmul(x.reshape(x.shape[0], -1, x.shape[-1]), self.weight)
        if self.bias is not None:
            y += self.bias
        return y.reshape(*x.shape[:-1], y.shape[-1])


class MambaBlock:
    """Pre-norm residual Mamba mixer, then (optionally) a pre-norm residual gated MLP; causal, streamed."""

    def __init__(self, tensors: dict, prefix: str, config) -> None:
        self.norm = tensors[f"{prefix}.norm.weight"]
        self.build_mixers(tensors, prefix, config)
        self.norm2 = self.mlp = None
        if config.mlp_hidden > 0:
            self.norm2 = tensors[f"{prefix}.norm2.weight"]
            self.mlp = GatedMLP(tensors, f"{prefix}.mlp", config.mlp_hidden)

    def build_mixers(self, tensors: dict, prefix: str, config) -> None:
        self.mixer = Mamba(tensors, f"{prefix}.mixer", config)

    def mix(self, h: np.ndarray, state=None):
        """The residual branch on the normalised input: (..., T, d) -> (..., T, d), state."""
        return self.mixer(h, state)

    def __call__(self, x: np.ndarray, state=None):
        y, state = self.mix(rms_norm(x, self.norm), state)
        x = x + y
        if self.mlp is not None:
            x = x + self.mlp(rms_norm(x, self.norm2))
        return x, state


def both_ways(mixer: Mamba, mixer_back: Mamba, h: np.ndarray) -> np.ndarray:
    """``torch_model.mamba.both_ways``: ``mixer`` forward in time plus ``mixer_back`` from the end
    over a whole sequence (..., n, d)."""
    forward, _ = mixer(h)
    backward, _ = mixer_back(h[..., ::-1, :])
    return forward + backward[..., ::-1, :]


class BiMambaBlock(MambaBlock):
    """``MambaBlock`` that scans a whole span both ways: ``mixer`` forward in time and
    ``mixer_back`` from the span's end read the same normalised input; their outputs are added.
    x (..., n, d) -> (..., n, d), no state (this is the reference; ``BiMambaLayer`` the fast path)."""

    def build_mixers(self, tensors: dict, prefix: str, config) -> None:
        self.mixer = Mamba(tensors, f"{prefix}.mixer", config)
        self.mixer_back = Mamba(tensors, f"{prefix}.mixer_back", config)

    def mix(self, h: np.ndarray, state=None):
        return both_ways(self.mixer, self.mixer_back, h), None


def pool_time(x: np.ndarray, factor: int) -> np.ndarray:
    """``torch_model.mamba.pool_time``: (..., n, d) -> (..., ceil(n / factor), d), the mean of each
    group of ``factor`` steps counted from the first (the last group may be shorter)."""
    if factor == 1:
        return x
    n = x.shape[-2]
    starts = np.arange(0, n, factor)
    counts = np.minimum(factor, n - starts).astype(F32)[:, None]
    return np.add.reduceat(x, starts, axis=-2) / counts


def unpool_time(y: np.ndarray, factor: int, n: int) -> np.ndarray:
    """``pool_time``'s inverse in time: (..., groups, d) -> (..., n, d)."""
    return y if factor == 1 else np.repeat(y, factor, axis=-2)[..., :n, :]


class GranularBiMambaBlock(MambaBlock):
    """``torch_model.mamba.GranularBiMambaBlock``: per granularity f, the normalised input pooled by
    f, scanned both ways by ``scales.i``'s mixers and brought back to the full rate; the branches
    added with gates ``2 sigmoid(fuse(h))``. x (..., n, d) -> (..., n, d), no state (reference;
    ``GranularBiMambaLayer`` the fast path)."""

    def __init__(self, tensors: dict, prefix: str, config, factors) -> None:
        self.factors = tuple(factors)
        super().__init__(tensors, prefix, config)

    def build_mixers(self, tensors: dict, prefix: str, config) -> None:
        self.scales = [(Mamba(tensors, f"{prefix}.scales.{i}.mixer", config),
                        Mamba(tensors, f"{prefix}.scales.{i}.mixer_back", config)) for i in range(len(self.factors))]
        self.fuse = Linear(tensors, f"{prefix}.fuse")

    def mix(self, h: np.ndarray, state=None):
        n = h.shape[-2]
        gates = F32(2.0) * sigmoid(self.fuse(h))
        y = 0
        for i, (factor, (mixer, mixer_back)) in enumerate(zip(self.factors, self.scales)):
            y = y + gates[..., i:i + 1] * unpool_time(both_ways(mixer, mixer_back, pool_time(h, factor)), factor, n)
        return y, None


class BiMambaLayer:
    """Several ``BiMambaBlock``s (one per input) run as one: block p reads x[p] of x (P, ..., n, d).
    Both directions of every block are one stacked ``Mamba`` (2P mixers), so the whole layer is
    a single Python loop over the span. Same result as calling each block (to float rounding)."""

    def __init__(self, blocks: list) -> None:
        self.count = len(blocks)
        self.build_mixers(blocks)
        self.norm = _stack([b.norm[None] for b in blocks])  # (P, 1, 1, d)
        self.mlp = None
        if blocks[0].mlp is not None:
            self.norm2 = _stack([b.norm2[None] for b in blocks])
            self.mlp = GatedMLP.__new__(GatedMLP)
            self.mlp.hidden = blocks[0].mlp.hidden
            self.mlp.fc1 = _StackedLinear([b.mlp.fc1 for b in blocks])
            self.mlp.fc2 = _StackedLinear([b.mlp.fc2 for b in blocks])

    def build_mixers(self, blocks: list) -> None:
        self.mixers = Mamba.stack([m for b in blocks for m in (b.mixer, b.mixer_back)])

    def mix(self, h: np.ndarray) -> np.ndarray:
        """The blocks' residual branches on the normalised input (P, B, n, d)."""
        return _both_ways_stacked(self.mixers, h)

    def __call__(self, x: np.ndarray, state=None):
        """x (P, ..., n, d) -> (P, ..., n, d), None."""
        shape = x.shape
        p, b, n, d = shape[0], int(np.prod(shape[1:-2])), shape[-2], shape[-1]
        x = x.reshape(p, b, n, d)
        x = x + self.mix(rms_norm(x, self.norm))
        if self.mlp is not None:
            x = x + self.mlp(rms_norm(x, self.norm2))
        return x.reshape(shape), None


def _both_ways_stacked(mixers: Mamba, h: np.ndarray) -> np.ndarray:
    """h (P, B, n, d) through P (forward, backward) mixer pairs stacked as 2P mixers."""
    p, b, n, d = h.shape
    both = np.stack([h, h[:, :, ::-1]], axis=1).reshape(2 * p, b, n, d)  # forward, backward per block
    y, _ = mixers(both)
    y = y.reshape(p, 2, b, n, d)
    return y[:, 0] + y[:, 1, :, ::-1]


class GranularBiMambaLayer(BiMambaLayer):
    """Several ``GranularBiMambaBlock``s run as one (``BiMambaLayer``'s contract): per granularity,
    both directions of every block's branch are one stacked ``Mamba``."""

    def build_mixers(self, blocks: list) -> None:
        self.factors = blocks[0].factors
        self.scales = [Mamba.stack([m for b in blocks for m in b.scales[i]]) for i in range(len(self.factors))]
        self.fuse = _StackedLinear([b.fuse for b in blocks])

    def mix(self, h: np.ndarray) -> np.ndarray:
        n = h.shape[-2]
        gates = F32(2.0) * sigmoid(self.fuse(h))
        y = 0
        for i, (factor, mixers) in enumerate(zip(self.factors, self.scales)):
            y = y + gates[..., i:i + 1] * unpool_time(_both_ways_stacked(mixers, pool_time(h, factor)), factor, n)
        return y


def bidirectional_block(tensors: dict, prefix: str, config, factors=(1,)) -> MambaBlock:
    """``torch_model.mamba.bidirectional_block``: ``BiMambaBlock`` for factors (1,), else a
    ``GranularBiMambaBlock`` at those pooling factors."""
    if tuple(factors) == (1,):
        return BiMambaBlock(tensors, prefix, config)
    return GranularBiMambaBlock(tensors, prefix, config, factors)


def bidirectional_layer(blocks: list) -> BiMambaLayer:
    """``BiMambaLayer`` or ``GranularBiMambaLayer``, whichever runs ``blocks`` (all of one kind)."""
    return GranularBiMambaLayer(blocks) if isinstance(blocks[0], GranularBiMambaBlock) else BiMambaLayer(blocks)


def run_stack(blocks: list, x: np.ndarray, state=None):
    """``torch_model.mamba.MambaStack.run``: blocks in order, state one entry per block."""
    state = state if state is not None else [None] * len(blocks)
    new_state = []
    for block, s in zip(blocks, state):
        x, s = block(x, s)
        new_state.append(s)
    return x, new_state
