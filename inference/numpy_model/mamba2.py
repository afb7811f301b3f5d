"""``torch_model/mamba2.py`` in numpy: the Mamba-2 mixer (SSD: Dao & Gu 2024, arXiv 2405.21060)
and its scan ``h_t = exp(dt_t A) h_{t-1} + dt_t x_t (x) B_t``, ``y_t = C_t . h_t + D x_t`` with a
scalar decay per head.

Two scans with one signature: ``ssd_scan_sequential``, the plain recurrence (reference), and
``ssd_scan_chunked``, the SSD chunked algorithm, which ``Mamba2`` runs: a few batched matrix
products per chunk of steps and a Python loop over chunks only, not over steps. Every array may
have any leading batch axes (none included), as in the other numpy modules.
"""
from __future__ import annotations

import numpy as np

from .layers import F32, DepthwiseConv, Linear, rms_norm, silu, softplus


def ssd_scan_sequential(x, dt, A, B, C, D=None, initial_state=None):
    """Reference recurrence. x (..., l, h, p); dt (..., l, h) positive (softplus applied); A (h,)
    negative; B, C (..., l, g, n) with g dividing h (head i reads group i // (h // g)); D (h,) or
    None; initial_state (..., h, p, n) or None (zeros). Returns y (..., l, h, p) and the final
    state (..., h, p, n)."""
    *batch, l, h, p = x.shape
    B, C = (np.repeat(t, h // t.shape[-2], axis=-2) for t in (B, C))  # (..., l, h, n)
    state = np.zeros((*batch, h, p, B.shape[-1]), F32) if initial_state is None else initial_state
    ys = []
    for t in range(l):
        decay = np.exp(dt[..., t, :] * A)[..., None, None]
        state = decay * state + (dt[..., t, :, None] * x[..., t, :, :])[..., None] * B[..., t, :, None, :]
        ys.append(np.matmul(state, C[..., t, :, :, None])[..., 0])
    y = np.stack(ys, axis=-3) if ys else np.zeros_like(x)
    return (y if D is None else y + D[:, None] * x), state


def segment_decays(a: np.ndarray) -> np.ndarray:
    """exp of ``torch_model.mamba2.segsum``: (..., T) log decays -> (..., T, T) with [i, j] =
    exp(a[j+1] + ... + a[i]) for i >= j, 0 above the diagonal. Taken as differences of float64
    cumulative sums (their cancellation is far below float32 rounding), 3x faster in numpy than
    summing the masked terms; clipped at 0 so that nothing above the diagonal overflows."""
    a_cum = np.cumsum(a, axis=-1, dtype=np.float64)
    decays = (a_cum[..., :, None] - a_cum[..., None, :]).astype(F32)
    np.minimum(decays, F32(0), out=decays)
    np.exp(decays, out=decays)
    decays *= np.tri(a.shape[-1], dtype=bool)
    return decays


def ssd_scan_chunked(x, dt, A, B, C, D=None, initial_state=None, chunk_size: int = 64):
    """``ssd_scan_sequential`` (same arguments and results, to float rounding) by the SSD chunked
    algorithm (``torch_model.mamba2.ssd_scan_chunked``): padded to whole chunks with dt = 0;
    a sequence shorter than a chunk is one chunk of its own length."""
    *batch, l, h, p = x.shape
    g, n = B.shape[-2:]
    r = h // g
    T = min(chunk_size, l)
    pad = -l % T

    def chunks(t, heads):  # (..., l, g * heads, last) -> (..., c, g, heads, T, last), time next to last
        if pad:  # np.pad costs as much as a chunk's products even when it adds nothing
            t = np.pad(t, [(0, 0)] * len(batch) + [(0, pad), (0, 0), (0, 0)])
        # Contiguous: results take their operands' memory order, and np.matmul runs BLAS only
        # on matrices with a contiguous axis (a strided (T, T) product was 20x slower).
        return np.ascontiguousarray(np.moveaxis(t.reshape(*batch, -1, T, g, heads, t.shape[-1]), -4, -2))

    x_c = chunks(x, r)  # (..., c, g, r, T, p)
    B, C = chunks(B, 1), chunks(C, 1)  # (..., c, g, 1, T, n): shared by a group's heads
    dt = chunks(dt[..., None], r)[..., 0]  # (..., c, g, r, T)
    x_dt = x_c * dt[..., None]
    a = dt * A.reshape(g, r, 1)  # log decay of each step
    L = segment_decays(a)  # (..., c, g, r, T, T)

    # Inside chunks: y_t = sum_{s <= t} (C_t . B_s) L[t, s] dt_s x_s.
    y = np.matmul(np.matmul(C, np.swapaxes(B, -1, -2)) * L, x_dt)
    # Each chunk's own final state: its inputs decayed to the chunk's end (L's last row).
    states = np.matmul(np.swapaxes(x_dt * L[..., -1, :, None], -1, -2), B)  # (..., c, g, r, p, n)
    # Across chunks: the state entering each chunk, decayed to each of its steps.
    a_cum = np.cumsum(a, axis=-1)
    chunk_decay = np.exp(a_cum[..., -1, None, None])  # (..., c, g, r, 1, 1)
    state = (np.zeros((*batch, g, r, p, n), F32) if initial_state is None
             else initial_state.reshape(*batch, g, r, p, n))
    entering = np.empty_like(states)
    for k in range(states.shape[-5]):
        entering[..., k, :, :, :, :] = state
        state = chunk_decay[..., k, :, :, :, :] * state + states[..., k, :, :, :, :]
    y += np.matmul(C, np.swapaxes(entering, -1, -2)) * np.exp(a_cum)[..., None]

    y = np.moveaxis(y, -2, -4).reshape(*batch, -1, h, p)[..., :l, :, :]
    return (y if D is None else y + D[:, None] * x), state.reshape(*batch, h, p, n)


class Mamba2:
    """``torch_model.mamba2.Mamba2`` from a checkpoint's tensors ``prefix + "in_proj.weight"`` etc.
    (prefix "blocks.0.mixer."): u (..., L, d_model) -> (..., L, d_model), a whole sequence from a
    zero state. The widths come from the tensors' shapes, ``headdim`` is checked against them;
    ``ngroups`` (which they do not show) splits B, C and the norm's groups."""

    def __init__(self, tensors: dict, prefix: str, headdim: int, ngroups: int, chunk_size: int = 64) -> None:
        self.in_proj = Linear(tensors, f"{prefix}in_proj", bias=False)
        self.conv1d = DepthwiseConv(tensors, f"{prefix}conv1d")
        self.out_proj = Linear(tensors, f"{prefix}out_proj", bias=False)
        self.dt_bias = tensors[f"{prefix}dt_bias"]
        self.A = (-np.exp(tensors[f"{prefix}A_log"])).astype(F32)  # (H,)
        self.D = tensors[f"{prefix}D"]
        self.norm = tensors[f"{prefix}norm.weight"].reshape(ngroups, -1)  # (g, di / g)
        self.d_inner, self.nheads = self.norm.size, len(self.A)
        if headdim * self.nheads != self.d_inner:
            raise ValueError(f"headdim {headdim} does not fit the tensors' {self.nheads} heads of "
                             f"{self.d_inner} channels.")
        self.headdim, self.ngroups, self.chunk_size = headdim, ngroups, chunk_size
        self.d_state = (self.conv1d.bias.size - self.d_inner) // (2 * ngroups)

    def __call__(self, u: np.ndarray) -> np.ndarray:
        di, gn, g, n = self.d_inner, self.ngroups * self.d_state, self.ngroups, self.d_state
        steps = u.shape[:-1]
        zxbcdt = self.in_proj(u)  # [z, x, B, C, dt]
        xBC, _ = self.conv1d(zxbcdt[..., di:2 * di + 2 * gn])
        xBC = silu(xBC)
        x = xBC[..., :di].reshape(*steps, self.nheads, self.headdim)
        B, C = xBC[..., di:di + gn].reshape(*steps, g, n), xBC[..., di + gn:].reshape(*steps, g, n)
        dt = softplus(zxbcdt[..., 2 * di + 2 * gn:] + self.dt_bias)
        y, _ = ssd_scan_chunked(x, dt, self.A, B, C, self.D, chunk_size=self.chunk_size)
        gated = (y.reshape(*steps, di) * silu(zxbcdt[..., :di])).reshape(*steps, g, -1)
        return self.out_proj(rms_norm(gated, self.norm).reshape(*steps, di))


def both_ways(mixer: Mamba2, mixer_back: Mamba2, h: np.ndarray) -> np.ndarray:
    """``torch_model.mamba2.both_ways``: ``mixer`` forward in time plus ``mixer_back`` from the end
    over a whole sequence (..., L, d)."""
    return mixer(h) + mixer_back(h[..., ::-1, :])[..., ::-1, :]
