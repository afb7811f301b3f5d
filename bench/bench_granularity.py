"""GranuMamba ablation (issue 17): stage 2 with single-scale scans against multi-granularity scans,
several training seeds each, judged on the held-out split by the stage-2 metrics, plus speed.

    .venv/bin/python bench/bench_granularity.py --data CORPUS --vq VQ [VQ ...] --fgd-encoder FGD \\
        --out FOLDER [--steps 2000] [--seeds 0 1] [--variants all:1,2,4,8 window:1,2,4,8] [--jobs 2]

Variants: ``single`` (every scan at its own rate, ``granularities`` [1]) and each ``SCANS:FACTORS``
of ``--variants``: the pooling factors FACTORS in the scans SCANS ("all", or a comma list of
window, global, local), the other scans single-scale. For each variant and seed, in
FOLDER/VARIANT-sSEED:
1. ``gestura train`` on the given stage-1 checkpoints with the recipe's stage-2 settings
   (``training/recipe.sh``) but ``--steps`` steps, one CPU thread (``--device`` to change);
2. ``gestura eval --split test`` at the model card's settings (temperature 0.9, style strength
   1.5, seed 0) into eval.json;
3. after all runs have finished (so that no training shares the CPU), NumPy-engine speed: a 60 s
   espeak-ng clip at style strength 1.5 on one thread, best of two.
``--jobs`` runs that many (train, eval) pairs at once. A run whose eval.json exists is reused, so
running the command again reprints the table; delete a run's folder to redo it. Prints the
machine, one row per run, and per variant the mean over seeds with the half range (the seeds'
spread) in brackets.
"""
from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # speed is timed on one thread; read at numpy's import

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from bench_engines import speech  # noqa: E402  (bench/ is on sys.path when a bench script runs)
from machine_info import machine  # noqa: E402

METRICS = (  # (eval.json key, column, format, scale)
    ("apex_ratio", "apex", "{:.2f}", 1.0),
    ("corpus_correlation", "corr", "{:.3f}", 1.0),
    ("rest_in_silence", "rest", "{:.2f}", 1.0),
    ("frozen_arms", "frozen %", "{:.1f}", 100.0),
    ("jitter", "jitter", "{:.0f}", 1.0),
    ("fgd", "FGD", "{:.1f}", 1.0),
)


def parse_variant(text: str) -> tuple:
    """"SCANS:FACTORS" -> (folder name, the config's ``granularities`` {scan: factors})."""
    from gestura.inference.config import SCANS

    try:
        scans, factors = text.split(":")
        factors = [int(f) for f in factors.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"variant {text!r}: use SCANS:FACTORS, e.g. window:1,2,4,8") from None
    chosen = SCANS if scans == "all" else tuple(scans.split(","))
    if not set(chosen) <= set(SCANS):
        raise argparse.ArgumentTypeError(f"variant {text!r}: scans are 'all' or some of {', '.join(SCANS)}")
    return f"{scans.replace(',', '+')}-{'-'.join(map(str, factors))}", {s: factors if s in chosen else [1] for s in SCANS}


def run_one(args, name: str, granularities: dict, seed: int) -> Path:
    """Train and evaluate one variant and seed (skipped when its eval.json exists); its folder."""
    folder = Path(args.out) / f"{name}-s{seed}"
    report = folder / "eval.json"
    if report.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    gestura = [sys.executable, "-m", "gestura"]
    common = ["--device", args.device, "--threads", "1", "--no-progress"]
    train = [*gestura, "train", "--data", args.data, "--vq", *args.vq, "--out", str(folder / "gen"), *common,
             "--log-every", "50", "--batch-size", "8", "--lr", "1e-3", "--warmup", "30", "--schedule", "cosine",
             "--steps", str(args.steps), "--seed", str(seed), "--set", f"granularities={json.dumps(granularities)}"]
    evaluate = [*gestura, "eval", "--data", args.data, "--split", "test", "--checkpoint",
                str(folder / "gen" / "gestura.safetensors"), "--fgd-encoder", args.fgd_encoder, "--temperature", "0.9",
                "--style-strength", "1.5", "--seed", "0", *common, "--json", str(report)]
    with open(folder / "bench.log", "a") as log:
        for command in (train, evaluate):
            print(f"{folder.name}: {command[3]} ...", flush=True)
            if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                raise SystemExit(f"bench_granularity: {folder.name}: '{command[3]}' failed, see {folder / 'bench.log'}")
    return folder


