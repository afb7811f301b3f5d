"""Mamba (selective state space) blocks in pure PyTorch, with the mamba-ssm kernel when it imports.

The selective scan ``h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t``, ``y_t = C_t . h_t + D x_t`` in
four interchangeable forms:

- ``selective_scan_sequential``: the plain recurrence, one time step after another (reference);
- ``selective_scan_step``: one step with carried state (streaming, and the autoregressive part
  of generation);
- ``selective_scan_parallel``: chunks of ``chunk`` steps, each solved with a parallel
  (Hillis-Steele doubling) prefix scan of the affine maps ``h -> a h + b``; chunks are chained
  through the carried state. It only multiplies decays in (0, 1], so nothing overflows, and its
  memory is bounded by the chunk, not the sequence.
- ``selective_scan_blocked``: the recurrence with the decays and inputs of a block of steps
  computed at once, one op per step left in the loop (the NumPy model's fast scan).

Which form runs (``Mamba.forward``): mamba-ssm's CUDA ``selective_scan_fn`` for whole sequences
(no incoming state) on CUDA tensors when the package imports (``set_kernels(False)`` turns it
off); otherwise the parallel form on CUDA, and on the CPU the blocked form where no gradient is
recorded (generation) and the sequential loop where one is (training). On the CPU the scan is
memory-bound and the loop touches only (batch, d_inner, d_state) per step, while the parallel
form materialises (batch, time, d_inner, d_state) several times: measured on this project's 2-core
CPU, forward+backward at (16, 128, 256, 16) took 0.41 s sequential vs 2.6 s parallel (0.11 s
sequential vs 0.21 s blocked), and a 64-frame inference block at d_inner 1536 took 4.4 ms
sequential, 22 ms parallel and 2.5 ms blocked; the speech encoder's 16-frame block at d_inner 256
0.43 ms sequential, 0.18 ms blocked. ``set_scan_mode`` overrides the choice. mamba-ssm is optional
everywhere.

Generation also runs several mixers as one (``StackedMamba``, ``BiMambaLayer``): the two
directions of a bidirectional block, and the same layer of several parts' local stacks.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import CausalConv1d, GatedMLP, RMSNorm, rms_norm

try:  # optional CUDA kernels
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _kernel_scan
except Exception:  # ImportError, or a broken CUDA build: the pure path is always there
    _kernel_scan = None

_USE_KERNELS = True
_SCAN_MODE = "auto"
SCAN_MODES = ("auto", "parallel", "blocked", "sequential")


def kernels_available() -> bool:
    return _kernel_scan is not None


def set_kernels(enabled: bool) -> None:
    """Allow or forbid the mamba-ssm kernel (tests compare both paths on the same weights)."""
    global _USE_KERNELS
    _USE_KERNELS = bool(enabled)


def set_scan_mode(mode: str) -> None:
    """"auto" (parallel on CUDA; on the CPU blocked without autograd, sequential with it),
    "parallel", "blocked" or "sequential"."""
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


# The blocked scan materialises decays and inputs for as many steps at once as fit in about this
# many floats (512 KB): blocks that stay in cache. Measured on the project's 2-core CPU, a 20-step
# scan of 8 stacked mixers x 2 styles (d_inner 256) took 2.6 ms in blocks of 2^17 floats, 10 ms
# computed whole.
_BLOCK_FLOATS = 1 << 17
_LOG2E = 1.0 / math.log(2.0)


def selective_scan_blocked(x, dt, A, B, C, D, h0=None):
    """Same result as ``selective_scan_sequential`` (to float rounding), with the decays
    ``exp(dt A)`` and inputs ``dt B x`` of a block of steps computed in one vectorised op each
    (time-major) and only ``h <- a h + u`` (one ``addcmul``) left in the loop: on the CPU a
    step's arithmetic is smaller than an op's overhead, so fewer ops per step is what counts.
    The state is kept as (n, d) inside, so that ``y = C . h`` is a (1, n) x (n, d) product (7x
    faster than a matrix-vector product per (d, n) state).

    Also takes leading axes beyond the batch: x, dt (..., l, d); A (..., d, n) broadcasting
    against them (stacked mixers each with their own A); B, C (..., l, n); D broadcasting against x;
    h0 (..., d, n). Differentiable (in-place writes only where no gradient is recorded)."""
    l = x.shape[-2]
    # exp(v) = exp2(v log2 e): torch's exp2 is about 2x faster than exp on the CPU.
    # Every operand contiguous in the order used: a broadcasting op's result takes its inputs'
    # memory order, and one in another order makes the ops on it several times slower.
    A2 = (A.to(x.dtype) * _LOG2E).transpose(-1, -2).contiguous()  # (..., n, d)
    h = None if h0 is None else h0.transpose(-1, -2)  # (..., n, d); None: zeros
    if l == 0:
        batch = torch.broadcast_shapes(x.shape[:-2], A.shape[:-2])
        h = x.new_zeros(*batch, *A2.shape[-2:]) if h is None else h
        return x * D, h.transpose(-1, -2)
    dt_t, dtx_t = dt.movedim(-2, 0).contiguous(), (dt * x).movedim(-2, 0).contiguous()  # (l, ..., d)
    b_t, c_t = B.movedim(-2, 0).contiguous(), C.movedim(-2, 0).contiguous()  # (l, ..., n)
    steps = max(1, _BLOCK_FLOATS // (dt_t[0].numel() * A2.shape[-2]))
    ys = []
    for start in range(0, l, steps):
        block = slice(start, min(start + steps, l))
        a = torch.exp2(dt_t[block].unsqueeze(-2) * A2)  # (t, ..., n, d)
        u = b_t[block].unsqueeze(-1) * dtx_t[block].unsqueeze(-2)  # (t, ..., n, d)
        first = 0
        if h is None:  # from a zero state the first step is its input
            h, first = u[0], 1
        if torch.is_grad_enabled():
            hs = [h] if first else []
            for i in range(first, a.shape[0]):
                h = torch.addcmul(u[i], a[i], h)
                hs.append(h)
            hs = torch.stack(hs)
        else:  # no autograd: the states overwrite the inputs in place (no copies)
            hs = u
            for i in range(first, a.shape[0]):
                h = hs[i].addcmul_(a[i], h)
        ys.append(torch.matmul(c_t[block].unsqueeze(-2), hs).squeeze(-2))  # (t, ..., d)
    y = torch.cat(ys).movedim(0, -2) if len(ys) > 1 else ys[0].movedim(0, -2)
    return torch.addcmul(y, x, D), h.transpose(-1, -2)


class Mamba(nn.Module):
    """The Mamba v1 mixer (mamba-ssm's ``Mamba`` parameter names and initialisation)."""

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, dt_rank: int | None = None,
                 dt_min: float = 1e-3, dt_max: float = 0.1, dt_init_floor: float = 1e-4, chunk: int = 64,
                 d_inner: int | None = None):
        super().__init__()
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = d_inner or expand * d_model
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
            elif _SCAN_MODE == "blocked" or (_SCAN_MODE == "auto" and not torch.is_grad_enabled()):
                y, h = selective_scan_blocked(u, dt, A, B, C, self.D, h)
            else:
                y, h = selective_scan_sequential(u, dt, A, B, C, self.D, h)
        return self.out_proj(y * F.silu(z)), (conv_state, h)


