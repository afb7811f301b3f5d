"""Engine speed: seconds of audio generated per second of wall time, and peak memory.

    .venv/bin/python bench/bench_engines.py                      # 10, 60, 600 s; numpy, torch CPU, CUDA
    .venv/bin/python bench/bench_engines.py --seconds 10 60 --engines numpy
    .venv/bin/python bench/bench_engines.py --seconds 60 --plan-strength 1   # no empty-plan row
    .venv/bin/python bench/bench_engines.py --seconds 60 --audio REC.wav   # a recording
    .venv/bin/python bench/bench_engines.py --checkpoint DIM.safetensors --whole-clip   # one window per clip

Each (engine, clip length) runs in a fresh child process, so its peak resident memory is its
own: the peak during generation, and in brackets its rise over the resident size after loading
the model and the audio (what generation itself needs); on CUDA also the peak GPU memory
PyTorch allocated, after an untimed 6 s generation that compiles and sets up the kernels. Timed: ``pipeline.generate`` on an already decoded 16 kHz array
with a loaded checkpoint (features, the network, sampling, decoding to motion), at the defaults
of every front end (temperature, style and plan strength; ``--style-strength`` and
``--plan-strength`` change the last two). Style strength changes what the network hears, not how
much it runs; plan strength other than 1 adds a row with an empty stroke plan beside the first.
Cost per audio second that stays flat from 10 s to 600 s means linear growth; on a shared machine
the process's CPU time per audio second is the steadier measure of that than wall time.

The checkpoint is the bundled model when it exists and loads, otherwise a randomly initialised one of the
same config ("small"). The audio is ``--audio`` or espeak-ng speech, repeated to length (noise when
espeak-ng is missing). At plan strength 1 the cost depends on neither the weights' values nor the
content; at other plan strengths a window whose stroke plan is empty skips the empty-plan row, so
speech the head plans sparsely on (pauses, most real recordings) costs less than dense espeak-ng
speech.
It also prints how closely the numpy and torch engines agree on the 10 s clip. ``--whole-clip``
makes each clip one window (``span_codes`` covering it, no prefix): the network then runs over the
whole clip at once, which shows how a model's cost grows with length (attention: quadratically).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine_info import machine  # bench/ is on sys.path when a bench script runs

from gestura.inference.sampling import DEFAULT_PLAN_STRENGTH, DEFAULT_STYLE_STRENGTH

REPO = Path(__file__).resolve().parents[1]
ENGINES = ("numpy", "torch-cpu", "torch-cuda")
# The speech every engine row is timed on (espeak-ng at SPEECH_RATE words a minute, looped).
SPEECH_TEXT = ("Today I want to show you how the hands move when we talk. Look at this, it matters a lot, "
               "and when I say it loudly, the whole body follows the rhythm of the words.")
SPEECH_RATE = 160



def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rss_mb() -> float:
    return _status_mb("VmRSS") or 0.0


def reset_peak() -> None:
    """Linux: restart the peak-RSS counter (VmHWM), so it covers generation only."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    # VmHWM belongs to this process image; ru_maxrss would also count the parent before exec.
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def speech(seconds: float, folder: Path, audio_file: str | None = None) -> np.ndarray:
    """``audio_file`` (any recording), else espeak-ng speech, else noise, looped to ``seconds``."""
    from gestura.inference.audio import load_audio

    exe = shutil.which("espeak-ng")
    if audio_file:
        piece = load_audio(audio_file)
    elif exe:
        wav = folder / "speech.wav"
        subprocess.run([exe, "-s", str(SPEECH_RATE), "-w", str(wav), SPEECH_TEXT], check=True)
        piece = load_audio(wav)
    else:
        piece = (0.1 * np.random.default_rng(0).standard_normal(16000 * 10)).astype(np.float32)
    reps = int(np.ceil(seconds * 16000 / len(piece)))
    return np.tile(piece, reps)[: int(seconds * 16000)]


