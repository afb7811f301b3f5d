"""The machine line every benchmark prints: processor, cores, Python, numpy, platform and torch's device."""
from __future__ import annotations

import os
import platform

import numpy as np


def machine() -> str:
    info = [f"{platform.processor() or platform.machine()}", f"{os.cpu_count()} CPUs",
            f"Python {platform.python_version()}", f"numpy {np.__version__}", platform.platform()]
    try:
        import torch

        device = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no CUDA"
        info.append(f"torch {torch.__version__} ({device})")
    except ImportError:
        info.append("no torch")
    return ", ".join(info)
