"""``torch_model/layers.py`` in numpy: the activations, Linear, causal and depthwise Conv1d with
carried state, RMSNorm, gated MLP and the causal conv stack, plus the VQ-VAEs' strided
``Downsample`` (Conv1d, kernel = stride = r) and ``Upsample`` (ConvTranspose1d, kernel = stride = r).

Every layer takes time-major arrays (..., T, channels), any leading batch axes. Weights are read
from a checkpoint's tensors by their torch names (``architecture.py``): Linear (out, in), Conv1d
(out, in / groups, kernel), ConvTranspose1d (in, out, kernel).
"""
from __future__ import annotations

import numpy as np

from ..architecture import LEAKY_SLOPE, NORM_EPS

F32 = np.float32


def silu(x: np.ndarray) -> np.ndarray:
    return np.divide(x, _one_plus_exp_minus(x))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.reciprocal(_one_plus_exp_minus(x))


def _one_plus_exp_minus(x: np.ndarray) -> np.ndarray:
    # 1 + e^-x with x clamped at -80, where sigmoid is 1.8e-35 either way: e^80 cannot overflow, so
    # numpy never warns (entering np.errstate costs more than a short span's arithmetic). numpy's
    # float32 exp is vectorised and tanh is not: 2.5x faster than (1 + tanh(x / 2)) / 2.
    e = np.exp(np.negative(np.maximum(x, F32(-80.0))))
    e += F32(1.0)
    return e


def softplus(x: np.ndarray) -> np.ndarray:
    """torch's softplus (beta 1, threshold 20), to within 1e-6 absolute: log(1 + e^x) written as
    max(x, 0) + log(1 + e^-|x|), which cannot overflow. numpy's float32 ``log`` and ``exp`` are
    vectorised and ``log1p`` is not: this form is 4x faster on a span."""
    return np.maximum(x, F32(0.0)) + np.log(F32(1.0) + np.exp(-np.abs(x)))


def leaky(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, x * F32(LEAKY_SLOPE))


