"""The PyTorch engine: ``torch_model`` on the CPU or a CUDA GPU (mamba-ssm kernels when they
import). Implements ``engines.Engine``. A missing CUDA device, or running out of GPU memory,
falls back to the CPU with a warning instead of failing the request.

On the CPU the engine runs torch with ONE intra-op thread while it works (restored afterwards):
generation is a series of small operations (a span is 20 codes, the speech encoder runs 16
frames at a time), where thread hand-offs cost more than they save (``threads=`` overrides).
"""
from __future__ import annotations


import numpy as np
import torch

from ...rigs.skeleton import LOWER_ROOT, PARTS
from ..errors import EngineError
from ..notices import notify
from .base import (Engine, checked_context, checked_denoise, checked_family, checked_given_plan, checked_parts,
                   checked_plan, checked_planner_speech, checked_plans, checked_speech_family, checked_speech_window,
                   checked_style_strength, checked_styles, checked_window)


class DeviceFallbackWarning(UserWarning):
    """The GPU could not be used; generation continues on the CPU."""


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(v, device) for v in obj)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


class _Stream:
    def __init__(self, parts: tuple):
        self.parts = tuple(parts)
        self.speech_state = None
        self.decode_state = {}
        self.gmp_state = None

    def move(self, device):
        for key in ("speech_state", "decode_state", "gmp_state"):
            setattr(self, key, _to(getattr(self, key), device))


# The last model built, reused while the same checkpoint file is asked for on the same device:
# the Blender operator and batch loops create an engine per request.
_CACHE: dict = {}


