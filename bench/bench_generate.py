"""Generation time and peak memory for 10 s, 60 s and 600 s of speech (CPU; CUDA when present).

    .venv/bin/python bench/bench_generate.py [--lengths 10 60 600] [--devices cpu cuda] [--config small]

Each case runs in a fresh subprocess so that its peak memory (max RSS on the CPU, max allocated
on CUDA) is its own. The audio is the bundled example speech, repeated to length. Uses the bundled
checkpoint when it exists, otherwise a randomly initialised model of ``--config`` (same cost).
Prints the machine, then one row per case with wall seconds, real-time factor, per-frame cost and
the process's CPU time (steadier than wall time on a shared machine), so linear growth shows as a
constant ms/frame.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    try:
        load = "load average %.1f" % os.getloadavg()[0]
    except OSError:
        load = ""
    return (f"{platform.system()} {platform.release()}, CPU {cpu} x {os.cpu_count()} cores ({load}), "
            f"Python {platform.python_version()}, torch {torch.__version__}, {gpu}")


def _checkpoint(config_name: str) -> str:
    from gestura.inference.checkpoint import default_checkpoint_path

    default = default_checkpoint_path()
    if default.is_file() and config_name == "small":
        return str(default)
    import torch

    from gestura.inference.config import get_config
    from gestura.inference.torch_model.model import GesturaModel

    torch.manual_seed(0)
    config = get_config(config_name)
    path = Path(tempfile.gettempdir()) / f"gestura-bench-{config_name}.safetensors"
    GesturaModel(config).save(path, styles=[f"style{i}" for i in range(config.num_styles)])
    return str(path)


def _one(seconds: float, device: str, checkpoint: str) -> dict:
    """Runs inside the subprocess."""
    import numpy as np
    import torch

    from gestura.inference.audio import load_audio
    from gestura.inference.checkpoint import load_checkpoint
    from gestura.inference.engines import resolve_engine
    from gestura.inference.pipeline import GenerationRequest, generate

    speech = load_audio(REPO / "examples" / "speech.wav")
    n = int(seconds * 16000)
    audio = np.tile(speech, n // len(speech) + 1)[:n]
    ckpt = load_checkpoint(checkpoint)
    engine = resolve_engine("torch", device)
    engine.prepare(ckpt)
    generate(GenerationRequest(audio=audio[:16000]), checkpoint=ckpt, engine=engine)  # warm-up
    if engine.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu_started = time.perf_counter(), time.process_time()
    # Style strength 1: one stream (the default 1.5 runs the network twice, see bench_engines.py).
    motion = generate(GenerationRequest(audio=audio, seed=0, style_strength=1.0), checkpoint=ckpt, engine=engine)
    if engine.device == "cuda":
        torch.cuda.synchronize()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    out = {"seconds": seconds, "device": engine.device, "elapsed": elapsed, "cpu": cpu, "frames": motion.num_frames,
           "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_growth_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024}
    if engine.device == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=float, nargs="+", default=[10, 60, 600])
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when available")
    parser.add_argument("--config", default="small")
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(_one(args.one, args.device, args.checkpoint)))
        return 0

    import torch

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    checkpoint = _checkpoint(args.config)
    print(f"machine: {_machine()}")
    print(f"checkpoint: {checkpoint} (config {args.config})")
    print(f"{'device':6s} {'audio s':>8s} {'frames':>7s} {'time s':>8s} {'x realtime':>10s} {'ms/frame':>9s} "
          f"{'CPU s':>8s} {'CPU ms/frame':>12s} {'max RSS MiB':>12s} {'CUDA peak MiB':>14s}")
    for device in devices:
        for seconds in args.lengths:
            done = subprocess.run([sys.executable, __file__, "--one", str(seconds), "--device", device,
                                   "--checkpoint", checkpoint], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{device:6s} {seconds:8.0f} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            cuda = f"{r['cuda_peak_mib']:14.1f}" if "cuda_peak_mib" in r else f"{'-':>14s}"
            print(f"{r['device']:6s} {seconds:8.0f} {r['frames']:7d} {r['elapsed']:8.2f} "
                  f"{seconds / r['elapsed']:10.1f} {1000 * r['elapsed'] / r['frames']:9.2f} "
                  f"{r['cpu']:8.2f} {1000 * r['cpu'] / r['frames']:12.2f} {r['max_rss_mib']:12.1f} {cuda}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
