"""Arms held up in speech without pauses: the model against the synthesizer on the same audio.

    .venv/bin/python bench/bench_continuous_speech.py --data CORPUS [--split test] [--seconds 60]
        [--styles 2_bodhi 3_carmen] [--seeds 0 1 2 3] [--max-pause 0.1] [--checkpoint PATH]
        [--engine numpy] [--plan-strength X] [--carried-codes N]

The synthetic corpus' speech breaks (0.2 s or more) at least every 10 s, every 2 s on average;
many real speakers run on for tens of seconds, and in a noisy recording no break is quiet enough
to count (``../shared/real-speech/ivr_female_en_8k.wav``: none longer than 0.5 s in 72 s). This joins the ``--split`` clips of a corpus made by ``gestura synth`` into ``--seconds``
of speech twice: as they are, and with every stretch of each clip that is not speech (quieter
than 40 dB under the clip's loudest so far, ``stroke_plan.spoken_frames``) cut to its first
``--max-pause`` seconds. On each it generates every ``--styles`` x ``--seeds`` take and runs the
synthesizer (``gestures.synthesize_with_plan``, the same speaker and seed) on the same audio, and
prints the share of frames with a raised arm held still (``metrics.frozen_arm_frames``, issue 15's
measure) and with a hand kept up for 6 s (``metrics.raised_arm_frames``), as means over the seeds
and per seed.

``--plan-strength`` and ``--carried-codes`` (the checkpoint's ``carried_codes`` replaced for the
run) measure the sampling settings that bear on held poses. About 4 s per take and speech on a
CPU thread with the NumPy engine. Prints the machine first.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from machine_info import machine  # bench/ is on sys.path when a bench script runs

REPO = Path(__file__).resolve().parents[1]


def without_pauses(wave: np.ndarray, max_pause: float) -> np.ndarray:
    """Mono 16 kHz speech with every run of frames ``spoken_frames`` calls a pause cut to its first
    ``max_pause`` seconds (frame i spans the samples from ``frame_center(i)`` to ``frame_center(i + 1)``)."""
    from gestura.inference.features import FPS, audio_features, energy_db, frame_center
    from gestura.inference.stroke_plan import spoken_frames

    spoken, _ = spoken_frames(energy_db(audio_features(wave)))
    keep = spoken.copy()
    allowed = int(round(max_pause * FPS))
    run = 0
    for i, speech in enumerate(spoken):
        run = 0 if speech else run + 1
        keep[i] |= run <= allowed
    edges = np.minimum(frame_center(np.arange(len(keep) + 1)), len(wave))
    return wave[:edges[-1]][np.repeat(keep, np.diff(edges))]


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

    from gestura.errors import GesturaError
    from gestura.inference import pipeline
    from gestura.inference.checkpoint import load_checkpoint
    from gestura.inference.features import SAMPLE_RATE
    from gestura.training.dataset import Beat2Dataset, joint_positions
    from gestura.training.metrics import frozen_arm_frames, raised_arm_frames
    from gestura.training.synth.gestures import synthesize_with_plan
    from gestura.training.synth.styles import STYLES

    def refuse(message: str):
        sys.exit(f"bench_continuous_speech: {message}")

    if not args.seconds > 0 or not args.max_pause >= 0:
        refuse("--seconds must be positive and --max-pause not negative")
    print(f"machine: {machine()}")
    clips = Beat2Dataset.load(args.data, (args.split,), None, cache=True, keep_wave=True).clips
    if not clips:
        refuse(f"no {args.split} clips in {args.data}")
    checkpoint = load_checkpoint(args.checkpoint)
    # Each style is a speaker of the checkpoint and of the synthesizer ("2_bodhi": speaker 2, bodhi).
    speakers = {f"{s.speaker_id}_{s.name}": s for s in STYLES}
    for style in args.styles:
        if style not in checkpoint.styles or style not in speakers:
            refuse(f"style {style} is not both a style of the checkpoint ({', '.join(checkpoint.styles)}) and a "
                   f"speaker of the synthesizer ({', '.join(speakers)})")
    if args.carried_codes is not None:
        try:
            checkpoint.config = checkpoint.config.with_(carried_codes=args.carried_codes)  # checked as it is made
        except GesturaError as error:
            refuse(str(error))
    request = {} if args.plan_strength is None else {"plan_strength": args.plan_strength}
    length = int(args.seconds * SAMPLE_RATE)
    speeches = {
        "with its pauses": np.concatenate([c.wave for c in clips]).astype(np.float32)[:length],
        f"pauses cut to {args.max_pause:g} s": np.concatenate(
            [without_pauses(c.wave.astype(np.float32), args.max_pause) for c in clips])[:length],
    }
    print(f"checkpoint {args.checkpoint}, carried codes {checkpoint.config.generation_prefix}, "
          f"{'plan strength ' + str(args.plan_strength) if request else 'default settings'}; engine {args.engine}; "
          f"{len(clips)} {args.split} clips joined: "
          + ", ".join(f"{name} {len(wave) / SAMPLE_RATE:.1f} s" for name, wave in speeches.items())
          + f"; seeds {args.seeds}")
    print(f"{'speech':<24}{'style':<11}{'motion':<9}{'frozen %':>9}{'raised %':>9}   per seed: frozen / raised")
    for name, wave in speeches.items():
        for style in args.styles:
            speaker = speakers[style]
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
                      + "  ".join(f"{a:.1f}/{b:.1f}" for a, b in v), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
