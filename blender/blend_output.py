"""Write a generated motion into a .blend file from a plain Python that can import bpy.

Used by ``gestura generate`` for ``.blend`` outputs. The file is what the Blender operator would
have made in an empty scene: an SMPL-X armature with the motion as a new action, the speech as a
sound strip at the start frame, and the frame range set. bpy is imported only when called.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import sys
from pathlib import Path

from ..errors import GesturaError
from ..inference.batch import action_name as _action_name
from ..rigs.skeleton import PARTS


class BlendOutputError(GesturaError, RuntimeError):
    """The .blend file could not be written; the message names the reason."""


def save_error_reason(error: Exception) -> str:
    """The OS's or Blender's reason from a failed save, without Blender's "Error: " prefix."""
    if isinstance(error, OSError):
        return error.strerror or str(error)
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("Error: ") if lines else "Blender could not save the file"


@contextlib.contextmanager
def blender_reports_silenced():
    """Drop what Blender prints on the process's stdout meanwhile: in background mode it prints
    its operators' reports there from C ("Info: Saved copy as" a temporary name, "Read blend:",
    "Error: ..."), where Python's own redirection does not reach. For commands that say in their
    own words what they wrote and why something failed. POSIX only; elsewhere a no-op."""
    try:
        libc = ctypes.CDLL(None) if os.name == "posix" else None
        saved = os.dup(1) if libc is not None else None  # no fd 1 (a detached process): nothing to drop
    except OSError:
        libc = saved = None
    if saved is None:
        yield
        return
    flush = getattr(sys.stdout, "flush", lambda: None)  # sys.stdout may be None in a GUI process
    flush()
    libc.fflush(None)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
        try:
            yield
        finally:
            flush()
            libc.fflush(None)  # Blender's buffered lines go to the null device, not after it
            os.dup2(saved, 1)
    finally:
        os.close(saved)


def bpy_available() -> bool:
    return importlib.util.find_spec("bpy") is not None


def write_blend(motion, audio_path, out_path, *, seed: int = 0, parts=PARTS, start_frame: int = 1,
                fps: float | None = None, overwrite: bool = False) -> Path:
    """Save ``motion`` (any fps; resampled to the scene's) with its audio into ``out_path``.

    ``fps`` sets the scene frame rate (default: the motion's own rate, rounded).
    """
    out_path = Path(os.fspath(out_path))
    if out_path.exists() and not overwrite:
        raise BlendOutputError(f"'{out_path}' exists: pass overwrite=True (--overwrite) to replace it")
    if not bpy_available():
        raise BlendOutputError("writing .blend files needs the bpy module: pip install bpy (Blender as a module)")
    import bpy

    from .generate_scene import apply_motion

    # Factory settings: the user's startup file and add-ons must not leak into batch output.
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    rate = float(fps or motion.fps)
    scene.render.fps = max(1, int(round(rate)))
    scene.render.fps_base = scene.render.fps / rate
    try:
        apply_motion(
            bpy.context, motion, target_name=None, audio_path=os.path.abspath(os.fspath(audio_path)),
            start_frame=int(start_frame), action_name=_action_name(audio_path, seed), parts=tuple(parts),
        )
    except (ValueError, RuntimeError) as error:
        raise BlendOutputError(f"could not build the scene for '{out_path.name}': {error}") from None
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BlendOutputError(f"could not write '{out_path}': {error.strerror or error}") from None
    return save_blend(out_path, overwrite=overwrite)


def save_blend(out_path, overwrite: bool = False) -> Path:
    """Save the open file as a copy at ``out_path``, whole or not at all (BlendOutputError).

    Saved beside it under a temporary name, checked, then moved into place: Blender does not
    always notice a write that the OS cut short (a full disk, a file-size limit) and would
    otherwise leave a truncated .blend under the real name.
    """
    import bpy

    from ..rigs.motion import MotionError
    from ..rigs.motion_io import write_atomically

    out_path = Path(os.fspath(out_path))

    def write(temporary: Path) -> None:
        try:
            with blender_reports_silenced():  # it names the temporary file
                result = bpy.ops.wm.save_as_mainfile(filepath=str(temporary.resolve()), copy=True,
                                                     check_existing=False)
        except RuntimeError as error:
            raise BlendOutputError(f"could not write '{out_path}': {save_error_reason(error)}") from None
        finally:
            Path(f"{temporary}@").unlink(missing_ok=True)  # Blender's own temporary, if it left it
        if result != {"FINISHED"} or not temporary.is_file():
            raise BlendOutputError(f"Blender could not save '{out_path}'")
        if not _complete(temporary):
            raise BlendOutputError(f"could not write '{out_path}': Blender's save stopped early "
                                   "(is the disk full?)")

    try:
        return write_atomically(out_path, write, overwrite)
    except MotionError as error:  # an OS error while moving the file into place
        raise BlendOutputError(str(error)) from None


def _complete(path: Path) -> bool:
    """Whether a saved .blend reached its end: uncompressed files end with the "ENDB" block;
    zstd-compressed ones (Blender 4.x and later) with the seek table's magic number 0x8F92EAB1."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        handle.seek(max(0, size - 64))
        tail = handle.read()
    if head.startswith(b"BLENDER"):
        return b"ENDB" in tail
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return tail.endswith(b"\xb1\xea\x92\x8f")
    return True  # gzip (files of Blender 2.x and 3.x): not checked
