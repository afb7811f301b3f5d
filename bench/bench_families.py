"""Model families side by side (issue 16): the VQ + Mamba default, DiM-Gestor and its transformer
baseline, one table with every row from the same run on the same machine.

    .venv/bin/python bench/bench_families.py --data CORPUS --fgd-encoder FGD --out FOLDER \\
        --model vq-mamba=weights/gestura-small.safetensors --model dim-gestor=DIM.safetensors \\
        --model transformer=BASELINE.safetensors [--seconds 10 60 600] [--steps 4 10 25 50] \\
        [--voice dim-gestor=DIM2.safetensors@CORPUS2] [--takes 3]

For each ``--model NAME=CHECKPOINT``:
1. quality on the held-out split: ``gestura eval --split test`` at the model card's settings
   (temperature 0.9, style strength 1.5, seed 0): apex ratio, corpus correlation, rest in silence,
   frozen arms, jitter, FGD;
2. diversity of takes: mean L1 distance (m) between the joint positions of two seeds' motions on the
   same audio, over the first ``--diversity-clips`` test clips, at the same settings; and on the
   same takes, seams: the jerk where one generation window meets the next over the jerk elsewhere
   (``metrics.seam_jitter``; 1 = no visible join);
3. generation time and peak memory at each ``--seconds`` of speech, each in a fresh process
   (``bench_engines.py``): the PyTorch engine on one CPU thread (and on CUDA where there is one),
   style strength 1 (one stream); for diffusion models also with one window over the whole clip
   (``--whole-clip``), which shows how the denoiser's cost grows with length.
Then, for each DiM-Gestor model (Mamba-2 denoiser), quality against DDIM steps (``--steps``, on
the first ``--sweep-clips`` test clips, rest in silence on one seed), and for each ``--voice NAME=CHECKPOINT@CORPUS`` (a diffusion model trained on a corpus whose
gesture energy follows the delivery): with no style given, the correlation within each speaker of
the generated mean wrist speed with the clip's loudness variation and syllable rate
(``metrics.delivery_correlation``), next to the corpus's own; and with each clip's style given,
each style's wrist speed, stroke rate and hand height (above the rest pose, on a synthetic corpus)
over the corpus's.

Results are kept in FOLDER (eval JSONs and measurements); a result that exists is reused, so
running the command again reprints the tables; delete FOLDER to redo them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_engines import speech  # bench/ is on sys.path when a bench script runs
from bench_granularity import METRICS as QUALITY
from machine_info import machine

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"temperature": 0.9, "style_strength": 1.5}


def named(text: str) -> tuple[str, str]:
    name, _, path = text.partition("=")
    if not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=CHECKPOINT")
    return name, path


def run_eval(checkpoint: str, data: str, fgd: str, report: Path, rest_seeds: int = 5, max_clips: int = 0,
             sampling_steps: int | None = None, takes: int = 1) -> dict:
    if not report.is_file():
        report.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "gestura", "eval", "--data", data, "--split", "test", "--checkpoint", checkpoint,
                   "--fgd-encoder", fgd, "--temperature", str(SETTINGS["temperature"]), "--style-strength",
                   str(SETTINGS["style_strength"]), "--seed", "0", "--device", "cpu", "--threads", "1",
                   "--rest-seeds", str(rest_seeds), "--max-clips", str(max_clips), "--takes", str(takes), "--no-progress",
                   "--json", str(report),
                   *(["--sampling-steps", str(sampling_steps)] if sampling_steps else [])]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bench_families: eval of {checkpoint} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(report.read_text())


def test_clips(data: str, limit: int | None = None):
    from gestura.training.dataset import Beat2Dataset

    clips = Beat2Dataset.load(data, ("test",), None, cache=True, keep_wave=True).clips
    return clips[:limit] if limit else clips


def generate_positions(checkpoint, clips, *, seed: int, style_of) -> list:
    import torch

    from gestura.inference.pipeline import GenerationRequest, generate
    from gestura.training.dataset import joint_positions

    torch.set_num_threads(1)
    out = []
    for i, clip in enumerate(clips):
        request = GenerationRequest(audio=clip.wave, style=style_of(clip), seed=seed + i, **SETTINGS)
        motion = generate(request, checkpoint=checkpoint, engine="torch")
        out.append(joint_positions(motion)[: clip.num_frames])
    return out


def takes(checkpoint_path: str, data: str, count: int, report: Path) -> dict:
    """Two seeds' takes of the first ``count`` test clips (each in its own style): the mean L1
    distance (m) between their joint positions, and the jerk where windows join over elsewhere
    (``metrics.seam_jitter``, both takes)."""
    if not report.is_file():
        from gestura.inference.checkpoint import load_checkpoint
        from gestura.training import metrics

        checkpoint = load_checkpoint(checkpoint_path)
        config = checkpoint.config
        clips = test_clips(data, count)
        style = lambda clip: clip.ref.style if clip.ref.style in checkpoint.styles else None  # noqa: E731
        a, b = (generate_positions(checkpoint, clips, seed=s, style_of=style) for s in (0, 1000))
        report.write_text(json.dumps({
            "diversity_l1_m": float(np.mean([np.abs(x - y).mean() for x, y in zip(a, b)])),
            "seam_jitter": metrics.seam_jitter(a + b, every=config.span_codes * config.frames_per_code),
            "clips": len(clips)}))
    return json.loads(report.read_text())


def cost(checkpoint: str, seconds: float, audio_path: Path, engine: str, whole: bool, report: Path) -> dict | None:
    """bench_engines.py's measurement in a fresh process: wall seconds and peak memory (MB)."""
    if not report.is_file():
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        command = [sys.executable, str(REPO / "bench" / "bench_engines.py"), "--threads", "1", "--style-strength", "1",
                   *(["--whole-clip"] if whole else []), "--_child", engine, str(seconds), checkpoint, str(audio_path)]
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            print(f"  {report.stem}: failed ({(done.stderr.strip().splitlines() or ['?'])[-1]})", flush=True)
            return None
        report.write_text(lines[-1][7:])
    result = json.loads(report.read_text())
    if abs(result["seconds"] - seconds) > 1e-6 or result["frames"] < int(seconds * 30) - 1:
        raise SystemExit(f"bench_families: {report} measured {result['frames']} frames, not {seconds:g} s: delete it")
    return result


