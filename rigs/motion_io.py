"""Motion files: BEAT2 / SMPL-X npz in and out, BVH out.

The npz layout is BEAT2's (``shared/design/SMPLX.md``): ``poses`` (N, 165), ``trans`` (N, 3),
``expressions`` (N, 100), ``betas``, ``model``, ``gender``, ``mocap_frame_rate``. Those are also the
keys the SMPL-X Blender add-on's animation loader looks for. Other tools' layouts are read by
``motion_formats``. Files are read with allow_pickle=False: an npz that needs unpickling is
refused, never executed.
"""
from __future__ import annotations

import errno
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from .motion import Motion, MotionError
from .skeleton import POSE_DIM


def probe_folder(folder) -> str | None:
    """None when a file can be created in ``folder``, else the OS's reason ("Permission denied",
    "Read-only file system", ...). Tries for real (and removes the probe): root, read-only mounts
    and immutable folders defeat permission bits."""
    try:
        handle, name = tempfile.mkstemp(prefix=".gestura-probe-", dir=os.fspath(folder))
    except OSError as error:
        if error.errno == errno.ENOENT and os.path.isdir(folder):
            # A folder that exists yet refuses new names (/proc, some FUSE mounts): the OS's words
            # would say it is missing.
            return "it does not take new files"
        return error.strerror or str(error)
    os.close(handle)
    os.unlink(name)
    return None


def check_output(path, overwrite: bool = False) -> Path:
    """Refuse, before any work, an output file that cannot be written (MotionError, one sentence)."""
    path = Path(path)
    if path.is_dir():
        raise MotionError(f"{path} is a folder: name a file inside it")
    if os.path.lexists(path) and not overwrite:
        raise MotionError(f"{path} already exists; choose another name or allow overwriting")
    if not path.parent.is_dir():
        # The nearest existing part of the folder's path tells a missing folder from a file in the way.
        existing = path.parent
        while not os.path.lexists(existing) and existing.parent != existing:
            existing = existing.parent
        if existing.exists() and not existing.is_dir():
            raise MotionError(f"cannot write {path}: {existing} is a file, not a folder; choose another folder")
        raise MotionError(f"folder {path.parent} does not exist; create it first")
    reason = probe_folder(path.parent)
    if reason is not None:
        raise MotionError(f"cannot write {path}: folder {path.parent} is not writable ({reason})")
    return path


def load_npz(path) -> Motion:
    """Read a motion file as a Motion; see ``motion_formats.read_motion``, which also returns the
    notices about anything converted or assumed (callers that show messages use it instead).

    BEAT2 files read as they are. AMASS (SMPL-X and SMPL+H, Z up) and separate SMPL-X
    parameters from fitting tools are converted to BEAT2's layout and Y up; pickles are refused.
    Errors name the key and the expected shape.
    """
    from .motion_formats import read_motion

    return read_motion(path)[0]


def save_npz(motion: Motion, path, overwrite: bool = False, gender: str = "neutral", channels=None) -> Path:
    """Write ``motion`` as a BEAT2-style npz at exactly ``path`` (no suffix is added); ``channels``:
    extra arrays stored under their names beside the motion (e.g. the synthesizer's ``stroke_apex``)."""
    path = Path(path)
    check_output(path, overwrite)
    fps = float(motion.fps)
    arrays = {
        "poses": motion.poses.reshape(motion.num_frames, POSE_DIM),
        "trans": motion.trans,
        "expressions": motion.expressions,
        "betas": motion.betas,
        "model": np.array("smplx2020"),
        "gender": np.array(gender),
        "mocap_frame_rate": np.array(int(fps)) if fps.is_integer() else np.array(fps),
        **(channels or {}),
    }
    # Built in memory, then written in one go: a ZipFile that np.savez leaves open on a failed
    # write (a full disk) prints "Exception ignored ... seek of closed file" when collected.
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return _write_atomically(path, lambda handle: handle.write(buffer.getbuffer()), overwrite)


def save_bvh(motion: Motion, path, rest_joints=None, overwrite: bool = False, scale: float = 1.0) -> Path:
    """Write ``motion`` as BVH (Y up, metres times ``scale``; None = the built-in skeleton with its
    floor at y = 0); see ``rigs.bvh``."""
    from .bvh import bvh_text

    path = Path(path)
    check_output(path, overwrite)
    text = bvh_text(motion, rest_joints, scale=scale).encode("ascii")
    return _write_atomically(path, lambda handle: handle.write(text), overwrite)


def _write_atomically(path: Path, write, overwrite: bool) -> Path:
    """Call ``write(binary_handle)`` on a file beside ``path``, then move it into place."""
    def write_file(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            write(handle)

    return write_atomically(path, write_file, overwrite)


def write_atomically(path, write, overwrite: bool = False) -> Path:
    """Call ``write(temporary_path)`` (a new file beside ``path`` with the same extension), then
    move the result into place.

    A failed write never leaves half a file under the real name, and an existing file survives
    until the new one is complete (or for good, when a file appeared meanwhile and ``overwrite``
    is off). An OS failure (full disk, file too large, read-only folder) becomes a MotionError
    naming ``path`` and the OS's reason.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(temporary)
        if not overwrite and path.exists():
            raise MotionError(f"{path} already exists; choose another name or allow overwriting")
        os.replace(temporary, path)
    except OSError as error:
        raise MotionError(f"could not write {path}: {error.strerror or error}") from None
    finally:
        if temporary.exists():
            temporary.unlink()
    return path
