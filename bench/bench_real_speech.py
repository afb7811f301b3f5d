"""Speech-timing control of a checkpoint on real recordings (issue 15's "real speech" measure).

    .venv/bin/python bench/bench_real_speech.py [FILES...] [--checkpoint PATH] [--seeds 0 1 ... 8] [--plan-strength W]
        [--style-strength S] [--temperature T] [--style NAME]

FILES default to ``../shared/real-speech/*.wav`` (see SOURCES.md there). For each file and seed:
generate at default settings in the checkpoint's default style (or ``--style``), then ``metrics.body_timing_control``
(summed upper-body joint speed against the onset envelope; "body>1s" the same without each
clip's first ``metrics.OPENING_SKIP_S`` second, where the move from the start pose into the first
gesture meets the speech's first onset, "-" for clips under 4 s) and ``metrics.jaw_timing_control``
(jaw opening against RMS loudness), ``metrics.syllable_apex_ratio`` ("syllable": the faster
wrist's speed just before the apex of a stroke timed to each stressed syllable, over its mean;
1 = untimed, the synthetic corpus's own motion 1.46 on its test clips); "shifted" is the same motion
against the audio rotated by half its length (timing broken on purpose: near 0, and near 1 for
"syllable"); "strokes/s" and "wrist m/s" are how much
the hands gesture (``metrics.gesture_stats``: the faster wrist's speed peaks above the stroke
speed per second, and the wrists' mean speed); run it on TTS clips too (FILES) to compare. For a
span generator (torch needed) it also measures the stroke plan the body reads (the checkpoint's
same style; ``evaluate.clip_stroke_plan``): "plan" is ``metrics.timing_control`` of the plan's
apex probabilities against the onset envelope (and "shifted" as above), "planned/s" its apexes
per second, and "on plan" the faster wrist's speed 0.1 s before the planned apexes over its mean
(``metrics.apex_speed_ratios``; above 1 when the body strokes where its plan says). "frozen %"
is the share of frames with a raised arm held still (``metrics.frozen_arm_frames``, issue 15's
measure), "raised %" the share with a hand kept up for 6 s, beating or not
(``metrics.raised_arm_frames``; the synthetic corpus's test clips: 0.6 % and 1.2 %), "opening" the
faster wrist's top speed in the first 0.5 s over its 99th percentile after them
(``metrics.opening_leap``; above 1: the body leaps from the start pose into its first gesture). Prints
the machine, one row per file (mean over seeds), the mean over files, and how far that mean moves
between seeds (lowest and highest seed, standard error over seeds). Files shorter than 3 s are listed and skipped.

Nine seeds by default: the body's figure moves a lot between takes. The same bundled model
measured 0.100 (shifted 0.060) over seeds 0-2 and 0.068 (0.070) over seeds 3-8.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from machine_info import machine  # bench/ is on sys.path when a bench script runs

REPO = Path(__file__).resolve().parents[1]
# ``../shared/real-speech`` beside the main checkout, or two levels up from a worktree in ``wt/``.
DEFAULT_DIR = next((d for d in (REPO.parent / "shared" / "real-speech", REPO.parent.parent / "shared" / "real-speech")
                    if d.is_dir()), REPO.parent / "shared" / "real-speech")



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help=f"wav files (default {DEFAULT_DIR}/*.wav)")
    parser.add_argument("--checkpoint", default=None, help="a full checkpoint (default: the bundled model)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(9)), help="seeds (default 0 to 8)")
    parser.add_argument("--engine", default="auto", help="auto, torch or numpy (default auto)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--style", default=None, help="a style of the checkpoint (default: its default style)")
    parser.add_argument("--plan-strength", type=float, default=None,
                        help="plan strength of a model that strokes on a plan (default: generation's default)")
    parser.add_argument("--style-strength", type=float, default=None, help="style strength (default: generation's default)")
    parser.add_argument("--temperature", type=float, default=None, help="temperature (default: generation's default)")
    args = parser.parse_args(argv)

    from gestura.errors import GesturaError
    from gestura.inference.audio import load_audio
    from gestura.inference.pipeline import GenerationRequest, check_settings, generate, resolve_checkpoint
    from gestura.inference.sampling import DEFAULT_PLAN_STRENGTH, DEFAULT_STYLE_STRENGTH, DEFAULT_TEMPERATURE
    from gestura.training import metrics
    from gestura.training.dataset import joint_positions

    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    files = [Path(f) for f in args.files] or sorted(DEFAULT_DIR.glob("*.wav"))
    if not files:
        print(f"bench_real_speech: error: no wav files given and none in {DEFAULT_DIR}", file=sys.stderr)
        return 2
    checkpoint = resolve_checkpoint(args.checkpoint)
    plan_strength = DEFAULT_PLAN_STRENGTH if args.plan_strength is None else args.plan_strength
    style_strength = DEFAULT_STYLE_STRENGTH if args.style_strength is None else args.style_strength
    temperature = DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    try:
        style = check_settings(checkpoint, style=args.style, temperature=temperature, style_strength=style_strength,
                               plan_strength=plan_strength)
    except GesturaError as error:
        print(f"bench_real_speech: error: {error}", file=sys.stderr)
        return 2
    plan_of = stroke_planner(checkpoint, style)
    print(machine())
    print(f"checkpoint {checkpoint.path}; style {checkpoint.styles[style]}; engine {args.engine}; "
          f"default settings but temperature {temperature:g}, style strength {style_strength:g} and plan strength "
          f"{plan_strength:g}; "
          f"seeds {args.seeds}")
    print(f"{'file':48s} {'s':>6s}  {'body':>7s} {'shifted':>7s}  {'body>1s':>7s} {'shifted':>7s}  "
          f"{'jaw':>7s} {'shifted':>7s}  "
          f"{'syllable':>8s} {'shifted':>7s}  {'strokes/s':>9s} "
          f"{'wrist m/s':>9s}  {'plan':>7s} {'shifted':>7s} {'planned/s':>9s} {'on plan':>7s}  "
          f"{'frozen %':>8s} {'raised %':>8s} {'opening':>7s}")
    rows = []
    started = time.time()
    for path in files:
        wave = load_audio(path)
        seconds = len(wave) / metrics.SAMPLE_RATE
        if seconds < metrics.TIMING_MIN_SECONDS:
            print(f"{path.name:48s} {seconds:6.1f}  skipped: shorter than {metrics.TIMING_MIN_SECONDS:g} s")
            continue
        shifted_wave = np.roll(wave, len(wave) // 2)
        probability, planned = plan_of(wave) if plan_of else (None, None)
        plan = ((metrics.timing_control(probability, metrics.onset_envelope(wave, len(probability))),
                 metrics.timing_control(probability, metrics.onset_envelope(shifted_wave, len(probability))),
                 len(planned) / seconds) if plan_of else (np.nan,) * 3)
        values = []
        for seed in args.seeds:
            motion = generate(GenerationRequest(audio=wave, style=args.style, seed=seed, plan_strength=plan_strength,
                                                style_strength=style_strength, temperature=temperature),
                              checkpoint=checkpoint, engine=args.engine)
            positions = joint_positions(motion)
            gesture = metrics.gesture_stats(positions)
            values.append((metrics.body_timing_control(positions, wave),
                           metrics.body_timing_control(positions, shifted_wave),
                           after_opening(positions, wave), after_opening(positions, shifted_wave),
                           metrics.jaw_timing_control(motion.poses, wave),
                           metrics.jaw_timing_control(motion.poses, shifted_wave),
                           metrics.syllable_apex_ratio(positions, wave),
                           metrics.syllable_apex_ratio(positions, shifted_wave),
                           gesture["stroke_rate"], gesture["wrist_speed"], *plan,
                           on_plan(metrics.apex_speed_ratios(positions, planned)) if plan_of else np.nan,
                           100 * metrics.frozen_arm_frames(positions).mean(),
                           100 * metrics.raised_arm_frames(positions).mean(),
                           metrics.opening_leap(positions)))
        rows.append(values)
        mean = reduce(np.nanmean, values)
        print(f"{path.name:48s} {seconds:6.1f}  {row(mean)}")
    if rows:
        per_seed = np.stack([reduce(np.nanmean, [file[k] for file in rows]) for k in range(len(args.seeds))])
        mean = reduce(np.nanmean, per_seed)  # over seeds of each seed's mean over the files
        label = f"mean over {len(rows)} files"
        print(f"{label:48s} {'':6s}  {row(mean)}")
        for name, column in (("lowest seed", reduce(np.nanmin, per_seed)), ("highest seed", reduce(np.nanmax, per_seed))):
            print(f"  {name:46s} {'':6s}  {row(column)}")
        if len(per_seed) > 1:
            error = reduce(lambda c, axis: np.nanstd(c, axis=axis, ddof=1) / np.sqrt(np.sum(~np.isnan(c))), per_seed)
            print(f"  {'standard error over seeds':46s} {'':6s}  {row(error)}")
    print(f"{time.time() - started:.0f} s")
    return 0


def stroke_planner(checkpoint, style: int):
    """``wave -> (apex probabilities (N,), planned apex frames)`` of the checkpoint's stroke plan in
    style ``style`` (an index into ``checkpoint.styles``), or None where there is none to measure (a DiM-Gestor
    model without a stroke planner, or no torch)."""
    if not checkpoint.config.plans_strokes:
        return None
    try:
        from gestura.inference.torch_model.model import GesturaModel
    except ImportError:
        return None
    from gestura.inference.features import audio_features, energy_db, normalize
    from gestura.training.evaluate import clip_stroke_plan

    model = GesturaModel.from_checkpoint(checkpoint).eval()
    stats = checkpoint.stats

    def plan_of(wave):
        raw = audio_features(wave, pitch=checkpoint.config.planner_pitch)
        features = normalize(raw, stats["audio_mean"], stats["audio_std"])
        return clip_stroke_plan(model, features, style, energy_db(raw))

    return plan_of


def reduce(fn, values) -> np.ndarray:
    """``fn`` (a NaN-ignoring reduction) over the rows of each column; NaN for a column with no value."""
    values = np.asarray(values, np.float64)
    return np.array([fn(c, axis=0) if (~np.isnan(c)).sum() > 0 else np.nan for c in values.T])


def on_plan(ratios: np.ndarray) -> float:
    """Mean speed ratio at the planned apexes; NaN where none was planned."""
    return float(ratios.mean()) if len(ratios) else float("nan")


def after_opening(positions: np.ndarray, wave: np.ndarray) -> float:
    """``metrics.body_timing_control`` without the clip's first ``metrics.OPENING_SKIP_S``; NaN
    for a clip with under 3 s after it."""
    from gestura.training import metrics

    try:
        return metrics.body_timing_control(positions, wave, skip_s=metrics.OPENING_SKIP_S)
    except ValueError:
        return float("nan")


def row(values) -> str:
    """body, shifted, body>1s, shifted, jaw, shifted, syllable, shifted, strokes/s, wrist m/s,
    plan, shifted, planned/s, on plan, frozen %, raised %, opening as one line's columns ("-"
    where not measured)."""
    widths = ((7, 3), (7, 3), (7, 3), (7, 3), (7, 3), (7, 3), (8, 2), (7, 2), (9, 2), (9, 3), (7, 3), (7, 3),
              (9, 2), (7, 2), (8, 1), (8, 1), (7, 2))
    cells = [f"{'-':>{w}s}" if np.isnan(v) else f"{v:{w}.{d}f}" for v, (w, d) in zip(values, widths)]
    return (f"{cells[0]} {cells[1]}  {cells[2]} {cells[3]}  {cells[4]} {cells[5]}  {cells[6]} {cells[7]}  "
            f"{cells[8]} {cells[9]}  {' '.join(cells[10:14])}  {' '.join(cells[14:])}")


if __name__ == "__main__":
    sys.exit(main())
