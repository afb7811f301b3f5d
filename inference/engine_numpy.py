"""The NumPy engine: the same network as ``torch_model``, written with numpy alone.

It runs inside any Blender 4.2 - 5.0 with nothing installed. It reads the checkpoint's tensors by
their names (``architecture.py``), mirrors every module of the torch model (causal Conv1d with
carried state, RMSNorm, gated MLP, the Mamba mixer and its selective scan) and implements the
``engines.Engine`` contract, so the pipeline cannot tell the engines apart except by rounding:
float32 throughout, as torch on the CPU.

Arrays here are time-major without a batch axis: a sequence is (T, channels); a causal
convolution's state is its last ``kernel - 1`` inputs, (kernel - 1, in_channels); a Mamba
state is (conv state, ssm state h (d_inner, d_state)). ``None`` = zero history.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..rigs.skeleton import PARTS
from .architecture import LEAKY_SLOPE, NORM_EPS
from .engines import Engine, EngineError

_F32 = np.float32


# --- layers -----------------------------------------------------------------------------------
def silu(x: np.ndarray) -> np.ndarray:
    # exp(-x) overflows to inf for x < -88 in float32; x / inf = -0, which is the right limit.
    with np.errstate(over="ignore"):
        return x / (_F32(1.0) + np.exp(-x))


def softplus(x: np.ndarray) -> np.ndarray:
    """torch's softplus (beta 1, threshold 20): linear above 20."""
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, _F32(20.0))))).astype(_F32, copy=False)


def leaky(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, x * _F32(LEAKY_SLOPE))


def rms_norm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    scale = _F32(1.0) / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + _F32(NORM_EPS))
    return x * scale * weight


class Linear:
    def __init__(self, tensors: dict, prefix: str, bias: bool = True) -> None:
        self.weight_t = np.ascontiguousarray(tensors[f"{prefix}.weight"].T)  # (in, out)
        self.bias = tensors[f"{prefix}.bias"] if bias else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.weight_t
        return y + self.bias if self.bias is not None else y


class CausalConv:
    """Conv1d (out, in, k) with left zero padding / carried state; x (T, in) -> (T, out)."""

    def __init__(self, tensors: dict, prefix: str) -> None:
        weight = tensors[f"{prefix}.weight"]
        self.kernel = weight.shape[2]
        self.in_channels = weight.shape[1]
        # One (in, out) matrix per tap; tap j multiplies the input k-1-j frames back.
        self.taps = [np.ascontiguousarray(weight[:, :, j].T) for j in range(self.kernel)]
        self.bias = tensors[f"{prefix}.bias"]

    def __call__(self, x: np.ndarray, state: np.ndarray | None = None):
        k, t = self.kernel, x.shape[0]
        if k == 1:
            return x @ self.taps[0] + self.bias, state
        if state is None:
            state = np.zeros((k - 1, self.in_channels), _F32)
        full = np.concatenate([state, x])
        y = full[0:t] @ self.taps[0]
        for j in range(1, k):
            y += full[j:j + t] @ self.taps[j]
        return y + self.bias, full[t:]


class DepthwiseConv:
    """Depthwise Conv1d (channels, 1, k) with carried state (the Mamba mixer's ``conv1d``)."""

    def __init__(self, tensors: dict, prefix: str) -> None:
        weight = tensors[f"{prefix}.weight"]
        self.kernel = weight.shape[2]
        self.channels = weight.shape[0]
        self.taps = np.ascontiguousarray(weight[:, 0, :].T)  # (k, channels)
        self.bias = tensors[f"{prefix}.bias"]

    def __call__(self, x: np.ndarray, state: np.ndarray | None = None):
        k, t = self.kernel, x.shape[0]
        if state is None:
            state = np.zeros((k - 1, self.channels), _F32)
        full = np.concatenate([state, x])
        y = full[0:t] * self.taps[0]
        for j in range(1, k):
            y += full[j:j + t] * self.taps[j]
        return y + self.bias, full[t:]


class ConvStack:
    """``layers.ConvStack``: proj_in, residual conv blocks, proj_out; state per layer."""

    def __init__(self, tensors: dict, prefix: str, layers: int) -> None:
        self.proj_in = CausalConv(tensors, f"{prefix}.proj_in")
        self.blocks = [tuple(CausalConv(tensors, f"{prefix}.blocks.{i}.{name}") for name in ("conv", "res_a", "res_b"))
                       for i in range(layers)]
        self.proj_out = CausalConv(tensors, f"{prefix}.proj_out")

    def __call__(self, x: np.ndarray, state=None):
        state = state if state is not None else [None] * (len(self.blocks) + 1)
        h, s = self.proj_in(x, state[0])
        new_state = [s]
        for (conv, res_a, res_b), block_state in zip(self.blocks, state[1:]):
            s_conv, s_res = block_state if block_state is not None else (None, None)
            h, s_conv = conv(h, s_conv)
            h = leaky(h)
            r, s_res = res_a(leaky(h), s_res)
            r, _ = res_b(leaky(r))
            h = h + r
            new_state.append((s_conv, s_res))
        y, _ = self.proj_out(h)
        return y, new_state


