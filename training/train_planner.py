"""A stroke planner for a trained model (``gestura train --stroke-planner --init CKPT --data DIR``).

The body of stage 2 reads a plan of stroke apexes, which the generator's own apex head makes
from the body's speech scans (``train_generator``). Training those scans harder for the plan
changes what the body hears, and measured worse (``weights/MODEL_CARD.md``). This trainer gives
the plan scans of its own instead: ``generator.planner`` (``torch_model.generator.StrokePlanner``:
a causal speech encoder, window scan, style embedding and apex head), started from the --init
model's own head path (or from its planner, to continue one), trained on the apex loss alone
(binary cross-entropy against ``stroke_plan.apex_bumps`` of the data's apexes) while every other
weight, the audio statistics and the speaker list stay the --init model's.

Each window is laid out as generation reads it (``pipeline``): up to ``WARMUP`` frames of earlier
speech warm the causal encoder up, then the window scan runs over ``prefix_codes + span_codes``
codes' frames plus the look-ahead. ``--audio-augment N`` lets each window hear its audio as one
of N other recordings (``audio_augment``) or clean, drawn uniformly. At the end the checkpoint's
``apex_threshold`` is calibrated again, now on the planner (``train_generator.calibrate_apex_threshold``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CommandError
from ..inference.stroke_plan import apex_bumps
from .common import data_notes, load_data, log
from .dataset import window_index
from .loop import LoopSpec, run_distributed, run_loop, seed_everything
from .train_generator import (CALIBRATION_CLIPS, CHECKPOINT_NAME, calibrate_apex_threshold, calibration_clip,
                              normalized_features, speech_variants, window_features)

WARMUP = 30  # frames (1 s) of earlier speech before each training window, where the clip has them
HEAD_PATH = ("audio_in", "speech", "speech_norm", "speech_window", "style", "apex")  # what the planner copies


class PlannerStage(nn.Module):
    """The model with only ``generator.planner`` trainable; ``forward`` returns its losses."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith("generator.planner."))

    def forward(self, features, style, starts, target):
        logits = self.model.generator.planner(features, style, starts, target.shape[1])
        return {"apex_bce": F.binary_cross_entropy_with_logits(logits.float(), target)}


def main(args) -> int:
    return run_distributed(args, _train)


def read_init(path: str | None):
    """The --init checkpoint a planner is trained for, or CommandError saying what to pass."""
    from ..inference.checkpoint import CheckpointError, load_checkpoint

    if not path:
        raise CommandError("--stroke-planner trains a planner for an existing model: name it with --init")
    try:
        init = load_checkpoint(path)
    except CheckpointError as error:
        raise CommandError(str(error)) from None
    if init.stage != "full" or init.config.family != "vq-mamba":
        raise CommandError(f"--init {path} is not a full vq-mamba checkpoint: a stroke planner makes the plan of "
                           "the span generator, train that first (gestura train --vq ...)")
    return init


def planner_model(init, pitch: bool = False):
    """A model holding every weight of ``init`` and a stroke planner: ``init``'s own when it has
    one, else a copy of its generator's head path (``HEAD_PATH``). With ``pitch`` the planner also
    hears voicing and pitch (``config.planner_pitch``); where the copied planner did not, their
    input weights start at zero, so training starts from its plan."""
    from ..inference.torch_model.model import GesturaModel

    model = GesturaModel(init.config.with_(stroke_planner=True, planner_pitch=pitch), with_generator=True)
    own = model.state_dict()
    tensors = dict(init.tensors)
    if not init.config.stroke_planner:
        prefix = "generator."
        tensors.update({f"{prefix}planner.{name[len(prefix):]}": value for name, value in init.tensors.items()
                        if name.startswith(prefix) and name[len(prefix):].split(".")[0] in HEAD_PATH})
    with torch.no_grad():
        for name, value in own.items():
            given = torch.as_tensor(np.asarray(tensors[name]))
            if name == "generator.planner.audio_in.weight" and given.shape != value.shape:  # no pitch columns yet
                value.zero_()
                value[:, :given.shape[1]] = given
            else:
                value.copy_(given)
    return model


