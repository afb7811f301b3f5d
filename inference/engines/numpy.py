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


import numpy as np

from ...rigs.skeleton import LOWER_CONTACTS, LOWER_ROOT, LOWER_ROT6D, PARTS
from ..architecture import LEAKY_SLOPE, NORM_EPS
from ..errors import EngineError
from ..notices import notify
from .base import Engine, checked_start

_F32 = np.float32


# --- layers -----------------------------------------------------------------------------------
def silu(x: np.ndarray) -> np.ndarray:
    # sigmoid(x) = (1 + tanh(x / 2)) / 2 cannot overflow, unlike 1 / (1 + exp(-x)), so no
    # np.errstate is needed (entering one costs more than the arithmetic at one frame).
    return x * (_F32(0.5) + _F32(0.5) * np.tanh(_F32(0.5) * x))


def softplus(x: np.ndarray) -> np.ndarray:
    """torch's softplus (beta 1, threshold 20): linear above 20."""
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, _F32(20.0))))).astype(_F32, copy=False)


def leaky(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, x * _F32(LEAKY_SLOPE))


def rms_norm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    mean_square = np.add.reduce(x * x, axis=-1, keepdims=True) * _F32(1.0 / x.shape[-1])
    return x * (_F32(1.0) / np.sqrt(mean_square + _F32(NORM_EPS))) * weight


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


