"""``gestura eval``: generate every clip of a split from its audio and score it.

Rows: the checkpoint's motion and, as the reference, the data's own motion on the same clips.
Columns: BC, speed (upper-body joint speed over the training data's: 1 = moves as much),
L1 diversity, FGD (only with ``--fgd-encoder``; the project's encoder, not
comparable with published FGD), jitter (mean jerk, m/s^3; "body jitter" the same over the 22 body
joints alone, without the fingers that dominate the mean) and foot sliding (m/s). Then the timing
metrics (``metrics``, issue 15): apex ratio at the data's stroke apexes (planned by the synthesizer,
else derived from the data's motion), correlation of the wrist speed with the data's, rest in
silence (two clips around 6 s of zeros, over ``--rest-seeds`` seeds), frozen raised arms, hands
kept up over 6 s (raised arms) and the speech-timing control of body and jaw. On a ``gestura
synth`` corpus the data's row also gets the synthesizer's own rest in silence and the
correlation of two synthesizer seeds. Last, per speaker
of the data, wrist speed, hand height and stroke rate of its clips generated in its style next to
its own motion. With ``--takes N`` every clip is generated N times (take k, clip i: seed
``--seed + k * clips + i``): the generated figures are the mean over takes (per speaker: pooled),
with each take's own in the JSON, because one take's figures vary by more than most changes
to a model (README, the `eval` entry). Printed as tables and written as JSON.
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import CommandError
from . import metrics
from .dataset import Beat2Dataset, DatasetError, compute_stats, joint_positions, parse_speakers

COLUMNS = ("bc", "speed", "l1_diversity", "fgd", "jitter", "body_jitter", "foot_sliding")
TIMING_COLUMNS = ("apex_ratio", "syllable_apex", "corpus_correlation", "rest_in_silence", "frozen_arms", "raised_arms",
                  "body_timing", "jaw_timing")
REST_GAP_SECONDS = 6.0
STYLE_COLUMNS = ("wrist_speed", "hand_height", "stroke_rate")
STYLE_TOLERANCE = 0.25  # issue 16: a style's figures within 25 % of its speaker's
DRAW_SEED_STRIDE = 1_000  # the synthesizer's redraw k of clip i takes seed 10000 + --seed + k * this + i


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
        # The same ratio at strokes timed to the stressed syllables the audio itself has (what real
        # speech can be judged by), and against each clip's audio shifted by half its length: the
        # level a motion of the same speeds reaches by chance. None when no clip has a stressed syllable.
        "syllable_apex": _syllable_apex(positions, waves),
        "syllable_apex_shifted": _syllable_apex(positions, [np.roll(w, len(w) // 2) for w in waves]),
        "frozen_arms": _finite(metrics.frozen_arms(positions)),
        # A hand kept up over 6 s, still or beating (``metrics.raised_arm_frames``): what the frozen
        # measure misses when an arm held forward keeps beating from the wrist.
        "raised_arms": _finite(metrics.raised_arms(positions)),
        "l1_diversity": metrics.l1_diversity([p - m.trans[:, None] for p, m in zip(positions, motions)]),
        "jitter": metrics.jitter(positions),
        "body_jitter": metrics.jitter(positions, joints=metrics.BODY_JOINTS),
        "foot_sliding": metrics.foot_sliding(positions),
        "fgd": None,
    }
    if encoder is not None and reference_features is not None:
        from .fgd_encoder import embed

        model, mean, std = encoder
        out["fgd"] = metrics.fgd(embed(model, mean, std, motions), reference_features)
    return out


def _syllable_apex(positions, waves) -> float | None:
    """``metrics.apex_ratio`` at each clip's ``metrics.stressed_syllable_apexes`` (each apex counts once)."""
    apexes = [metrics.stressed_syllable_apexes(w, len(p)) for p, w in zip(positions, waves, strict=True)]
    return _finite(metrics.apex_ratio(positions, apexes))


def style_stats(positions, styles) -> dict:
    """{style: gesture statistics averaged over that style's clips, weighted by length}."""
    out = {}
    for style in sorted(set(styles)):
        clips = [p for p, s in zip(positions, styles) if s == style]
        weights = np.array([len(p) for p in clips], np.float64)
        rows = [metrics.gesture_stats(p) for p in clips]
        out[style] = {k: float(np.average([r[k] for r in rows], weights=weights)) for k in rows[0]}
    return out