def rms_norm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``layers.RMSNorm``: x * weight / sqrt(mean(x^2) + eps) over the last axis."""
    mean_square = np.add.reduce(x * x, axis=-1, keepdims=True) * F32(1.0 / x.shape[-1])
    return x * (F32(1.0) / np.sqrt(mean_square + F32(NORM_EPS))) * weight


class Linear:
    """x (..., in) -> (..., out)."""

    def __init__(self, tensors: dict, prefix: str, bias: bool = True) -> None:
        self.weight_t = np.ascontiguousarray(tensors[f"{prefix}.weight"].T)  # (in, out)
        self.bias = tensors[f"{prefix}.bias"] if bias else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # numpy hands only positively strided operands to BLAS: on a time-reversed view (a
        # backward scan's input) matmul falls back to its own loop, 8x slower than copying first.
        y = np.ascontiguousarray(x) @ self.weight_t
        return y + self.bias if self.bias is not None else y


class CausalConv:
    """Conv1d (out, in, k) with left zero padding / carried state: x (..., T, in) -> (..., T, out)."""

    def __init__(self, tensors: dict, prefix: str) -> None:
        weight = tensors[f"{prefix}.weight"]
        self.kernel = weight.shape[2]
        self.in_channels = weight.shape[1]
        # One (in, out) matrix per tap; tap j multiplies the input k-1-j frames back.
        self.taps = [np.ascontiguousarray(weight[:, :, j].T) for j in range(self.kernel)]
        self.bias = tensors[f"{prefix}.bias"]

    def __call__(self, x: np.ndarray, state: np.ndarray | None = None):
        k, t = self.kernel, x.shape[-2]
        if k == 1:
            return x @ self.taps[0] + self.bias, state
        if state is None:
            state = np.zeros((*x.shape[:-2], k - 1, self.in_channels), F32)
        full = np.concatenate([state, x], axis=-2)
        y = full[..., 0:t, :] @ self.taps[0]
        for j in range(1, k):
            y += full[..., j:j + t, :] @ self.taps[j]
        return y + self.bias, full[..., t:, :]


class DepthwiseConv:
    """Depthwise Conv1d (channels, 1, k) with carried state (the Mamba mixer's ``conv1d``):
    x (..., T, C) -> (..., T, C), state (..., k - 1, C). ``taps`` (k, C) and ``bias`` (C,); a
    stacked one (``stack``) has taps (M, 1, k, C) and bias (M, 1, 1, C) for x (M, B, T, C)."""

    def __init__(self, tensors: dict, prefix: str) -> None:
        weight = tensors[f"{prefix}.weight"]
        self.taps = np.ascontiguousarray(weight[:, 0, :].T)  # (k, C); tap j multiplies frame t - (k-1-j)
        self.bias = tensors[f"{prefix}.bias"]

    @classmethod
    def stack(cls, convs: list) -> "DepthwiseConv":
        stacked = cls.__new__(cls)
        stacked.taps = np.ascontiguousarray(np.stack([c.taps for c in convs])[:, None])
        stacked.bias = np.ascontiguousarray(np.stack([c.bias for c in convs])[:, None, None])
        return stacked

    def __call__(self, x: np.ndarray, state: np.ndarray | None = None):
        k, t = self.taps.shape[-2], x.shape[-2]
        if state is None:
            state = np.zeros((*x.shape[:-2], k - 1, x.shape[-1]), F32)
        full = np.concatenate([state, x], axis=-2)
        y = full[..., 0:t, :] * self.taps[..., 0:1, :]
        for j in range(1, k):
            y += full[..., j:j + t, :] * self.taps[..., j:j + 1, :]
        return y + self.bias, full[..., t:, :]


class GatedMLP:
    """fc2(silu(a) * b) with (a, b) = fc1(x)."""

    def __init__(self, tensors: dict, prefix: str, hidden: int) -> None:
        self.hidden = hidden
        self.fc1 = Linear(tensors, f"{prefix}.fc1", bias=False)
        self.fc2 = Linear(tensors, f"{prefix}.fc2", bias=False)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        ab = self.fc1(x)
        return self.fc2(silu(ab[..., :self.hidden]) * ab[..., self.hidden:])


class ConvBlock:
    """MambaTalk/EMAGE encoder layer: conv + LeakyReLU, then a residual block; state (conv, res_a)."""

    def __init__(self, tensors: dict, prefix: str) -> None:
        self.conv = CausalConv(tensors, f"{prefix}.conv")
        self.res_a = CausalConv(tensors, f"{prefix}.res_a")
        self.res_b = CausalConv(tensors, f"{prefix}.res_b")

    def __call__(self, x: np.ndarray, state=None):
        s_conv, s_res = state if state is not None else (None, None)
        x, s_conv = self.conv(x, s_conv)
        x = leaky(x)
        r, s_res = self.res_a(leaky(x), s_res)
        r, _ = self.res_b(leaky(r))
        return x + r, (s_conv, s_res)


class ConvStack:
    """``layers.ConvStack``: proj_in, residual conv blocks, proj_out; state one entry per layer."""

    def __init__(self, tensors: dict, prefix: str, layers: int) -> None:
        self.proj_in = CausalConv(tensors, f"{prefix}.proj_in")
        self.blocks = [ConvBlock(tensors, f"{prefix}.blocks.{i}") for i in range(layers)]
        self.proj_out = CausalConv(tensors, f"{prefix}.proj_out")

    def __call__(self, x: np.ndarray, state=None):
        """x (..., T, in) -> (..., T, out), new state."""
        state = state if state is not None else [None] * (len(self.blocks) + 1)
        h, s = self.proj_in(x, state[0])
        new_state = [s]
        for block, s in zip(self.blocks, state[1:]):
            h, s = block(h, s)
            new_state.append(s)
        y, _ = self.proj_out(h)
        return y, new_state


class Downsample:
    """Conv1d (out, in, r) with kernel = stride = r: each r frames become one vector,
    x (..., n r, in) -> (..., n, out)."""

    def __init__(self, tensors: dict, prefix: str) -> None:
        weight = tensors[f"{prefix}.weight"]  # (out, in, r)
        self.rate = weight.shape[2]
        # Row j * in + c of the flattened r frames meets weight[:, c, j].
        self.weight = np.ascontiguousarray(weight.transpose(2, 1, 0).reshape(-1, weight.shape[0]))
        self.bias = tensors[f"{prefix}.bias"]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        *batch, t, c = x.shape
        if t % self.rate:
            raise ValueError(f"{t} frames do not make whole codes of {self.rate} frames")
        return x.reshape(*batch, t // self.rate, self.rate * c) @ self.weight + self.bias


class Upsample:
    """ConvTranspose1d (in, out, r) with kernel = stride = r: frame r k + j of the output is
    ``x[k] @ weight[:, :, j] + bias``; x (..., n, in) -> (..., n r, out)."""

    def __init__(self, tensors: dict, prefix: str) -> None:
        weight = tensors[f"{prefix}.weight"]  # (in, out, r)
        self.rate, self.out = weight.shape[2], weight.shape[1]
        # Column j * out + c is frame j's channel c.
        self.weight = np.ascontiguousarray(weight.transpose(0, 2, 1).reshape(weight.shape[0], -1))
        self.bias = tensors[f"{prefix}.bias"]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        *batch, n, _ = x.shape
        return (x @ self.weight).reshape(*batch, n * self.rate, self.out) + self.bias