def _train(args, dist) -> int:
    seed_everything(args.seed)
    init = read_init(args.init)
    data = load_data(args, dist, ("train",))
    log(dist, f"train: {data.describe()}")
    styles = list(init.styles)
    unknown = sorted({c.ref.style for c in data.clips} - set(styles))
    if unknown:
        raise CommandError(f"--data has speakers {', '.join(unknown)} that --init {args.init} was not trained on "
                           f"(it knows {', '.join(styles)}): choose them out with --speakers")
    clips = [c for c in data.clips if c.stroke_apex is not None]
    if not clips:
        raise CommandError(f"--data {args.data} has no stroke apexes: train on data that has them (gestura synth "
                           "writes them; BEAT2-layout data gets them from its motion)")
    model = planner_model(init, args.planner_pitch or init.config.planner_pitch).to(dist.device)
    config, stats, device = model.config, init.stats, dist.device
    pitch = config.planner_pitch
    r, look = config.frames_per_code, config.lookahead
    length = args.window or (config.prefix_codes + config.span_codes) * r
    if length % r:
        raise CommandError(f"--window {length} must be a multiple of frames_per_code ({r})")
    stage = PlannerStage(model)
    feats = _heard(clips, stats, pitch, dist)
    plans = [apex_bumps(c.stroke_apex) for c in clips]
    style_ids = [styles.index(c.ref.style) for c in clips]
    index = window_index(clips, length, args.stride or max(length // 2, 1))
    variants = speech_variants(args, dist, clips, stats, pitch)

    def window(features: np.ndarray, plan: np.ndarray, s: int) -> tuple:
        warm = min(s, WARMUP)
        x = window_features(features, s - warm, WARMUP + length + look)  # zeros after the clip, never before
        return x, warm, _padded(plan, s, length)

    def make_batch(items: np.ndarray, epoch: int) -> dict:
        rng = np.random.default_rng([args.seed, epoch, int(items[0])])
        rows = []
        for c, s in index[items]:
            heard = feats[c]
            if variants:
                v = int(rng.integers(len(variants[c]) + 1))
                heard = feats[c] if v == 0 else variants[c][v - 1]
            rows.append(window(heard, plans[c], int(s)))
        return {
            "features": torch.from_numpy(np.stack([x for x, _, _ in rows])).to(device),
            "starts": torch.as_tensor([w for _, w, _ in rows], dtype=torch.long, device=device),
            "target": torch.from_numpy(np.stack([t for _, _, t in rows])).to(device),
            "style": torch.as_tensor([style_ids[c] for c, _ in index[items]], dtype=torch.long, device=device),
        }

    def loss(m, batch, gen, step, total):
        out = m(batch["features"], batch["style"], batch["starts"], batch["target"])
        return out["apex_bce"], {}

    val = load_data(args, dist, ("val",)) if args.val else None
    val_clips = [c for c in val.clips if c.stroke_apex is not None and c.ref.style in styles] if val else []
    validate = None
    if val_clips:
        val_feats = [normalized_features(c, stats, pitch) for c in val_clips]
        fixed = [window(f, apex_bumps(c.stroke_apex), s) + (styles.index(c.ref.style),)
                 for c, f in zip(val_clips, val_feats) for s in range(0, max(c.num_frames - length, 0) + 1, length)]

        @torch.no_grad()
        def validate(m) -> dict:
            losses = [float(m(torch.from_numpy(x)[None].to(device), torch.tensor([st], device=device),
                              torch.tensor([w], device=device), torch.from_numpy(t)[None].to(device))["apex_bce"])
                      for x, w, t, st in fixed]
            return {"val_apex_bce": float(np.mean(losses))}
        calibration = [calibration_clip(f, c, styles.index(c.ref.style)) for c, f in zip(val_clips, val_feats)]
        source = f"the {len(calibration)} val clips"
    else:
        calibration = [calibration_clip(feats[i], clips[i], style_ids[i]) for i in range(min(len(clips), CALIBRATION_CLIPS))]
        source = f"{len(calibration)} train clips"

    def export(m, step) -> Path:
        threshold = calibrate_apex_threshold(model, calibration, device)
        log(dist, f"train: apex_threshold {threshold:.4f}: the stroke planner plans as many stroke apexes as {source} have")
        return save_planner(model, init, args, step)

    settings = ["stroke-planner", config.to_json(), str(Path(args.init).resolve()), length] + (
        [args.audio_augment] if args.audio_augment else [])
    spec = LoopSpec(name="train", model=stage, num_items=len(index), make_batch=make_batch, loss=loss, export=export,
                    notes=data_notes(args, data) + [f"stroke planner for {Path(args.init).resolve()}"],
                    config_json=json.dumps(settings), validate=validate)
    summary = run_loop(spec, args, dist)
    if dist.main:
        print(json.dumps({k: summary[k] for k in ("steps", "first", "last", "steps_per_s", "checkpoint")}))
    return 0


def _heard(clips, stats: dict, pitch: bool, dist) -> list[np.ndarray]:
    """Each clip's features as the planner hears them (``normalized_features``), with a progress
    line when the pitch is read from the audio files (well under a second per minute of audio)."""
    from .loop import Progress

    bar = Progress(len(clips), "pitch of each clip", enabled=dist.main and pitch)
    out = []
    for i, clip in enumerate(clips):
        out.append(normalized_features(clip, stats, pitch))
        bar.update(i + 1)
    return out


def _padded(plan: np.ndarray, start: int, length: int) -> np.ndarray:
    """``length`` frames of a plan from ``start``, no apex beyond its end (what generation plans there)."""
    out = np.zeros(length, np.float32)
    piece = plan[start:start + length]
    out[:len(piece)] = piece
    return out


def save_planner(model, init, args, step: int) -> Path:
    """``--out``/gestura.safetensors: ``init`` with the trained planner and its threshold, keeping
    ``init``'s metadata (where its body came from) and saying how the planner was trained."""
    from ..inference.checkpoint import CheckpointError

    reserved = ("format", "format_version", "config", "styles", "stage")
    metadata = {k: v for k, v in init.metadata.items() if k not in reserved}
    metadata["stroke_planner"] = json.dumps({"steps": step, "from": str(Path(args.init).name),
                                            "data": str(Path(args.data).resolve()),
                                            "audio_augment": args.audio_augment,
                                            "pitch": model.config.planner_pitch})
    try:
        return model.save(Path(args.out) / CHECKPOINT_NAME, styles=list(init.styles), stats=init.stats,
                          stage="full", extra_metadata=metadata)
    except CheckpointError as error:
        raise CommandError(str(error)) from None
