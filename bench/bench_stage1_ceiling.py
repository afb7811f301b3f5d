"""What stage 1 keeps of the corpus: the held-out clips' own motion through a checkpoint's codes and
decoders, scored by the measures generation is judged by.

    .venv/bin/python bench/bench_stage1_ceiling.py --data CORPUS [--checkpoint PATH ...] [--split test]

Generation can only make motion that its part VQ-VAEs can decode, so the corpus's motion encoded to
codes (``vq.encode_codes``: what stage 2 learns to predict; a DiM-Gestor model diffuses these codes'
codebook latents) and decoded again, with the corpus's own stroke plan for decoders that read one
(``apex_bumps`` of its apexes) and each part's decoder look-ahead lined up as generation lines it up
(``DecoderDelay``, the last code read once more), is the best any stage 2 on these codes can do. For
each ``--checkpoint`` (default: the bundled model) this prints, next to the corpus's own figures:
the apex ratio at the corpus's apexes, the correlation of the faster wrist's speed with the
corpus's, frozen arms and jitter (``training.metrics``), and per speaker the wrist speed, stroke
rate and hand height over the speaker's (``gestura eval``'s style figures; hand height above the
synthesizer's rest, so only on a ``gestura synth`` corpus).

Needs torch. A few seconds per checkpoint for the 14 test clips of the synthetic corpus on one
CPU thread. Prints the machine first.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from machine_info import machine  # bench/ is on sys.path when a bench script runs


def decoded_motion(model, stats: dict, clip):
    """One clip's motion through ``model``'s codes and decoders (whole codes: the first
    ``N // frames_per_code * frames_per_code`` frames), lined up frame for frame with the clip."""
    import torch

    from gestura.inference.decoder_delay import DecoderDelay
    from gestura.inference.parts import PARTS, parts_to_motion
    from gestura.inference.stroke_plan import apex_bumps

    config = model.config
    r = config.frames_per_code
    whole = clip.num_frames // r * r
    plan = torch.from_numpy(apex_bumps(clip.stroke_apex[:whole]))[None]
    delay = DecoderDelay({p: config.decoder_lookahead[p] for p in PARTS})
    decoded = {}
    with torch.no_grad():
        for p in PARTS:
            vq = model.vq[p]
            x = torch.from_numpy((clip.parts[p][:whole] - stats[f"{p}_mean"]) / stats[f"{p}_std"]).float()[None]
            codes = vq.encode_codes(x)
            codes = torch.cat([codes, codes[:, -1:]], 1)  # DecoderDelay.tail_codes: the last code once more
            frames = torch.cat([plan, plan.new_zeros(1, r)], 1) if vq.plan_in is not None else None
            decoded[p] = vq.decode_codes(codes, None, frames)[0][0].numpy()
    aligned = delay.push(decoded)
    return parts_to_motion({p: aligned[p][:whole] * stats[f"{p}_std"] + stats[f"{p}_mean"] for p in PARTS})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a BEAT2-layout corpus with stroke apexes (gestura synth)")
    parser.add_argument("--checkpoint", action="append", help="a full checkpoint (repeatable; default: the bundled model)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    args = parser.parse_args(argv)

    import torch

    from gestura.inference.checkpoint import load_checkpoint
    from gestura.inference.torch_model.model import GesturaModel
    from gestura.training import evaluate, metrics
    from gestura.training.dataset import Beat2Dataset, joint_positions

    torch.set_num_threads(1)
    print(machine())
    clips = Beat2Dataset.load(args.data, (args.split,), None).clips
    if not clips or not all(c.stroke_apex_planned for c in clips):
        print(f"bench_stage1_ceiling: {args.data} has no '{args.split}' clips with planned stroke apexes "
              f"(make the corpus with gestura synth)", file=sys.stderr)
        return 2
    rest = evaluate.rest_hand_height(Path(args.data), clips)
    styles = [c.ref.style for c in clips]
    real = [c.positions for c in clips]
    apexes = [np.flatnonzero(c.stroke_apex > 0.5) for c in clips]
    truth = evaluate.style_stats(real, styles)
    print(f"{len(clips)} '{args.split}' clips of {args.data}; stroke plan: the corpus's apexes\n")
    head = f"{'':34}{'apex ratio':>11}{'corpus corr':>12}{'frozen arms':>12}{'jitter':>8}   per speaker: speed / strokes / hand height over the speaker's"
    print(head)
    print(f"{'corpus':34}{metrics.apex_ratio(real, apexes):11.2f}{1.0:12.3f}{metrics.frozen_arms(real):12.1%}"
          f"{metrics.jitter(real):8.1f}")
    for path in args.checkpoint or [None]:
        checkpoint = load_checkpoint(path)
        model = GesturaModel.from_checkpoint(checkpoint, with_generator=False).eval()
        positions = [joint_positions(decoded_motion(model, checkpoint.stats, c))[:len(p)] for c, p in zip(clips, real)]
        generated = evaluate.style_stats(positions, styles)
        ratios = {s: evaluate.style_ratios(generated[s], truth[s], rest) for s in sorted(truth)}
        speakers = "  ".join(f"{s} {v['wrist_speed']:.2f} / {v['stroke_rate']:.2f} / "
                             + ("-" if v["hand_height"] is None else f"{v['hand_height']:.2f}") for s, v in ratios.items())
        name = Path(path).name if path else "bundled model"
        print(f"{name[:33]:34}{metrics.apex_ratio(positions, apexes):11.2f}"
              f"{metrics.corpus_correlation(positions, real):12.3f}{metrics.frozen_arms(positions):12.1%}"
              f"{metrics.jitter(positions):8.1f}   {speakers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