class Mamba:
    """The Mamba v1 mixer; the scan runs step by step (the reference recurrence)."""

    def __init__(self, tensors: dict, prefix: str, config) -> None:
        self.d_inner, self.d_state, self.dt_rank = config.d_inner, config.d_state, config.dt_rank_value
        self.in_proj = Linear(tensors, f"{prefix}.in_proj", bias=False)
        self.conv1d = DepthwiseConv(tensors, f"{prefix}.conv1d")
        self.x_proj = Linear(tensors, f"{prefix}.x_proj", bias=False)
        self.dt_proj = Linear(tensors, f"{prefix}.dt_proj")
        self.A = -np.exp(tensors[f"{prefix}.A_log"]).astype(_F32)  # (di, N)
        self.D = tensors[f"{prefix}.D"]
        self.out_proj = Linear(tensors, f"{prefix}.out_proj", bias=False)

    def __call__(self, x: np.ndarray, state=None):
        conv_state, h = state if state is not None else (None, None)
        uz = self.in_proj(x)
        u, z = uz[:, :self.d_inner], uz[:, self.d_inner:]
        u, conv_state = self.conv1d(u, conv_state)
        u = silu(u)
        proj = self.x_proj(u)
        r, n = self.dt_rank, self.d_state
        dt = softplus(self.dt_proj(proj[:, :r]))
        B, C = proj[:, r:r + n], proj[:, r + n:r + 2 * n]
        if h is None:
            h = np.zeros((self.d_inner, self.d_state), _F32)
        y, h = selective_scan(u, dt, self.A, B, C, self.D, h)
        return self.out_proj(y * silu(z)), (conv_state, h)


def selective_scan(u, dt, A, B, C, D, h):
    """h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t, y_t = C_t . h_t + D u_t.
    u, dt (T, di); A (di, N); B, C (T, N); h (di, N) -> y (T, di), last h."""
    t = u.shape[0]
    decay = np.exp(dt[:, :, None] * A)  # (T, di, N)
    inputs = (dt * u)[:, :, None] * B[:, None, :]  # (T, di, N)
    if t == 1:
        h = decay[0] * h + inputs[0]
        return (h @ C[0] + D * u[0])[None], h
    states = np.empty_like(decay)
    for i in range(t):
        h = decay[i] * h + inputs[i]
        states[i] = h
    y = np.einsum("tdn,tn->td", states, C) + D * u
    return y.astype(_F32, copy=False), h


class MambaBlock:
    def __init__(self, tensors: dict, prefix: str, config) -> None:
        self.norm = tensors[f"{prefix}.norm.weight"]
        self.mixer = Mamba(tensors, f"{prefix}.mixer", config)
        self.mlp = None
        if config.mlp_hidden > 0:
            self.norm2 = tensors[f"{prefix}.norm2.weight"]
            self.hidden = config.mlp_hidden
            self.fc1 = Linear(tensors, f"{prefix}.mlp.fc1", bias=False)
            self.fc2 = Linear(tensors, f"{prefix}.mlp.fc2", bias=False)
            self.mlp = True

    def __call__(self, x: np.ndarray, state=None):
        y, state = self.mixer(rms_norm(x, self.norm), state)
        x = x + y
        if self.mlp:
            ab = self.fc1(rms_norm(x, self.norm2))
            x = x + self.fc2(silu(ab[:, :self.hidden]) * ab[:, self.hidden:])
        return x, state


def run_stack(blocks: list, x: np.ndarray, state=None):
    state = state if state is not None else [None] * len(blocks)
    new_state = []
    for block, s in zip(blocks, state):
        x, s = block(x, s)
        new_state.append(s)
    return x, new_state


