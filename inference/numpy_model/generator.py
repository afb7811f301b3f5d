"""``torch_model/generator.py`` in numpy: the span generator's inference path.

- ``SpeechScans`` (the generator's own, and its ``planner`` where the config has a stroke
  planner): ``speech_states``, the causal speech encoder over (T, F) normalised features,
  streamed with carried state (no batch axis: one audio stream); ``window_pairs``, the
  bidirectional window scan and each motion frame's window states at its instant and L frames
  later; ``apex_logits`` per style;
- ``stream_speech`` and ``window_context``: what the engine streams (the body's speech states
  and the planner's side by side) and what a window hears: the per-code context of the r frame
  pairs of each code and the stroke plan at them (``inference/stroke_plan.py``);
- ``known_latents``: codebook rows of the fixed codes, ``mask_latent`` for unknown ones;
- ``span_logits``: one pass over a span for several styles at once, (styles, n, K) per part.
  ``span_logits_reference`` is the module-by-module form (each block, each direction and each
  part on its own); ``span_logits`` runs the same arithmetic with every bidirectional layer as
  one stacked mixer and the local stacks of all parts side by side (``mamba.BiMambaLayer``, or
  ``mamba.GranularBiMambaLayer`` for multi-granularity blocks).
"""
from __future__ import annotations

import numpy as np

from ...rigs.skeleton import PARTS
from ..sampling import guided
from ..stroke_plan import plan_threshold, stroke_plan
from .layers import F32, Linear, rms_norm, sigmoid
from .mamba import MambaBlock, _stack, _StackedLinear, bidirectional_block, bidirectional_layer, run_stack


class SpeechScans:
    """What the stroke-apex head hears (``torch_model.generator.SpeechScans``), read from the
    tensors under ``prefix``: the causal speech encoder, the window scan, the style embedding and
    the head. The generator is one; its ``planner`` (``config.stroke_planner``) another."""

    def __init__(self, tensors: dict, prefix: str, config) -> None:
        self.lookahead = config.lookahead
        self.audio_in = Linear(tensors, f"{prefix}.audio_in")
        self.speech = [MambaBlock(tensors, f"{prefix}.speech.{i}", config) for i in range(config.speech_layers)]
        self.speech_norm = tensors[f"{prefix}.speech_norm.weight"]
        self.speech_window = [bidirectional_block(tensors, f"{prefix}.speech_window.{i}", config,
                                                  config.granularities["window"])
                              for i in range(config.speech_window_layers)]
        self.apex = Linear(tensors, f"{prefix}.apex")
        self.style = tensors[f"{prefix}.style.weight"]
        self._window_layers = [bidirectional_layer([block]) for block in self.speech_window]

    def speech_states(self, features: np.ndarray, state=None):
        """Normalised features (T, F) -> speech states (T, d), new state. Row j depends on audio
        frames <= j only, so a clip may be run in pieces with the returned state."""
        s, state = run_stack(self.speech, self.audio_in(features), state)
        return rms_norm(s, self.speech_norm), state

    def window_pairs(self, speech: np.ndarray) -> np.ndarray:
        """Speech states of a window's motion frames ``[f0, f0 + m + L)`` (m + L, d) -> each of the
        m frames' pair of window-scanned states ``t`` and ``t + L`` (m, 2 d). Each bidirectional
        layer runs as one stacked mixer (``BiMambaLayer``)."""
        x = speech
        for layer in self._window_layers:
            x = layer(x[None])[0][0]
        m = x.shape[-2] - self.lookahead
        return np.concatenate([x[..., :m, :], x[..., self.lookahead:, :]], axis=-1)

    def apex_logits(self, pairs: np.ndarray, style: np.ndarray) -> np.ndarray:
        """Frame pairs (m, 2 d) and style embeddings (S, d) -> stroke-apex logits (S, m)."""
        style = np.broadcast_to(style[:, None], (len(style), pairs.shape[-2], style.shape[-1]))
        pairs = np.broadcast_to(pairs, (len(style),) + pairs.shape[-2:])
        return self.apex(np.concatenate([pairs, style], axis=-1))[..., 0]

    def window_probabilities(self, speech: np.ndarray, styles: tuple, pairs: np.ndarray | None = None) -> np.ndarray:
        """Stroke-apex probabilities (S, m) of a window's motion frames for each of ``styles``, from
        this head's speech states of the window (m + L, d); ``pairs``: their ``window_pairs``, when known."""
        pairs = self.window_pairs(speech) if pairs is None else pairs
        return sigmoid(self.apex_logits(pairs, self.style_embedding(styles)))

    def style_embedding(self, styles: tuple, strength: float = 1.0) -> np.ndarray:
        """(S, d) speaker embeddings of ``styles`` (indices; None: the mean of all styles), each
        ``strength`` times as far from the mean as learnt (``sampling.guided``)."""
        mean = self.style.mean(0)
        return np.stack([mean if s is None else guided(self.style[s], mean, strength)
                         for s in styles]).astype(F32, copy=False)


