"""``gestura eval``: generate every clip of a split from its audio and score it.

Rows: the checkpoint's motion and, as the reference, the data's own motion on the same clips.
Columns: BC, speed (upper-body joint speed over the training data's: 1 = moves as much),
L1 diversity, FGD (only with ``--fgd-encoder``; the project's encoder, not
comparable with published FGD), jitter (mean jerk, m/s^3) and foot sliding (m/s). Then the timing
metrics (``metrics``, issue 15): apex ratio at the data's stroke apexes (planned by the synthesizer,
else derived from the data's motion), correlation of the wrist speed with the data's, rest in
silence (two clips around 6 s of zeros, over ``--rest-seeds`` seeds), frozen raised arms and the
speech-timing control of body and jaw. On a ``gestura synth`` corpus the data's row also gets the
synthesizer's own rest in silence and the correlation of two synthesizer seeds. Printed as tables
and written as JSON.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import CommandError
from . import metrics
from .dataset import Beat2Dataset, DatasetError, compute_stats, joint_positions, parse_speakers

COLUMNS = ("bc", "speed", "l1_diversity", "fgd", "jitter", "foot_sliding")
TIMING_COLUMNS = ("apex_ratio", "corpus_correlation", "rest_in_silence", "frozen_arms", "body_timing", "jaw_timing")
REST_GAP_SECONDS = 6.0
STYLE_COLUMNS = ("wrist_speed", "hand_height", "stroke_rate")


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def score(motions, positions, waves, mean_speed, encoder=None, reference_features=None, apexes=None) -> dict:
    """Metrics of one set of clips (motions: list[Motion], positions: FK of each; apexes: frame
    indices of each clip's stroke apexes). None where a metric has nothing to measure."""
    bc = metrics.beat_consistency(positions, waves, mean_speed)
    timing = metrics.speech_timing_control(positions, [m.poses for m in motions], waves)
    out = {
        "bc": _finite(bc),  # None: no clip longer than the 2 s + 2 s BC ignores
        "speed": metrics.relative_speed(positions, mean_speed),
        "body_timing": _finite(timing["body"]),  # None: no clip of 3 s or more
        "jaw_timing": _finite(timing["jaw"]),
        "apex_ratio": _finite(metrics.apex_ratio(positions, apexes)) if apexes is not None else None,
        "frozen_arms": _finite(metrics.frozen_arms(positions)),
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


def synth_style(data_root: Path, clip_id: str):
    """The synthesizer's style of a clip when ``data_root`` is a ``gestura synth`` corpus, else None."""
    if not (Path(data_root) / "synth.json").is_file():
        return None
    from .synth.styles import get_style

    try:
        return get_style(clip_id.split("_")[1])
    except (ValueError, KeyError, IndexError):
        return None


def silence_gap_audio(first: np.ndarray, second: np.ndarray, sr: int = metrics.SAMPLE_RATE,
                      fps: float = 30.0, gap_s: float = REST_GAP_SECONDS) -> tuple[np.ndarray, tuple[int, int]]:
    """``first``, ``gap_s`` of exact zeros, ``second``; and the gap's (first, end) frames. ``first``
    is cut to whole frames so that the gap starts on a frame."""
    per_frame = sr / fps
    frames = int(len(first) // per_frame)
    first = first[: int(round(frames * per_frame))]
    wave = np.concatenate([first, np.zeros(int(round(gap_s * sr)), np.float32), second]).astype(np.float32)
    return wave, (frames, frames + int(round(gap_s * fps)))


def run_eval(args) -> dict:
    from ..inference.checkpoint import CheckpointError
    from ..inference.pipeline import GenerationError, GenerationRequest, check_settings, generate, resolve_checkpoint
    from .loop import Progress

    try:
        checkpoint = resolve_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise CommandError(str(error)) from None
    if args.rest_seeds < 0:
        raise CommandError(f"--rest-seeds must be 0 (skip) or more, got {args.rest_seeds}")
    if checkpoint.stage != "full":
        raise CommandError(f"{args.checkpoint} holds stage 1 only: evaluate a checkpoint from gestura train")
    try:
        check_settings(checkpoint, temperature=args.temperature, style_strength=args.style_strength,
                       sampling_steps=args.sampling_steps)
    except GenerationError as error:
        raise CommandError(str(error)) from None
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
                                    device=args.device, sampling_steps=args.sampling_steps)
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
    apexes = [np.flatnonzero(c.stroke_apex > 0.5) for c in data.clips]
    planned = {c.stroke_apex_planned for c in data.clips}
    apex_source = "planned" if planned == {True} else "derived" if planned == {False} else "planned and derived"

    def generate_one(wave, style, seed):
        request = GenerationRequest(audio=wave, style=style if style in checkpoint.styles else None, seed=seed,
                                    temperature=args.temperature, style_strength=args.style_strength,
                                    device=args.device, sampling_steps=args.sampling_steps)
        try:
            return generate(request, checkpoint=checkpoint, engine=args.engine)
        except GenerationError as error:
            raise CommandError(f"rest in silence: {error}") from None

    # Rest in silence: the first two held-out clips around 6 s of exact zeros, over several seeds.
    rest = {"generated": None, "ground_truth": None}
    rest_setup = None
    if args.rest_seeds > 0:
        first, second = data.clips[0], data.clips[1 % len(data.clips)]
        gap_wave, gap = silence_gap_audio(first.wave, second.wave)
        seeds = [args.seed + k for k in range(args.rest_seeds)]
        values = [metrics.rest_in_silence(joint_positions(generate_one(gap_wave, first.ref.style, s)), gap)
                  for s in seeds]
        rest["generated"] = float(np.mean(values))
        style = synth_style(data.root, first.ref.id)
        if style is not None:
            from .synth.gestures import synthesize

            rest["ground_truth"] = float(np.mean([
                metrics.rest_in_silence(joint_positions(synthesize(gap_wave, style, seed=s)), gap) for s in seeds]))
        rest_setup = {"clips": [first.ref.id, second.ref.id], "gap_frames": list(gap), "seeds": seeds,
                      "generated_per_seed": values}
    # The synthesizer with another seed on the same audio: how much two corpus motions agree.
    seed_correlation = None
    styles_of = [synth_style(data.root, c.ref.id) for c in data.clips]
    if all(s is not None for s in styles_of):
        from .synth.gestures import synthesize

        again = [joint_positions(synthesize(c.wave, s, seed=10_000 + args.seed + i))
                 for i, (c, s) in enumerate(zip(data.clips, styles_of))]
        seed_correlation = metrics.corpus_correlation(again, real_positions)
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
        "sampling_steps": args.sampling_steps,
        "seed": args.seed,
        "speed_normalisation": speed_source,
        "fgd_encoder": str(args.fgd_encoder) if args.fgd_encoder else None,
        "fgd_note": "project encoder, not comparable with published FGD",
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "apex_source": apex_source,
        "rest_in_silence_setup": rest_setup,
        "generated": score(generated, gen_positions, waves, mean_speed, encoder, reference_features, apexes),
        "ground_truth": score(real, real_positions, waves, mean_speed, encoder, reference_features, apexes),
        "skipped": data.skipped,
    }
    result["generated"]["corpus_correlation"] = _finite(metrics.corpus_correlation(gen_positions, real_positions))
    result["ground_truth"]["corpus_correlation"] = seed_correlation  # None: not a synthetic corpus
    for name in ("generated", "ground_truth"):
        result[name]["rest_in_silence"] = rest[name]
    # Per speaker of the data: its clips were generated in its style (the model's first style when
    # the model does not know the speaker), next to its own motion.
    styles = [c.ref.style for c in data.clips]
    generated_styles, real_styles = style_stats(gen_positions, styles), style_stats(real_positions, styles)
    result["styles"] = {s: {"generated": generated_styles[s], "ground_truth": real_styles[s]} for s in real_styles}
    return result


def format_table(result: dict) -> str:
    head = ("", "BC", "speed", "L1 div", "FGD*", "jitter m/s^3", "foot slide m/s")
    lines = _table(result, head, COLUMNS)
    lines.append(f"{len(result['clips'])} '{result['split']}' clips, {result['seconds_of_audio']:.1f} s of audio; "
                 f"BC and speed normalised by the {result['speed_normalisation']}")
    fgd = "* FGD: " + (result["fgd_note"] if result["fgd_encoder"] else "no --fgd-encoder given (train one with gestura train-fgd)")
    lines.append(fgd)
    lines.append("")
    head = ("", "apex ratio", "corpus corr", "rest in silence", "frozen arms", "body timing", "jaw timing")
    lines += _table(result, head, TIMING_COLUMNS)
    setup = result.get("rest_in_silence_setup")
    rest = (f"rest in silence: {setup['clips'][0]} + {REST_GAP_SECONDS:g} s of zeros + {setup['clips'][1]}, "
            f"mean over {len(setup['seeds'])} seeds" if setup else "rest in silence: skipped (--rest-seeds 0)")
    lines.append(f"apexes {result['apex_source']}; {rest}; ground truth: the data, and where it is a gestura synth "
                 f"corpus the synthesizer on the same audio with other seeds ('-': not measured)")
    lines.append("")
    lines.append("per speaker, generated / ground truth: wrist speed m/s, hand height m, strokes per s")
    for style, row in result["styles"].items():
        cells = [f"{row['generated'][k]:.3f} / {row['ground_truth'][k]:.3f}" for k in STYLE_COLUMNS]
        lines.append(f"  {style}: " + "   ".join(cells))
    return "\n".join(lines)


def _table(result: dict, head: tuple, columns: tuple) -> list[str]:
    rows = [head]
    for name in ("generated", "ground_truth"):
        r = result[name]
        rows.append((name.replace("_", " "),) + tuple("-" if r.get(k) is None else f"{r[k]:.4f}" for k in columns))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return lines


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
