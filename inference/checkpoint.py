"""The checkpoint: one safetensors file with every weight, the config, the normalisation
statistics, the style names and a format version. Read with numpy only (``safetensors_np``), so
the NumPy engine inside Blender can load it; nothing is ever unpickled.

Layout:
- tensors named as in ``architecture.tensor_shapes(config, stage)`` (= the torch model's
  ``state_dict()`` names), float32;
- normalisation statistics as tensors ``stats.<name>``: ``audio_mean``/``audio_std``
  (FEATURE_DIM,) for the speech features and ``<part>_mean``/``<part>_std`` (PART_DIMS[part],)
  for each part's features (the model works on ``(x - mean) / std``); optionally the pose the
  training clips start in, ``start_pose`` (55 * 3,) axis-angle and ``start_expressions`` (100,),
  where generation given no start pose starts; further statistics (e.g. the trainer's
  ``joint_speed_mean``) are kept as they are;
- string metadata: ``format`` = "gestura", ``format_version``, ``config`` (JSON of
  ``ModelConfig``), ``styles`` (JSON list of speaker names, index = style id), ``stage``
  ("vq": stage-1 VQ-VAEs and global motion predictor only; "full": with the generator).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GesturaError
from ..rigs.skeleton import NUM_EXPRESSIONS, NUM_JOINTS, PART_DIMS, PARTS
from . import safetensors_np
from .architecture import tensor_shapes
from .config import ConfigError, ModelConfig
from .features import FEATURE_DIM

FORMAT = "gestura"
FORMAT_VERSION = 3
STAGES = ("vq", "full")
# Oldest format version each stage's weights still describe: stage 1 has not changed since
# version 2, so VQ-VAEs trained then still train a new generator.
OLDEST_READABLE = {"vq": 2, "full": FORMAT_VERSION}
STATS_PREFIX = "stats."
# The pose the training clips start in (``dataset.start_frame``): axis-angle pose and expressions.
START_STATS = {"start_pose": (NUM_JOINTS * 3,), "start_expressions": (NUM_EXPRESSIONS,)}


class CheckpointError(GesturaError, ValueError):
    """A checkpoint that cannot be used; the message names the file, the problem and the fix."""


def stats_shapes() -> dict:
    shapes = {"audio_mean": (FEATURE_DIM,), "audio_std": (FEATURE_DIM,)}
    for part in PARTS:
        shapes[f"{part}_mean"] = (PART_DIMS[part],)
        shapes[f"{part}_std"] = (PART_DIMS[part],)
    return shapes


def identity_stats() -> dict:
    """Zero mean, unit std: for an untrained model or tests."""
    return {name: (np.zeros if name.endswith("mean") else np.ones)(shape, np.float32)
            for name, shape in stats_shapes().items()}


@dataclass
class Checkpoint:
    tensors: dict
    config: ModelConfig
    stats: dict
    styles: list
    stage: str
    metadata: dict = field(default_factory=dict)
    path: str | None = None

    def style_index(self, style: str | None) -> int:
        """Index of a style name; ``None`` is the model's default (``config.default_style``)."""
        if style is None:
            return self.config.default_style
        if style in self.styles:
            return self.styles.index(style)
        raise CheckpointError(f"style '{style}' is not in this model: choose one of {', '.join(self.styles)}")


def default_checkpoint_path() -> Path:
    """The bundled model: ``weights/gestura-small.safetensors`` inside the package."""
    return Path(__file__).resolve().parents[1] / "weights" / "gestura-small.safetensors"


def _check_stats(stats: dict, where: str, stage: str) -> dict:
    expected = stats_shapes()
    start = [name for name in START_STATS if name in stats]
    if start:  # optional, but a pair: generation starts in this pose when none is given
        if len(start) != len(START_STATS):
            raise CheckpointError(f"{where}: statistics {sorted(START_STATS)} come together, but only {start} is there")
        expected = {**expected, **START_STATS}
    if stage == "vq":
        # Stage 1 never hears the audio; stage 2 computes the audio statistics from its own data,
        # so a stage-1 file's (from any feature version) are left out rather than checked.
        stats = {k: v for k, v in stats.items() if not k.startswith("audio_")}
        expected = {k: v for k, v in expected.items() if not k.startswith("audio_")}
    missing = sorted(set(expected) - set(stats))
    if missing:
        raise CheckpointError(f"{where}: normalisation statistics {missing} are missing")
    out = {}
    for name in stats:
        value = np.asarray(stats[name], np.float32)
        shape = expected.get(name, value.shape)
        if value.shape != shape:
            raise CheckpointError(f"{where}: statistics '{name}' have shape {value.shape}, expected {shape}")
        if not np.isfinite(value).all() or (name.endswith("_std") and (value <= 0).any()):
            raise CheckpointError(f"{where}: statistics '{name}' contain non-finite or non-positive std values")
        out[name] = value
    return out