def ensure_checkpoint(folder: Path) -> str:
    from gestura.inference.checkpoint import CheckpointError, default_checkpoint_path, load_checkpoint

    bundled = default_checkpoint_path()
    if bundled.is_file():
        try:
            load_checkpoint(bundled)
            return str(bundled)
        except CheckpointError as error:  # e.g. a bundled model of an older format, not yet retrained
            print(f"bundled model not used ({error})")
    sys.path.insert(0, str(REPO / "tests"))
    from random_checkpoint import write_random_checkpoint

    from gestura.inference.config import CONFIGS

    return str(write_random_checkpoint(folder / "small-random.safetensors", CONFIGS["small"],
                                       styles=[f"style{i}" for i in range(CONFIGS["small"].num_styles)]))


def child(engine_name: str, seconds: float, checkpoint_path: str, audio_path: str, threads: int,
          style_strength: float, plan_strength: float, whole_clip: bool = False) -> dict:
    """One measurement, in this (fresh) process."""
    from gestura.inference import pipeline
    from gestura.inference.checkpoint import load_checkpoint
    from gestura.inference.features import num_frames

    audio = np.load(audio_path, allow_pickle=False)[: int(seconds * 16000)]
    checkpoint = load_checkpoint(checkpoint_path)
    if whole_clip:
        codes = -(-num_frames(len(audio)) // checkpoint.config.frames_per_code)
        checkpoint.config = checkpoint.config.with_(span_codes=max(codes, 1), prefix_codes=0, carried_codes=None)
    cuda_peak = None
    if engine_name == "numpy":
        from gestura.inference.engines.numpy import NumpyEngine

        engine = NumpyEngine()
    else:
        import torch

        torch.set_num_threads(threads)
        from gestura.inference.engines.torch import TorchEngine

        engine = TorchEngine("cuda" if engine_name == "torch-cuda" else "cpu")
    request = pipeline.GenerationRequest(audio=audio, seed=1, style_strength=style_strength,
                                         plan_strength=plan_strength)
    engine.prepare(checkpoint)
    if engine_name == "torch-cuda":
        # The first CUDA call compiles Triton kernels and sets up cuBLAS and the allocator: an
        # untimed generation of 6 s (two windows of either family, so every shape a window takes
        # has run) keeps that out of the numbers (the CPU engines have no such cost).
        warm = pipeline.GenerationRequest(audio=audio[: 6 * 16000], seed=1, style_strength=style_strength,
                                          plan_strength=plan_strength)
        pipeline.generate(warm, checkpoint=checkpoint, engine=engine)
        torch.cuda.synchronize()
    before = rss_mb()
    reset_peak()
    if engine_name == "torch-cuda":
        torch.cuda.reset_peak_memory_stats()
    start, cpu_start = time.perf_counter(), time.process_time()
    motion = pipeline.generate(request, checkpoint=checkpoint, engine=engine)
    if engine_name == "torch-cuda":
        torch.cuda.synchronize()
        cuda_peak = torch.cuda.max_memory_allocated() / 2**20
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"engine": engine_name, "seconds": seconds, "frames": motion.num_frames, "wall": elapsed, "cpu": cpu,
            "rss_peak_mb": peak_rss_mb(), "rss_before_mb": before, "cuda_peak_mb": cuda_peak}


