"""``gestura generate AUDIO... -o OUT``: speech files to SMPL-X motion files (.npz, .bvh or .blend).

One output file for one audio file (``-o take.npz``), or a folder for several
(``-o out/ --format bvh`` writes ``out/<audio name>.bvh``); AUDIO may name folders of audio files.
Outputs that exist are skipped unless ``--overwrite``. ``.blend`` files (an SMPL-X armature with
the motion as an action and the speech as a sound strip) need the ``bpy`` module in this Python. The model is loaded once for the
whole batch; a progress bar on stderr follows long or many files. Cheap to import: numpy, torch
and the model load inside ``run``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..cli import CommandError
from .sampling import DEFAULT_STYLE_STRENGTH, DEFAULT_TEMPERATURE

FORMATS = ("npz", "bvh", "blend")
# Files at least this long (seconds of audio, in total) get a progress bar even when alone.
LONG_AUDIO_S = 20.0


def add_arguments(parser) -> None:
    parser.add_argument("audio", nargs="+",
                        help="speech files (wav, flac, ogg, ...; any rate and channel count) or folders of them")
    parser.add_argument("-o", "--output", required=True,
                        help="OUT.npz, OUT.bvh or OUT.blend for one audio file, or a folder for several")
    parser.add_argument("--format", choices=FORMATS, default="npz",
                        help="file type written into an output folder (default npz)")
    parser.add_argument("--checkpoint", default=None, help="model .safetensors (default: the bundled model)")
    parser.add_argument("--style", default=None, help="speaker style name from the checkpoint (default: its first)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same motion")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                        help=f"sampling temperature; 0 = always the most likely motion (default {DEFAULT_TEMPERATURE})")
    parser.add_argument("--style-strength", type=float, default=DEFAULT_STYLE_STRENGTH,
                        help="how strongly the style shows: 0 = no particular speaker, 1 = as the model learnt it, "
                             f"more exaggerates it; other than 1 doubles the work (default {DEFAULT_STYLE_STRENGTH:g})")
    parser.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely codes")
    parser.add_argument("--top-p", type=float, default=None, help="sample only within this probability mass")
    parser.add_argument("--parts", default=None,
                        help="body parts to generate, comma-separated from face,upper,hands,lower (default all); "
                             "the others stay at rest")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the torch engine runs (default: CUDA when available)")
    parser.add_argument("--engine", choices=("auto", "torch", "numpy"), default="auto",
                        help="model engine (default: torch when installed, else numpy)")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist (default: skip them)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


class ProgressBar:
    """A one-line bar on a terminal; on a pipe or log, one line per finished file."""

    def __init__(self, stream, total_seconds: float, files: int, enabled: bool):
        self.stream, self.total, self.files, self.enabled = stream, max(total_seconds, 1e-9), files, enabled
        self.tty = enabled and hasattr(stream, "isatty") and stream.isatty()
        self.done_seconds = 0.0
        self.last = 0.0

    def update(self, index: int, name: str, file_seconds: float, fraction: float) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and fraction < 1.0:
            return
        self.last = now
        overall = min(1.0, (self.done_seconds + fraction * file_seconds) / self.total)
        width = 30
        filled = int(round(overall * width))
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * overall:5.1f}%  "
                          f"file {index + 1}/{self.files} {name[:40]}")
        self.stream.flush()

    def file_done(self, index: int, name: str, file_seconds: float, out: Path, elapsed: float) -> None:
        self.done_seconds += file_seconds
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(f"{index + 1}/{self.files} {name}: {file_seconds:.1f} s of audio -> {out} "
                          f"({elapsed:.1f} s)\n")
        self.stream.flush()


def _outputs(audio_files, out: str, fmt: str) -> list[Path]:
    out_path = Path(out).expanduser()
    if out_path.suffix.lower() in tuple("." + f for f in FORMATS):
        if len(audio_files) != 1:
            raise CommandError(f"'{out}' names one file but {len(audio_files)} audio files were given: "
                               "pass a folder as the output")
        return [out_path]
    if out_path.suffix:
        raise CommandError(f"output '{out}' must end in .npz, .bvh or .blend, or be a folder")
    if out_path.exists() and not out_path.is_dir():
        raise CommandError(f"output '{out}' is a file, not a folder")
    paths = [out_path / (Path(a).stem + "." + fmt) for a in audio_files]
    if len(set(paths)) != len(paths):
        raise CommandError("two audio files have the same name and would write the same output: rename one")
    return paths


def _warn(found) -> None:
    # Notices (silent audio, a down-mix, a device fallback) as one line each, not Python warnings.
    for message in found:
        print(f"gestura generate: warning: {message}", file=sys.stderr, flush=True)


def run(args) -> int:
    import numpy as np

    from ..blend_output import BlendOutputError, bpy_available, write_blend
    from ..jobs import JobError, collect_audio, parse_parts
    from ..rigs import motion_io
    from ..rigs.motion import MotionError
    from .audio import AudioError, load_audio
    from .checkpoint import CheckpointError, load_checkpoint
    from .engines import EngineError, resolve_engine
    from .notices import collect
    from .pipeline import GenerationError, GenerationRequest, generate

    try:
        audio_files = collect_audio(args.audio)
    except JobError as error:
        raise CommandError(str(error)) from None
    outputs = _outputs(audio_files, args.output, args.format)
    if any(out.suffix.lower() == ".blend" for out in outputs) and not bpy_available():
        raise CommandError("writing .blend files needs the bpy module in this Python (pip install bpy, Python 3.11), "
                           "or run: blender -b -P <gestura folder>/blender_batch.py -- --audio ... --out ...")
    todo = [(a, o) for a, o in zip(audio_files, outputs) if args.overwrite or not o.exists()]
    for out in outputs:
        if out.exists() and not args.overwrite:
            print(f"'{out}' exists, skipped (pass --overwrite to replace it)", file=sys.stderr)
    if not todo:
        return 0
    audio_files, outputs = [a for a, _ in todo], [o for _, o in todo]
    try:
        parts = parse_parts(args.parts)
    except JobError as error:
        raise CommandError(str(error)) from None
    try:
        checkpoint = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise CommandError(str(error)) from None
    try:
        with collect() as found:
            engine = resolve_engine(args.engine, args.device)
            engine.prepare(checkpoint)
    except EngineError as error:
        raise CommandError(str(error)) from None
    _warn(found)

    waves, notices = [], []
    for path in audio_files:
        try:
            with collect() as found:
                waves.append(load_audio(path))
        except AudioError as error:
            raise CommandError(str(error)) from None
        notices.append(found)
    seconds = [len(w) / 16000 for w in waves]
    show = not args.quiet and (len(waves) > 1 or sum(seconds) >= LONG_AUDIO_S)
    bar = ProgressBar(sys.stderr, sum(seconds), len(waves), show)
    if Path(args.output).suffix.lower() not in tuple("." + f for f in FORMATS):
        Path(args.output).expanduser().mkdir(parents=True, exist_ok=True)
    for index, (path, wave, out) in enumerate(zip(audio_files, waves, outputs)):
        started = time.monotonic()
        request = GenerationRequest(audio=np.asarray(wave), style=args.style, seed=args.seed,
                                    temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                                    style_strength=args.style_strength, parts=parts, device=args.device)
        try:
            # The file's notices so far continue: its audio is checked again, and said once.
            with collect(into=notices[index]):
                motion = generate(request, checkpoint=checkpoint, engine=engine,
                                  progress=lambda f, m, i=index, n=path.name, s=seconds[index]: bar.update(i, n, s, f))
            if out.suffix.lower() == ".bvh":
                motion_io.save_bvh(motion, out, overwrite=args.overwrite)
            elif out.suffix.lower() == ".blend":
                write_blend(motion, path, out, seed=args.seed, parts=parts, overwrite=args.overwrite)
            else:
                motion_io.save_npz(motion, out, overwrite=args.overwrite)
        except (GenerationError, AudioError, MotionError, BlendOutputError) as error:
            raise CommandError(f"{path.name}: {error}") from None
        bar.file_done(index, path.name, seconds[index], out, time.monotonic() - started)
        _warn(notices[index])
    if not show and not args.quiet:
        for path, out in zip(audio_files, outputs):
            print(f"{path} -> {out}")
    return 0
