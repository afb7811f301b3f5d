"""The NumPy model's cost per engine call, against the PyTorch model's on one thread.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_numpy_model.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_numpy_model.py --codes 20 --styles 1 --passes 8

Times the three calls a clip is made of, on a randomly initialised model of the "small" config
(cost does not depend on the weights' values): ``speech`` over 60 s of features in blocks of
64 frames, one ``span`` pass over ``--codes`` codes for ``--styles`` styles (the stacked fast
path and the module-by-module reference), and ``decode`` of 60 s of codes in spans. Then the
engine's share of a 60 s clip: speech + passes x spans x span + decode, where spans =
60 s / (span_codes x frames_per_code / 30 fps), as the pipeline schedules them. Times are the
process's CPU time (steadier than wall time on a shared machine), the best of ``--repeat``.
Set OPENBLAS_NUM_THREADS=1 (and torch runs with one thread) for one-thread figures.

Last, the arithmetic floor of the span passes: one pass's matrix products (counted at each
``Linear`` while it runs) and selective-scan state updates, times the passes of a 60 s clip,
over what this machine does at its best on one thread (a BLAS product of the pass's own shape;
``exp`` plus a multiply-add per state update). No implementation of this model at these
settings can beat that figure on this machine; it says how far the engine is from it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from machine_info import machine  # bench/ is on sys.path when a bench script runs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from random_checkpoint import random_tensors  # noqa: E402

from gestura.inference.checkpoint import Checkpoint, identity_stats  # noqa: E402
from gestura.inference.config import get_config  # noqa: E402
from gestura.inference.engines.numpy import NumpyEngine  # noqa: E402
from gestura.inference.numpy_model import layers, mamba  # noqa: E402
from gestura.inference.sampling import PASSES  # noqa: E402
from gestura.rigs.skeleton import PARTS  # noqa: E402

SECONDS = 60
FPS = 30


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small")
    parser.add_argument("--codes", type=int, default=20, help="codes in one span pass (span + prefix)")
    parser.add_argument("--styles", type=int, default=1,
                        help="rows per span pass (default 1; plan strength adds one where a stroke is planned)")
    parser.add_argument("--passes", type=int, default=PASSES, help=f"span passes per span (default {PASSES}, the pipeline's)")
    parser.add_argument("--granularities", type=int, nargs="+", default=None,
                        help="the scans' pooling factors, e.g. 1 2 4 8 (default: the config's)")
    parser.add_argument("--stroke-planner", action="store_true",
                        help="a model with a stroke planner (its speech encoder and window scan run as well)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    config = get_config(args.config)
    if args.granularities:
        config = config.with_(granularities=args.granularities)
    config = config.with_(stroke_planner=args.stroke_planner)
    checkpoint = Checkpoint(tensors=random_tensors(config), config=config, stats=identity_stats(),
                            styles=[f"s{i}" for i in range(config.num_styles)], stage="full")
    engine = NumpyEngine()
    engine.prepare(checkpoint)
    generator, r = engine.model.generator, config.frames_per_code
    rng = np.random.default_rng(0)
    frames = SECONDS * FPS
    features = rng.normal(size=(frames, config.feature_dim)).astype(np.float32)
    codes = {p: rng.integers(0, config.codebook_size, frames // r) for p in PARTS}
    n, styles = args.codes, tuple([None] + list(range(args.styles - 1)))
    speech = rng.normal(size=(n * r + config.lookahead, config.speech_width)).astype(np.float32)
    context, _ = engine.context(speech, styles)
    known = {p: np.where(np.arange(n) < config.prefix_codes, 1, -1) for p in PARTS}
    latents = generator.known_latents(engine.model.codebooks(), np.stack([known[p] for p in PARTS], -1))

    def run_speech():
        state = engine.start(PARTS)
        for i in range(0, frames, 64):
            engine.speech(state, features[i:i + 64])

    def run_decode():
        state = engine.start(PARTS)
        for i in range(0, frames // r, config.span_codes):
            engine.decode(state, {p: c[i:i + config.span_codes] for p, c in codes.items()})

    cost = {
        "speech 60 s": best(run_speech, args.repeat),
        "context": best(lambda: engine.context(speech, styles), args.repeat * 4),
        "span": best(lambda: engine.span(context, known, styles, PARTS), args.repeat * 4),
        "span (reference)": best(lambda: generator.span_logits_reference(engine.context(speech, styles)[0], styles,
                                                                         latents), args.repeat),
        "decode 60 s": best(run_decode, args.repeat),
    }
    spans = SECONDS * FPS / (config.span_codes * r)
    calls = args.passes * spans
    total = cost["speech 60 s"] + spans * cost["context"] + calls * cost["span"] + cost["decode 60 s"]
    print(f"numpy, {args.config} (granularities {config.to_dict()['granularities']}), span of {n} codes x "
          f"{len(styles)} styles, {args.passes} passes:")
    for name, seconds in cost.items():
        print(f"  {name:18s} {seconds * 1e3:8.1f} ms")
    print(f"  60 s clip: {cost['speech 60 s']:.3f} s speech + {spans:.0f} contexts x {cost['context'] * 1e3:.1f} ms "
          f"+ {calls:.0f} spans x {cost['span'] * 1e3:.1f} ms "
          f"+ {cost['decode 60 s']:.3f} s decode = {total:.2f} s ({SECONDS / total:.0f}x real time, engine only)")
    floor = arithmetic_floor(lambda: engine.span(context, known, styles, PARTS), calls, config.d_model)
    print(f"  arithmetic floor of the {calls:.0f} span passes: {floor['gflop']:.1f} GFLOP of matrix products at "
          f"{floor['gflops']:.0f} GFLOP/s + {floor['updates'] / 1e9:.2f} G scan state updates at "
          f"{floor['updates_per_s'] / 1e9:.2f} G/s = {floor['seconds']:.2f} s "
          f"(at most {SECONDS / floor['seconds']:.0f}x real time for the passes alone)")
    try:
        import torch
    except ImportError:
        return
    from gestura.inference.torch_model.model import GesturaModel

    torch.set_num_threads(1)
    model = GesturaModel(config).eval()
    gen = model.generator
    with torch.inference_mode():
        t_speech = torch.from_numpy(speech)[None]
        t_codes = torch.from_numpy(np.stack([known[p] for p in PARTS], -1))[None]
        t_style = gen.style_embeddings(styles)

        def torch_span(fast=True):
            # As the torch engine runs it: the styles batched, the stacked fast path.
            b = len(styles)
            context, _ = gen.window_context(t_speech, styles)
            latents = gen.known_latents(model.codebooks(), t_codes).expand(b, -1, -1, -1)
            (gen.span_logits_fast if fast else gen.span_logits)(context, t_style, latents)

        print(f"torch (1 thread), the same span: {best(torch_span, args.repeat * 4) * 1e3:.1f} ms "
              f"(module by module: {best(lambda: torch_span(False), args.repeat) * 1e3:.1f} ms)")


def arithmetic_floor(one_pass, passes: float, width: int) -> dict:
    """What ``passes`` calls of ``one_pass`` cost at this machine's best one-thread throughput:
    matrix-product FLOPs counted at every ``Linear`` / stacked linear layer during one call,
    selective-scan state updates (d_inner x d_state per step and row), and the throughputs of a
    (rows, width) x (width, 4 width) float32 product and of ``exp`` plus a multiply-add."""
    counted = {"flop": 0, "updates": 0, "rows": 0}
    linear, stacked, scan = layers.Linear.__call__, mamba._StackedLinear.__call__, mamba.Mamba.__call__

    def count_linear(self, x):
        counted["flop"] += 2 * int(np.prod(x.shape[:-1])) * self.weight_t.size
        return linear(self, x)

    def count_stacked(self, x):
        counted["flop"] += 2 * int(np.prod(x.shape[1:-1])) * self.weight[0].size * len(self.weight)
        counted["rows"] = max(counted["rows"], int(np.prod(x.shape[1:-1])))
        return stacked(self, x)

    def count_scan(self, x, state=None):
        counted["updates"] += int(np.prod(x.shape[:-1])) * self.d_inner * self.d_state
        return scan(self, x, state)

    layers.Linear.__call__, mamba._StackedLinear.__call__, mamba.Mamba.__call__ = count_linear, count_stacked, count_scan
    try:
        one_pass()
    finally:
        layers.Linear.__call__, mamba._StackedLinear.__call__, mamba.Mamba.__call__ = linear, stacked, scan
    rng = np.random.default_rng(0)
    a = rng.random((max(counted["rows"], 1), width), np.float32)
    b = rng.random((width, 4 * width), np.float32)
    gflops = 2 * a.size * b.shape[1] / best(lambda: [a @ b for _ in range(50)], 5) * 50 / 1e9
    x = -rng.random(1 << 16, np.float32)
    h, y = np.zeros_like(x), np.empty_like(x)

    def updates():
        for _ in range(50):
            np.exp(x, out=y)
            np.multiply(y, h, out=y)
            np.add(y, x, out=h)
    updates_per_s = x.size * 50 / best(updates, 5)
    seconds = passes * (counted["flop"] / (gflops * 1e9) + counted["updates"] / updates_per_s)
    return {"gflop": passes * counted["flop"] / 1e9, "gflops": gflops, "updates": passes * counted["updates"],
            "updates_per_s": updates_per_s, "seconds": seconds}


if __name__ == "__main__":
    main()
