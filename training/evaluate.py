"""``gestura eval``: generate every clip of a split from its audio and score it.

Rows: the checkpoint's motion and, as the reference, the data's own motion on the same clips.
Columns: BC, sync (wrist speed against the speech's onset envelope, minus the same with the audio
shifted: 0 = the hands ignore the speech), speed (upper-body joint speed over the training data's:
1 = moves as much),
L1 diversity, FGD (only with ``--fgd-encoder``; the project's encoder, not
comparable with published FGD), jitter (mean jerk, m/s^3) and foot sliding (m/s). Printed as a
table and written as JSON.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from . import metrics
from .dataset import Beat2Dataset, DatasetError, compute_stats, joint_positions, parse_speakers

COLUMNS = ("bc", "sync", "speed", "l1_diversity", "fgd", "jitter", "foot_sliding")
STYLE_COLUMNS = ("wrist_speed", "hand_height", "stroke_rate")


def score(motions, positions, waves, mean_speed, encoder=None, reference_features=None) -> dict:
    """Metrics of one set of clips (motions: list[Motion], positions: FK of each)."""
    bc = metrics.beat_consistency(positions, waves, mean_speed)
    sync = metrics.speech_motion_sync(positions, waves)
    out = {
        "bc": None if not np.isfinite(bc) else bc,  # None: no clip longer than the 2 s + 2 s BC ignores
        "speed": metrics.relative_speed(positions, mean_speed),
        "sync": None if not np.isfinite(sync) else sync,  # None: no clip of 4 s or more
        "l1_diversity": metrics.l1_diversity([p - m.trans[:, None] for p, m in zip(positions, motions)]),
        "jitter": metrics.jitter(positions),
        "foot_sliding": metrics.foot_sliding(positions),
        "fgd": None,
    }
    if encoder is not None and reference_features is not None:
        from .fgd_encoder import embed

        model, mean, std = encoder
        out["fgd"] = metrics.fgd(embed(model, mean, std, motions), reference_features)
    return out


def style_stats(positions, styles) -> dict:
    """{style: gesture statistics averaged over that style's clips, weighted by length}."""
    out = {}
    for style in sorted(set(styles)):
        clips = [p for p, s in zip(positions, styles) if s == style]
        weights = np.array([len(p) for p in clips], np.float64)
        rows = [metrics.gesture_stats(p) for p in clips]
        out[style] = {k: float(np.average([r[k] for r in rows], weights=weights)) for k in rows[0]}
    return out


def run_eval(args) -> dict:
    from ..cli import CommandError
    from ..inference.checkpoint import CheckpointError
    from ..inference.pipeline import GenerationError, GenerationRequest, generate, resolve_checkpoint
    from .loop import Progress

    try:
        checkpoint = resolve_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise CommandError(str(error)) from None
    if checkpoint.stage != "full":
        raise CommandError(f"{args.checkpoint} holds stage 1 only: evaluate a checkpoint from gestura train")
    cache = False if args.no_cache else (Path(args.cache_dir) if args.cache_dir else True)
    try:
        data = Beat2Dataset.load(args.data, (args.split,), parse_speakers(args.speakers), cache=cache, keep_wave=True)
    except DatasetError as error:
        raise CommandError(str(error)) from None
    if not data.clips:
        raise CommandError(f"no usable '{args.split}' clips in {args.data} (see the warnings above)")
    if args.max_clips:
        data.clips = data.clips[: args.max_clips]

    mean_speed = checkpoint.stats.get("joint_speed_mean")
    speed_source = "checkpoint (training data)"
    if mean_speed is None:
        try:
            train = Beat2Dataset.load(args.data, ("train",), parse_speakers(args.speakers), cache=cache)
            mean_speed = compute_stats(train.clips)["joint_speed_mean"]
            speed_source = "train split of --data"
        except DatasetError:
            mean_speed = compute_stats(data.clips)["joint_speed_mean"]
            speed_source = f"{args.split} split (no training statistics available)"

    encoder = None
    if args.fgd_encoder:
        from .fgd_encoder import FGDError, load_encoder

        try:
            encoder = load_encoder(args.fgd_encoder)
        except FGDError as error:
            raise CommandError(str(error)) from None

    generated, gen_positions = [], []
    progress = Progress(len(data.clips), "eval", enabled=not args.no_progress)
    t0 = time.time()
    for i, clip in enumerate(data.clips):
        style = clip.ref.style if clip.ref.style in checkpoint.styles else None
        request = GenerationRequest(audio=clip.wave, style=style, seed=args.seed + i,
                                    temperature=args.temperature, style_strength=args.style_strength,
                                    device=args.device)
        try:
            motion = generate(request, checkpoint=checkpoint, engine=args.engine)
        except GenerationError as error:
            raise CommandError(f"{clip.ref.id}: {error}") from None
        n = min(motion.num_frames, clip.num_frames)
        motion = type(motion)(motion.poses[:n], motion.trans[:n], motion.expressions[:n], motion.fps)
        generated.append(motion)
        gen_positions.append(joint_positions(motion))
        progress.update(i + 1)
    seconds = time.time() - t0

    waves = [c.wave for c in data.clips]
    real = [c.motion for c in data.clips]
    real_positions = [c.positions for c in data.clips]
    reference_features = None
    if encoder is not None:
        from .fgd_encoder import embed

        reference_features = embed(*encoder, real)
    result = {
        "checkpoint": str(checkpoint.path),
        "data": str(Path(args.data).resolve()),
        "split": args.split,
        "clips": [c.ref.id for c in data.clips],
        "seconds_of_audio": float(sum(c.num_frames for c in data.clips) / 30.0),
        "generation_seconds": seconds,
        "engine": args.engine,
        "temperature": args.temperature,
        "style_strength": args.style_strength,
        "seed": args.seed,
        "speed_normalisation": speed_source,
        "fgd_encoder": str(args.fgd_encoder) if args.fgd_encoder else None,
        "fgd_note": "project encoder, not comparable with published FGD",
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "generated": score(generated, gen_positions, waves, mean_speed, encoder, reference_features),
        "ground_truth": score(real, real_positions, waves, mean_speed, encoder, reference_features),
        "skipped": data.skipped,
    }
    # Per speaker of the data: its clips were generated in its style (the model's first style when
    # the model does not know the speaker), next to its own motion.
    styles = [c.ref.style for c in data.clips]
    generated_styles, real_styles = style_stats(gen_positions, styles), style_stats(real_positions, styles)
    result["styles"] = {s: {"generated": generated_styles[s], "ground_truth": real_styles[s]} for s in real_styles}
    return result


def format_table(result: dict) -> str:
    head = ("", "BC", "sync", "speed", "L1 div", "FGD*", "jitter m/s^3", "foot slide m/s")
    rows = [head]
    for name in ("generated", "ground_truth"):
        r = result[name]
        rows.append((name.replace("_", " "),) + tuple("-" if r[k] is None else f"{r[k]:.4f}" for k in COLUMNS))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"{len(result['clips'])} '{result['split']}' clips, {result['seconds_of_audio']:.1f} s of audio; "
                 f"BC and speed normalised by the {result['speed_normalisation']}")
    fgd = "* FGD: " + (result["fgd_note"] if result["fgd_encoder"] else "no --fgd-encoder given (train one with gestura train-fgd)")
    lines.append(fgd)
    lines.append("")
    lines.append("per speaker, generated / ground truth: wrist speed m/s, hand height m, strokes per s")
    for style, row in result["styles"].items():
        cells = [f"{row['generated'][k]:.3f} / {row['ground_truth'][k]:.3f}" for k in STYLE_COLUMNS]
        lines.append(f"  {style}: " + "   ".join(cells))
    return "\n".join(lines)


def main(args) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = run_eval(args)
    print(format_table(result))
    out = Path(args.json) if args.json else Path(result["checkpoint"]).with_suffix(".eval.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written {out}", file=sys.stderr)
    return 0