def voice_report(checkpoint_path: str, data: str, report: Path) -> dict:
    """Delivery correlations (no style given) of the model and of the corpus, within speakers."""
    if not report.is_file():
        from gestura.inference.checkpoint import load_checkpoint
        from gestura.training import metrics

        checkpoint = load_checkpoint(checkpoint_path)
        clips = test_clips(data)
        generated = generate_positions(checkpoint, clips, seed=0, style_of=lambda clip: None)
        waves, speakers = [c.wave for c in clips], [c.ref.style for c in clips]
        report.write_text(json.dumps({
            "generated": metrics.delivery_correlation(waves, generated, groups=speakers),
            "corpus": metrics.delivery_correlation(waves, [c.positions for c in clips], groups=speakers),
            "clips": len(clips)}))
    return json.loads(report.read_text())


def fmt(value, pattern: str, scale: float = 1.0) -> str:
    return "-" if value is None or value != value else pattern.format(value * scale)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="corpus in the BEAT2 layout with a test split")
    parser.add_argument("--fgd-encoder", required=True, help="FGD encoder (gestura train-fgd)")
    parser.add_argument("--out", required=True, help="folder for the results (reused when run again)")
    parser.add_argument("--model", action="append", type=named, required=True, metavar="NAME=CHECKPOINT")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 60, 600])
    parser.add_argument("--steps", type=int, nargs="*", default=[4, 10, 25, 50],
                        help="DDIM step counts to evaluate diffusion models at (default 4 10 25 50; none to skip)")
    parser.add_argument("--sweep-clips", type=int, default=6,
                        help="test clips the DDIM-step sweep scores (default 6; 0 = all)")
    parser.add_argument("--diversity-clips", type=int, default=8)
    parser.add_argument("--voice", action="append", default=[], metavar="NAME=CHECKPOINT@CORPUS")
    parser.add_argument("--takes", type=int, default=1,
                        help="takes per clip for the quality rows and the per-speaker figures (gestura eval --takes; "
                             "default 1)")
    args = parser.parse_args(argv)
    suffix = f"-takes{args.takes}" if args.takes > 1 else ""

    import torch

    from gestura.inference.checkpoint import load_checkpoint

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"data: {args.data} (test split); settings: temperature {SETTINGS['temperature']}, style strength "
          f"{SETTINGS['style_strength']}, seed 0; time and memory: torch engine, 1 thread, style strength 1")
    engines = ["torch-cpu"] + (["torch-cuda"] if torch.cuda.is_available() else [])
    models = [(name, path, load_checkpoint(path).config) for name, path in args.model]
    audio_path = out / f"speech-{max(args.seconds):g}s.npy"
    if not audio_path.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            np.save(audio_path, speech(max(args.seconds), Path(tmp)), allow_pickle=False)

    rows = []
    for name, path, config in models:
        folder = out / name
        print(f"{name}: quality, diversity, cost ...", flush=True)
        quality = run_eval(path, args.data, args.fgd_encoder, folder / f"eval{suffix}.json", takes=args.takes)["generated"]
        div = takes(path, args.data, args.diversity_clips, folder / "takes.json")
        modes = [False, True] if config.family == "dim-gestor" else [False]
        costs = {(engine, whole, s): cost(path, s, audio_path, engine, whole,
                                          folder / f"cost-{engine}-{'whole' if whole else 'windows'}-{s:g}.json")
                 for engine in engines for whole in modes for s in args.seconds}
        rows.append((name, config, quality, div, costs, modes))

    head = f"{'model':<14} " + " ".join(f"{c:>8}" for _, c, _, _ in QUALITY) + f" {'div m':>7} {'seam':>6}"
    print("\nquality on the held-out test split (corpus on the same clips in the last row)")
    print(head)
    for name, config, quality, div, _, _ in rows:
        print(f"{name:<14} " + " ".join(f"{fmt(quality.get(k), p, s):>8}" for k, _, p, s in QUALITY)
              + f" {div['diversity_l1_m']:>7.3f} {fmt(div['seam_jitter'], '{:.2f}'):>6}")
    # The corpus's figures do not depend on the model: the first model's evaluation holds them.
    truth = run_eval(models[0][1], args.data, args.fgd_encoder, out / models[0][0] / f"eval{suffix}.json",
                     takes=args.takes)["ground_truth"]
    print(f"{'corpus':<14} " + " ".join(f"{fmt(truth.get(k), p, s):>8}" for k, _, p, s in QUALITY) + f" {'-':>7} {'-':>6}")

    for engine in engines:
        print(f"\ngeneration time s / peak resident memory MB ({engine}); 'whole': one window over the whole clip")
        print(f"{'model':<26} " + " ".join(f"{f'{s:g} s':>15}" for s in args.seconds))
        for name, config, _, _, costs, modes in rows:
            for whole in modes:
                cells = []
                for s in args.seconds:
                    r = costs[(engine, whole, s)]
                    mem = r and (r["cuda_peak_mb"] if engine == "torch-cuda" else r["rss_peak_mb"])
                    cells.append("failed" if r is None else f"{r['wall']:.2f} / {mem:.0f}")
                label = f"{name} ({'whole' if whole else 'windows'})"
                print(f"{label:<26} " + " ".join(f"{c:>15}" for c in cells))
        dims = {name: costs for name, config, _, _, costs, _ in rows if config.family == "dim-gestor"}
        baseline = [n for n, c, *_ in rows if c.family == "dim-gestor" and c.denoiser_block == "attention"]
        mamba = [n for n, c, *_ in rows if c.family == "dim-gestor" and c.denoiser_block == "mamba2"]
        longest = max(args.seconds)
        for b in baseline:
            for m in mamba:
                for whole in (False, True):
                    rb, rm = dims[b][(engine, whole, longest)], dims[m][(engine, whole, longest)]
                    if rb and rm:
                        key = "cuda_peak_mb" if engine == "torch-cuda" else "rss_peak_mb"
                        print(f"{b} over {m} at {longest:g} s ({'whole clip' if whole else 'windows'}): time "
                              f"{rb['wall'] / rm['wall']:.2f}x, peak memory {rb[key] / rm[key]:.2f}x "
                              f"(DiM-Gestor paper: 2-4x faster, 2.4x less memory than its transformer)")

    for name, path, config in models:
        if config.family != "dim-gestor" or config.denoiser_block != "mamba2" or not args.steps:
            continue
        print(f"\n{name}: quality against DDIM steps (the first {args.sweep_clips or 'all'} test clips; rest in "
              "silence on one seed)")
        print(f"{'steps':<14} " + " ".join(f"{c:>8}" for _, c, _, _ in QUALITY))
        for steps in args.steps:
            quality = run_eval(path, args.data, args.fgd_encoder, out / name / f"eval-steps-{steps}.json",
                               rest_seeds=1, max_clips=args.sweep_clips, sampling_steps=steps)["generated"]
            print(f"{steps:<14} " + " ".join(f"{fmt(quality.get(k), p, s):>8}" for k, _, p, s in QUALITY))

    for item in args.voice:
        name, _, rest = item.partition("=")
        path, _, corpus = rest.partition("@")
        folder = out / f"voice-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        voice = voice_report(path, corpus, folder / "voice.json")
        print(f"\n{name} on {corpus} ({voice['clips']} test clips): with no style, correlation within speakers of the "
              "mean wrist speed with the delivery")
        for measure in ("loudness_variation", "syllable_rate"):
            print(f"  {measure:<20} generated {fmt(voice['generated'][measure], '{:+.2f}')}   corpus "
                  f"{fmt(voice['corpus'][measure], '{:+.2f}')}")
        result = run_eval(path, corpus, args.fgd_encoder, folder / f"eval{suffix}.json", takes=args.takes)
        rest = result["rest_hand_height"]
        print(f"  with each clip's style (strength {SETTINGS['style_strength']}, {args.takes} take(s) per clip), "
              "generated over corpus: wrist speed, stroke rate, and the higher hand's height above " +
              ("the pelvis (no rest pose known: no ratio)" if rest is None else
               f"rest (m; rest is {rest:+.3f} above the pelvis)"))
        for style, pair in result["styles"].items():
            ratio = pair["ratio"]
            lift = [pair[k]["hand_height"] - (rest or 0.0) for k in ("generated", "ground_truth")]
            print(f"  {style:<20} speed {fmt(ratio['wrist_speed'], '{:.2f}x')}  strokes {fmt(ratio['stroke_rate'], '{:.2f}x')}"
                  f"  height {lift[0]:.3f} / {lift[1]:.3f} = {fmt(ratio['hand_height'], '{:.2f}x')}")
        inside = result["styles_within_tolerance"]
        print(f"  {inside['within']} of {inside['of']} within {inside['tolerance'] * 100:.0f} % of the speaker's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