def numpy_speed(checkpoint: Path, audio: np.ndarray) -> float:
    """Seconds of audio per wall second, NumPy engine, style strength 1.5, best of two."""
    from gestura.inference import pipeline
    from gestura.inference.checkpoint import load_checkpoint
    from gestura.inference.engines.numpy import NumpyEngine

    ckpt = load_checkpoint(checkpoint)
    engine = NumpyEngine()
    engine.prepare(ckpt)
    request = pipeline.GenerationRequest(audio=audio, seed=1, style_strength=1.5)
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        pipeline.generate(request, checkpoint=ckpt, engine=engine)
        best = min(best, time.perf_counter() - start)
    return len(audio) / 16000 / best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="corpus in the BEAT2 layout with a test split")
    parser.add_argument("--vq", nargs="+", required=True, metavar="CKPT", help="stage-1 checkpoints, as for gestura train")
    parser.add_argument("--fgd-encoder", required=True, help="FGD encoder (gestura train-fgd)")
    parser.add_argument("--out", required=True, help="folder for the runs (reused when run again)")
    parser.add_argument("--steps", type=int, default=2000, help="stage-2 steps per run (default 2000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (default 0 1)")
    parser.add_argument("--variants", nargs="+", type=parse_variant, default=["all:1,2,4,8", "window:1,2,4,8"],
                        metavar="SCANS:FACTORS", help="multi-granularity variants (default all:1,2,4,8 window:1,2,4,8)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    parser.add_argument("--device", default="cpu", help="training and evaluation device (default cpu)")
    args = parser.parse_args(argv)

    from gestura.inference.architecture import parameter_count
    from gestura.inference.checkpoint import load_checkpoint
    from gestura.inference.config import ConfigError

    variants = {"single": [1]}
    variants.update(parse_variant(v) if isinstance(v, str) else v for v in args.variants)
    try:
        for factors in variants.values():
            load_checkpoint(args.vq[0]).config.with_(granularities=factors)
    except ConfigError as error:
        print(f"bench_granularity: error: {error}", file=sys.stderr)
        return 2
    print(f"machine: {machine()}")
    print("variants (pooling factors per scan): " + "; ".join(
        f"{name} {json.dumps(factors) if isinstance(factors, dict) else 'every scan ' + str(factors)}"
        for name, factors in variants.items()))
    runs = [(name, factors, seed) for name, factors in variants.items() for seed in args.seeds]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        folders = list(pool.map(lambda run: run_one(args, *run), runs))

    with tempfile.TemporaryDirectory(prefix="gestura-bench-") as tmp:
        audio = speech(60.0, Path(tmp))
        rows = []
        for (name, _, seed), folder in zip(runs, folders):
            checkpoint = folder / "gen" / "gestura.safetensors"
            result = json.loads((folder / "eval.json").read_text())
            rows.append({"variant": name, "seed": seed, "params": parameter_count(load_checkpoint(checkpoint).config),
                         "truth": result["ground_truth"], **result["generated"],
                         "speed": numpy_speed(checkpoint, audio)})

    print(f"stage 2: {args.steps} steps per run; held-out test split ({result['seconds_of_audio']:.0f} s, "
          f"{len(result['clips'])} clips), temperature 0.9, style strength 1.5; speed: NumPy engine, 60 s, 1 thread")
    head = f"{'variant':<20} {'seed':>4} {'params':>10} " + " ".join(f"{c:>13}" for _, c, _, _ in METRICS)
    print(head + f" {'x real time':>13}")
    for row in rows:
        cells = [fmt.format(row[key] * scale) for key, _, fmt, scale in METRICS]
        print(f"{row['variant']:<20} {row['seed']:>4} {row['params']:>10,} " + " ".join(f"{c:>13}" for c in cells)
              + f" {row['speed']:>13.1f}")
    for name in variants:
        mine = [row for row in rows if row["variant"] == name]
        cells = []
        for key, _, fmt, scale in (*METRICS, ("speed", "", "{:.1f}", 1.0)):
            values = np.array([row[key] * scale for row in mine])
            cells.append(f"{fmt.format(values.mean())} ({fmt.format((values.max() - values.min()) / 2)})")
        print(f"{name + ' mean':<20} {'':>4} {mine[0]['params']:>10,} " + " ".join(f"{c:>13}" for c in cells))
    truth = rows[0]["truth"]
    cells = ["-" if truth.get(key) is None else fmt.format(truth[key] * scale) for key, _, fmt, scale in METRICS]
    print(f"{'corpus':<20} {'':>4} {'':>10} " + " ".join(f"{c:>13}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
