"""The Mamba-2 mixer (SSD: Dao & Gu 2024, "Transformers are SSMs", arXiv 2405.21060) in pure
PyTorch, with mamba-ssm's Triton kernel when it imports.

The scan has a scalar decay per head: with heads of ``headdim`` channels and state ``(p, n)``,

    h_t = exp(dt_t A) h_{t-1} + dt_t x_t (x) B_t,    y_t = C_t . h_t + D x_t

where A, dt and D are per head and B, C are shared by the heads of a group. Two forms:

- ``ssd_scan_sequential``: the plain recurrence, one step after another (reference);
- ``ssd_scan_chunked``: the paper's SSD algorithm (its "ssd_minimal_discrete" listing): inside a
  chunk the output is a masked quadratic form ``(C B^T o L) (dt x)`` with the decays ``L`` built
  from segment sums in log space, so that every exponential is of a sum of non-positive terms and
  lies in (0, 1]; chunks pass their final states on through a loop over chunks.

``Mamba2.forward`` runs mamba-ssm's ``mamba_chunk_scan_combined`` on CUDA tensors when the package
imports and kernels are enabled (``set_kernels``, one switch with ``mamba.py``'s), else the
chunked form. The module has mamba-ssm's ``Mamba2`` parameter names and layout, so a state_dict
loads into ``mamba_ssm.modules.mamba2.Mamba2(d_model, d_state, d_conv, expand, headdim, ngroups,
rmsnorm=True, norm_before_gate=False, D_has_hdim=False, bias=False, conv_bias=True, chunk_size)``
and back. The mixer runs whole sequences from a zero state (its users are bidirectional, windowed).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import mamba
from .layers import CausalConv1d, rms_norm
from .mamba import set_kernels  # noqa: F401 (re-exported: one switch for both mixers' kernels)

try:  # optional Triton kernels
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined as _kernel_ssd
except Exception:  # ImportError, or a broken CUDA/Triton build: the pure path is always there
    _kernel_ssd = None


def kernels_available() -> bool:
    return _kernel_ssd is not None


def kernels_enabled() -> bool:
    return mamba._USE_KERNELS and _kernel_ssd is not None


def _heads(t: torch.Tensor, nheads: int) -> torch.Tensor:
    """B or C (b, l, g, n) -> (b, l, h, n): head i reads group i // (h // g)."""
    return t.repeat_interleave(nheads // t.shape[2], dim=2)


def ssd_scan_sequential(x, dt, A, B, C, D=None, initial_state=None):
    """Reference recurrence. x (b, l, h, p); dt (b, l, h) positive (softplus applied); A (h,)
    negative; B, C (b, l, g, n) with g dividing h; D (h,) or None; initial_state (b, h, p, n) or
    None (zeros). Returns y (b, l, h, p) and the final state (b, h, p, n)."""
    b, l, h, p = x.shape
    B, C = _heads(B, h), _heads(C, h)
    state = x.new_zeros(b, h, p, B.shape[-1]) if initial_state is None else initial_state
    ys = []
    for t in range(l):
        decay = torch.exp(dt[:, t] * A)[..., None, None]  # (b, h, 1, 1)
        state = decay * state + (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", state, C[:, t]))
    y = torch.stack(ys, 1) if ys else torch.zeros_like(x)
    return (y if D is None else y + D[:, None] * x), state


def segsum(a: torch.Tensor) -> torch.Tensor:
    """(..., T) -> (..., T, T) with [i, j] = a[j+1] + ... + a[i] for i >= j and -inf above the
    diagonal: exp of it is the decay from step j to step i, 0 where j is later. Summed from the
    masked terms themselves, not as a difference of cumulative sums (which would cancel)."""
    T = a.shape[-1]
    ones = torch.ones(T, T, dtype=torch.bool, device=a.device)
    sums = torch.cumsum(a[..., None].expand(*a.shape, T).masked_fill(~ones.tril(-1), 0), dim=-2)
    return sums.masked_fill(~ones.tril(), -math.inf)


def ssd_scan_chunked(x, dt, A, B, C, D=None, initial_state=None, chunk_size: int = 64):
    """``ssd_scan_sequential`` (same arguments and results, to float rounding) by the SSD chunked
    algorithm. The sequence is padded to whole chunks with dt = 0 (no decay, no input), so the
    padding changes neither the outputs nor the final state; a sequence shorter than a chunk is
    one chunk of its own length."""
    b, l, h, p = x.shape
    g, n = B.shape[-2:]
    r = h // g
    T = min(chunk_size, l)
    pad = -l % T

    def chunks(t, heads):  # (b, l, ..., last) -> (b, c, g, heads, T, last), time next to last
        t = F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)).unflatten(1, (-1, T)).unflatten(3, (g, heads))
        return t.movedim(2, -2)

    x_c = chunks(x, r)  # (b, c, g, r, T, p)
    B, C = chunks(B, 1), chunks(C, 1)  # (b, c, g, 1, T, n): shared by a group's heads
    dt = chunks(dt[..., None], r)[..., 0]  # (b, c, g, r, T)
    x_dt = x_c * dt[..., None]
    a = dt * A.view(g, r, 1)  # log decay of each step
    L = torch.exp(segsum(a))  # (b, c, g, r, T, T)

    # Inside chunks: y_t = sum_{s <= t} (C_t . B_s) L[t, s] dt_s x_s.
    y = (C @ B.transpose(-1, -2) * L) @ x_dt
    # Each chunk's own final state: its inputs decayed to the chunk's end (L's last row).
    states = (x_dt * L[..., -1, :, None]).transpose(-1, -2) @ B  # (b, c, g, r, p, n)
    # Across chunks: the state entering each chunk, decayed to each of its steps.
    a_cum = torch.cumsum(a, dim=-1)  # log decay from the chunk's start to step t, inclusive
    chunk_decay = torch.exp(a_cum[..., -1, None, None])  # (b, c, g, r, 1, 1)
    state = x.new_zeros(b, g, r, p, n) if initial_state is None else initial_state.reshape(b, g, r, p, n)
    entering = []
    for k in range(states.shape[1]):
        entering.append(state)
        state = chunk_decay[:, k] * state + states[:, k]
    y = y + C @ torch.stack(entering, 1).transpose(-1, -2) * torch.exp(a_cum)[..., None]

    y = y.movedim(-2, 2).reshape(b, -1, h, p)[:, :l]
    return (y if D is None else y + D[:, None] * x), state.reshape(b, h, p, n)


