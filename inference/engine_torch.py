"""The PyTorch engine: ``torch_model`` on the CPU or a CUDA GPU (mamba-ssm kernels when they
import). Implements ``engines.Engine``. A missing CUDA device, or running out of GPU memory,
falls back to the CPU with a warning instead of failing the request."""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ..rigs.skeleton import PARTS
from .engines import Engine, EngineError


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
    def __init__(self, style: int, parts: tuple):
        self.style = style
        self.parts = tuple(parts)
        self.context_state = None
        self.local_state = None
        self.decode_state = {}
        self.gmp_state = None

    def move(self, device):
        for key in ("context_state", "local_state", "decode_state", "gmp_state"):
            setattr(self, key, _to(getattr(self, key), device))


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, device: str = "auto") -> None:
        super().__init__(device)
        if device == "cuda" and not torch.cuda.is_available():
            warnings.warn("CUDA was requested but this PyTorch sees no CUDA device: generating on the CPU",
                          DeviceFallbackWarning, stacklevel=2)
        self.device = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
        self.model = None
        self._loaded = None

    def prepare(self, checkpoint) -> None:
        from .torch_model.model import GesturaModel

        key = (checkpoint.path, id(checkpoint.tensors))
        if self._loaded == key:
            return
        if checkpoint.stage != "full":
            raise EngineError(f"checkpoint '{checkpoint.path}' has no generator (stage '{checkpoint.stage}'): "
                              "use a fully trained checkpoint")
        model = GesturaModel.from_checkpoint(checkpoint)
        self.checkpoint = checkpoint
        self.model = model
        self._loaded = key
        try:
            self.model.to(self.device)
        except torch.cuda.OutOfMemoryError:
            self._fall_back(None, "the model does not fit in GPU memory")

    def _fall_back(self, stream, why: str) -> None:
        warnings.warn(f"{why}: continuing on the CPU", DeviceFallbackWarning, stacklevel=3)
        self.device = "cpu"
        self.model.to("cpu")
        if stream is not None:
            stream.move("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _run(self, stream, fn):
        """Run ``fn()``; on CUDA out-of-memory move everything to the CPU and run it again."""
        with torch.inference_mode():
            try:
                return fn()
            except torch.cuda.OutOfMemoryError:
                if self.device == "cpu":
                    raise
            self._fall_back(stream, "the GPU ran out of memory")
            return fn()

    def _tensor(self, array, dtype=torch.float32):
        return torch.as_tensor(np.asarray(array), dtype=dtype, device=self.device)

    def encode(self, part: str, features) -> np.ndarray:
        def run():
            x = self._tensor(features)[None]
            return self.model.vq[part].encode_codes(x)[0].cpu().numpy().astype(np.int64)

        return self._run(None, run)

    def start(self, style: int, parts: tuple) -> _Stream:
        if not 0 <= int(style) < self.model.config.num_styles:
            raise EngineError(f"style index {style} is out of range for this model")
        unknown = [p for p in parts if p not in PARTS]
        if unknown:
            raise EngineError(f"unknown parts {unknown}: parts are {PARTS}")
        return _Stream(int(style), tuple(p for p in PARTS if p in parts))

    def context(self, stream: _Stream, features) -> np.ndarray:
        def run():
            x = self._tensor(features)[None]
            style = torch.tensor([stream.style], device=self.device)
            ctx, stream.context_state = self.model.generator.context(x, style, stream.context_state)
            return ctx[0].float().cpu().numpy()

        return self._run(stream, run)

    def _previous_latents(self, prev_codes: dict) -> torch.Tensor:
        gen = self.model.generator
        rows = []
        for i, part in enumerate(PARTS):
            code = prev_codes.get(part)
            if code is None:
                rows.append(gen.mask_latent[i])
            else:
                rows.append(self.model.vq[part].codebook.weight[int(code)])
        return torch.stack(rows)[None]  # (1, 4, D)

    def step(self, stream: _Stream, context, prev_codes: dict) -> dict:
        def run():
            ctx = self._tensor(context)[None]
            logits, stream.local_state = self.model.generator.local_step(
                ctx, self._previous_latents(prev_codes), stream.parts, stream.local_state)
            return {p: v[0].float().cpu().numpy() for p, v in logits.items()}

        return self._run(stream, run)

    def decode(self, stream: _Stream, codes: dict) -> dict:
        def run():
            # New states are committed only when every part succeeded, so an out-of-memory retry
            # on the CPU starts from the same state.
            out, states, gmp_state = {}, {}, stream.gmp_state
            for part, part_codes in codes.items():
                c = self._tensor(part_codes, torch.long)[None]
                y, states[part] = self.model.vq[part].decode_codes(c, stream.decode_state.get(part))
                if part == "lower":
                    root, gmp_state = self.model.gmp(y, gmp_state)
                    y = torch.cat([y[..., :54], root, y[..., 57:]], dim=-1)
                out[part] = y[0].float().cpu().numpy()
            stream.decode_state.update(states)
            stream.gmp_state = gmp_state
            return out

        return self._run(stream, run)