# --- the model --------------------------------------------------------------------------------
class NumpyModel:
    """All modules of ``GesturaModel`` built from a checkpoint's tensors (stage "full")."""

    def __init__(self, checkpoint) -> None:
        config = checkpoint.config
        t = {name: np.ascontiguousarray(value, _F32) for name, value in checkpoint.tensors.items()}
        self.config = config
        self.codebook = {p: t[f"vq.{p}.codebook.weight"] for p in PARTS}
        self.codebook_sq = {p: np.sum(book * book, axis=1) for p, book in self.codebook.items()}
        self.encoder = {p: ConvStack(t, f"vq.{p}.encoder", config.vq_layers[p]) for p in PARTS}
        self.decoder = {p: ConvStack(t, f"vq.{p}.decoder", config.vq_layers[p]) for p in PARTS}
        self.gmp = ConvStack(t, "gmp.net", config.gmp_layers)
        g = "generator"
        self.audio_in = Linear(t, f"{g}.audio_in")
        self.speech = [MambaBlock(t, f"{g}.speech.{i}", config) for i in range(config.speech_layers)]
        self.style = t[f"{g}.style.weight"]
        self.global_blocks = [MambaBlock(t, f"{g}.global_blocks.{i}", config) for i in range(config.global_layers)]
        self.global_norm = t[f"{g}.global_norm.weight"]
        self.mask_latent = t[f"{g}.mask_latent"]
        self.prev_in = {p: Linear(t, f"{g}.prev_in.{p}") for p in PARTS}
        self.local = {p: [MambaBlock(t, f"{g}.local.{p}.{i}", config) for i in range(config.local_layers[p])]
                      for p in PARTS}
        self.out_norm = {p: t[f"{g}.out_norm.{p}.weight"] for p in PARTS}
        self.logits = {p: Linear(t, f"{g}.logits.{p}") for p in PARTS}

    def quantize(self, part: str, z: np.ndarray) -> np.ndarray:
        """Nearest code (squared L2, as the torch model writes it; ties to the lowest index)."""
        book = self.codebook[part]
        distance = np.sum(z * z, axis=1, keepdims=True) - 2 * (z @ book.T) + self.codebook_sq[part]
        return np.argmin(distance, axis=1).astype(np.int64)

    def gmp_root(self, lower: np.ndarray, state=None):
        return self.gmp(np.concatenate([lower[:, :54], lower[:, 57:61]], axis=1), state)


class _Stream:
    def __init__(self, style: int, parts: tuple) -> None:
        self.style = style
        self.parts = parts
        self.speech_state = None
        self.global_state = None
        self.local_state = {}
        self.decode_state = {}
        self.gmp_state = None


class NumpyEngine(Engine):
    name = "numpy"

    def __init__(self, device: str = "auto") -> None:
        super().__init__(device)
        if device == "cuda":
            warnings.warn("the numpy engine runs on the CPU only: choose the torch or external engine for CUDA",
                          UserWarning, stacklevel=2)
        self.device = "cpu"
        self.model = None
        self._loaded = None

    def prepare(self, checkpoint) -> None:
        key = (checkpoint.path, id(checkpoint.tensors))
        if self._loaded == key:
            return
        if checkpoint.stage != "full":
            raise EngineError(f"checkpoint '{checkpoint.path}' has no generator (stage '{checkpoint.stage}'): "
                              "use a fully trained checkpoint")
        self.model = NumpyModel(checkpoint)
        self.checkpoint = checkpoint
        self._loaded = key

    def encode(self, part: str, features) -> np.ndarray:
        z, _ = self.model.encoder[part](np.asarray(features, _F32))
        return self.model.quantize(part, z)

    def start(self, style: int, parts: tuple) -> _Stream:
        if not 0 <= int(style) < self.model.config.num_styles:
            raise EngineError(f"style index {style} is out of range for this model")
        unknown = [p for p in parts if p not in PARTS]
        if unknown:
            raise EngineError(f"unknown parts {unknown}: parts are {PARTS}")
        return _Stream(int(style), tuple(p for p in PARTS if p in parts))

    def context(self, stream: _Stream, features) -> np.ndarray:
        m = self.model
        s = m.audio_in(np.asarray(features, _F32))
        s, stream.speech_state = run_stack(m.speech, s, stream.speech_state)
        g = s + m.style[stream.style]
        g, stream.global_state = run_stack(m.global_blocks, g, stream.global_state)
        return rms_norm(g, m.global_norm)

    def step(self, stream: _Stream, context, prev_codes: dict) -> dict:
        m = self.model
        flat = np.concatenate([
            m.mask_latent[i] if prev_codes.get(part) is None else m.codebook[part][int(prev_codes[part])]
            for i, part in enumerate(PARTS)
        ])
        context = np.asarray(context, _F32)
        out = {}
        for part in stream.parts:
            x = (context + m.prev_in[part](flat))[None]
            x, stream.local_state[part] = run_stack(m.local[part], x, stream.local_state.get(part))
            out[part] = m.logits[part](rms_norm(x[0], m.out_norm[part]))
        return out

    def decode(self, stream: _Stream, codes: dict) -> dict:
        m = self.model
        out, states, gmp_state = {}, {}, stream.gmp_state
        for part, part_codes in codes.items():
            latents = m.codebook[part][np.asarray(part_codes, np.int64)]
            y, states[part] = m.decoder[part](latents, stream.decode_state.get(part))
            if part == "lower":
                root, gmp_state = m.gmp_root(y, gmp_state)
                y = np.concatenate([y[:, :54], root, y[:, 57:]], axis=1)
            out[part] = y
        stream.decode_state.update(states)
        stream.gmp_state = gmp_state
        return out