class RMSNormGated(nn.Module):
    """mamba-ssm's gated RMSNorm with norm_before_gate=False: ``rmsnorm(y * silu(z)) * weight``,
    normalised over each group of ``group_size`` channels. y, z (..., d) -> (..., d)."""

    def __init__(self, d: int, group_size: int, eps: float = 1e-5):
        super().__init__()
        self.group_size, self.eps = group_size, eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        grouped = (y * F.silu(z)).unflatten(-1, (-1, self.group_size))
        return rms_norm(grouped, self.weight.view(-1, self.group_size), self.eps).flatten(-2)


class Mamba2(nn.Module):
    """The Mamba-2 mixer (mamba-ssm's ``Mamba2`` parameter names, layout and initialisation):

        in_proj  Linear(d_model, 2 di + 2 g N + H, no bias) -> z, xBC, dt   (di = expand d_model)
        conv1d   depthwise causal Conv1d over xBC (di + 2 g N channels, kernel d_conv, bias); SiLU
        xBC      -> x (H heads of headdim), B, C (g groups of N)
        dt = softplus(dt + dt_bias); A = -exp(A_log); y = SSD(x, dt, A, B, C) + D x   (per head)
        norm     RMSNormGated(di, group di / g): y = rmsnorm(y silu(z)) weight
        out_proj Linear(di, d_model, no bias)

    u (B, L, d_model) -> (B, L, d_model), a whole sequence from a zero state."""

    def __init__(self, d_model: int, d_state: int = 64, d_conv: int = 4, expand: int = 2, headdim: int = 32,
                 ngroups: int = 1, chunk_size: int = 64, dt_min: float = 1e-3, dt_max: float = 0.1,
                 dt_init_floor: float = 1e-4, A_init_range: tuple = (1.0, 16.0)):
        super().__init__()
        self.d_model, self.d_state, self.d_conv, self.headdim, self.ngroups = d_model, d_state, d_conv, headdim, ngroups
        self.d_inner = expand * d_model
        if self.d_inner % headdim:
            raise ValueError(f"headdim {headdim} does not divide d_inner {self.d_inner} (expand * d_model).")
        self.nheads = self.d_inner // headdim
        if self.nheads % ngroups:
            raise ValueError(f"ngroups {ngroups} does not divide the {self.nheads} heads (d_inner / headdim).")
        self.chunk_size = chunk_size
        di, gn = self.d_inner, ngroups * d_state
        self.in_proj = nn.Linear(d_model, 2 * di + 2 * gn + self.nheads, bias=False)  # [z, x, B, C, dt]
        conv_dim = di + 2 * gn
        self.conv1d = CausalConv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, bias=True)
        dt = torch.exp(torch.rand(self.nheads) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(*A_init_range)))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = RMSNormGated(di, di // ngroups)
        self.out_proj = nn.Linear(di, d_model, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        b, l, _ = u.shape
        di, gn, h = self.d_inner, self.ngroups * self.d_state, self.nheads
        z, xBC, dt = self.in_proj(u).split([di, di + 2 * gn, h], dim=-1)
        xBC, _ = self.conv1d(xBC.transpose(1, 2))
        x, B, C = F.silu(xBC).transpose(1, 2).split([di, gn, gn], dim=-1)
        x = x.unflatten(-1, (h, self.headdim))
        B, C = B.unflatten(-1, (self.ngroups, self.d_state)), C.unflatten(-1, (self.ngroups, self.d_state))
        A = -torch.exp(self.A_log.float())  # float: a half-precision A_log could give -inf
        if u.is_cuda and kernels_enabled():
            y = _kernel_ssd(x, dt, A, B, C, self.chunk_size, D=self.D, dt_bias=self.dt_bias, dt_softplus=True)
        else:
            y, _ = ssd_scan_chunked(x, F.softplus(dt + self.dt_bias), A, B, C, self.D, chunk_size=self.chunk_size)
        return self.out_proj(self.norm(y.reshape(b, l, di), z))


def both_ways(mixer: Mamba2, mixer_back: Mamba2, h: torch.Tensor) -> torch.Tensor:
    """A bidirectional scan of a whole sequence (B, L, d): ``mixer`` forward in time plus
    ``mixer_back`` from the end, both from a zero state."""
    return mixer(h) + mixer_back(h.flip(-2)).flip(-2)