def rest_hand_height(data_root: Path, clips) -> float | None:
    """The higher wrist's height above the pelvis (m) with the hands at rest: the synthesizer's rest
    on 6 s of silence, mean over the styles of ``clips``, when ``data_root`` is a ``gestura synth``
    corpus; else None. A calm speaker's hands sit near it, so speakers compare by their height above it."""
    from .synth.gestures import synthesize

    styles = {c.ref.style: synth_style(data_root, c.ref.id) for c in clips}
    if not styles or None in styles.values():
        return None
    silence = np.zeros(int(6 * metrics.SAMPLE_RATE), np.float32)
    return float(np.mean([metrics.gesture_stats(joint_positions(synthesize(silence, s)))["hand_height"]
                          for s in styles.values()]))


def within_tolerance(styles: dict) -> dict:
    """How many of the speaker figures (``{style: {"ratio": {figure: ratio or None}}}``) lie within
    ``STYLE_TOLERANCE`` of 1: {"tolerance", "within", "of"}."""
    ratios = [v for row in styles.values() for v in row["ratio"].values() if v is not None]
    within = sum(abs(v - 1) <= STYLE_TOLERANCE for v in ratios)
    return {"tolerance": STYLE_TOLERANCE, "within": int(within), "of": len(ratios)}


def style_ratios(generated: dict, truth: dict, rest: float | None) -> dict:
    """One speaker's generated figures over its own (``style_stats`` rows): wrist speed and stroke
    rate as ratios, hand height as the ratio of the heights above ``rest`` (None without a rest
    height: heights above the pelvis near 0 make no ratio). None where the speaker's figure is 0."""
    def ratio(a, b):
        return float(a / b) if b > 0 else None

    return {"wrist_speed": ratio(generated["wrist_speed"], truth["wrist_speed"]),
            "stroke_rate": ratio(generated["stroke_rate"], truth["stroke_rate"]),
            "hand_height": None if rest is None else ratio(generated["hand_height"] - rest, truth["hand_height"] - rest)}


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
    if args.takes < 1:
        raise CommandError(f"--takes must be 1 or more, got {args.takes}")
    if checkpoint.stage != "full":
        raise CommandError(f"{args.checkpoint} holds stage 1 only: evaluate a checkpoint from gestura train")
    try:
        check_settings(checkpoint, temperature=args.temperature, style_strength=args.style_strength,
                       plan_strength=args.plan_strength, sampling_steps=args.sampling_steps)
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

    encoder = encoder_digest = None
    if args.fgd_encoder:
        from .fgd_encoder import FGDError, load_encoder

        try:
            encoder = load_encoder(args.fgd_encoder)
        except FGDError as error:
            raise CommandError(str(error)) from None
        # FGD figures compare only under the same encoder: its bytes, as loaded, say which.
        encoder_digest = _sha256(args.fgd_encoder)

    def generate_clip(clip, seed):
        style = clip.ref.style if clip.ref.style in checkpoint.styles else None
        request = GenerationRequest(audio=clip.wave, style=style, seed=seed,
                                    temperature=args.temperature, style_strength=args.style_strength,
                                    plan_strength=args.plan_strength, device=args.device,
                                    sampling_steps=args.sampling_steps)
        try:
            motion = generate(request, checkpoint=checkpoint, engine=args.engine)
        except GenerationError as error:
            raise CommandError(f"{clip.ref.id}: {error}") from None
        n = min(motion.num_frames, clip.num_frames)
        return type(motion)(motion.poses[:n], motion.trans[:n], motion.expressions[:n], motion.fps)

    count = len(data.clips)
    takes = []  # per take: (motions, joint positions) of every clip
    progress = Progress(count * args.takes, "eval", enabled=not args.no_progress)
    t0 = time.time()
    for k in range(args.takes):
        motions = []
        for i, clip in enumerate(data.clips):
            motions.append(generate_clip(clip, args.seed + k * count + i))
            progress.update(k * count + i + 1)
        takes.append((motions, [joint_positions(m) for m in motions]))
    seconds = (time.time() - t0) / args.takes

    waves = [c.wave for c in data.clips]
    real = [c.motion for c in data.clips]
    real_positions = [c.positions for c in data.clips]
    apexes = [np.flatnonzero(c.stroke_apex > 0.5) for c in data.clips]
    planned = {c.stroke_apex_planned for c in data.clips}
    apex_source = "planned" if planned == {True} else "derived" if planned == {False} else "planned and derived"

    def generate_one(wave, style, seed):
        request = GenerationRequest(audio=wave, style=style if style in checkpoint.styles else None, seed=seed,
                                    temperature=args.temperature, style_strength=args.style_strength,
                                    plan_strength=args.plan_strength, device=args.device,
                                    sampling_steps=args.sampling_steps)
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
    # The synthesizer with another seed on the same audio: how much two corpus motions agree, and
    # the apex ratio at the data's apexes of a motion that strokes by the same rules on another draw
    # of which phrases rest and which syllables get strokes, which no model can know from the speech.
    # As many draws as takes give the speaker figures the data's own rules reach, pooled as the
    # takes are: what "within 25 %" can be at this many takes.
    seed_correlation, another_draw, draws = None, None, []
    styles_of = [synth_style(data.root, c.ref.id) for c in data.clips]
    if all(s is not None for s in styles_of):
        from .synth.gestures import synthesize

        draws = [[joint_positions(synthesize(c.wave, s, seed=10_000 + args.seed + DRAW_SEED_STRIDE * k + i))
                  for i, (c, s) in enumerate(zip(data.clips, styles_of))] for k in range(args.takes)]
        seed_correlation = metrics.corpus_correlation(draws[0], real_positions)
        another_draw = {"apex_ratio": _finite(metrics.apex_ratio(draws[0], apexes)),
                        "corpus_correlation": _finite(seed_correlation)}
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
        "plan_strength": args.plan_strength,
        "sampling_steps": args.sampling_steps,
        "seed": args.seed,
        "speed_normalisation": speed_source,
        "fgd_encoder": str(args.fgd_encoder) if args.fgd_encoder else None,
        "fgd_encoder_sha256": encoder_digest,
        "fgd_note": "project encoder, not comparable with published FGD",
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "apex_source": apex_source,
        "rest_in_silence_setup": rest_setup,
        "takes": args.takes,
        "generated_takes": [score(m, p, waves, mean_speed, encoder, reference_features, apexes) for m, p in takes],
        "ground_truth": score(real, real_positions, waves, mean_speed, encoder, reference_features, apexes),
        "skipped": data.skipped,
    }
    for take, (_, positions) in zip(result["generated_takes"], takes):
        take["corpus_correlation"] = _finite(metrics.corpus_correlation(positions, real_positions))
    result["generated"] = mean_of_takes(result["generated_takes"])
    result["ground_truth"]["corpus_correlation"] = seed_correlation  # None: not a synthetic corpus
    result["another_draw"] = another_draw
    for name in ("generated", "ground_truth"):
        result[name]["rest_in_silence"] = rest[name]
    # Per speaker of the data: its clips were generated in its style (the model's first style when
    # the model does not know the speaker), next to its own motion.
    styles = [c.ref.style for c in data.clips]
    generated_styles = style_stats([p for _, positions in takes for p in positions], styles * args.takes)
    real_styles = style_stats(real_positions, styles)
    rest_height = rest_hand_height(data.root, data.clips)
    result["rest_hand_height"] = rest_height
    result["styles"] = {s: {"generated": generated_styles[s], "ground_truth": real_styles[s],
                            "ratio": style_ratios(generated_styles[s], real_styles[s], rest_height)} for s in real_styles}
    result["styles_within_tolerance"] = within_tolerance(result["styles"])
    if another_draw is not None:
        drawn_styles = style_stats([p for positions in draws for p in positions], styles * len(draws))
        another_draw["styles"] = {s: {"generated": drawn_styles[s], "ratio": style_ratios(
            drawn_styles[s], real_styles[s], rest_height)} for s in real_styles}
        another_draw["styles_within_tolerance"] = within_tolerance(another_draw["styles"])
    result["stroke_plan"] = stroke_plan_report(checkpoint, data.clips, apexes)
    return result


