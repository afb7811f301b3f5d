"""Arms held up in speech without pauses: the model against the synthesizer on the same audio.

    .venv/bin/python bench/bench_continuous_speech.py --data CORPUS [--split test] [--seconds 60]
        [--styles 2_bodhi 3_carmen] [--seeds 0 1 2 3] [--max-pause 0.1] [--checkpoint PATH]
        [--engine numpy] [--plan-strength X] [--carried-codes N]

The synthetic corpus pauses every few seconds, and the body has learnt to let its hands down
there. Many real speakers do not pause for tens of seconds, and in a noisy recording no pause is
quiet enough to count (``../shared/real-speech/ivr_female_en_8k.wav``: none longer than 0.5 s in
72 s). This joins the ``--split`` clips of a corpus made by ``gestura synth`` into ``--seconds``
of speech twice: as they are, and with every pause cut to at most ``--max-pause`` seconds (a pause
is what generation counts as one, ``stroke_plan.spoken_frames``). On each it generates every
``--styles`` x ``--seeds`` take and runs the synthesizer (``gestures.synthesize_with_plan``, the
same style and seed) on the same audio, and prints the share of frames with a raised arm held
still (``metrics.frozen_arm_frames``, issue 15's measure) and with a hand kept up for 6 s
(``metrics.raised_arm_frames``), per take and as means.

``--plan-strength`` and ``--carried-codes`` (the checkpoint's ``carried_codes`` replaced for the
run) measure the sampling settings that bear on held poses. About 4 s per take and speech on a
CPU thread with the NumPy engine. Prints the machine first.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
from machine_info import machine  # bench/ is on sys.path when a bench script runs

REPO = Path(__file__).resolve().parents[1]


def _samples_of_frames(frames: np.ndarray, num_samples: int, fps: float, rate: int) -> np.ndarray:
    """Sample indices covered by the 30 fps frames ``frames`` (frame i: [i / fps, (i + 1) / fps))."""
    edges = np.minimum(np.round(np.arange(int(frames.max(initial=-1)) + 2) * rate / fps).astype(np.int64), num_samples)
    return np.concatenate([np.arange(edges[i], edges[i + 1]) for i in frames] + [np.zeros(0, np.int64)])


def without_pauses(wave: np.ndarray, max_pause: float) -> np.ndarray:
    """Mono 16 kHz speech with every run of frames ``spoken_frames`` calls a pause cut to its first
    ``max_pause`` seconds."""
    from gestura.inference.features import FPS, SAMPLE_RATE, audio_features, energy_db
    from gestura.inference.stroke_plan import spoken_frames

    spoken, _ = spoken_frames(energy_db(audio_features(wave)))
    keep = spoken.copy()
    allowed = int(round(max_pause * FPS))
    run = 0
    for i, speech in enumerate(spoken):
        run = 0 if speech else run + 1
        keep[i] |= run <= allowed
    return wave[_samples_of_frames(np.flatnonzero(keep), len(wave), FPS, SAMPLE_RATE)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, metavar="CORPUS", help="a corpus of gestura synth")
    parser.add_argument("--split", default="test")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each joined speech (default 60)")
    parser.add_argument("--max-pause", type=float, default=0.1, help="longest pause kept, seconds (default 0.1)")
    parser.add_argument("--styles", nargs="+", default=["2_bodhi", "3_carmen"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--checkpoint", default=str(REPO / "weights" / "gestura-small.safetensors"))
    parser.add_argument("--engine", default="numpy")
    parser.add_argument("--plan-strength", type=float, default=None)
    parser.add_argument("--carried-codes", type=int, default=None)
    args = parser.parse_args(argv)

    from gestura.inference import pipeline
    from gestura.inference.checkpoint import load_checkpoint
    from gestura.inference.features import SAMPLE_RATE
    from gestura.training.dataset import Beat2Dataset, joint_positions
    from gestura.training.metrics import frozen_arm_frames, raised_arm_frames
    from gestura.training.synth.gestures import synthesize_with_plan
    from gestura.training.synth.styles import get_style

    print(f"machine: {machine()}")
    clips = Beat2Dataset.load(args.data, (args.split,), None, cache=True, keep_wave=True).clips
    checkpoint = load_checkpoint(args.checkpoint)
    unknown = [s for s in args.styles if s not in checkpoint.styles]
    if not clips or unknown:
        sys.exit(f"bench_continuous_speech: no {args.split} clips in {args.data}" if not clips else
                 f"bench_continuous_speech: the checkpoint has no style {unknown[0]}: choose from {checkpoint.styles}")
    if args.carried_codes is not None:
        checkpoint.config = dataclasses.replace(checkpoint.config, carried_codes=args.carried_codes)
    request = {} if args.plan_strength is None else {"plan_strength": args.plan_strength}
    length = int(args.seconds * SAMPLE_RATE)
    speeches = {
        "with its pauses": np.concatenate([c.wave for c in clips]).astype(np.float32)[:length],
        f"pauses cut to {args.max_pause:g} s": np.concatenate(
            [without_pauses(c.wave.astype(np.float32), args.max_pause) for c in clips])[:length],
    }
    print(f"checkpoint {args.checkpoint}, carried codes {checkpoint.config.generation_prefix}, "
          f"{'plan strength ' + str(args.plan_strength) if request else 'default settings'}; engine {args.engine}; "
          f"{len(clips)} {args.split} clips joined, {args.seconds:g} s each way; seeds {args.seeds}")
    print(f"{'speech':<24}{'style':<11}{'motion':<9}{'frozen %':>9}{'raised %':>9}   per seed (frozen)")
    for name, wave in speeches.items():
        for style in args.styles:
            speaker = get_style(style.split("_", 1)[1])
            rows = {"model": [], "synth": []}
            for seed in args.seeds:
                motion = pipeline.generate(pipeline.GenerationRequest(audio=wave, style=style, seed=seed, **request),
                                           checkpoint=checkpoint, engine=args.engine)
                synth, _, _ = synthesize_with_plan(wave, speaker, seed=seed)
                for key, m in (("model", motion), ("synth", synth)):
                    p = joint_positions(m)
                    rows[key].append((100 * frozen_arm_frames(p).mean(), 100 * raised_arm_frames(p).mean()))
            for key, values in rows.items():
                v = np.array(values)
                print(f"{name:<24}{style:<11}{key:<9}{v[:, 0].mean():>9.1f}{v[:, 1].mean():>9.1f}   "
                      + " ".join(f"{x:.1f}" for x in v[:, 0]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
