"""The NumPy engine: ``numpy_model`` (the same network as ``torch_model``, written with numpy
alone) behind the ``engines.Engine`` contract. It runs inside any Blender 4.2 - 5.0 with nothing
installed, in float32 as torch on the CPU, so the pipeline cannot tell the engines apart except
by rounding.
"""
from __future__ import annotations

import numpy as np

from ...rigs.skeleton import LOWER_ROOT, PARTS
from ..errors import EngineError
from ..notices import notify
from ..numpy_model.layers import F32
from ..numpy_model.model import NumpyModel
from .base import (Engine, checked_context, checked_denoise, checked_family, checked_given_plan, checked_parts,
                   checked_plan, checked_planner_speech, checked_plans, checked_speech_family, checked_speech_window,
                   checked_style_strength, checked_styles, checked_window)


class _Stream:
    """The causal state of one stream: speech encoder, VQ decoders, global motion predictor."""

    def __init__(self, parts: tuple) -> None:
        self.parts = parts
        self.speech_state = None
        self.decode_state = {}
        self.gmp_state = None


class NumpyEngine(Engine):
    name = "numpy"

    def __init__(self, device: str = "auto") -> None:
        super().__init__(device)
        if device == "cuda":
            notify("the numpy engine runs on the CPU only: choose the torch engine (in Blender, also the external "
                   "one) for CUDA", UserWarning, stacklevel=2)
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
        vq = self.model.vq[part]
        features = np.asarray(features, F32)
        if len(features) % vq.frames_per_code:
            raise EngineError(f"{len(features)} frames of '{part}' do not make whole codes of "
                              f"{vq.frames_per_code} frames: give a multiple of {vq.frames_per_code}")
        return vq.encode_codes(features)

    def start(self, parts: tuple) -> _Stream:
        return _Stream(checked_parts(parts))

    def speech(self, state: _Stream, features) -> np.ndarray:
        checked_speech_family(self.checkpoint)
        speech, state.speech_state = self.model.generator.stream_speech(np.asarray(features, F32), state.speech_state)
        return speech

    def context(self, speech, styles: tuple, plans: tuple | None = None, threshold=None) -> tuple:
        checked_family(self.checkpoint, "vq-mamba", "context")
        config = self.model.config
        styles = checked_styles(config.num_styles, styles)
        checked_speech_window(speech, config)
        return self.model.generator.window_context(np.asarray(speech, F32), styles, checked_plans(plans, styles),
                                                   threshold)

    def span(self, context, known: dict, styles: tuple, parts, style_strength: float = 1.0) -> dict:
        checked_family(self.checkpoint, "vq-mamba", "span")
        model, generator = self.model, self.model.generator
        styles = checked_styles(model.config.num_styles, styles)
        parts = checked_parts(parts)
        n = checked_context(context, known, styles, model.config)
        codes = np.full((n, len(PARTS)), -1, np.int64)
        for i, part in enumerate(PARTS):
            if known.get(part) is not None:
                codes[:, i] = known[part]
        latents = generator.known_latents(model.codebooks(), codes)
        return generator.span_logits(np.asarray(context, F32), styles, latents, parts,
                                     checked_style_strength(style_strength))

    def condition(self, features, styles: tuple, speech=None, threshold=None, plan=None):
        checked_family(self.checkpoint, "dim-gestor", "condition")
        config, generator = self.model.config, self.model.generator
        styles = checked_styles(config.num_styles, styles)
        checked_window(len(features), config)
        speech = checked_planner_speech(speech, features, config)
        plan = checked_given_plan(plan, features, config)
        if plan is None and speech is not None:
            plan = generator.window_plan(np.asarray(speech, F32), styles[0], threshold)
        return (*generator.condition(np.asarray(features, F32), styles, plan), plan)

    def denoise(self, x, t: float, cond, style, known, mask) -> np.ndarray:
        checked_family(self.checkpoint, "dim-gestor", "denoise")
        checked_denoise(x, cond, style, known, mask, self.model.config)
        x = np.asarray(x, F32)
        return self.model.generator.denoise(x, np.full(len(x), t, F32), np.asarray(cond, F32),
                                            np.asarray(style, F32), np.asarray(known, F32), np.asarray(mask, F32))

    def decode_latents(self, state: _Stream, latents: dict, plan=None) -> dict:
        model = self.model
        plan = checked_plan(plan, latents, model.config)
        out, states, gmp_state = {}, {}, state.gmp_state
        for part, part_latents in latents.items():
            y, states[part] = model.vq[part].decode(np.asarray(part_latents, F32), state.decode_state.get(part), plan)
            if part == "lower":
                root, gmp_state = model.gmp(y, gmp_state)
                y = np.concatenate([y[:, :LOWER_ROOT.start], root, y[:, LOWER_ROOT.stop:]], axis=1)
            out[part] = y
        state.decode_state.update(states)
        state.gmp_state = gmp_state
        return out