def stroke_plan_report(checkpoint, clips, apexes: list) -> dict | None:
    """``metrics.stroke_plan_scores`` of a model's stroke plan (its stroke planner's, or a code
    generator's own stroke-apex head's) on ``clips`` (each in its own speaker's style when the model
    has it, else no style), planned as generation plans (``clip_stroke_plan``): how much of the
    timing the body can get from its plan. None for a model that plans nothing (a DiM-Gestor model
    without a stroke planner)."""
    if not checkpoint.config.plans_strokes:
        return None
    from ..inference.features import energy_db
    from ..inference.torch_model.model import GesturaModel
    from .train_generator import normalized_features

    model = GesturaModel.from_checkpoint(checkpoint).eval()
    probabilities, planned = [], []
    for clip in clips:
        style = checkpoint.styles.index(clip.ref.style) if clip.ref.style in checkpoint.styles else None
        features = normalized_features(clip, checkpoint.stats, model.config.planner_pitch)
        probability, plan = clip_stroke_plan(model, features, style, energy_db(clip.features))
        probabilities.append(probability)
        planned.append(plan)
    return {**metrics.stroke_plan_scores(probabilities, planned, apexes), "threshold": checkpoint.config.apex_threshold,
            "stroke_rates": bool(checkpoint.config.apex_rates),
            "tolerance_frames": metrics.PLAN_TOLERANCE,
            "source": "stroke planner" if checkpoint.config.stroke_planner else "apex head"}