def agreement(checkpoint_path: str, audio: np.ndarray) -> dict:
    """numpy vs torch (CPU) at temperature 0 on the same clip."""
    import torch

    torch.set_num_threads(1)
    from gestura.inference import pipeline
    from gestura.inference.checkpoint import load_checkpoint
    from gestura.inference.engines.numpy import NumpyEngine
    from gestura.inference.engines.torch import TorchEngine
    from gestura.rigs.rotations import axis_angle_to_matrix

    checkpoint = load_checkpoint(checkpoint_path)
    request = pipeline.GenerationRequest(audio=audio, temperature=0.0)
    a, b = (pipeline.generate(request, checkpoint=checkpoint, engine=e) for e in (TorchEngine("cpu"), NumpyEngine()))
    ra, rb = axis_angle_to_matrix(a.poses.astype(np.float64)), axis_angle_to_matrix(b.poses.astype(np.float64))
    angle = np.arccos(np.clip((np.einsum("...ij,...ij->...", ra, rb) - 1) / 2, -1, 1))
    return {"frames": a.num_frames, "max_angle_rad": float(angle.max()),
            "max_trans_m": float(np.abs(a.trans - b.trans).max()),
            "max_expression": float(np.abs(a.expressions - b.expressions).max())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 60, 600])
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    parser.add_argument("--checkpoint", help="checkpoint to time (default: the bundled model, or a random 'small')")
    parser.add_argument("--style-strength", type=float, default=DEFAULT_STYLE_STRENGTH,
                        help=f"style strength (default {DEFAULT_STYLE_STRENGTH:g}, every front end's)")
    parser.add_argument("--plan-strength", type=float, default=DEFAULT_PLAN_STRENGTH,
                        help=f"plan strength (default {DEFAULT_PLAN_STRENGTH:g}, every front end's)")
    parser.add_argument("--whole-clip", action="store_true", help="one window over each whole clip")
    parser.add_argument("--audio", help="a recording to time, looped to each length (default: espeak-ng speech); "
                                        "windows with nothing planned skip the empty-plan row, so cost depends on "
                                        "the speech at plan strength other than 1")
    parser.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        engine_name, seconds, checkpoint, audio = args._child
        print("RESULT " + json.dumps(child(engine_name, float(seconds), checkpoint, audio, args.threads,
                                           args.style_strength, args.plan_strength, args.whole_clip)))
        return 0

    print(f"machine: {machine()}")
    engines = list(args.engines)
    try:
        import torch

        if not torch.cuda.is_available() and "torch-cuda" in engines:
            engines.remove("torch-cuda")
            print("torch-cuda: skipped (no CUDA device)")
    except ImportError:
        engines = [e for e in engines if e == "numpy"]
        print("torch: skipped (not installed)")
    with tempfile.TemporaryDirectory(prefix="gestura-bench-") as tmp:
        folder = Path(tmp)
        checkpoint = args.checkpoint or ensure_checkpoint(folder)
        audio = speech(max(args.seconds), folder, args.audio)
        audio_path = folder / "audio.npy"
        np.save(audio_path, audio, allow_pickle=False)
        print(f"checkpoint: {checkpoint}; audio: {args.audio or 'espeak-ng speech'}")
        # BLAS and OpenMP pools read these at start-up: the same thread budget for every engine.
        child_env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
                         MKL_NUM_THREADS=str(args.threads))
        print(f"threads per engine (torch, BLAS): {args.threads}; style strength {args.style_strength:g}, "
              f"plan strength {args.plan_strength:g}")
        print(f"{'engine':<11} {'audio s':>8} {'frames':>7} {'wall s':>8} {'audio s/s':>10} {'ms/audio s':>11} "
              f"{'CPU ms/audio s':>15} {'peak RSS MB':>16} {'CUDA MB':>8}")
        for engine_name in engines:
            for seconds in args.seconds:
                done = subprocess.run(
                    [sys.executable, __file__, "--threads", str(args.threads), "--style-strength",
                     str(args.style_strength), "--plan-strength", str(args.plan_strength), *(["--whole-clip"] if args.whole_clip else []), "--_child", engine_name,
                     str(seconds), checkpoint, str(audio_path)],
                    capture_output=True, text=True, env=child_env)
                lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
                if done.returncode != 0 or not lines:
                    print(f"{engine_name:<11} {seconds:>8.0f} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
                    continue
                r = json.loads(lines[-1][7:])
                rate = r["seconds"] / r["wall"]
                rss = f"{r['rss_peak_mb']:.0f} (+{r['rss_peak_mb'] - r['rss_before_mb']:.0f})"
                cuda = f"{r['cuda_peak_mb']:.0f}" if r["cuda_peak_mb"] is not None else "-"
                print(f"{engine_name:<11} {r['seconds']:>8.0f} {r['frames']:>7} {r['wall']:>8.2f} {rate:>10.2f} "
                      f"{1000 * r['wall'] / r['seconds']:>11.1f} {1000 * r['cpu'] / r['seconds']:>15.1f} {rss:>16} "
                      f"{cuda:>8}", flush=True)
        if "torch-cpu" in engines and "numpy" in engines:
            a = agreement(checkpoint, audio[: 16000 * 10])
            print(f"numpy vs torch, 10 s at temperature 0 ({a['frames']} frames): max joint angle "
                  f"{a['max_angle_rad']:.2e} rad, max translation {a['max_trans_m']:.2e} m, "
                  f"max expression {a['max_expression']:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