def _check_tensors(tensors: dict, config: ModelConfig, stage: str, where: str) -> None:
    expected = tensor_shapes(config, stage)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise CheckpointError(f"{where}: tensors {missing[:3]}{more} are missing for a '{stage}' checkpoint "
                              f"of config '{config.name}': the file is incomplete or from another model")
    if extra:
        more = f" and {len(extra) - 3} more" if len(extra) > 3 else ""
        raise CheckpointError(f"{where}: unexpected tensors {extra[:3]}{more} for config '{config.name}': "
                              "the file does not match its own config")
    for name, shape in expected.items():
        got = tuple(np.shape(tensors[name]))
        if got != tuple(shape):
            raise CheckpointError(f"{where}: tensor '{name}' has shape {got}, but config '{config.name}' "
                                  f"needs {tuple(shape)}: the weights do not match the config")


def save_checkpoint(path, tensors: dict, config: ModelConfig, *, stats: dict | None = None,
                    styles: list | tuple, stage: str = "full", extra_metadata: dict | None = None) -> Path:
    """Write a checkpoint. ``tensors`` are numpy arrays (or anything ``np.asarray`` takes, e.g.
    CPU torch tensors) named as in ``architecture.tensor_shapes``; ``stats=None`` stores
    identity statistics."""
    if stage not in STAGES:
        raise CheckpointError(f"stage must be one of {STAGES}, got {stage!r}")
    where = f"checkpoint '{path}'"
    arrays = {name: np.asarray(value, np.float32) for name, value in tensors.items()}
    _check_tensors(arrays, config, stage, where)
    styles = [str(s) for s in styles]
    if len(styles) != config.num_styles or len(set(styles)) != len(styles):
        raise CheckpointError(f"{where}: needs {config.num_styles} distinct style names (config.num_styles), got {styles}")
    stats = _check_stats(identity_stats() if stats is None else stats, where, stage)
    for name, value in stats.items():
        arrays[STATS_PREFIX + name] = value
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": config.to_json(),
        "styles": json.dumps(styles),
        "stage": stage,
    }
    for key, value in (extra_metadata or {}).items():
        if key in metadata:
            raise CheckpointError(f"extra metadata key '{key}' is reserved")
        metadata[str(key)] = str(value)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors_np.save_file(arrays, path, metadata)
    return path


def load_checkpoint(path=None) -> Checkpoint:
    """Read and validate a checkpoint (``None``: the bundled default)."""
    path = default_checkpoint_path() if path is None else Path(path)
    where = f"checkpoint '{path}'"
    if path.is_dir():
        raise CheckpointError(f"{where} is a folder, not a checkpoint file: pass the path of a .safetensors file "
                              "written by Gestura")
    if not path.is_file():
        raise CheckpointError(f"{where} does not exist: pass the path of a .safetensors file written by Gestura")
    try:
        tensors, metadata = safetensors_np.load_file(path)
    except safetensors_np.SafetensorsError as error:
        raise CheckpointError(f"{where} cannot be read: {error}. Re-download or re-export it") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not a Gestura checkpoint (metadata format={metadata.get('format')!r}): "
                              "use a file written by gestura training")
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise CheckpointError(f"{where} has no readable format_version") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{where} has format version {version}, this Gestura reads version {FORMAT_VERSION}: "
                              "it was written by a newer Gestura; update Gestura to use it")
    if version < OLDEST_READABLE.get(metadata.get("stage"), FORMAT_VERSION):
        # Version 1 held the per-frame autoregressive generator, version 2 a span generator whose
        # body read the apex head's probabilities and whose head heard no style: neither set of
        # weights describes this generator, so nothing can convert them.
        what = "the per-frame model" if version < 2 else "the span model without stroke plans"
        raise CheckpointError(f"{where} has format version {version} ({what} of earlier Gestura releases), this "
                              f"Gestura reads version {FORMAT_VERSION}: retrain it on your data with gestura train-vq "
                              "and gestura train")
    try:
        config = ModelConfig.from_dict(json.loads(metadata["config"]))
        styles = json.loads(metadata["styles"])
    except (KeyError, ValueError, TypeError, ConfigError) as error:
        raise CheckpointError(f"{where} has an unreadable config or style list: {error}") from None
    stage = metadata.get("stage")
    if stage not in STAGES:
        raise CheckpointError(f"{where} has unknown stage {stage!r}, expected one of {STAGES}")
    stats = {name[len(STATS_PREFIX):]: tensors.pop(name) for name in list(tensors) if name.startswith(STATS_PREFIX)}
    stats = _check_stats(stats, where, stage)
    _check_tensors(tensors, config, stage, where)
    if not isinstance(styles, list) or len(styles) != config.num_styles:
        raise CheckpointError(f"{where} lists {len(styles) if isinstance(styles, list) else '?'} styles "
                              f"but its config has {config.num_styles}")
    for name, value in tensors.items():
        if not np.isfinite(value).all():
            raise CheckpointError(f"{where}: tensor '{name}' contains NaN or infinite values: training diverged")
    return Checkpoint(tensors=tensors, config=config, stats=stats, styles=[str(s) for s in styles],
                      stage=stage, metadata=dict(metadata), path=os.fspath(path))
