"""``gestura info``: what this installation can do."""
from __future__ import annotations

import importlib.util
import platform


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    from . import __version__

    print(f"gestura {__version__} on Python {platform.python_version()} ({platform.machine()})")
    for module in ("numpy", "torch", "mamba_ssm", "bpy", "smplx", "soundfile"):
        found = importlib.util.find_spec(module) is not None
        print(f"  {module:10s} {'available' if found else 'not installed'}")
    if importlib.util.find_spec("torch") is not None:
        import torch

        cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
        print(f"  torch {torch.__version__}: {cuda}")
    return 0