def _mixer(config, d_inner: int | None = None) -> Mamba:
    return Mamba(config.d_model, config.d_state, config.d_conv, config.expand, config.dt_rank_value, d_inner=d_inner)


class MambaBlock(nn.Module):
    """Pre-norm residual Mamba mixer, then (optionally) a pre-norm residual gated MLP."""

    def __init__(self, config):
        super().__init__()
        self.norm = RMSNorm(config.d_model)
        self.build_mixers(config)
        if config.mlp_hidden > 0:
            self.norm2 = RMSNorm(config.d_model)
            self.mlp = GatedMLP(config.d_model, config.mlp_hidden)
        else:
            self.norm2 = self.mlp = None

    def build_mixers(self, config) -> None:
        self.mixer = _mixer(config)

    def mix(self, h: torch.Tensor, state=None):
        """The residual branch on the normalised input: (B, T, d) -> (B, T, d), state."""
        return self.mixer(h, state)

    def forward(self, x: torch.Tensor, state=None):
        y, state = self.mix(self.norm(x), state)
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


def both_ways(mixer: Mamba, mixer_back: Mamba, h: torch.Tensor) -> torch.Tensor:
    """Vision Mamba's bidirectional scan of a whole sequence (B, n, d): ``mixer`` forward in time
    plus ``mixer_back`` from the end, both from a zero state."""
    forward, _ = mixer(h)
    backward, _ = mixer_back(h.flip(-2))
    return forward + backward.flip(-2)


