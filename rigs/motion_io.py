"""Motion files: BEAT2 / SMPL-X npz in and out, BVH out.

The npz layout is BEAT2's (``shared/design/SMPLX.md``): ``poses`` (N, 165), ``trans`` (N, 3),
``expressions`` (N, 100), ``betas``, ``model``, ``gender``, ``mocap_frame_rate``. Those are also the
keys the SMPL-X Blender add-on's animation loader looks for. Other tools' layouts are read by
``motion_formats``. Files are read with allow_pickle=False: an npz that needs unpickling is
refused, never executed.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .motion import Motion, MotionError
from .skeleton import POSE_DIM


def _check_writable(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise MotionError(f"{path} already exists; choose another name or allow overwriting")
    if not path.parent.is_dir():
        raise MotionError(f"folder {path.parent} does not exist; create it first")


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
    _check_writable(path, overwrite)
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
    return _write_atomically(path, lambda handle: np.savez(handle, **arrays), overwrite)


def save_bvh(motion: Motion, path, rest_joints=None, overwrite: bool = False, scale: float = 1.0) -> Path:
    """Write ``motion`` as BVH (Y up, metres times ``scale``; None = the built-in skeleton with its
    floor at y = 0); see ``rigs.bvh``."""
    from .bvh import bvh_text

    path = Path(path)
    _check_writable(path, overwrite)
    text = bvh_text(motion, rest_joints, scale=scale).encode("ascii")
    return _write_atomically(path, lambda handle: handle.write(text), overwrite)


def _write_atomically(path: Path, write, overwrite: bool) -> Path:
    """Call ``write(binary_handle)`` on a file beside ``path``, then move it into place.

    A failed write never leaves half a file under the real name, and an existing file survives
    until the new one is complete (or for good, when a file appeared meanwhile and ``overwrite``
    is off).
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
        if not overwrite and path.exists():
            raise MotionError(f"{path} already exists; choose another name or allow overwriting")
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path
