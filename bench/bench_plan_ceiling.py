"""How good a stroke plan can be on the synthetic corpus, and how far a model's planner is from it.

    .venv/bin/python bench/bench_plan_ceiling.py --data CORPUS [--data CORPUS2 ...] [--split val]
        [--checkpoint PATH] [--seeds 1000 2000]

The body strokes on the plan its stroke planner makes from the speech (``inference/stroke_plan.py``),
and the held-out timing measures (apex ratio, corpus correlation) count the corpus's own apexes. This
prints, for the clips of ``--split`` of every ``--data`` corpus made by ``gestura synth`` (it needs
the synthesizer's planned apexes, ``stroke_apex``, and its speakers' styles), per speaker and over
all: precision and recall of a plan's apexes within ``metrics.PLAN_TOLERANCE`` frames of the
corpus's (``metrics.stroke_plan_scores``) and how many it plans against the corpus's count, for

- ``planner``: the checkpoint's plan as generation makes it (``evaluate.clip_stroke_plan``; the
  clip's own speaker's style, torch needed);
- ``synth, other seed``: the synthesizer's stroke choice (``gestures.choose_strokes``) on the clip's
  own prosody and delivery with other random draws, once per ``--seeds`` entry: what a planner that
  hears only the speech could at best know, drawn as the corpus was;
- ``synth, fixed``: the same with its random parts removed: every phrase gestures (no rest coin),
  no noise on the syllable scores, the mean count of strokes per phrase; the plan of a planner
  that knew the synthesizer's syllable stress exactly and planned every phrase;
- ``synth, loudness only``: other seeds as above, but each syllable's stress is its loudness rank
  alone (the synthesizer also weighs its pitch and its prominence) and no syllable is a pitch
  accent: what the synthesizer would choose hearing loudness only.

About a second per clip on a CPU. Prints the machine first.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
from machine_info import machine  # bench/ is on sys.path when a bench script runs

REPO = Path(__file__).resolve().parents[1]


class _NoDraws:
    """A stand-in for ``choose_strokes``'s random generator with its draws fixed: no phrase rests,
    every uniform draw its interval's midpoint."""

    @staticmethod
    def random() -> float:
        return 1.0

    @staticmethod
    def uniform(low: float, high: float) -> float:
        return 0.5 * (low + high)


def _loudness_only(prosody):
    """``prosody`` with each syllable's stress its loudness rank and no pitch accents."""
    from gestura.training.synth.prosody import _rank

    out = copy.deepcopy(prosody)
    if out.syllables:
        for syllable, stress in zip(out.syllables, _rank(np.array([s.loudness for s in out.syllables]))):
            syllable.stress = float(stress)
    out.accents = []
    return out


def _frames(strokes, fps: float) -> np.ndarray:
    return np.round(np.array([t for t, _ in strokes], np.float64) * fps).astype(np.int64)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True, metavar="CORPUS",
                        help="a corpus of gestura synth (repeat for several)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--checkpoint", default=str(REPO / "weights" / "gestura-small.safetensors"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1000, 2000],
                        help="the synthesizer's other draws (default 1000 2000)")
    args = parser.parse_args(argv)

    from gestura.inference.checkpoint import load_checkpoint
    from gestura.inference.features import energy_db
    from gestura.inference.torch_model.model import GesturaModel
    from gestura.rigs.skeleton import FPS
    from gestura.training.dataset import Beat2Dataset
    from gestura.training.evaluate import clip_stroke_plan
    from gestura.training.metrics import stroke_plan_scores
    from gestura.training.synth.gestures import choose_strokes
    from gestura.training.synth.prosody import analyze
    from gestura.training.synth.styles import get_style, lively, liveliness
    from gestura.training.train_generator import normalized_features

    print(f"machine: {machine()}")
    clips = [c for d in args.data for c in Beat2Dataset.load(d, (args.split,), None, cache=True, keep_wave=True).clips
             if c.stroke_apex is not None]
    if not clips:
        sys.exit(f"bench_plan_ceiling: no {args.split} clips with stroke apexes in {', '.join(args.data)}: "
                 "give corpora made by gestura synth")
    checkpoint = load_checkpoint(args.checkpoint)
    model = GesturaModel.from_checkpoint(checkpoint).eval()
    print(f"checkpoint: {args.checkpoint}; {len(clips)} {args.split} clips; synthesizer seeds {args.seeds}")

    plans = {name: [] for name in ("planner", "synth, other seed", "synth, fixed", "synth, loudness only")}
    truths, styles = [], []
    for i, clip in enumerate(clips):
        truth = np.flatnonzero(clip.stroke_apex > 0.5)
        style = checkpoint.styles.index(clip.ref.style) if clip.ref.style in checkpoint.styles else None
        features = normalized_features(clip, checkpoint.stats, checkpoint.config.planner_pitch)
        _, planned = clip_stroke_plan(model, features, style, energy_db(clip.features))
        prosody = analyze(clip.wave.astype(np.float64))
        speaker = lively(get_style(clip.ref.style.split("_", 1)[1]), liveliness(clip.wave))
        flat = _loudness_only(prosody)
        entries = {"planner": [planned], "synth, fixed": [_frames(choose_strokes(prosody, speaker, _NoDraws()), FPS)],
                   "synth, other seed": [], "synth, loudness only": []}
        for seed in args.seeds:
            entries["synth, other seed"].append(
                _frames(choose_strokes(prosody, speaker, np.random.default_rng([seed, i])), FPS))
            entries["synth, loudness only"].append(
                _frames(choose_strokes(flat, speaker, np.random.default_rng([seed, i])), FPS))
        for name, found in entries.items():
            plans[name].append(found)
        truths.append(truth)
        styles.append(clip.ref.style)

    print(f"{'plan':<22}{'speaker':<12}{'precision':>10}{'recall':>8}{'planned':>9}{'corpus':>8}")
    for name, per_clip in plans.items():
        for speaker in sorted(set(styles)) + ["all"]:
            rows = [k for k, s in enumerate(styles) if speaker in ("all", s)]
            planned = [p for k in rows for p in per_clip[k]]
            apexes = [truths[k] for k in rows for _ in per_clip[k]]
            zeros = [np.zeros(1) for _ in planned]  # no probabilities: only precision and recall are read
            scores = stroke_plan_scores(zeros, planned, apexes)
            draws = len(per_clip[rows[0]])
            print(f"{name:<22}{speaker:<12}{scores['plan_precision']:>10.2f}{scores['plan_recall']:>8.2f}"
                  f"{sum(len(p) for p in planned) / draws:>9.0f}{sum(len(truths[k]) for k in rows):>8d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
