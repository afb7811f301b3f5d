"""Time "Generate from audio" as an animator gets it: bpy.ops.gestura.generate in Blender.

    .venv/bin/python bench/bench_operator.py                    # Blender 5.0: numpy and torch engines
    .venv-blender42/bin/python bench/bench_operator.py          # Blender 4.2: numpy engine
    .venv/bin/python bench/bench_operator.py --seconds 10 60 --engines numpy --threads 2

Per engine and clip length (fastest of --repeat runs, each part on its own): the whole operator call (reading settings, loading the audio, the
model, writing keyframes, the sound strip) and its three steps timed separately
(plan_generation, run_generation, apply_generation). The checkpoint is the bundled model when it
exists, else a randomly initialised one of the same config ("small"): speed does not depend on the
weights. The audio is espeak-ng speech repeated to length. Style strength 1 (one stream; the
panel's default 1.5 runs the network twice, see bench_engines.py). Prints the machine first.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="gestura-bench-"))


def speech(seconds: float, folder: Path) -> Path:
    """espeak-ng speech repeated to ``seconds`` (a 16-bit mono wav)."""
    import numpy as np

    source = folder / "phrase.wav"
    subprocess.run(["espeak-ng", "-w", str(source), "Here is the thing: when we talk, our hands keep time "
                    "with the words, and that is what the model has to learn."], check=True)
    with wave.open(str(source)) as w:
        rate, data = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    count = int(seconds * rate)
    out = folder / f"speech_{int(seconds)}s.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.resize(data, count).tobytes())
    return out


def checkpoint(folder: Path) -> tuple[str, str]:
    from gestura.inference.checkpoint import default_checkpoint_path
    from gestura.inference.config import CONFIGS

    bundled = default_checkpoint_path()
    if bundled.is_file():
        return str(bundled), "bundled model"
    sys.path.insert(0, str(REPO / "tests"))
    from random_checkpoint import write_random_checkpoint

    config = CONFIGS["small"]
    path = write_random_checkpoint(folder / "small-random.safetensors", config,
                                   styles=[f"style{i}" for i in range(config.num_styles)])
    return str(path), "random 'small' config (no bundled model yet)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    parser.add_argument("--engines", nargs="+", default=None, help="numpy, torch (default: those that import)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is shown")
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is needed for the speech: apt-get install espeak-ng", file=sys.stderr)
        return 2

    import bpy  # noqa: I001 - bpy puts addon_utils on the path
    import addon_utils
    import numpy as np

    addon_utils.enable("gestura")
    from gestura.blender.operators import generate

    engines = args.engines or (["numpy", "torch"] if _has_torch() else ["numpy"])
    torch_info = "no torch"
    if _has_torch():
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        torch_info = f"torch {torch.__version__}, {torch.get_num_threads()} threads, " + (
            f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU")
    folder = Path(tempfile.mkdtemp(prefix="gestura-bench-op-"))
    ckpt, ckpt_label = checkpoint(folder)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}, Blender {bpy.app.version_string}, numpy {np.__version__}, {torch_info}")
    print(f"checkpoint: {ckpt_label}")
    print(f"{'engine':8s} {'audio s':>8s} {'operator s':>11s} {'plan s':>7s} {'model s':>8s} {'apply s':>8s}  audio s per s")
    for seconds in args.seconds:
        audio = speech(seconds, folder)
        for engine in engines:
            overrides = {"audio_path": str(audio), "checkpoint": ckpt, "engine": engine.upper(), "new_armature": True,
                         "style_strength": 1.0, "plan_strength": 1.0}
            # Warm-up: imports and the first checkpoint load are paid once per Blender session.
            bpy.ops.wm.read_homefile(use_empty=True)
            generate.run_generation(generate.plan_generation(bpy.context, overrides))

            best = None
            for _ in range(args.repeat):
                bpy.ops.wm.read_homefile(use_empty=True)
                started = time.perf_counter()
                result = bpy.ops.gestura.generate(**overrides)
                total = time.perf_counter() - started
                assert result == {"FINISHED"}, result

                bpy.ops.wm.read_homefile(use_empty=True)
                t0 = time.perf_counter()
                plan = generate.plan_generation(bpy.context, overrides)
                t1 = time.perf_counter()
                motion = generate.run_generation(plan)
                t2 = time.perf_counter()
                generate.apply_generation(bpy.context, plan, motion)
                t3 = time.perf_counter()
                runs = (total, t1 - t0, t2 - t1, t3 - t2)
                best = runs if best is None else tuple(min(a, b) for a, b in zip(best, runs))
            total, plan_s, model_s, apply_s = best
            print(f"{engine:8s} {seconds:8.0f} {total:11.2f} {plan_s:7.2f} {model_s:8.2f} {apply_s:8.2f}  "
                  f"{seconds / total:8.1f}", flush=True)
    return 0


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # The bpy 4.2 wheel crashes in interpreter teardown after an add-on with property callbacks
    # was registered; the numbers are out by now.
    os._exit(code)
