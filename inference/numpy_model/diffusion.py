"""``torch_model/diffusion.py`` in numpy: DiM-Gestor's speech extractor and AdaLN denoiser, the
same arithmetic in float32 on time-major arrays with a leading batch axis (styles)."""
from __future__ import annotations

import numpy as np

from ...rigs.skeleton import PARTS
from ..architecture import ADALN_EPS
from ..diffusion import sinusoidal_positions, timestep_features
from ..stroke_plan import plan_threshold, stroke_plan
from .generator import SpeechScans
from .layers import F32, GatedMLP, Linear, rms_norm, silu
from .mamba2 import Mamba2, both_ways


def layer_norm(x: np.ndarray) -> np.ndarray:
    """Parameter-free LayerNorm over the last axis."""
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    return centred / np.sqrt((centred * centred).mean(-1, keepdims=True) + F32(ADALN_EPS))


def modulate(x: np.ndarray, shift: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return x * (F32(1.0) + scale) + shift


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class SelfAttention:
    def __init__(self, tensors: dict, prefix: str, heads: int) -> None:
        self.heads = heads
        self.qkv = Linear(tensors, f"{prefix}.qkv")
        self.out = Linear(tensors, f"{prefix}.out")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).transpose(2, 0, 3, 1, 4)
        weights = softmax(q @ k.transpose(0, 1, 3, 2) * F32(1.0 / np.sqrt(d // self.heads)))
        return self.out((weights @ v).transpose(0, 2, 1, 3).reshape(b, n, d))


def _mixer(tensors: dict, prefix: str, config) -> Mamba2:
    return Mamba2(tensors, prefix, config.headdim, 1)


class SpeechBlock:
    def __init__(self, tensors: dict, prefix: str, config) -> None:
        self.norm, self.norm2 = tensors[f"{prefix}.norm.weight"], tensors[f"{prefix}.norm2.weight"]
        self.mixer, self.mixer_back = _mixer(tensors, f"{prefix}.mixer.", config), _mixer(tensors, f"{prefix}.mixer_back.", config)
        self.mlp = GatedMLP(tensors, f"{prefix}.mlp", config.mlp_hidden)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = x + both_ways(self.mixer, self.mixer_back, rms_norm(x, self.norm))
        return x + self.mlp(rms_norm(x, self.norm2))


class AdaLNBlock:
    def __init__(self, tensors: dict, prefix: str, config) -> None:
        self.ada = Linear(tensors, f"{prefix}.ada")
        if config.denoiser_block == "mamba2":
            self.attn = None
            self.mixer, self.mixer_back = (_mixer(tensors, f"{prefix}.mixer.", config),
                                           _mixer(tensors, f"{prefix}.mixer_back.", config))
        else:
            self.attn = SelfAttention(tensors, f"{prefix}.attn", config.attention_heads)
        self.mlp = GatedMLP(tensors, f"{prefix}.mlp", config.mlp_hidden)

    def mix(self, h: np.ndarray) -> np.ndarray:
        if self.attn is not None:
            return self.attn(h)
        return both_ways(self.mixer, self.mixer_back, h)

    def __call__(self, x: np.ndarray, c: np.ndarray) -> np.ndarray:
        shift1, scale1, gate1, shift2, scale2, gate2 = np.split(self.ada(silu(c)), 6, -1)
        x = x + gate1 * self.mix(modulate(layer_norm(x), shift1, scale1))
        return x + gate2 * self.mlp(modulate(layer_norm(x), shift2, scale2))


class DiffusionGenerator:
    def __init__(self, tensors: dict, config) -> None:
        g = "generator"
        self.config = config
        self.frames_per_code, self.lookahead = config.frames_per_code, config.lookahead
        self.audio_in = Linear(tensors, f"{g}.audio_in")
        self.speech = [SpeechBlock(tensors, f"{g}.speech.{i}", config) for i in range(config.speech_layers)]
        self.speech_norm = tensors[f"{g}.speech_norm.weight"]
        self.planner = SpeechScans(tensors, f"{g}.planner", config) if config.stroke_planner else None
        self.cond_in = Linear(tensors, f"{g}.cond_in")
        self.voice_style = Linear(tensors, f"{g}.voice_style")
        self.style = tensors[f"{g}.style.weight"]
        self.time_in, self.time_out = Linear(tensors, f"{g}.time_in"), Linear(tensors, f"{g}.time_out")
        self.x_in = Linear(tensors, f"{g}.x_in")
        self.blocks = [AdaLNBlock(tensors, f"{g}.blocks.{i}", config) for i in range(config.denoiser_layers)]
        self.final_ada = Linear(tensors, f"{g}.final_ada")
        self.x_out = Linear(tensors, f"{g}.x_out")
        self.latent_mean, self.latent_std = tensors[f"{g}.latent_mean"], tensors[f"{g}.latent_std"]

    def stream_speech(self, features: np.ndarray, state=None):
        """The stroke planner's causal speech states: normalised features (T, ``config.input_width``)
        -> (T, d), new state."""
        return self.planner.speech_states(features, state)

    def apex_probabilities(self, speech: np.ndarray, styles: tuple) -> np.ndarray:
        """``DiffusionGenerator.apex_probabilities`` of torch_model: a window's streamed planner
        states (n r + L, d), style indices -> (S, n r)."""
        return self.planner.window_probabilities(speech, styles)

    def window_plan(self, speech: np.ndarray, style, threshold=None) -> np.ndarray:
        """``DiffusionGenerator.window_plan`` of torch_model: a window's streamed planner states
        (n r + L, d), a style index (None: the mean style) -> its stroke plan (n r,)."""
        probability = self.apex_probabilities(speech, (style,))
        return stroke_plan(probability, plan_threshold(threshold, probability, self.config))[0]

    def condition(self, features: np.ndarray, styles: tuple, plan: np.ndarray | None = None):
        """Normalised audio features of a window (n r + L, F or ``config.input_width``), style
        indices (None = the voice alone) and, for a ``stroke_planner`` model, the window's stroke
        plan (n r,) -> per-code conditions (n, d) and style vectors (len(styles), d)."""
        if (plan is None) == (self.planner is not None):
            raise ValueError("a stroke plan goes with a stroke_planner model, and only with one")
        s = self.audio_in(np.asarray(features, F32)[:, :self.config.feature_dim])[None]
        for block in self.speech:
            s = block(s)
        s = rms_norm(s, self.speech_norm)[0]
        m = len(s) - self.lookahead
        pairs = np.concatenate([s[:m], s[self.lookahead:]], -1).reshape(m // self.frames_per_code, -1)
        if plan is not None:
            pairs = np.concatenate([pairs, np.asarray(plan, F32).reshape(m // self.frames_per_code, -1)], -1)
        cond = self.cond_in(pairs)
        voice = self.voice_style(s.mean(0))
        zero = np.zeros_like(voice)
        return cond, np.stack([voice + (zero if style is None else self.style[style]) for style in styles])

    def time_embedding(self, t: np.ndarray) -> np.ndarray:
        return self.time_out(silu(self.time_in(timestep_features(t))))

    def denoise(self, x: np.ndarray, t: np.ndarray, cond: np.ndarray, style: np.ndarray, known: np.ndarray,
                mask: np.ndarray) -> np.ndarray:
        """``DiffusionGenerator.denoise`` of torch_model: x (B, n, C), t (B,), cond (n, d) or
        (B, n, d), style (B, d), known (n, C), mask (n, 4) -> clean latents (B, n, C)."""
        b, n, _ = x.shape
        per_channel = np.repeat(mask, self.config.code_dim, -1)
        h = self.x_in(np.concatenate([x, np.broadcast_to(known * per_channel, x.shape),
                                      np.broadcast_to(mask, (b, n, len(PARTS)))], -1).astype(F32))
        if self.config.denoiser_block == "attention":
            h = h + sinusoidal_positions(n, h.shape[-1])
        c = cond + (self.time_embedding(t) + style)[:, None]
        for block in self.blocks:
            h = block(h, c)
        shift, scale = np.split(self.final_ada(silu(c)), 2, -1)
        return self.x_out(modulate(layer_norm(h), shift, scale))
