"""Model engines, one module each, behind one contract.

``base``      the engine contract (``Engine``: prepare, encode, start, context, step, decode;
              ``RequestEngine``: a whole request run elsewhere), ``checked_start``, the devices
``registry``  the engine names (one table for every menu and ``--engine``) and ``resolve_engine``
``numpy``     the NumPy engine (any Blender, nothing installed)
``torch``     the PyTorch engine (CPU or CUDA)
``external``  the PyTorch engine in another interpreter, over a pipe and temporary files

Imports run one way: engines -> base -> ``inference.errors``; only the registry names the
engine modules, and it imports them when one is chosen.
"""
from ..errors import EngineError
from .registry import ENGINE_NAMES, resolve_engine

__all__ = ["ENGINE_NAMES", "EngineError", "resolve_engine"]
