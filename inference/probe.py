"""Ask another Python interpreter what it can run: PyTorch, CUDA, mamba-ssm.

Used by the preferences' "Check" button and by the external engine before it starts a worker.
The probe runs in a child process so that CUDA is never loaded into Blender's own process.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

from ..errors import GesturaError

_PROBE = r"""
import json, sys
info = {"python": sys.version.split()[0], "torch": None, "cuda": False, "gpu": None, "mamba_ssm": None}
try:
    import torch
    info["torch"] = torch.__version__
    info["cuda"] = bool(torch.cuda.is_available())
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
except Exception:
    pass
try:
    import mamba_ssm
    info["mamba_ssm"] = getattr(mamba_ssm, "__version__", "installed")
except Exception:
    pass
print(json.dumps(info))
"""


class ProbeError(GesturaError, RuntimeError):
    """The interpreter could not be run or did not answer."""


@dataclass
class ProbeReport:
    python: str
    torch: str | None
    cuda: bool
    gpu: str | None
    mamba_ssm: str | None

    def summary(self) -> str:
        if not self.torch:
            return f"Python {self.python} runs, but has no PyTorch: install torch into it to use it as the external engine"
        device = f"CUDA on {self.gpu}" if self.cuda else "no CUDA (CPU only)"
        kernels = f"mamba-ssm {self.mamba_ssm}" if self.mamba_ssm else "no mamba-ssm (pure PyTorch scan)"
        return f"Python {self.python}, PyTorch {self.torch}, {device}, {kernels}"


def probe_interpreter(path: str, timeout: float = 60.0) -> ProbeReport:
    if not path:
        raise ProbeError("No external Python is set: choose a Python executable in the Gestura preferences")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise ProbeError(f"External Python '{path}' is not an executable file: choose the python binary of an environment")
    try:
        done = subprocess.run([path, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"External Python '{path}' did not answer within {timeout:.0f} s") from None
    except OSError as error:
        raise ProbeError(f"External Python '{path}' could not be started: {error.strerror}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProbeError(f"External Python '{path}' failed to start: {last}")
    try:
        info = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ProbeError(f"External Python '{path}' gave an unreadable answer: is it a Python interpreter?") from None
    return ProbeReport(**info)
