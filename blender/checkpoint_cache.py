"""The model checkpoint the add-on uses, loaded once per file and kept while the file is unchanged.

The style menu and the panel are drawn many times a second: they read only the file's header,
once per file version. Only the main thread calls this module.
"""
from __future__ import annotations

import os
from pathlib import Path

_loaded: dict[str, tuple[tuple, object]] = {}
_headers: dict[str, tuple[tuple, tuple]] = {}


def resolve_path(configured: str | None) -> Path:
    """The configured checkpoint, or the bundled default when none is set."""
    if configured:
        return Path(os.path.expanduser(configured)).resolve()
    from ..inference.checkpoint import default_checkpoint_path

    return Path(default_checkpoint_path()).resolve()


def _stamp(path: Path) -> tuple | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


def load(path: Path):
    """The checkpoint at ``path`` (``inference.checkpoint.Checkpoint``); raises ``CheckpointError``."""
    from ..inference.checkpoint import CheckpointError, load_checkpoint

    key = str(path)
    stamp = _stamp(path)
    if stamp is None:
        raise CheckpointError(
            f"No model checkpoint at '{path}': choose a .safetensors file in Edit > Preferences > Add-ons > Gestura"
        )
    cached = _loaded.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    checkpoint = load_checkpoint(path)
    # One model in memory at a time: switching checkpoints should not grow Blender's memory.
    _loaded.clear()
    _loaded[key] = (stamp, checkpoint)
    return checkpoint


def _header(path: Path) -> tuple[list, str, int, bool]:
    """Style names, model family, default style index and whether generation strokes on a plan
    (``ModelConfig.plans_strokes``) from the safetensors header alone: the panel must not read the
    weights. An unreadable model gives no styles (it shows up as an error when generating)."""
    import json

    from ..inference import safetensors_np
    from ..inference.config import ModelConfig

    try:
        _, metadata, _, _ = safetensors_np.read_header(path)
        names = json.loads(metadata.get("styles", "[]"))
        config = ModelConfig.from_dict(json.loads(metadata.get("config", "{}")))
    except Exception:  # noqa: BLE001
        return [], "", 0, False
    names = [str(name) for name in names] if isinstance(names, list) else []
    default = config.default_style if 0 <= config.default_style < len(names) else 0
    return names, config.family, default, config.plans_strokes


def _cached_header(path: Path) -> tuple[list, str, int, bool]:
    key = str(path)
    stamp = _stamp(path)
    cached = _headers.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    header = _header(path) if stamp is not None else ([], "", 0, False)
    _headers[key] = (stamp, header)
    return header


def style_names(path: Path) -> list[str]:
    """Style names of the checkpoint at ``path`` (empty when it is missing or unreadable)."""
    return _cached_header(path)[0]


def default_style(path: Path) -> int:
    """Index into ``style_names`` of the style generation uses when none is chosen (0 when the
    checkpoint is missing or unreadable)."""
    return _cached_header(path)[2]


def model_family(path: Path) -> str:
    """The model family of the checkpoint at ``path`` ("vq-mamba", "dim-gestor"; empty when it is
    missing or unreadable)."""
    return _cached_header(path)[1]


def plans_strokes(path: Path) -> bool:
    """Whether the checkpoint at ``path`` strokes on a stroke plan, which plan strength guides
    (False when it is missing or unreadable)."""
    return _cached_header(path)[3]