def clip_stroke_plan(model, features: np.ndarray, style: int | None,
                     loudness: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The stroke plan of one clip as generation makes it: normalised features (N,
    ``config.input_width``: ``train_generator.normalized_features`` with ``planner_pitch``), a style
    index (None: no speaker) -> the plan's apex probabilities (N,) and its planned apex frames,
    per span at the model's ``apex_threshold``, or, for a model with ``apex_rates`` given the
    frames' ``loudness`` (N,) in dB (``features.energy_db``), at ``StrokeRate``'s threshold
    window by window; a span's apexes are the peaks its window has among the span's frames, the
    previous span's tail heard as generation hears it (a peak of the span's first frame is no peak
    when the tail rises above it). ``model``: a torch ``GesturaModel`` with a stroke plan (a code
    generator, or a DiM-Gestor model with a stroke planner); run on the CPU, where one small head
    per clip costs next to nothing."""
    import torch

    from ..inference.stroke_plan import StrokeRate, plan_apexes, spoken_frames, window_frames
    from .train_generator import head_windows

    config = model.config
    r = config.frames_per_code
    rule = StrokeRate.for_style(config, style) if loudness is not None else None
    spoken = spoken_frames(loudness)[0] if rule is not None else None
    windows = head_windows(model, features, style, torch.device("cpu"))
    pieces, plan = [], []
    for i, (start, first, stop, probability) in enumerate(windows):
        new = (first - start) * r
        threshold = config.apex_threshold
        if rule is not None:
            counted = window_frames(new, (stop - start) * r, i == len(windows) - 1)
            threshold = rule.threshold(probability, counted, spoken[start * r + counted.start:start * r + counted.stop])
        pieces.append(probability[new:])
        plan.append(np.flatnonzero(plan_apexes(probability, threshold)[new:]) + first * r)
    plan = np.concatenate(plan)
    return np.concatenate(pieces)[:len(features)], plan[plan < len(features)]


def mean_of_takes(takes: list[dict]) -> dict:
    """{metric: mean over the takes' scores} (None where a take has none)."""
    return {k: None if any(t[k] is None for t in takes) else float(np.mean([t[k] for t in takes])) for k in takes[0]}


def _sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def format_table(result: dict) -> str:
    head = ("", "BC", "speed", "L1 div", "FGD*", "jitter m/s^3", "body jitter", "foot slide m/s")
    lines = _table(result, head, COLUMNS)
    lines.append(f"{len(result['clips'])} '{result['split']}' clips, {result['seconds_of_audio']:.1f} s of audio; "
                 f"BC and speed normalised by the {result['speed_normalisation']}")
    digest = result.get("fgd_encoder_sha256")
    fgd = "* FGD: " + (result["fgd_note"] + (f"; encoder sha256 {digest[:16]}" if digest else "") if result["fgd_encoder"]
                       else "no --fgd-encoder given (train one with gestura train-fgd)")
    lines.append(fgd)
    lines.append("")
    head = ("", "apex ratio", "syllable apex", "corpus corr", "rest in silence", "frozen arms", "raised arms",
            "body timing", "jaw timing")
    lines += _table(result, head, TIMING_COLUMNS)
    setup = result.get("rest_in_silence_setup")
    rest = (f"rest in silence: {setup['clips'][0]} + {REST_GAP_SECONDS:g} s of zeros + {setup['clips'][1]}, "
            f"mean over {len(setup['seeds'])} seeds" if setup else "rest in silence: skipped (--rest-seeds 0)")
    lines.append(f"apexes {result['apex_source']}; {rest}; ground truth: the data, and where it is a gestura synth "
                 f"corpus the synthesizer on the same audio with other seeds ('-': not measured)")
    generated, truth = result["generated"], result["ground_truth"]
    draw = result.get("another_draw")
    if draw is not None and draw["apex_ratio"] is not None:
        lines.append(f"the synthesizer with other seeds on the same audio: apex ratio {draw['apex_ratio']:.2f} at the "
                     f"data's apexes (the same rules, with the phrases and syllables to stroke on drawn anew)")
    if None not in (generated.get("syllable_apex_shifted"), truth.get("syllable_apex_shifted")):
        lines.append(f"syllable apex with each clip's audio shifted by half its length (chance): generated "
                     f"{generated['syllable_apex_shifted']:.4f}, ground truth {truth['syllable_apex_shifted']:.4f}")
    plan = result.get("stroke_plan")
    if plan is not None:
        threshold = f"threshold {plan['threshold']:.3f}" + (", lower where the style's stroke rate asks"
                                                            if plan.get("stroke_rates") else "")
        lines.append(f"stroke plan (the {plan['source']}, {threshold}): correlation with the data's apexes "
                     f"{plan['head_correlation']:.3f}, precision {plan['plan_precision']:.2f}, recall "
                     f"{plan['plan_recall']:.2f} (within {plan['tolerance_frames']} frames)")
    lines.append("")
    takes = result["takes"]
    lines.append("per speaker, generated / ground truth: wrist speed m/s, hand height m, strokes per s"
                 + (f" (generated: {takes} takes per clip)" if takes > 1 else ""))
    for style, row in result["styles"].items():
        cells = [f"{row['generated'][k]:.3f} / {row['ground_truth'][k]:.3f}" for k in STYLE_COLUMNS]
        lines.append(f"  {style}: " + "   ".join(cells))
    rest, inside = result["rest_hand_height"], result["styles_within_tolerance"]
    lines.append(f"generated over ground truth (hand height above the rest pose, {rest:+.3f} m above the pelvis)"
                 if rest is not None else "generated over ground truth (hand height: no rest pose known, no ratio)")
    for style, row in result["styles"].items():
        lines.append(f"  {style}: " + "  ".join(f"{k.replace('_', ' ')} " + ("-" if row["ratio"][k] is None else
                                                                            f"{row['ratio'][k]:.2f}x")
                                                for k in STYLE_COLUMNS))
    lines.append(f"  {inside['within']} of {inside['of']} within {inside['tolerance'] * 100:.0f} % of the speaker's")
    drawn = (draw or {}).get("styles_within_tolerance")
    if drawn is not None:
        lines.append(f"  the synthesizer redrawn on the same audio ({takes} draw{'s' if takes > 1 else ''} per clip, "
                     f"pooled as the takes are): {drawn['within']} of {drawn['of']} within "
                     f"{drawn['tolerance'] * 100:.0f} %")
    return "\n".join(lines)


def _table(result: dict, head: tuple, columns: tuple) -> list[str]:
    takes = result["generated_takes"]
    named = [(f"generated, mean of {len(takes)} takes" if len(takes) > 1 else "generated", result["generated"])]
    if len(takes) > 1:
        for label, pick in (("  lowest take", min), ("  highest take", max)):
            named.append((label, {k: None if any(t.get(k) is None for t in takes) else pick(t[k] for t in takes)
                                  for k in columns}))
    named.append(("ground truth", result["ground_truth"]))
    rows = [head]
    for label, r in named:
        rows.append((label,) + tuple("-" if r.get(k) is None else f"{r[k]:.4f}" for k in columns))
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
