"""Do the NumPy and PyTorch engines choose the same codes over a long clip at temperature 0?

    .venv/bin/python bench/bench_engine_agreement.py [--seconds 600] [--checkpoint PATH]

Both engines generate the same clip (the bundled example speech repeated to ``--seconds``) with
the bundled model at temperature 0 and the default strengths, one thread. Every engine call's
logits are recorded and guided as the pipeline guides them (``sampling.guided`` where a pass ran
the empty-plan row), so the script can say, for each code where the engines differ, whether it
is a near-tie: the rule the README states is that codes may differ only where the two most likely codes' logits lie within
``NEAR_TIE`` of each other in either engine, and nowhere else. It prints the machine, the number
of codes compared, the differing ones with their logit margins, and the largest pose difference
(geodesic angle per joint) between the two motions.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from machine_info import machine  # bench/ is on sys.path when a bench script runs

REPO = Path(__file__).resolve().parents[1]
NEAR_TIE = 1e-4


def _recording(engine_class):
    class Recording(engine_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.calls = []

        def span(self, context, known, styles, parts, style_strength=1.0):
            logits = super().span(context, known, styles, parts, style_strength)
            self.calls.append(({p: np.array(v) for p, v in known.items()}, logits))
            return logits

    return Recording


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--checkpoint", default=None, help="default: the bundled model")
    args = parser.parse_args()

    import torch

    from gestura.inference.audio import SAMPLE_RATE, load_audio
    from gestura.inference.checkpoint import load_checkpoint
    from gestura.inference.engines.numpy import NumpyEngine
    from gestura.inference.engines.torch import TorchEngine
    from gestura.inference.pipeline import GenerationRequest, generate
    from gestura.inference.sampling import DEFAULT_PLAN_STRENGTH, guided
    from gestura.rigs.rotations import axis_angle_to_matrix

    torch.set_num_threads(1)
    print(machine())
    checkpoint = load_checkpoint(args.checkpoint)
    speech = load_audio(REPO / "examples" / "speech.wav")
    n = int(args.seconds * SAMPLE_RATE)
    audio = np.tile(speech, -(-n // len(speech)))[:n]
    engines = [_recording(TorchEngine)("cpu", threads=1), _recording(NumpyEngine)()]
    motions = [generate(GenerationRequest(audio=audio, temperature=0.0), checkpoint=checkpoint, engine=e)
               for e in engines]
    def geodesic_angles(a, b):
        ra, rb = axis_angle_to_matrix(a.astype(np.float64)), axis_angle_to_matrix(b.astype(np.float64))
        return np.arccos(np.clip((np.einsum("...ij,...ij->...", ra, rb) - 1.0) / 2.0, -1.0, 1.0))

    compared, differing = 0, []
    for call, ((known_t, logits_t), (known_n, logits_n)) in enumerate(zip(engines[0].calls, engines[1].calls)):
        for part in logits_t:
            open_ = np.flatnonzero(known_t[part] < 0)
            if not np.array_equal(known_t[part], known_n[part]):
                differing.append((call, part, "the known codes differ (an earlier difference carried on)"))
                continue
            # What the pipeline takes the argmax of: the styled row, guided where the empty-plan row ran.
            guided_t, guided_n = ((guided(logits[part][0], logits[part][1], DEFAULT_PLAN_STRENGTH)
                                   if len(logits[part]) > 1 else logits[part][0]) for logits in (logits_t, logits_n))
            for position in open_:
                a, b = guided_t[position], guided_n[position]
                compared += 1
                if int(np.argmax(a)) != int(np.argmax(b)):
                    margin = min(float(np.diff(np.sort(x)[-2:])[0]) for x in (a, b))
                    differing.append((call, part, margin))
    print(f"{args.seconds:.0f} s at temperature 0: {len(engines[0].calls)} span passes, {compared} code "
          f"predictions compared, {len(differing)} differ")
    for call, part, margin in differing[:10]:
        print(f"  pass {call}, {part}: " + (margin if isinstance(margin, str) else f"top-two logit margin {margin:.2e}"))
    angles = geodesic_angles(motions[0].poses, motions[1].poses)
    worst = int(np.argmax(angles.max(axis=1)))
    print(f"largest pose difference {angles.max():.2e} rad (frame {worst}, {worst / 30:.1f} s); "
          f"translation {np.abs(motions[0].trans - motions[1].trans).max():.2e} m")
    # A difference in the known codes follows from an earlier one; only the codes' own choices count.
    own = [margin for _, _, margin in differing if not isinstance(margin, str)]
    holds = all(margin < NEAR_TIE for margin in own)
    print(f"rule {'holds' if holds else 'broken'}: {sum(m < NEAR_TIE for m in own)} of {len(own)} differing choices "
          f"are near-ties (top-two logits within {NEAR_TIE:g})")
    return 0 if holds else 1


if __name__ == "__main__":
    raise SystemExit(main())
