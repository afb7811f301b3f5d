"""Motion files: BEAT2 / SMPL-X npz in and out, BVH out.

The npz layout is BEAT2's (``shared/design/SMPLX.md``): ``poses`` (N, 165), ``trans`` (N, 3),
``expressions`` (N, 100), ``betas``, ``model``, ``gender``, ``mocap_frame_rate``. Those are also the
keys the SMPL-X Blender add-on's animation loader looks for. Files are read with
allow_pickle=False: an npz that needs unpickling is refused, never executed.
"""
from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .motion import Motion, MotionError
from .skeleton import FPS, NUM_EXPRESSIONS, NUM_JOINTS, POSE_DIM


def probe_folder(folder) -> str | None:
    """None when a file can be created in ``folder``, else the OS's reason ("Permission denied",
    "Read-only file system", ...). Tries for real (and removes the probe): root, read-only mounts
    and immutable folders defeat permission bits."""
    try:
        handle, name = tempfile.mkstemp(prefix=".gestura-probe-", dir=os.fspath(folder))
    except OSError as error:
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
        raise MotionError(f"folder {path.parent} does not exist; create it first")
    reason = probe_folder(path.parent)
    if reason is not None:
        raise MotionError(f"cannot write {path}: folder {path.parent} is not writable ({reason})")
    return path


def _array(data, key: str, path: Path) -> np.ndarray:
    try:
        return data[key]
    except ValueError as error:  # object arrays need pickle, which is never allowed
        raise MotionError(f"{path}: key '{key}' holds Python objects ({error}); store plain numbers") from error


def load_npz(path) -> Motion:
    """Read a BEAT2-style npz. Errors name the key and the expected shape.

    ``poses`` and ``trans`` are required. Files without ``expressions`` (AMASS SMPL-X files have
    no face) get neutral expressions; without ``mocap_frame_rate`` (or AMASS's
    ``mocap_framerate``) BEAT2's 30 fps is assumed. Coordinates are taken as SMPL-X's (Y up);
    AMASS's Z-up world translation is not converted.
    """
    path = Path(path)
    if not path.is_file():
        raise MotionError(f"motion file {path} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise MotionError(f"{path} is not a readable npz file: {error}") from error
    with data:
        keys = set(data.files)
        for key, shape in (("poses", f"(N, {POSE_DIM})"), ("trans", "(N, 3)")):
            if key not in keys:
                raise MotionError(f"{path}: key '{key}' is missing; expected an array of shape {shape}")
        poses = _array(data, "poses", path)
        if poses.ndim != 2 or poses.shape[1] != POSE_DIM:
            raise MotionError(
                f"{path}: key 'poses' has shape {poses.shape}, expected (N, {POSE_DIM}) "
                f"({NUM_JOINTS} SMPL-X joints x 3 axis-angle numbers per frame)"
            )
        n = poses.shape[0]
        arrays = {"poses": poses}
        expected = {"trans": (n, 3), "expressions": (n, NUM_EXPRESSIONS)}
        for key, shape in expected.items():
            if key not in keys:
                arrays[key] = np.zeros(shape, np.float32)  # only expressions can get here
                continue
            array = _array(data, key, path)
            if array.shape != shape:
                raise MotionError(f"{path}: key '{key}' has shape {array.shape}, expected {shape} (N = {n} frames from 'poses')")
            arrays[key] = array
        betas = np.zeros(300, np.float32)
        if "betas" in keys:
            betas = _array(data, "betas", path)
            if betas.ndim == 2 and betas.shape[0] >= 1:
                betas = betas[0]  # some exporters store one row per frame of a constant shape
            if betas.ndim != 1:
                raise MotionError(f"{path}: key 'betas' has shape {betas.shape}, expected (B,) shape coefficients")
            arrays["betas"] = betas
        fps = FPS
        for key in ("mocap_frame_rate", "mocap_framerate"):
            if key in keys:
                value = _array(data, key, path)
                if value.size != 1:
                    raise MotionError(f"{path}: key '{key}' has shape {value.shape}, expected a single number")
                fps = float(value.reshape(()))
                if not (fps > 0) or not np.isfinite(fps):
                    raise MotionError(f"{path}: key '{key}' is {fps}, expected a positive frame rate")
                break
    for key, array in arrays.items():
        if not np.issubdtype(array.dtype, np.number):
            raise MotionError(f"{path}: key '{key}' has dtype {array.dtype}, expected numbers")
        finite = np.isfinite(array)
        if not finite.all():
            first = np.argwhere(~finite)[0]
            where = f" (first at frame {first[0]})" if array.ndim == 2 and key != "betas" else ""
            raise MotionError(f"{path}: key '{key}' contains NaN or infinite values{where}")
    return Motion(
        poses=arrays["poses"].reshape(n, NUM_JOINTS, 3),
        trans=arrays["trans"],
        expressions=arrays["expressions"],
        fps=fps,
        betas=betas,
    )


def save_npz(motion: Motion, path, overwrite: bool = False, gender: str = "neutral") -> Path:
    """Write ``motion`` as a BEAT2-style npz at exactly ``path`` (no suffix is added)."""
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
    }
    # Built in memory, then written in one go: a ZipFile that np.savez leaves open on a failed
    # write (a full disk) prints "Exception ignored ... seek of closed file" when collected.
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return _write_atomically(path, lambda handle: handle.write(buffer.getbuffer()), overwrite)


def save_bvh(motion: Motion, path, rest_joints=None, overwrite: bool = False, scale: float = 1.0) -> Path:
    """Write ``motion`` as BVH (Y up, metres times ``scale``); see ``rigs.bvh``."""
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
