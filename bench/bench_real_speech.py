"""Speech-timing control of a checkpoint on real recordings (issue 15's "real speech" measure).

    .venv/bin/python bench/bench_real_speech.py [FILES...] [--checkpoint PATH] [--seeds 0 1 2]

FILES default to ``../shared/real-speech/*.wav`` (see SOURCES.md there). For each file and seed:
generate at default settings (the checkpoint's first style), then ``metrics.body_timing_control``
(summed upper-body joint speed against the onset envelope) and ``metrics.jaw_timing_control``
(jaw opening against RMS loudness); "shifted" is the same motion against the audio rotated by half
its length (timing broken on purpose: should be near 0). Prints the machine, one row per file
(mean over seeds) and the mean over files. Files shorter than 3 s are listed and skipped.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from bench_engines import machine  # the same machine line as the engine benchmark (bench/ is sys.path[0])

REPO = Path(__file__).resolve().parents[1]
# ``../shared/real-speech`` beside the main checkout, or two levels up from a worktree in ``wt/``.
DEFAULT_DIR = next((d for d in (REPO.parent / "shared" / "real-speech", REPO.parent.parent / "shared" / "real-speech")
                    if d.is_dir()), REPO.parent / "shared" / "real-speech")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help=f"wav files (default {DEFAULT_DIR}/*.wav)")
    parser.add_argument("--checkpoint", default=None, help="a full checkpoint (default: the bundled model)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
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
    print(f"{'file':48s} {'s':>6s}  {'body':>7s} {'shifted':>7s}  {'jaw':>7s} {'shifted':>7s}")
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
            values.append((metrics.body_timing_control(positions, wave),
                           metrics.body_timing_control(positions, shifted_wave),
                           metrics.jaw_timing_control(motion.poses, wave),
                           metrics.jaw_timing_control(motion.poses, shifted_wave)))
        mean = np.mean(values, axis=0)
        rows.append(mean)
        print(f"{path.name:48s} {seconds:6.1f}  {mean[0]:7.3f} {mean[1]:7.3f}  {mean[2]:7.3f} {mean[3]:7.3f}")
    if rows:
        mean = np.mean(rows, axis=0)
        label = f"mean over {len(rows)} files"
        print(f"{label:48s} {'':6s}  {mean[0]:7.3f} {mean[1]:7.3f}  {mean[2]:7.3f} {mean[3]:7.3f}")
    print(f"{time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
