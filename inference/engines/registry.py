"""Which engine runs a request: the engine names (one table behind every engine menu and
``--engine`` choice) and ``resolve_engine``, which turns a name into an engine object.

The engine modules are imported only here, and only when chosen: ``torch`` imports PyTorch,
``external`` starts processes; neither may load because an engine menu was drawn.
"""
from __future__ import annotations

import importlib.util
from typing import NamedTuple

from ..errors import EngineError
from .base import check_device


class EngineChoice(NamedTuple):
    name: str  # what resolve_engine, ``--engine`` and the worker protocol take
    label: str  # shown in Blender's menus
    description: str  # Blender's tooltip
    command_line: bool  # offered by ``gestura generate --engine`` (external needs Blender's preferences)


# Order is part of saved files: Blender stores an enum property as the item's position.
ENGINES = (
    EngineChoice("auto", "Auto", "The external Python when one is set and has PyTorch, else PyTorch if "
                 "Blender can import it, else NumPy", True),
    EngineChoice("numpy", "NumPy", "Runs in any Blender with nothing installed", True),
    EngineChoice("torch", "PyTorch", "PyTorch inside Blender's Python (must be installed there)", True),
    EngineChoice("external", "External Python", "PyTorch in the separate Python interpreter set in the add-on "
                 "preferences (CUDA without touching Blender)", False),
)
ENGINE_NAMES = tuple(choice.name for choice in ENGINES)
COMMAND_LINE_ENGINES = tuple(choice.name for choice in ENGINES if choice.command_line)


def engine_enum_items() -> tuple:
    """``EnumProperty`` items of the engines: ``("AUTO", "Auto", tooltip)``... in ``ENGINES`` order."""
    return tuple((choice.name.upper(), choice.label, choice.description) for choice in ENGINES)


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def resolve_engine(name: str = "auto", device: str = "auto", **options):
    """An engine object for ``name``: "torch", "numpy", "external" (``options['python']`` is the
    interpreter) or "auto": inside Blender the external worker when ``python`` is given and
    healthy (it has PyTorch; probed once in a child process, then cached), else torch when
    importable, else numpy; on the command line torch when importable, else numpy.
    ``options['threads']``: the torch engine's CPU threads (None: its default, 1 on the CPU)."""
    if name not in ENGINE_NAMES:
        raise EngineError(f"unknown engine '{name}': choose one of {', '.join(ENGINE_NAMES)}")
    check_device(device)
    if name == "auto":
        from .external import external_healthy, in_blender

        if in_blender() and options.get("python") and external_healthy(options["python"]):
            name = "external"
        else:
            name = "torch" if torch_available() else "numpy"
    if name == "torch":
        if not torch_available():
            raise EngineError("the torch engine needs PyTorch, which is not installed in this Python: "
                              "pip install torch, or choose the numpy engine")
        from .torch import TorchEngine

        return TorchEngine(device, threads=options.get("threads"))
    if name == "numpy":
        try:
            from .numpy import NumpyEngine
        except ImportError as error:
            raise EngineError(f"the numpy engine is not available ({error}): choose the torch engine") from None
        return NumpyEngine(device)
    from .external import ExternalWorker

    python = options.get("python")
    if not python:
        raise EngineError("the external engine needs a Python with PyTorch: choose one in "
                          "Preferences > Add-ons > Gestura > External Python, or pick another engine")
    return ExternalWorker(python)
