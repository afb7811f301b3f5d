"""Pieces both training stages use: loading the data for a run (once per machine, cached), the
model config from the command line, and torch rotation math for the losses."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CommandError
from ..rigs.skeleton import LOWER_ROT6D, PARTS
from .dataset import Beat2Dataset, DatasetError, compute_stats, parse_speakers

# Channels of each part that are rot6d (the rest: expressions, root channels, contacts).
ROT6D_CHANNELS = {"face": 6, "upper": 78, "hands": 180, "lower": LOWER_ROT6D.stop}


def load_data(args, dist, splits=("train",), keep_wave: bool = False) -> Beat2Dataset:
    """The clips of ``splits``; the main process builds the feature cache first so that the
    others only read it."""

    if args.use_additional and "train" in splits:
        splits = tuple(splits) + ("additional",)
    cache = False if args.no_cache else (Path(args.cache_dir) if args.cache_dir else True)
    try:
        speakers = parse_speakers(args.speakers)
        data = None
        if dist.main:
            data = Beat2Dataset.load(args.data, splits, speakers, cache=cache, max_mismatch_s=args.max_mismatch,
                                     keep_wave=keep_wave, progress=_load_progress(dist))
        dist.barrier()
        if not dist.main:
            data = Beat2Dataset.load(args.data, splits, speakers, cache=cache, max_mismatch_s=args.max_mismatch,
                                     keep_wave=keep_wave)
    except DatasetError as error:
        raise CommandError(str(error)) from None
    return data


def data_notes(args, data: Beat2Dataset) -> list[str]:
    """Lines for train.log: what was read, and every clip left out with its reason."""
    notes = [f"data {Path(args.data).resolve()} (speakers {args.speakers}): {data.describe()}"]
    if getattr(args, "audio_augment", 0):
        notes.append(f"audio: each clip also heard as {args.audio_augment} other recording(s) (room, channel, noise, "
                     "level; --audio-augment)")
    notes += [f"skipped {clip_id}: {reason}" for clip_id, reason in data.skipped]
    return notes


def _load_progress(dist):
    from .loop import Progress

    bar: dict = {}

    def update(done: int, total: int) -> None:
        if "p" not in bar:
            bar["p"] = Progress(total, "reading clips", enabled=dist.main)
        bar["p"].update(done)

    return update


def training_stats(data: Beat2Dataset) -> dict:

    try:
        return compute_stats(data.clips)
    except DatasetError as error:
        raise CommandError(str(error)) from None


def model_config(args, num_styles: int, base=None, defaults: dict | None = None):
    """``--config`` name (or ``base``) with ``defaults`` and then ``--set key=value`` over it (checked
    once, together), with the data's style count."""
    from ..inference.config import ConfigError, get_config

    try:
        config = base if base is not None else get_config(args.config)
        # The styles' stroke rates and default belong to the base's styles; stage 2 calibrates its own.
        config = config.for_styles(max(num_styles, 1))
        changes = dict(defaults or {})
        for item in args.set or []:
            key, _, value = item.partition("=")
            if not _:
                raise ConfigError(f"--set {item!r}: use key=value, e.g. --set codebook_size=512")
            try:
                changes[key.strip()] = json.loads(value)
            except json.JSONDecodeError:
                changes[key.strip()] = value
        return config.with_(**changes)
    except (ConfigError, TypeError) as error:
        raise CommandError(f"model config: {error}") from None


def stats_for_checkpoint(stats: dict) -> dict:
    return {k: np.asarray(v, np.float32) for k, v in stats.items()}


def log(dist, text: str) -> None:
    if dist.main:
        print(text, file=sys.stderr)


# ----------------------------------------------------------------------------- rotations in torch
def rot6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """[..., 6] -> [..., 3, 3]; the 6 numbers are the first two ROWS (pytorch3d, rigs.rotations)."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = F.normalize(a1, dim=-1, eps=1e-6)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1, eps=1e-6)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-2)


def geodesic(r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """Angle (radians) of r1 r2^T, via atan2(sin, cos): finite gradients at 0 and pi, unlike acos."""
    m = r1 @ r2.transpose(-1, -2)
    cos = (m.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    skew = torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1)
    sin = torch.sqrt((skew * skew).sum(-1) + 1e-12) / 2
    return torch.atan2(sin, cos)


def parts_list(text: str) -> tuple[str, ...]:
    if text == "all":
        return PARTS
    chosen = tuple(p.strip() for p in text.split(","))
    bad = [p for p in chosen if p not in PARTS]
    if bad:

        raise CommandError(f"--part {text}: unknown part(s) {bad}; use face, upper, hands, lower or all")
    return chosen
