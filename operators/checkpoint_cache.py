"""The model checkpoint the add-on uses, loaded once per file and kept while the file is unchanged.

The style menu is drawn many times a second; it must not re-read a checkpoint each time, and
Blender needs the strings of dynamic enum items kept alive on the Python side, so the items live
here too. Only the main thread calls this module.
"""
from __future__ import annotations

import os
from pathlib import Path

# The one style entry when the model has none (or cannot be read): the model's own default.
DEFAULT_STYLE = "DEFAULT"

_loaded: dict[str, tuple[tuple, object]] = {}
_items: dict[str, tuple[tuple, list]] = {}


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


def _header_styles(path: Path) -> list:
    """Style names from the safetensors header alone: the menu must not read the weights."""
    import json

    from ..inference import safetensors_np

    try:
        _, metadata, _, _ = safetensors_np.read_header(path)
        names = json.loads(metadata.get("styles", "[]"))
    except Exception:  # noqa: BLE001 - an unreadable model shows up as an error when generating
        return []
    return [str(name) for name in names] if isinstance(names, list) else []


def style_items(path: Path) -> list[tuple[str, str, str]]:
    """EnumProperty items for the styles of the checkpoint at ``path``."""
    key = str(path)
    stamp = _stamp(path)
    cached = _items.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    names = _header_styles(path) if stamp is not None else []
    items = [(name, name, f"Gesture in the style of '{name}'") for name in names]
    if not items:
        items = [(DEFAULT_STYLE, "Model Default", "The model has no named styles (or could not be read)")]
    _items[key] = (stamp, items)
    return items


def clear() -> None:
    _loaded.clear()
    _items.clear()
