"""One span pass of the code generator, module path against stacked path, on each device.

    .venv/bin/python bench/bench_span_paths.py [--checkpoint CKPT] [--rows 2] [--repeats 100]

A span pass (``Generator.span_logits``: the global scans over the window's codes, then each
part's local scans and logits) runs 8 times per 2.1 s span at the defaults, in two rows (the
style-strength row and the empty-plan row), and is most of generation's cost. The PyTorch engine
runs it two ways: the module path (``span_logits``: each bidirectional layer as its two mixers,
each part's layers one by one; what the engine runs on CUDA, where a mixer can take the mamba-ssm
kernel) and the stacked path (``span_logits_fast``: the two directions, and layer i of every part,
as one stacked mixer; what it runs on the CPU, measured 1.5x faster there). This prints the
median time of one pass for each path on the CPU (one thread) and on CUDA when there is one
(with the mamba-ssm kernels when they import, and without), after warm-up, with the inputs'
shapes at the defaults (random values: the cost does not depend on them), and the largest
difference between the two paths' logits. The checkpoint is the bundled model by default.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from machine_info import machine  # bench/ is on sys.path when a bench script runs


def median_ms(fn, repeats: int, sync) -> float:
    for _ in range(5):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="a vq-mamba checkpoint (default: the bundled model)")
    parser.add_argument("--rows", type=int, default=2, help="rows per pass (default 2, the defaults' streams)")
    parser.add_argument("--repeats", type=int, default=100, help="timed passes per path and device (default 100)")
    args = parser.parse_args(argv)

    import torch

    from gestura.inference.checkpoint import load_checkpoint
    from gestura.inference.torch_model import mamba
    from gestura.inference.torch_model.model import GesturaModel
    from gestura.rigs.skeleton import PARTS

    torch.set_num_threads(1)
    checkpoint = load_checkpoint(args.checkpoint)
    config = checkpoint.config
    if config.family != "vq-mamba":
        print(f"bench_span_paths: error: {checkpoint.path} is a {config.family} model; span passes are the "
              "vq-mamba family's", file=sys.stderr)
        return 2
    model = GesturaModel.from_checkpoint(checkpoint).eval()
    n = config.generation_prefix + config.span_codes  # the codes a span pass reads at generation
    g = torch.Generator().manual_seed(0)
    context = torch.randn(args.rows, n, config.d_model, generator=g)
    style = torch.randn(args.rows, config.d_model, generator=g)
    codes = torch.randint(0, config.codebook_size, (1, n, len(PARTS)), generator=g)
    print(machine())
    print(f"checkpoint {checkpoint.path}; {args.rows} rows x {n} codes per pass; median of {args.repeats} passes")
    print(f"{'device':<8} {'kernels':<8} {'module path ms':>15} {'stacked path ms':>16} {'max |logit diff|':>17}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        model.to(device)
        gen = model.generator
        inputs = [t.to(device) for t in (context, style)]
        with torch.inference_mode():
            latents = gen.known_latents(model.codebooks(), codes.to(device)).expand(args.rows, -1, -1, -1)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for kernels in ([False, True] if device == "cuda" and mamba.kernels_available() else [False]):
            mamba.set_kernels(kernels)
            with torch.inference_mode():
                module = median_ms(lambda: gen.span_logits(*inputs, latents), args.repeats, sync)
                stacked = median_ms(lambda: gen.span_logits_fast(*inputs, latents), args.repeats, sync)
                a, b = gen.span_logits(*inputs, latents), gen.span_logits_fast(*inputs, latents)
            diff = max(float((a[p] - b[p]).abs().max()) for p in PARTS)
            print(f"{device:<8} {'yes' if kernels else 'no':<8} {module:>15.2f} {stacked:>16.2f} {diff:>17.2e}",
                  flush=True)
    mamba.set_kernels(True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