class BiMambaBlock(MambaBlock):
    """``MambaBlock`` that scans a whole span both ways (Vision Mamba's bidirectional block): two
    mixers read the same normalised input, ``mixer`` forward in time and ``mixer_back`` from the
    span's end, and their outputs are added. No state: a span is always given whole."""

    def build_mixers(self, config) -> None:
        self.mixer = _mixer(config)
        self.mixer_back = _mixer(config)

    def mix(self, h: torch.Tensor, state=None):
        """h (B, n, d) -> (B, n, d), None."""
        return both_ways(self.mixer, self.mixer_back, h), None


def pool_time(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(..., n, d) -> (..., ceil(n / factor), d): the mean of each group of ``factor`` steps,
    groups counted from the first step (the last group may be shorter)."""
    n = x.shape[-2]
    if factor == 1:
        return x
    groups = -(-n // factor)
    padded = F.pad(x, (0, 0, 0, groups * factor - n))
    sums = padded.unflatten(-2, (groups, factor)).sum(-2)
    counts = torch.full((groups, 1), float(factor), dtype=x.dtype, device=x.device)
    counts[-1] = n - (groups - 1) * factor
    return sums / counts


def unpool_time(y: torch.Tensor, factor: int, n: int) -> torch.Tensor:
    """``pool_time``'s inverse in time: (..., groups, d) -> (..., n, d), each group's value on its steps."""
    return y if factor == 1 else y.repeat_interleave(factor, dim=-2)[..., :n, :]


class GranularBiMambaBlock(MambaBlock):
    """A bidirectional block that scans at several temporal granularities at once (our reading of
    GranuMamba, Expert Systems with Applications 2026, whose code is not public).

    Branch ``scales.i`` pools the normalised input by ``factors[i]`` (``pool_time``), scans
    the pooled sequence both ways with its own pair of mixers, and brings the result back to the
    full rate (``unpool_time``). The branches' outputs are added with per-step gates
    ``2 sigmoid(fuse(h))`` (1 at initialisation). Each branch's mixers have ``d_inner / G``
    inner channels, so the block has the parameters of a ``BiMambaBlock`` plus ``fuse``
    (G (d + 1)). Groups are counted from the sequence's first step: a span or window is always
    given whole and at its absolute position, so chunked generation still equals whole-clip."""

    def __init__(self, config, factors):
        self.factors = tuple(factors)  # read by build_mixers, which MambaBlock's __init__ calls
        super().__init__(config)

    def build_mixers(self, config) -> None:
        width = config.d_inner // len(self.factors)
        self.scales = nn.ModuleList(_MixerPair(config, width) for _ in self.factors)
        self.fuse = nn.Linear(config.d_model, len(self.factors))
        nn.init.zeros_(self.fuse.weight)
        nn.init.zeros_(self.fuse.bias)

    def mix(self, h: torch.Tensor, state=None):
        """h (B, n, d) -> (B, n, d), None."""
        n = h.shape[-2]
        gates = 2 * torch.sigmoid(self.fuse(h))
        y = 0
        for i, (factor, scale) in enumerate(zip(self.factors, self.scales)):
            branch = both_ways(scale.mixer, scale.mixer_back, pool_time(h, factor))
            y = y + gates[..., i:i + 1] * unpool_time(branch, factor, n)
        return y, None


class _MixerPair(nn.Module):
    """One granularity's forward and backward mixers (``scales.i.mixer``, ``scales.i.mixer_back``)."""

    def __init__(self, config, d_inner: int):
        super().__init__()
        self.mixer = _mixer(config, d_inner)
        self.mixer_back = _mixer(config, d_inner)


def bidirectional_block(config, factors=(1,)) -> MambaBlock:
    """A bidirectional scan's block: ``BiMambaBlock`` for factors (1,), else a
    ``GranularBiMambaBlock`` at those pooling factors (``config.granularities[scan]``)."""
    return BiMambaBlock(config) if tuple(factors) == (1,) else GranularBiMambaBlock(config, factors)


# --- inference: several mixers run as one ----------------------------------------------------
# A span is ~20 codes: on the CPU each op's overhead is as large as its arithmetic, so running
# the two directions of a bidirectional block, and the same layer of several parts' local stacks,
# as one batched mixer cuts the op count several times. Weights are copied into stacks (no
# autograd): for generation only; training runs the modules themselves.

def _stacked(tensors) -> torch.Tensor:
    return torch.stack([t.detach() for t in tensors])


class StackedMamba:
    """``Mamba`` mixers side by side: x (M, B, T, d) -> (M, B, T, d), mixer m on x[m]; whole
    sequences from a zero state (what a bidirectional span block needs). Same result as calling
    each mixer (to float rounding)."""

    def __init__(self, mixers) -> None:
        first = mixers[0]
        self.d_inner, self.d_state, self.dt_rank = first.d_inner, first.d_state, first.dt_rank
        self.in_w = _stacked(m.in_proj.weight.t() for m in mixers)  # (M, d, 2 di)
        self.x_w = _stacked(m.x_proj.weight.t() for m in mixers)  # (M, di, rank + 2 N)
        self.dt_w = _stacked(m.dt_proj.weight.t() for m in mixers)  # (M, rank, di)
        self.dt_b = _stacked(m.dt_proj.bias for m in mixers).unsqueeze(1)  # (M, 1, di)
        self.out_w = _stacked(m.out_proj.weight.t() for m in mixers)  # (M, di, d)
        # Depthwise conv taps (M, k, 1, 1, di): tap j multiplies the input k-1-j steps back.
        self.conv_w = _stacked(m.conv1d.weight[:, 0].t() for m in mixers)[:, :, None, None]
        self.conv_b = _stacked(m.conv1d.bias for m in mixers)[:, None, None]  # (M, 1, 1, di)
        self.A = -torch.exp(_stacked(m.A_log.float() for m in mixers)).unsqueeze(1)  # (M, 1, di, N)
        self.D = _stacked(m.D for m in mixers)[:, None, None]  # (M, 1, 1, di)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m, b, t, _ = x.shape
        di, n, rank = self.d_inner, self.d_state, self.dt_rank
        u, z = torch.bmm(x.reshape(m, b * t, -1), self.in_w).view(m, b, t, 2 * di).split(di, -1)
        k = self.conv_w.shape[1]
        full = F.pad(u, (0, 0, k - 1, 0))  # zero history before the first step
        conv = torch.addcmul(self.conv_b, full[:, :, :t], self.conv_w[:, 0])
        for j in range(1, k):
            conv = torch.addcmul(conv, full[:, :, j:j + t], self.conv_w[:, j])
        u = F.silu(conv)
        proj = torch.bmm(u.reshape(m, b * t, di), self.x_w)
        dt_low, B, C = proj.split([rank, n, n], dim=-1)
        dt = F.softplus(torch.baddbmm(self.dt_b, dt_low, self.dt_w)).view(m, b, t, di)
        y, _ = selective_scan_blocked(u, dt, self.A, B.reshape(m, b, t, n), C.reshape(m, b, t, n), self.D)
        return torch.bmm((y * F.silu(z)).reshape(m, b * t, di), self.out_w).view(m, b, t, -1)


class StackedLinear:
    """``nn.Linear`` layers side by side: x (M, ..., in) -> (M, ..., out), layer m on x[m]."""

    def __init__(self, layers) -> None:
        self.weight = _stacked(layer.weight.t() for layer in layers)  # (M, in, out)
        self.bias = None if layers[0].bias is None else _stacked(layer.bias for layer in layers).unsqueeze(1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(x.shape[0], -1, x.shape[-1])
        y = torch.bmm(rows, self.weight) if self.bias is None else torch.baddbmm(self.bias, rows, self.weight)
        return y.view(*x.shape[:-1], -1)


class BiMambaLayer:
    """Several ``BiMambaBlock``s run as one: block p reads x[p] of x (P, B, n, d) -> (P, B, n, d).
    Both directions of every block are one ``StackedMamba`` (2P mixers). Same result as calling
    each block (to float rounding); for generation (no autograd)."""

    def __init__(self, blocks) -> None:
        self.build_mixers(blocks)
        self.eps = blocks[0].norm.eps
        self.norm = _stacked(block.norm.weight for block in blocks)[:, None, None]  # (P, 1, 1, d)
        self.mlp = blocks[0].mlp is not None
        if self.mlp:
            self.norm2 = _stacked(block.norm2.weight for block in blocks)[:, None, None]
            self.fc1 = StackedLinear([block.mlp.fc1 for block in blocks])
            self.fc2 = StackedLinear([block.mlp.fc2 for block in blocks])

    def build_mixers(self, blocks) -> None:
        self.mixers = StackedMamba([m for block in blocks for m in (block.mixer, block.mixer_back)])

    def mix(self, h: torch.Tensor) -> torch.Tensor:
        """The blocks' residual branches on the normalised input (P, B, n, d)."""
        return _both_ways_stacked(self.mixers, h)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mix(rms_norm(x, self.norm, self.eps))
        if self.mlp:
            a, g = self.fc1(rms_norm(x, self.norm2, self.eps)).chunk(2, dim=-1)
            x = x + self.fc2(F.silu(a) * g)
        return x


def _both_ways_stacked(mixers: StackedMamba, h: torch.Tensor) -> torch.Tensor:
    """h (P, B, n, d) through P (forward, backward) mixer pairs stacked as 2P mixers."""
    p, b, n, d = h.shape
    both = torch.stack([h, h.flip(2)], 1).view(2 * p, b, n, d)  # forward, backward per block
    y = mixers(both).view(p, 2, b, n, d)
    return y[:, 0] + y[:, 1].flip(2)


class GranularBiMambaLayer(BiMambaLayer):
    """Several ``GranularBiMambaBlock``s run as one (same contract as ``BiMambaLayer``): per
    granularity, both directions of every block's branch are one ``StackedMamba``."""

    def build_mixers(self, blocks) -> None:
        self.factors = blocks[0].factors
        self.scales = [StackedMamba([m for block in blocks for m in (block.scales[i].mixer, block.scales[i].mixer_back)])
                       for i in range(len(self.factors))]
        self.fuse = StackedLinear([block.fuse for block in blocks])

    def mix(self, h: torch.Tensor) -> torch.Tensor:
        n = h.shape[2]
        gates = 2 * torch.sigmoid(self.fuse(h))
        y = 0
        for i, (factor, mixers) in enumerate(zip(self.factors, self.scales)):
            branch = _both_ways_stacked(mixers, pool_time(h, factor))
            y = y + gates[..., i:i + 1] * unpool_time(branch, factor, n)
        return y


def bidirectional_layer(blocks) -> BiMambaLayer:
    """``BiMambaLayer`` or ``GranularBiMambaLayer``, whichever runs ``blocks`` (all of one kind)."""
    return GranularBiMambaLayer(blocks) if isinstance(blocks[0], GranularBiMambaBlock) else BiMambaLayer(blocks)