# --- one frame of several parts' local scans at once ------------------------------------------
def _batched(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row p of x (P, in) times matrix p of weights (P, in, out) -> (P, out)."""
    return np.matmul(x[:, None, :], weights)[:, 0]


class StackedMambaBlock:
    """The same layer of several parts' local stacks, weights stacked on a leading part axis, for
    single-frame steps: one numpy call per operation for all parts instead of one per part (the
    per-frame step is dominated by call overhead, not arithmetic). State: (conv (P, k-1, di), h (P, di, N))."""

    def __init__(self, blocks: list) -> None:
        mixers = [b.mixer for b in blocks]
        self.norm = np.stack([b.norm for b in blocks])
        self.in_w = np.stack([m.in_proj.weight_t for m in mixers])
        self.conv_taps = np.stack([m.conv1d.taps for m in mixers])  # (P, k, di)
        self.conv_b = np.stack([m.conv1d.bias for m in mixers])
        self.x_w = np.stack([m.x_proj.weight_t for m in mixers])
        self.dt_w = np.stack([m.dt_proj.weight_t for m in mixers])
        self.dt_b = np.stack([m.dt_proj.bias for m in mixers])
        self.A = np.stack([m.A for m in mixers])
        self.D = np.stack([m.D for m in mixers])
        self.out_w = np.stack([m.out_proj.weight_t for m in mixers])
        first = mixers[0]
        self.d_inner, self.d_state, self.dt_rank = first.d_inner, first.d_state, first.dt_rank
        self.kernel = first.conv1d.kernel
        self.mlp = blocks[0].mlp
        if self.mlp:
            self.hidden = blocks[0].hidden
            self.norm2 = np.stack([b.norm2 for b in blocks])
            self.fc1_w = np.stack([b.fc1.weight_t for b in blocks])
            self.fc2_w = np.stack([b.fc2.weight_t for b in blocks])

    def zero_state(self):
        p = self.norm.shape[0]
        return (np.zeros((p, self.kernel - 1, self.d_inner), _F32), np.zeros((p, self.d_inner, self.d_state), _F32))

    def __call__(self, x: np.ndarray, state):
        conv_state, h = state
        di, r, n = self.d_inner, self.dt_rank, self.d_state
        uz = _batched(rms_norm(x, self.norm), self.in_w)
        u, z = uz[:, :di], uz[:, di:]
        full = np.concatenate([conv_state, u[:, None, :]], axis=1)  # (P, k, di)
        u = silu(np.einsum("pkd,pkd->pd", full, self.conv_taps) + self.conv_b)
        proj = _batched(u, self.x_w)
        dt = softplus(_batched(proj[:, :r], self.dt_w) + self.dt_b)
        B, C = proj[:, r:r + n], proj[:, r + n:r + 2 * n]
        h = np.exp(dt[:, :, None] * self.A) * h + (dt * u)[:, :, None] * B[:, None, :]
        y = np.matmul(h, C[:, :, None])[:, :, 0] + self.D * u
        x = x + _batched(y * silu(z), self.out_w)
        if self.mlp:
            ab = _batched(rms_norm(x, self.norm2), self.fc1_w)
            x = x + _batched(silu(ab[:, :self.hidden]) * ab[:, self.hidden:], self.fc2_w)
        return x, (full[:, 1:], h)


class LocalStep:
    """``Generator.local_step`` for a fixed set of parts: prev_in, the local Mamba stacks (layer i
    stacked over the parts that have an i-th layer), out_norm and the logits heads."""

    def __init__(self, model, parts: tuple) -> None:
        self.parts = parts
        self.prev_in_w = np.stack([model.prev_in[p].weight_t for p in parts])
        self.prev_in_b = np.stack([model.prev_in[p].bias for p in parts])
        self.layers = []
        for i in range(max(len(model.local[p]) for p in parts)):
            members = [j for j, p in enumerate(parts) if len(model.local[p]) > i]
            self.layers.append((np.asarray(members), StackedMambaBlock([model.local[parts[j]][i] for j in members])))
        self.out_norm = np.stack([model.out_norm[p] for p in parts])
        self.logits_w = np.stack([model.logits[p].weight_t for p in parts])
        self.logits_b = np.stack([model.logits[p].bias for p in parts])

    def zero_state(self) -> list:
        return [block.zero_state() for _, block in self.layers]

    def __call__(self, context: np.ndarray, flat: np.ndarray, state: list):
        """context (d,), flat previous latents (4 D,) -> logits (P, K), new state."""
        x = context + np.matmul(flat, self.prev_in_w) + self.prev_in_b  # (P, d)
        new_state = []
        for (members, block), layer_state in zip(self.layers, state):
            if len(members) == len(self.parts):
                x, layer_state = block(x, layer_state)
            else:
                y, layer_state = block(x[members], layer_state)
                x = x.copy()
                x[members] = y
            new_state.append(layer_state)
        return _batched(rms_norm(x, self.out_norm), self.logits_w) + self.logits_b, new_state


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
        self._local_steps = {}

    def local_step(self, parts: tuple) -> LocalStep:
        if parts not in self._local_steps:
            self._local_steps[parts] = LocalStep(self, parts)
        return self._local_steps[parts]

    def quantize(self, part: str, z: np.ndarray) -> np.ndarray:
        """Nearest code (squared L2, as the torch model writes it; ties to the lowest index)."""
        book = self.codebook[part]
        distance = np.sum(z * z, axis=1, keepdims=True) - 2 * (z @ book.T) + self.codebook_sq[part]
        return np.argmin(distance, axis=1).astype(np.int64)

    def gmp_root(self, lower: np.ndarray, state=None):
        return self.gmp(np.concatenate([lower[:, LOWER_ROT6D], lower[:, LOWER_CONTACTS]], axis=1), state)


class _Stream:
    def __init__(self, style: int | None, parts: tuple) -> None:
        self.style = style
        self.parts = parts
        self.speech_state = None
        self.global_state = None
        self.decode_state = {}
        self.gmp_state = None
        self.local = None  # LocalStep of these parts, and its state
        self.local_state = None


class NumpyEngine(Engine):
    name = "numpy"

    def __init__(self, device: str = "auto") -> None:
        super().__init__(device)
        if device == "cuda":
            notify("the numpy engine runs on the CPU only: choose the torch or external engine for CUDA",
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

    def start(self, style: int | None, parts: tuple) -> _Stream:
        stream = _Stream(*checked_start(self.model.config.num_styles, style, parts))
        if stream.parts:
            stream.local = self.model.local_step(stream.parts)
            stream.local_state = stream.local.zero_state()
        return stream

    def context(self, stream: _Stream, features) -> np.ndarray:
        m = self.model
        s = m.audio_in(np.asarray(features, _F32))
        s, stream.speech_state = run_stack(m.speech, s, stream.speech_state)
        g = s + (m.style.mean(0) if stream.style is None else m.style[stream.style])
        g, stream.global_state = run_stack(m.global_blocks, g, stream.global_state)
        return rms_norm(g, m.global_norm)

    def step(self, stream: _Stream, context, prev_codes: dict) -> dict:
        m = self.model
        flat = np.concatenate([
            m.mask_latent[i] if prev_codes.get(part) is None else m.codebook[part][int(prev_codes[part])]
            for i, part in enumerate(PARTS)
        ])
        if not stream.parts:
            return {}
        logits, stream.local_state = stream.local(np.asarray(context, _F32), flat, stream.local_state)
        return dict(zip(stream.parts, logits))

    def decode(self, stream: _Stream, codes: dict) -> dict:
        m = self.model
        out, states, gmp_state = {}, {}, stream.gmp_state
        for part, part_codes in codes.items():
            latents = m.codebook[part][np.asarray(part_codes, np.int64)]
            y, states[part] = m.decoder[part](latents, stream.decode_state.get(part))
            if part == "lower":
                root, gmp_state = m.gmp_root(y, gmp_state)
                y = np.concatenate([y[:, :LOWER_ROOT.start], root, y[:, LOWER_ROOT.stop:]], axis=1)
            out[part] = y
        stream.decode_state.update(states)
        stream.gmp_state = gmp_state
        return out
