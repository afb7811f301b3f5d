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

Then, per speaker, how well each of these ranks the syllables (the synthesizer's nuclei after its
first 0.7 s, where it may plan) by whether a corpus apex lies within ``PLAN_TOLERANCE`` frames of
the syllable's onset: the ROC AUC (``scipy.stats.mannwhitneyu``) of the planner's highest
probability within that tolerance of the onset, of the synthesizer's own score without its noise
(stress, plus ``gestures.ACCENT_BONUS`` for a pitch accent), and of the loudness rank alone; and
the share of the corpus's apexes that have a peak of the planner's probabilities (any height)
within the tolerance: whether what the plan misses is the timing of its peaks or which ones it keeps.

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


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of ``scores`` for the bool labels ``positive`` (NaN when a class is empty)."""
    from scipy.stats import mannwhitneyu

    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    if positive.all() or not positive.any():
        return float("nan")
    u = mannwhitneyu(scores[positive], scores[~positive]).statistic
    return float(u / (positive.sum() * (~positive).sum()))


def _syllable_ranking(prosody, probability: np.ndarray, truth: np.ndarray, fps: float, tolerance: int) -> dict:
    """Per syllable the synthesizer may stroke on: whether a corpus apex lies within ``tolerance``
    frames of its onset, and its scores (planner, synthesizer, loudness rank)."""
    from gestura.training.synth.gestures import ACCENT_BONUS
    from gestura.training.synth.prosody import _rank

    accented = {id(a) for a in prosody.accents}
    loudness = _rank(np.array([s.loudness for s in prosody.syllables]))
    rows = {"apex": [], "planner": [], "synthesizer": [], "loudness rank": []}
    for syllable, loud in zip(prosody.syllables, loudness):
        onset = int(round(syllable.onset * fps))
        if syllable.onset <= 0.7 or onset >= len(probability):
            continue
        rows["apex"].append(bool(len(truth)) and np.min(np.abs(truth - onset)) <= tolerance)
        rows["planner"].append(probability[max(onset - tolerance, 0):onset + tolerance + 1].max())
        rows["synthesizer"].append(syllable.stress + (ACCENT_BONUS if id(syllable) in accented else 0.0))
        rows["loudness rank"].append(loud)
    return rows


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
    from gestura.inference.stroke_plan import plan_apexes
    from gestura.training.metrics import PLAN_TOLERANCE, stroke_plan_scores
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
    truths, styles, rankings, peaks_near = [], [], [], []
    for i, clip in enumerate(clips):
        truth = np.flatnonzero(clip.stroke_apex > 0.5)
        style = checkpoint.styles.index(clip.ref.style) if clip.ref.style in checkpoint.styles else None
        features = normalized_features(clip, checkpoint.stats, checkpoint.config.planner_pitch)
        probability, planned = clip_stroke_plan(model, features, style, energy_db(clip.features))
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
        rankings.append(_syllable_ranking(prosody, probability, truth, FPS, PLAN_TOLERANCE))
        peaks = np.flatnonzero(plan_apexes(probability, 0.0))
        peaks_near.append([bool(len(peaks)) and np.min(np.abs(peaks - t)) <= PLAN_TOLERANCE for t in truth])

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

    names = ("planner", "synthesizer", "loudness rank")
    print(f"\nsyllables ranked by whether a corpus apex lies within {PLAN_TOLERANCE} frames of their onset (ROC AUC)")
    print(f"{'speaker':<12}{'syllables':>10}{'apexes':>8}" + "".join(f"{n:>15}" for n in names)
          + f"{'apexes with a planner peak':>28}")
    for speaker in sorted(set(styles)) + ["all"]:
        rows = [k for k, s in enumerate(styles) if speaker in ("all", s)]
        label = np.concatenate([rankings[k]["apex"] for k in rows]).astype(bool)
        near = np.concatenate([peaks_near[k] for k in rows]).astype(bool)
        aucs = "".join(f"{_auc(np.concatenate([rankings[k][n] for k in rows]), label):>15.3f}" for n in names)
        print(f"{speaker:<12}{len(label):>10d}{int(label.sum()):>8d}{aucs}{near.mean():>28.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
