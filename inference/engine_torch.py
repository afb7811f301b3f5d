"""The PyTorch engine (``engines.Engine`` on ``torch_model``): ``TorchEngine``, ``DeviceFallbackWarning``.

The implementation is ``torch_model/engine.py``; this name resolves it on first use, so that
importing ``gestura.inference`` modules never imports torch (only ``torch_model`` does).
"""
from __future__ import annotations

__all__ = ["TorchEngine", "DeviceFallbackWarning"]


def __getattr__(name: str):
    if name in __all__:
        from .torch_model import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