class Generator(SpeechScans):
    def __init__(self, tensors: dict, config) -> None:
        g = "generator"
        super().__init__(tensors, g, config)
        self.config = config
        self.frames_per_code = config.frames_per_code
        self.planner = SpeechScans(tensors, f"{g}.planner", config) if config.stroke_planner else None
        self.code_in = Linear(tensors, f"{g}.code_in")
        self.mask_latent = tensors[f"{g}.mask_latent"]
        self.part_in = {p: Linear(tensors, f"{g}.part_in.{p}") for p in PARTS}
        self.global_blocks = [bidirectional_block(tensors, f"{g}.global_blocks.{i}", config, config.granularities["global"])
                              for i in range(config.global_layers)]
        self.global_norm = tensors[f"{g}.global_norm.weight"]
        self.local = {p: [bidirectional_block(tensors, f"{g}.local.{p}.{i}", config, config.granularities["local"]) for i in range(config.local_layers[p])]
                      for p in PARTS}
        self.out_norm = {p: tensors[f"{g}.out_norm.{p}.weight"] for p in PARTS}
        self.logits = {p: Linear(tensors, f"{g}.logits.{p}") for p in PARTS}
        self._global_layers = [bidirectional_layer([block]) for block in self.global_blocks]
        self._local_layers = {}

    # --- speech: causal, streamed ------------------------------------------------------------
    def stream_speech(self, features: np.ndarray, state=None):
        """What the engine streams: normalised features (T, ``config.input_width``) -> speech
        states (T, ``config.speech_width``), new state: the body's (of the first ``feature_dim``
        columns), and the stroke planner's (of them all) beside them when there is one."""
        if self.planner is None:
            return self.speech_states(features, state)
        body, planner = state or (None, None)
        s, body = self.speech_states(features[:, :self.config.feature_dim], body)
        p, planner = self.planner.speech_states(features, planner)
        return np.concatenate([s, p], axis=-1), (body, planner)

    def apex_probabilities(self, speech: np.ndarray, styles: tuple, pairs: np.ndarray | None = None) -> np.ndarray:
        """Stroke-apex probabilities (S, m) of a window's motion frames for each of ``styles``, from
        its streamed speech states (m + L, ``speech_width``): the stroke planner's head when there
        is one, else the generator's own; ``pairs``: the generator's ``window_pairs``, when known."""
        d = self.config.d_model
        if self.planner is not None:
            return self.planner.window_probabilities(speech[:, d:], styles)
        return self.window_probabilities(speech[:, :d], styles, pairs)

    def window_context(self, speech: np.ndarray, styles: tuple, plans: tuple | None = None,
                       threshold=None) -> tuple[np.ndarray, np.ndarray]:
        """What a window of n codes hears, for each of the S ``styles``: speech (n r + L,
        ``speech_width``) from ``stream_speech`` -> (S, n, d): the window scan, the stroke plan and
        ``code_in``; and that stroke plan (S, n r). ``plans``: per style, False for an empty plan;
        None = every style reads its plan. ``threshold``: the plan's (``plan_threshold``)."""
        pairs = self.window_pairs(speech[:, :self.config.d_model])
        probability = self.apex_probabilities(speech, styles, pairs)
        plan = stroke_plan(probability, plan_threshold(threshold, probability, self.config))
        if plans is not None:
            plan = plan * np.asarray(plans, F32)[:, None]
        return self.code_context(pairs, plan), plan

    def code_context(self, pairs: np.ndarray, plan: np.ndarray) -> np.ndarray:
        """Frame pairs of the motion frames of n codes (n r, 2 d) from ``window_pairs`` and S stroke
        plans (S, n r) -> (S, n, d)."""
        t, d2 = pairs.shape
        r, s = self.frames_per_code, len(plan)
        pairs = np.broadcast_to(pairs.reshape(t // r, r * d2), (s, t // r, r * d2))
        x = np.concatenate([pairs, plan.reshape(s, t // r, r).astype(F32)], axis=-1)
        return self.code_in(x)

    def known_latents(self, codebooks: dict, codes: np.ndarray) -> np.ndarray:
        """codes (..., n, 4) int, -1 = unknown -> latents (..., n, 4, D): codebook rows of the
        known codes, ``mask_latent`` of the part where unknown. ``codebooks`` {part: (K, D)}."""
        rows = []
        for i, part in enumerate(PARTS):
            c = np.asarray(codes[..., i], np.int64)
            latent = codebooks[part][np.maximum(c, 0)]
            rows.append(np.where((c < 0)[..., None], self.mask_latent[i], latent))
        return np.stack(rows, axis=-2)

    # --- one span: bidirectional over its codes ----------------------------------------------
    def _embedded(self, context, styles, latents, style_strength):
        embedded = {p: self.part_in[p](latents[:, i]) for i, p in enumerate(PARTS)}
        total = 0
        for value in embedded.values():  # summed in PARTS order, as torch's sum()
            total = total + value
        g = context + self.style_embedding(styles, style_strength)[:, None] + total
        return embedded, g

    def span_logits_reference(self, context: np.ndarray, styles: tuple, latents: np.ndarray,
                              parts: tuple = PARTS, style_strength: float = 1.0) -> dict:
        """context (S, n, d) from ``code_context``; ``styles`` a tuple of S style indices / None,
        their embeddings at ``style_strength`` (``style_embedding``); latents (n, 4, D) from
        ``known_latents`` -> {part: logits (len(styles), n, K)} for ``parts``."""
        embedded, g = self._embedded(context, styles, latents, style_strength)
        g, _ = run_stack(self.global_blocks, g)
        g = rms_norm(g, self.global_norm)
        out = {}
        for part in parts:
            x, _ = run_stack(self.local[part], g + embedded[part])
            out[part] = self.logits[part](rms_norm(x, self.out_norm[part]))
        return out

    def span_logits(self, context: np.ndarray, styles: tuple, latents: np.ndarray, parts: tuple = PARTS,
                    style_strength: float = 1.0) -> dict:
        """``span_logits_reference`` (same arguments and results, to float rounding), stacked:
        each bidirectional layer is one loop over the span for both directions, and layer i of
        every asked part's local stack runs as one."""
        parts = tuple(parts)
        embedded, g = self._embedded(context, styles, latents, style_strength)
        for layer in self._global_layers:
            g = layer(g[None])[0][0]
        g = rms_norm(g, self.global_norm)
        if not parts:
            return {}
        local = self._local(parts)
        x = g[None] + np.stack([embedded[p] for p in parts])[:, None]  # (P, S, n, d)
        for members, layer in local["layers"]:
            if members is None:
                x, _ = layer(x)
            else:
                x[members] = layer(x[members])[0]
        logits = local["logits"](rms_norm(x, local["out_norm"]))
        return dict(zip(parts, logits))

    def _local(self, parts: tuple) -> dict:
        """The stacked local layers, out_norm and logits heads of ``parts`` (built once per set)."""
        if parts not in self._local_layers:
            layers = []
            for i in range(max(len(self.local[p]) for p in parts)):
                members = [j for j, p in enumerate(parts) if len(self.local[p]) > i]
                layer = bidirectional_layer([self.local[parts[j]][i] for j in members])
                layers.append((None if len(members) == len(parts) else np.asarray(members), layer))
            self._local_layers[parts] = {
                "layers": layers,
                "out_norm": _stack([self.out_norm[p][None] for p in parts]),  # (P, 1, 1, d)
                "logits": _StackedLinear([self.logits[p] for p in parts]),
            }
        return self._local_layers[parts]
