"""Mamba (selective state space) blocks in pure PyTorch, with the mamba-ssm kernel when it imports.

The selective scan ``h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t``, ``y_t = C_t . h_t + D x_t`` in
three interchangeable forms:

- ``selective_scan_sequential``: the plain recurrence, one time step after another (reference);
- ``selective_scan_step``: one step with carried state (streaming, and the autoregressive part
  of generation);
- ``selective_scan_parallel``: chunks of ``chunk`` steps, each solved with a parallel
  (Hillis-Steele doubling) prefix scan of the affine maps ``h -> a h + b``; chunks are chained
  through the carried state. It only multiplies decays in (0, 1], so nothing overflows, and its
  memory is bounded by the chunk, not the sequence.

Which form runs (``Mamba.forward``): mamba-ssm's CUDA ``selective_scan_fn`` for whole sequences
(no incoming state) on CUDA tensors when the package imports (``set_kernels(False)`` turns it
off); otherwise the parallel form on CUDA, and on the CPU the sequential loop. On the CPU the scan
is memory-bound and the loop touches only (batch, d_inner, d_state) per step, while the parallel
form materialises (batch, time, d_inner, d_state) several times: measured on this project's 2-core
CPU, forward+backward at (16, 128, 256, 16) took 0.41 s sequential vs 2.6 s parallel, and a
64-frame inference block at d_inner 1536 took 4 ms vs 86 ms. ``set_scan_mode`` overrides the
choice. mamba-ssm is optional everywhere.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import CausalConv1d, GatedMLP, RMSNorm

try:  # optional CUDA kernels
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _kernel_scan
except Exception:  # ImportError, or a broken CUDA build: the pure path is always there
    _kernel_scan = None

_USE_KERNELS = True
_SCAN_MODE = "auto"
SCAN_MODES = ("auto", "parallel", "sequential")


def kernels_available() -> bool:
    return _kernel_scan is not None


def set_kernels(enabled: bool) -> None:
    """Allow or forbid the mamba-ssm kernel (tests compare both paths on the same weights)."""
    global _USE_KERNELS
    _USE_KERNELS = bool(enabled)


def set_scan_mode(mode: str) -> None:
    """"auto" (parallel on CUDA, sequential on the CPU), "parallel" or "sequential"."""
    global _SCAN_MODE
    if mode not in SCAN_MODES:
        raise ValueError(f"scan mode must be one of {SCAN_MODES}, got {mode!r}")
    _SCAN_MODE = mode


def kernels_enabled() -> bool:
    return _USE_KERNELS and _kernel_scan is not None


def _check(x, dt, A, B, C, D):
    b, l, d = x.shape
    n = A.shape[1]
    assert dt.shape == (b, l, d) and A.shape == (d, n) and B.shape == (b, l, n) and C.shape == (b, l, n)
    assert D.shape == (d,)
    return b, l, d, n


def selective_scan_sequential(x, dt, A, B, C, D, h0=None):
    """Reference recurrence. x, dt (b, l, d); A (d, n); B, C (b, l, n); D (d,); h0 (b, d, n).
    Returns y (b, l, d) and the last state (b, d, n)."""
    b, l, d, n = _check(x, dt, A, B, C, D)
    h = x.new_zeros(b, d, n) if h0 is None else h0
    ys = []
    for t in range(l):
        y, h = selective_scan_step(x[:, t], dt[:, t], A, B[:, t], C[:, t], D, h)
        ys.append(y)
    y = torch.stack(ys, 1) if ys else x.new_zeros(b, 0, d)
    return y, h


def selective_scan_step(x, dt, A, B, C, D, h):
    """One step: x, dt (b, d); B, C (b, n); h (b, d, n) -> y (b, d), new h."""
    h = torch.exp(dt.unsqueeze(-1) * A) * h + (dt * x).unsqueeze(-1) * B.unsqueeze(1)
    y = (h * C.unsqueeze(1)).sum(-1) + D * x
    return y, h


def selective_scan_parallel(x, dt, A, B, C, D, h0=None, chunk: int = 64):
    """Same result as ``selective_scan_sequential`` (to float rounding), parallel within chunks."""
    b, l, d, n = _check(x, dt, A, B, C, D)
    h = x.new_zeros(b, d, n) if h0 is None else h0
    ys = []
    for start in range(0, l, chunk):
        sl = slice(start, min(start + chunk, l))
        a = torch.exp(dt[:, sl].unsqueeze(-1) * A)  # (b, c, d, n) decays
        u = (dt[:, sl] * x[:, sl]).unsqueeze(-1) * B[:, sl].unsqueeze(2)  # (b, c, d, n) inputs
        c = a.shape[1]
        step = 1
        while step < c:
            # Element t absorbs the map ending at t - step: (a, u)_t <- (a_t a_{t-s}, a_t u_{t-s} + u_t).
            u = torch.cat([u[:, :step], u[:, step:] + a[:, step:] * u[:, :-step]], 1)
            a = torch.cat([a[:, :step], a[:, step:] * a[:, :-step]], 1)
            step *= 2
        hs = u + a * h.unsqueeze(1)
        ys.append((hs * C[:, sl].unsqueeze(2)).sum(-1))
        h = hs[:, -1]
    y = torch.cat(ys, 1) if ys else x.new_zeros(b, 0, d)
    return y + x * D, h


class Mamba(nn.Module):
    """The Mamba v1 mixer (mamba-ssm's ``Mamba`` parameter names and initialisation)."""

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, dt_rank: int | None = None,
                 dt_min: float = 1e-3, dt_max: float = 0.1, dt_init_floor: float = 1e-4, chunk: int = 64):
        super().__init__()
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = expand * d_model
        self.dt_rank = dt_rank or math.ceil(d_model / 16)
        self.chunk = chunk
        di = self.d_inner
        self.in_proj = nn.Linear(d_model, 2 * di, bias=False)
        self.conv1d = CausalConv1d(di, di, d_conv, groups=di, bias=True)
        self.x_proj = nn.Linear(di, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, di, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(di, 1))
        self.D = nn.Parameter(torch.ones(di))
        self.out_proj = nn.Linear(di, d_model, bias=False)
        with torch.no_grad():
            std = self.dt_rank ** -0.5
            nn.init.uniform_(self.dt_proj.weight, -std, std)
            dt = torch.exp(torch.rand(di) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            dt = dt.clamp(min=dt_init_floor)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def forward(self, x: torch.Tensor, state=None):
        """x (B, T, d_model) -> (B, T, d_model), state = (conv state, ssm state)."""
        conv_state, h = state if state is not None else (None, None)
        u, z = self.in_proj(x).chunk(2, dim=-1)
        u, conv_state = self.conv1d(u.transpose(1, 2), conv_state)
        u = F.silu(u).transpose(1, 2)  # (B, T, di)
        dt_low, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        A = -torch.exp(self.A_log.float())
        if h is None and u.is_cuda and kernels_enabled():
            y, h = _kernel_scan(
                u.transpose(1, 2).contiguous(), (dt_low @ self.dt_proj.weight.t()).transpose(1, 2).contiguous(),
                A, B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(), self.D.float(),
                delta_bias=self.dt_proj.bias.float(), delta_softplus=True, return_last_state=True)
            y = y.transpose(1, 2)
        else:
            dt = F.softplus(self.dt_proj(dt_low))
            if u.shape[1] == 1:
                h = u.new_zeros(u.shape[0], self.d_inner, self.d_state) if h is None else h
                y, h = selective_scan_step(u[:, 0], dt[:, 0], A, B[:, 0], C[:, 0], self.D, h)
                y = y.unsqueeze(1)
            elif _SCAN_MODE == "parallel" or (_SCAN_MODE == "auto" and u.is_cuda):
                y, h = selective_scan_parallel(u, dt, A, B, C, self.D, h, chunk=self.chunk)
            else:
                y, h = selective_scan_sequential(u, dt, A, B, C, self.D, h)
        return self.out_proj(y * F.silu(z)), (conv_state, h)


class MambaBlock(nn.Module):
    """Pre-norm residual Mamba mixer, then (optionally) a pre-norm residual gated MLP."""

    def __init__(self, config):
        super().__init__()
        self.norm = RMSNorm(config.d_model)
        self.mixer = Mamba(config.d_model, config.d_state, config.d_conv, config.expand, config.dt_rank_value)
        if config.mlp_hidden > 0:
            self.norm2 = RMSNorm(config.d_model)
            self.mlp = GatedMLP(config.d_model, config.mlp_hidden)
        else:
            self.norm2 = self.mlp = None

    def forward(self, x: torch.Tensor, state=None):
        y, state = self.mixer(self.norm(x), state)
        x = x + y
        if self.mlp is not None:
            x = x + self.mlp(self.norm2(x))
        return x, state


class MambaStack(nn.ModuleList):
    """Blocks applied in order; the state is one entry per block."""

    def run(self, x: torch.Tensor, state=None):
        state = state if state is not None else [None] * len(self)
        new_state = []
        for block, s in zip(self, state):
            x, s = block(x, s)
            new_state.append(s)
        return x, new_state


class BiMambaBlock(nn.Module):
    """``MambaBlock`` that scans a whole span both ways (Vision Mamba's bidirectional block): two
    mixers read the same normalised input, ``mixer`` forward in time and ``mixer_back`` from the
    span's end, and their outputs are added. No state: a span is always given whole."""

    def __init__(self, config):
        super().__init__()
        self.norm = RMSNorm(config.d_model)
        self.mixer = Mamba(config.d_model, config.d_state, config.d_conv, config.expand, config.dt_rank_value)
        self.mixer_back = Mamba(config.d_model, config.d_state, config.d_conv, config.expand, config.dt_rank_value)
        if config.mlp_hidden > 0:
            self.norm2 = RMSNorm(config.d_model)
            self.mlp = GatedMLP(config.d_model, config.mlp_hidden)
        else:
            self.norm2 = self.mlp = None

    def forward(self, x: torch.Tensor, state=None):
        """x (B, n, d) -> (B, n, d), None."""
        h = self.norm(x)
        forward, _ = self.mixer(h)
        backward, _ = self.mixer_back(h.flip(1))
        x = x + forward + backward.flip(1)
        if self.mlp is not None:
            x = x + self.mlp(self.norm2(x))
        return x, None
