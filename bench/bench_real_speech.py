"""Speech-timing control of a checkpoint on real recordings (issue 15's "real speech" measure).

    .venv/bin/python bench/bench_real_speech.py [FILES...] [--checkpoint PATH] [--seeds 0 1 ... 8]

FILES default to ``../shared/real-speech/*.wav`` (see SOURCES.md there). For each file and seed:
generate at default settings (the checkpoint's first style), then ``metrics.body_timing_control``
(summed upper-body joint speed against the onset envelope) and ``metrics.jaw_timing_control``
(jaw opening against RMS loudness); "shifted" is the same motion against the audio rotated by half
its length (timing broken on purpose: should be near 0); "strokes/s" and "wrist m/s" are how much
the hands gesture (``metrics.gesture_stats``: the faster wrist's speed peaks above the stroke
speed per second, and the wrists' mean speed); run it on TTS clips too (FILES) to compare. Prints
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
    args = parser.parse_args(argv)

    from gestura.inference.audio import load_audio
    from gestura.inference.pipeline import GenerationRequest, generate, resolve_checkpoint
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
    print(machine())
    print(f"checkpoint {checkpoint.path}; engine {args.engine}; default settings; seeds {args.seeds}")
    print(f"{'file':48s} {'s':>6s}  {'body':>7s} {'shifted':>7s}  {'jaw':>7s} {'shifted':>7s}  {'strokes/s':>9s} "
          f"{'wrist m/s':>9s}")
    rows = []
    started = time.time()
    for path in files:
        wave = load_audio(path)
        seconds = len(wave) / metrics.SAMPLE_RATE
        if seconds < metrics.TIMING_MIN_SECONDS:
            print(f"{path.name:48s} {seconds:6.1f}  skipped: shorter than {metrics.TIMING_MIN_SECONDS:g} s")
            continue
        shifted_wave = np.roll(wave, len(wave) // 2)
        values = []
        for seed in args.seeds:
            motion = generate(GenerationRequest(audio=wave, seed=seed), checkpoint=checkpoint, engine=args.engine)
            positions = joint_positions(motion)
            gesture = metrics.gesture_stats(positions)
            values.append((metrics.body_timing_control(positions, wave),
                           metrics.body_timing_control(positions, shifted_wave),
                           metrics.jaw_timing_control(motion.poses, wave),
                           metrics.jaw_timing_control(motion.poses, shifted_wave),
                           gesture["stroke_rate"], gesture["wrist_speed"]))
        rows.append(values)
        mean = np.mean(values, axis=0)
        print(f"{path.name:48s} {seconds:6.1f}  {row(mean)}")
    if rows:
        per_seed = np.mean(rows, axis=0)  # (seeds, 6): each seed's mean over the files
        mean = per_seed.mean(axis=0)
        label = f"mean over {len(rows)} files"
        print(f"{label:48s} {'':6s}  {row(mean)}")
        for name, column in (("lowest seed", per_seed.min(axis=0)), ("highest seed", per_seed.max(axis=0))):
            print(f"  {name:46s} {'':6s}  {row(column)}")
        if len(per_seed) > 1:
            error = per_seed.std(axis=0, ddof=1) / np.sqrt(len(per_seed))
            print(f"  {'standard error over seeds':46s} {'':6s}  {row(error)}")
    print(f"{time.time() - started:.0f} s")
    return 0


def row(values) -> str:
    """body, shifted, jaw, shifted, strokes/s, wrist m/s as one line's columns."""
    return (f"{values[0]:7.3f} {values[1]:7.3f}  {values[2]:7.3f} {values[3]:7.3f}  {values[4]:9.2f} "
            f"{values[5]:9.3f}")


if __name__ == "__main__":
    sys.exit(main())