def _checkpoint_key(checkpoint) -> tuple:
    import os

    path = checkpoint.path
    if path and os.path.isfile(path):
        stat = os.stat(path)
        return (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    return ("memory", id(checkpoint.tensors))


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, device: str = "auto", threads: int | None = None) -> None:
        super().__init__(device)
        self.threads = threads
        if device == "cuda" and not torch.cuda.is_available():
            notify("CUDA was requested but this PyTorch sees no CUDA device: generating on the CPU",
                   DeviceFallbackWarning, stacklevel=2)
        self.device = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
        self.model = None
        self._loaded = None

    def prepare(self, checkpoint) -> None:
        from ..torch_model.model import GesturaModel

        key = _checkpoint_key(checkpoint)
        if self._loaded == key:
            return
        if checkpoint.stage != "full":
            raise EngineError(f"checkpoint '{checkpoint.path}' has no generator (stage '{checkpoint.stage}'): "
                              "use a fully trained checkpoint")
        cached = _CACHE.get("model")
        if cached is not None and cached[0] == (key, self.device):
            model = cached[1]
        else:
            _CACHE.clear()
            model = GesturaModel.from_checkpoint(checkpoint)
            try:
                model.to(self.device)
            except torch.cuda.OutOfMemoryError:
                self.model = model
                self._fall_back(None, "the model does not fit in GPU memory")
            _CACHE["model"] = ((key, self.device), model)
        self.checkpoint = checkpoint
        self.model = model
        self._loaded = key

    def _fall_back(self, stream, why: str) -> None:
        notify(f"{why}: continuing on the CPU", DeviceFallbackWarning, stacklevel=3)
        self.device = "cpu"
        self.model.to("cpu")
        if stream is not None:
            stream.move("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _run(self, stream, fn):
        """Run ``fn()``; on CUDA out-of-memory move everything to the CPU and run it again."""
        previous = torch.get_num_threads()
        wanted = self.threads or (1 if self.device == "cpu" else previous)
        if wanted != previous:
            torch.set_num_threads(wanted)
        try:
            with torch.inference_mode():
                try:
                    return fn()
                except torch.cuda.OutOfMemoryError:
                    if self.device == "cpu":
                        raise
                self._fall_back(stream, "the GPU ran out of memory")
                return fn()
        finally:
            if wanted != previous:
                torch.set_num_threads(previous)

    def _tensor(self, array, dtype=torch.float32):
        return torch.as_tensor(np.asarray(array), dtype=dtype, device=self.device)

    def encode(self, part: str, features) -> np.ndarray:
        def run():
            x = self._tensor(features)[None]
            return self.model.vq[part].encode_codes(x)[0].cpu().numpy().astype(np.int64)

        return self._run(None, run)

    def start(self, parts: tuple) -> _Stream:
        return _Stream(checked_parts(parts))

    def speech(self, stream: _Stream, features) -> np.ndarray:
        checked_speech_family(self.checkpoint)

        def run():
            x = self._tensor(features)[None]
            states, stream.speech_state = self.model.generator.stream_speech(x, stream.speech_state)
            return states[0].float().cpu().numpy()

        return self._run(stream, run)

    def context(self, speech, styles: tuple, plans: tuple | None = None, threshold=None) -> tuple:
        checked_family(self.checkpoint, "vq-mamba", "context")
        config = self.model.config
        styles = checked_styles(config.num_styles, styles)
        plans = checked_plans(plans, styles)
        checked_speech_window(speech, config)

        def run():
            context, plan = self.model.generator.window_context(self._tensor(speech)[None], styles, plans, threshold)
            return context.float().cpu().numpy(), plan

        return self._run(None, run)

    def span(self, context, known: dict, styles: tuple, parts: tuple, style_strength: float = 1.0) -> dict:
        checked_family(self.checkpoint, "vq-mamba", "span")
        styles = checked_styles(self.model.config.num_styles, styles)
        style_strength = checked_style_strength(style_strength)
        parts = checked_parts(parts)
        checked_context(context, known, styles, self.model.config)

        def run():
            gen = self.model.generator
            b = len(styles)
            codes = torch.stack([self._tensor(known[p], torch.long) for p in PARTS], -1)[None]
            latents = gen.known_latents(self.model.codebooks(), codes).expand(b, -1, -1, -1)
            # The stacked fast path is measured on the CPU (1.5x faster there); CUDA keeps the
            # module path, where the mamba-ssm kernel or the parallel scan runs each mixer.
            span_logits = gen.span_logits_fast if self.device == "cpu" else gen.span_logits
            logits = span_logits(self._tensor(context), gen.style_embeddings(styles, style_strength), latents, parts)
            return {p: v.float().cpu().numpy() for p, v in logits.items()}

        return self._run(None, run)

    def condition(self, features, styles: tuple, speech=None, threshold=None, plan=None):
        checked_family(self.checkpoint, "dim-gestor", "condition")
        config = self.model.config
        styles = checked_styles(config.num_styles, styles)
        checked_window(len(features), config)
        speech = checked_planner_speech(speech, features, config)
        given = checked_given_plan(plan, features, config)

        def run():
            gen = self.model.generator
            plan = given
            if plan is None and speech is not None:
                plan = gen.window_plan(self._tensor(speech)[None], styles[0], threshold)
            ids = torch.tensor([-1 if s is None else s for s in styles], device=self.device)
            # One pass of the speech extractor serves every style (the batch of 1 broadcasts).
            cond, style = gen.condition(self._tensor(features)[None], ids,
                                        None if plan is None else self._tensor(plan)[None])
            return cond[0].float().cpu().numpy(), style.float().cpu().numpy(), plan

        return self._run(None, run)

    def denoise(self, x, t: float, cond, style, known, mask) -> np.ndarray:
        checked_family(self.checkpoint, "dim-gestor", "denoise")
        checked_denoise(x, cond, style, known, mask, self.model.config)

        def run():
            x_t = self._tensor(x)
            times = torch.full((len(x_t),), float(t), device=self.device)
            x0 = self.model.generator.denoise(x_t, times, self._tensor(cond)[None], self._tensor(style),
                                              self._tensor(known)[None], self._tensor(mask)[None])
            return x0.float().cpu().numpy()

        return self._run(None, run)

    def decode_latents(self, stream: _Stream, latents: dict, plan=None) -> dict:
        plan = checked_plan(plan, latents, self.model.config)

        def run():
            # New states are committed only when every part succeeded, so an out-of-memory retry
            # on the CPU starts from the same state.
            out, states, gmp_state = {}, {}, stream.gmp_state
            for part, part_latents in latents.items():
                y, states[part] = self.model.vq[part].decode(self._tensor(part_latents)[None],
                                                             stream.decode_state.get(part),
                                                             None if plan is None else self._tensor(plan)[None])
                if part == "lower":
                    root, gmp_state = self.model.gmp(y, gmp_state)
                    y = torch.cat([y[..., :LOWER_ROOT.start], root, y[..., LOWER_ROOT.stop:]], dim=-1)
                out[part] = y[0].float().cpu().numpy()
            stream.decode_state.update(states)
            stream.gmp_state = gmp_state
            return out

        return self._run(stream, run)
