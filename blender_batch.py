"""Generate gestures in Blender without the UI: one .blend per speech recording.

    blender -b [scene.blend] -P <gestura folder>/blender_batch.py -- --audio a.wav --out a.blend
            [--style NAME] [--seed N] [--temperature T] [--style-strength S]
            [--parts face,upper,hands,lower]
            [--start-frame F] [--engine auto|numpy|torch|external] [--checkpoint FILE]
            [--new-armature] [--overwrite]

``--audio`` takes several files or folders; ``--out`` is then a folder (one ``<name>.blend`` each).
The scene Blender opened (``scene.blend``, or the startup file) is the template of every output:
a selected SMPL-X armature in it is animated, otherwise a new one is built. Nothing has to be
enabled by hand: the script uses the installed Gestura add-on when there is one, else loads the
add-on from the folder it lives in. Options and outputs are checked before any generation (a bad
one: one error line, status 2); a file that fails gets a line ``gestura batch: error: <audio>:
<reason>`` and the others are still written; the run then exits 1 with a summary line. Ctrl+C:
``gestura batch: interrupted``, status 130.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import time

PROG = "gestura batch"
# Set by Ctrl+C (SIGINT). The generate operator turns an interrupt inside it into CANCELLED (Blender
# would otherwise print a traceback and raise a RuntimeError), so the loop checks this flag too.
_interrupted = False
# While Blender loads or saves a file it runs add-ons' handlers (load_pre, save_post), which would
# print an interrupt raised in them as a traceback and carry on: there the interrupt waits.
_deferred = False


class BatchError(Exception):
    """A run that cannot go on; ``status`` 2 for bad options or arguments (as argparse's), else 1."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def _script_args(argv: list[str]) -> list[str]:
    # Blender passes its own arguments too; the script's come after "--".
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def _start_frame(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole frame number") from None
    if value < 0:
        # Blender's scene range cannot start before frame 0, so it could not cover the motion.
        raise argparse.ArgumentTypeError(f"{value} is negative, but a Blender scene cannot start before frame 0: "
                                         "use 0 or later")
    return value


def _generation_options():
    """``commands/generation_options.py`` (the options ``gestura generate`` shares), loaded by its
    path: the package is loaded only once Blender runs (``ensure_addon``), after parsing."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "commands", "generation_options.py")
    spec = importlib.util.spec_from_file_location("_gestura_generation_options", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Generate gesture animation into .blend files.")
    parser.add_argument("--audio", nargs="+", required=True, help="speech recordings, or folders of them")
    parser.add_argument("--out", required=True, help="output .blend (one input) or folder (several)")
    _generation_options().add_generation_options(
        parser, engines=None, engine_default=None,  # the engine names are checked once the add-on is loaded
        engine_help="model engine: auto, numpy, torch or external (default: the scene's)",
        temperature_default=None, style_strength_default=None, plan_strength_default=None,
        checkpoint_help="model checkpoint (default: preferences, else bundled)",
        overwrite_help="replace existing .blend files (default: skip them)")
    parser.add_argument("--start-frame", type=_start_frame, default=None,
                        help="frame where the speech starts, 0 or later (default 1)")
    parser.add_argument("--new-armature", action="store_true", help="always build a new SMPL-X armature")
    return parser


def _operator_registered(bpy) -> bool:
    try:
        bpy.ops.gestura.generate.get_rna_type()
    except (KeyError, AttributeError):
        return False
    return True


def _enabled_package(bpy):
    """The module of an enabled Gestura add-on, if any."""
    for name in bpy.context.preferences.addons.keys():
        if name == "gestura" or name.endswith(".gestura"):
            module = sys.modules.get(name)
            if module is not None:
                return module
    return None


def ensure_addon(bpy):
    """Register Gestura in this Blender and return its package module."""
    import addon_utils

    if _operator_registered(bpy):
        module = _enabled_package(bpy)
        if module is not None:
            return module
    here = os.path.dirname(os.path.abspath(__file__))
    # An installed extension lives in <repository>/<id>: enable it under its real module name.
    for repo in bpy.context.preferences.extensions.repos:
        directory = getattr(repo, "directory", "") or ""
        if directory and os.path.normpath(directory) == os.path.dirname(here):
            name = f"bl_ext.{repo.module}.{os.path.basename(here)}"
            module = addon_utils.enable(name, default_set=False, handle_error=_raise)
            if module is not None and _operator_registered(bpy):
                return module
    # Anywhere else (a source checkout, an unpacked zip): load this folder as the package
    # "gestura". default_set=False keeps the user's saved preferences untouched.
    existing = sys.modules.get("gestura")
    if existing is None or os.path.dirname(os.path.abspath(existing.__file__)) != here:
        if existing is not None:
            raise BatchError(f"another 'gestura' package is already loaded from {existing.__file__}")
        spec = importlib.util.spec_from_file_location(
            "gestura", os.path.join(here, "__init__.py"), submodule_search_locations=[here])
        module = importlib.util.module_from_spec(spec)
        sys.modules["gestura"] = module
        spec.loader.exec_module(module)
    # addon_utils reloads a module whose recorded load time differs from its file's.
    sys.modules["gestura"].__time__ = os.path.getmtime(sys.modules["gestura"].__file__)
    module = addon_utils.enable("gestura", default_set=False, handle_error=_raise)
    if module is None or not _operator_registered(bpy):
        raise BatchError(f"could not register the Gestura add-on from '{here}'")
    return module


def _raise(error):
    raise error


def _operator_arguments(args, package, audio) -> dict:
    kwargs = {"audio_path": str(audio), "seed": int(args.seed)}
    if args.style:
        kwargs["style"] = args.style
    if args.temperature is not None:
        kwargs["temperature"] = float(args.temperature)
    if args.style_strength is not None:
        kwargs["style_strength"] = float(args.style_strength)
    if args.plan_strength is not None:
        kwargs["plan_strength"] = float(args.plan_strength)
    if args.sampling_steps is not None:
        kwargs["sampling_steps"] = int(args.sampling_steps)
    if args.parts is not None:
        kwargs["parts"] = set(package.inference.batch.parse_parts(args.parts))
    if args.start_frame is not None:
        kwargs["start_frame"] = int(args.start_frame)
    if args.engine:
        kwargs["engine"] = args.engine.upper()
    if args.checkpoint:
        kwargs["checkpoint"] = os.path.abspath(os.path.expanduser(args.checkpoint))
    if args.new_armature:
        kwargs["new_armature"] = True
    return kwargs


def _on_interrupt(signum, frame):
    global _interrupted
    _interrupted = True
    if not _deferred:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupts_held():
    """Ctrl+C waits until the block ends (``_stop_if_interrupted`` then honours it)."""
    global _deferred
    _deferred = True
    try:
        yield
    finally:
        _deferred = False


def _stop_if_interrupted() -> None:
    if _interrupted:
        raise KeyboardInterrupt


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(_script_args(argv))
    # Python's own behaviour, explicitly: the Blender program may install a handler of its own.
    signal.signal(signal.SIGINT, _on_interrupt)
    import bpy

    package = ensure_addon(bpy)
    jobs = importlib.import_module(package.__name__ + ".inference.batch")
    blend_output = importlib.import_module(package.__name__ + ".blender.blend_output")
    engine_names = importlib.import_module(package.__name__ + ".inference.engines.registry").ENGINE_NAMES
    if args.engine is not None and args.engine not in engine_names:
        raise BatchError(f"--engine {args.engine} is not an engine: choose one of {', '.join(engine_names)}",
                         status=2)
    try:
        readable = importlib.import_module(package.__name__ + ".inference.audio").readable_extensions()
        skipped: list = []
        files = jobs.collect_audio(args.audio, extensions=readable, skipped=skipped)
        outputs = jobs.output_paths(files, args.out, ".blend")
        kwargs_list = [_operator_arguments(args, package, audio) for audio in files]
        for folder in dict.fromkeys(out.parent for out in outputs):
            jobs.check_output_folder(folder)
    except jobs.JobError as error:
        raise BatchError(str(error), status=2) from None
    _check_settings(bpy, package, args)
    if skipped:
        print(f"{PROG}: warning: skipped {len(skipped)} file(s) this Blender cannot decode: "
              f"{', '.join(str(p) for p in skipped)}", file=sys.stderr, flush=True)
    # Every output starts from the scene Blender opened: keep a copy to go back to.
    scratch = tempfile.mkdtemp(prefix="gestura-batch-")
    try:
        failures = _generate_all(bpy, package, blend_output, args, files, outputs, kwargs_list,
                                 os.path.join(scratch, "template.blend"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if failures:
        raise BatchError(f"{failures} of {len(files)} audio files failed")
    return 0


def _check_settings(bpy, package, args) -> None:
    """The model and the sampling settings, once before any file (BatchError, status 2): the
    checkpoint loads, the style is one of its styles, the values are in range."""
    name = package.__name__
    generate = importlib.import_module(name + ".blender.operators.generate")
    checkpoint_cache = importlib.import_module(name + ".blender.checkpoint_cache")
    pipeline = importlib.import_module(name + ".inference.pipeline")
    user_error = importlib.import_module(name + ".errors").GesturaError
    settings = bpy.context.scene.gestura  # what the operator uses for an option left out
    try:
        given = os.path.abspath(os.path.expanduser(args.checkpoint)) if args.checkpoint else None
        checkpoint = checkpoint_cache.load(generate.checkpoint_path(bpy.context, given))
        pipeline.check_settings(
            checkpoint, seed=args.seed, style=args.style or settings.style or None,
            temperature=settings.temperature if args.temperature is None else args.temperature,
            style_strength=settings.style_strength if args.style_strength is None else args.style_strength,
            plan_strength=settings.plan_strength if args.plan_strength is None else args.plan_strength,
            sampling_steps=args.sampling_steps)  # the scene's value is the operator's to weigh
    except user_error as error:
        raise BatchError(str(error), status=2) from None


def _fail(audio, message: str) -> None:
    print(f"{PROG}: error: {audio}: {message}", file=sys.stderr, flush=True)


def _last_line(error: Exception, fallback: str) -> str:
    # Operator error reports arrive as "Error: <sentence>".
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("Error: ") if lines else fallback


def _generate_all(bpy, package, blend_output, args, files, outputs, kwargs_list, template: str) -> int:
    """Generate and save each file in turn; returns how many failed (each already reported)."""
    # Blender's own reports (saved, read, an operator's error) would repeat each file's line.
    quiet = blend_output.blender_reports_silenced
    with _interrupts_held(), quiet():
        bpy.ops.wm.save_as_mainfile(filepath=template, copy=True, check_existing=False)
    failures = 0
    for index, (audio, out, kwargs) in enumerate(zip(files, outputs, kwargs_list), start=1):
        _stop_if_interrupted()
        prefix = f"[{index}/{len(files)}] {audio.name}"
        if out.is_dir():
            _fail(audio, f"output '{out}' is a folder: rename or move it")
            failures += 1
            continue
        if out.exists() and not args.overwrite:
            print(f"{prefix}: '{out}' exists, skipped (pass --overwrite to replace it)", flush=True)
            continue
        if index > 1:
            with _interrupts_held(), quiet():
                bpy.ops.wm.open_mainfile(filepath=template, load_ui=False)
            _stop_if_interrupted()
        started = time.perf_counter()
        try:
            # The operator reports notices (silent audio, a down-mix, a fallback) to Blender; the
            # same ones are collected here for this file's line.
            with package.inference.notices.collect() as notices, quiet():
                result = bpy.ops.gestura.generate(**kwargs)
        except RuntimeError as error:
            if _interrupted:
                raise KeyboardInterrupt from None
            _fail(audio, _last_line(error, "generation failed"))
            failures += 1
            continue
        if result != {"FINISHED"}:
            if _interrupted:
                raise KeyboardInterrupt
            _fail(audio, "generation was cancelled")
            failures += 1
            continue
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with _interrupts_held():  # a file is written whole; its line is printed, then the batch stops
                blend_output.save_blend(out, overwrite=args.overwrite)
        except OSError as error:
            _fail(audio, f"could not write '{out}': {error.strerror or error}")
            failures += 1
            continue
        except blend_output.BlendOutputError as error:
            _fail(audio, str(error))
            failures += 1
            continue
        print(f"{prefix}: wrote '{out}' in {time.perf_counter() - started:.1f} s"
              + "".join(f"; warning: {message}" for message in notices), flush=True)
    _stop_if_interrupted()
    return failures


def main(argv: list[str] | None = None) -> int:
    try:
        return run(sys.argv if argv is None else argv)
    except SystemExit as done:  # argparse: --help, or a usage error it has already printed
        return done.code if isinstance(done.code, int) else 1
    except BatchError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr, flush=True)
        return error.status
    except KeyboardInterrupt:
        # The current file's temporary copy and the template folder are removed on the way out.
        print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as error:  # noqa: BLE001 - Blender would otherwise exit 0 after a traceback
        import traceback

        traceback.print_exc()
        print(f"{PROG}: error: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return 1


def _exit(code: int) -> None:
    import bpy

    if not bpy.app.binary_path and bpy.app.version < (4, 3, 0):
        # bpy as a pip module, not the Blender program: the 4.2 wheel segfaults at process exit
        # when an add-on's PropertyGroup class has functions (methods, callbacks; Blender's own
        # Rigify does): 4.2 never frees the class, so its module keeps bpy alive past Python's
        # shutdown. Everything is saved by now; leave without the teardown to report the status.
        # Blender's session folder (blender_XXXX in the temp directory) goes with the teardown.
        session = bpy.app.tempdir
        if os.path.basename(os.path.normpath(session)).startswith("blender_"):
            shutil.rmtree(session, ignore_errors=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    # sys.exit inside "blender -b -P" makes Blender itself exit with this status.
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())
