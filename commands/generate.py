"""``gestura generate AUDIO... -o OUT``: speech files to SMPL-X motion files (.npz, .bvh or .blend).

One output file for one audio file (``-o take.npz``), or a folder for several
(``-o out/ --format bvh`` writes ``out/<audio name>.bvh``); AUDIO may name folders of audio files.
Outputs that exist are skipped unless ``--overwrite``; outputs are checked before any work, and a
file that fails (audio, model or write) is reported at the end while the others are written.
``.blend`` files (an SMPL-X armature with the motion as an action and the speech as a sound strip)
need the ``bpy`` module in this Python. The model is loaded once for the whole batch; a progress
bar on stderr follows long or many files. Cheap to import: numpy, torch and the model load inside
``run``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import CommandError, GesturaError
from ..inference.engines.base import DEVICES
from ..inference.engines.registry import COMMAND_LINE_ENGINES
from ..inference.sampling import DEFAULT_PLAN_STRENGTH, DEFAULT_STYLE_STRENGTH, DEFAULT_TEMPERATURE
from .generation_options import add_generation_options

FORMATS = ("npz", "bvh", "blend")
# Files at least this long (seconds of audio, in total) get a progress bar even when alone.
LONG_AUDIO_S = 20.0


def add_arguments(parser) -> None:
    parser.add_argument("audio", nargs="+",
                        help="speech files (wav, flac, ogg, ...; any rate and channel count) or folders of them")
    parser.add_argument("-o", "--output", required=True,
                        help="OUT.npz, OUT.bvh or OUT.blend for one audio file, or a folder for several")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="file type written into an output folder (default npz)")
    add_generation_options(
        parser, engines=COMMAND_LINE_ENGINES, engine_default="auto",
        engine_help="model engine (default: torch when installed, else numpy)",
        temperature_default=DEFAULT_TEMPERATURE, style_strength_default=DEFAULT_STYLE_STRENGTH,
        plan_strength_default=DEFAULT_PLAN_STRENGTH,
        checkpoint_help="model .safetensors (default: the bundled model)",
        overwrite_help="replace output files that exist (default: skip them)")
    parser.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely codes")
    parser.add_argument("--top-p", type=float, default=None, help="sample only within this probability mass")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where the torch engine runs (default: CUDA when available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of the torch engine (default: 1 on the CPU)")
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


def _warn(found) -> None:
    # Notices (silent audio, a down-mix, a device fallback) as one line each, not Python warnings.
    for message in found:
        print(f"gestura generate: warning: {message}", file=sys.stderr, flush=True)


def run(args) -> int:
    import numpy as np

    from ..blender.blend_output import bpy_available, write_blend
    from ..inference.audio import AudioError, load_audio, readable_extensions
    from ..inference.checkpoint import load_checkpoint
    from ..inference.engines import EngineError, resolve_engine
    from ..inference.notices import collect
    from ..inference.pipeline import GenerationRequest, check_settings, generate
    from ..inference.batch import JobError, check_output_folder, collect_audio, output_paths, parse_parts
    from ..rigs import motion_io
    from ..rigs.kinematics import ground

    try:
        skipped: list = []
        audio_files = collect_audio(args.audio, extensions=readable_extensions(), skipped=skipped)
        outputs = output_paths(audio_files, args.output, tuple("." + f for f in FORMATS),
                               None if args.format is None else "." + args.format)
        parts = parse_parts(args.parts)
        if args.threads is not None and args.threads < 1:
            raise JobError(f"--threads {args.threads}: give 1 or more CPU threads")
        for folder in dict.fromkeys(out.parent for out in outputs):
            check_output_folder(folder)
    except JobError as error:
        raise CommandError(str(error)) from None
    if skipped:
        _warn([f"skipped {len(skipped)} file(s) this Python cannot decode (Blender can: use blender_batch.py, "
               f"or convert them to wav or flac): {', '.join(str(p) for p in skipped)}"])
    if any(out.suffix.lower() == ".blend" for out in outputs) and not bpy_available():
        raise CommandError("writing .blend files needs the bpy module in this Python (pip install bpy, Python 3.11), "
                           "or run: blender -b -P <gestura folder>/blender_batch.py -- --audio ... --out ...")
    try:
        checkpoint = load_checkpoint(args.checkpoint)
        # Once, before any file (even when every output exists and is skipped): a bad
        # setting is the command's error, not every file's.
        check_settings(checkpoint, seed=args.seed, style=args.style, temperature=args.temperature, top_k=args.top_k,
                       top_p=args.top_p, style_strength=args.style_strength, plan_strength=args.plan_strength,
                       sampling_steps=args.sampling_steps)
    except GesturaError as error:
        raise CommandError(str(error)) from None
    failures: list[str] = []
    todo = []
    for audio, out in zip(audio_files, outputs):
        if out.is_dir():
            failures.append(f"{audio.name}: output '{out}' is a folder: rename or move it")
        elif out.exists() and not args.overwrite:
            print(f"gestura generate: '{out}' exists, skipped (pass --overwrite to replace it)", file=sys.stderr)
        else:
            todo.append((audio, out))
    attempted = len(todo) + len(failures)
    if not todo:
        return _report(failures, attempted)
    try:
        with collect() as found:
            engine = resolve_engine(args.engine, args.device, threads=args.threads)
            engine.prepare(checkpoint)
    except EngineError as error:
        raise CommandError(str(error)) from None
    _warn(found)
    if args.threads is not None and engine.name != "torch":
        _warn([f"--threads sets the torch engine's CPU threads; the {engine.name} engine ignores it"])

    audio_files, outputs, waves, notices = [], [], [], []
    for path, out in todo:
        try:
            with collect() as found:
                waves.append(load_audio(path))
        except AudioError as error:
            failures.append(str(error))  # names the file already
            continue
        audio_files.append(path)
        outputs.append(out)
        notices.append(found)
    seconds = [len(w) / 16000 for w in waves]
    show = not args.quiet and (len(waves) > 1 or sum(seconds) >= LONG_AUDIO_S)
    bar = ProgressBar(sys.stderr, sum(seconds), len(waves), show)
    written = []
    for index, (path, wave, out) in enumerate(zip(audio_files, waves, outputs)):
        started = time.monotonic()
        request = GenerationRequest(audio=np.asarray(wave), style=args.style, seed=args.seed,
                                    temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                                    style_strength=args.style_strength, plan_strength=args.plan_strength,
                                    parts=parts, device=args.device,
                                    sampling_steps=args.sampling_steps)
        try:
            # The file's notices so far continue: its audio is checked again, and said once.
            with collect(into=notices[index]):
                motion = generate(request, checkpoint=checkpoint, engine=engine,
                                  progress=lambda f, m, i=index, n=path.name, s=seconds[index]: bar.update(i, n, s, f))
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.suffix.lower() == ".bvh":
                # Feet on the floor, as on the .blend's rig (npz keeps the model's own trans).
                motion_io.save_bvh(ground(motion), out, overwrite=args.overwrite)
            elif out.suffix.lower() == ".blend":
                with collect(into=notices[index]):  # no audio support in this bpy: no sound strip
                    write_blend(motion, path, out, seed=args.seed, parts=parts, overwrite=args.overwrite)
            else:
                motion_io.save_npz(motion, out, overwrite=args.overwrite)
        except GesturaError as error:
            failures.append(f"{path.name}: {error}")
            continue
        except OSError as error:  # creating the output folder
            failures.append(f"{path.name}: could not write {out}: {error.strerror or error}")
            continue
        written.append((path, out))
        bar.file_done(index, path.name, seconds[index], out, time.monotonic() - started)
        _warn(notices[index])
    # What was written goes to stdout for scripts, whatever the progress on stderr showed.
    if not args.quiet:
        for path, out in written:
            print(f"{path} -> {out}")
    return _report(failures, attempted)


def _report(failures: list[str], total: int) -> int:
    """Every failed file on its own line, then (for several files) a summary; status 2 if any failed."""
    if not failures:
        return 0
    if total == 1 and len(failures) == 1:
        raise CommandError(failures[0])
    for failure in failures:
        print(f"gestura generate: error: {failure}", file=sys.stderr)
    raise CommandError(f"{len(failures)} of {total} audio files failed ({total - len(failures)} written)")
