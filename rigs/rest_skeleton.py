"""Rest joint positions: built-in adult proportions, or exact ones from a user's SMPL-X model.

The built-in skeleton is hand-made from ordinary adult proportions (about 1.75 m tall) in the
SMPL-X T-pose and frame (Y up, +Z forward, the body's left on +X, metres, pelvis at the origin).
It uses no SMPL-X data, so it can ship; a rotation means the same on it as on SMPL-X because
every joint frame is the model frame at rest.

Where the floor is: BEAT2 / SMPL-X ``trans`` moves the pelvis away from its rest position, so
``trans`` = 0 is the body standing in its rest pose, with the floor ``floor_height(rest)`` below
the pelvis (``FLOOR_Y`` = -0.975 m for the built-in skeleton). Gestura's armatures and BVH files
use ``standing_rest_joints``: the same skeleton lifted by that constant, so that the floor is at
y = 0 (the object's origin in Blender). The lift is a property of the skeleton, never of a clip,
so ``trans`` means the same in a file and on a rig. (Generate and Import Motion also stand each
clip's lowest foot on the floor with one offset, which they store on the action and export takes
off again: ``blender.rigs.keyframes``.)

``smplx_rest_joints`` computes the exact joints for given shape coefficients from a licensed
SMPL-X model file the user points to (``SMPLX_NEUTRAL.npz`` and friends), with the formula of the
``smplx`` package: J = J_regressor @ (v_template + shapedirs[..., :len(betas)] @ betas). It reads
the npz with NumPy and allow_pickle=False, so it needs neither torch nor the smplx package and
never unpickles anything; the pickled ``.pkl`` variant of the model is refused.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import GesturaError
from .skeleton import FOOT_JOINTS, JOINT_INDEX, JOINT_NAMES, NUM_JOINTS

# Height of the floor under the built-in skeleton in its rest pose, and of the lowest foot joint
# above it (foot joints are joint centres, the sole is below them).
FLOOR_Y = -0.975
FOOT_CLEARANCE = 0.04

# Middle and left-side joints; the right side mirrors the left in x.
_CENTRE_AND_LEFT = {
    "pelvis": (0.0, 0.0, 0.0),
    "left_hip": (0.058, -0.082, -0.018),
    "spine1": (0.0, 0.108, -0.026),
    "left_knee": (0.105, -0.46, 0.0),
    "spine2": (0.0, 0.24, -0.012),
    "left_ankle": (0.09, -0.875, -0.042),
    "spine3": (0.0, 0.30, 0.008),
    "left_foot": (0.115, -0.935, 0.085),
    "neck": (0.0, 0.51, -0.015),
    "left_collar": (0.075, 0.42, -0.005),
    "head": (0.0, 0.59, 0.02),
    "left_shoulder": (0.175, 0.45, -0.02),
    "left_elbow": (0.43, 0.44, -0.035),
    "left_wrist": (0.68, 0.445, -0.03),
    "jaw": (0.0, 0.565, 0.05),
    "left_eye_smplhf": (0.032, 0.655, 0.085),
}
# Finger joints relative to the previous joint (the wrist for joint 1): T-pose, palm down.
_LEFT_FINGERS = {
    "index": ((0.095, 0.0, 0.025), (0.035, -0.002, 0.0), (0.022, -0.002, 0.0)),
    "middle": ((0.10, 0.0, 0.003), (0.04, -0.002, 0.0), (0.027, -0.002, 0.0)),
    "pinky": ((0.083, -0.005, -0.035), (0.026, -0.002, -0.002), (0.019, -0.002, -0.001)),
    "ring": ((0.093, -0.002, -0.017), (0.036, -0.002, -0.001), (0.025, -0.002, 0.0)),
    "thumb": ((0.025, -0.012, 0.025), (0.028, -0.006, 0.022), (0.027, -0.004, 0.012)),
}


def default_rest_joints() -> np.ndarray:
    """(55, 3) float64 rest joint positions of the built-in skeleton, pelvis at the origin."""
    joints = np.zeros((NUM_JOINTS, 3))
    for name, position in _CENTRE_AND_LEFT.items():
        joints[JOINT_INDEX[name]] = position
        if name.startswith("left_"):
            joints[JOINT_INDEX["right_" + name[5:]]] = (-position[0], position[1], position[2])
    for finger, steps in _LEFT_FINGERS.items():
        previous = np.array(_CENTRE_AND_LEFT["left_wrist"])
        for k, step in enumerate(steps, start=1):
            previous = previous + step
            joints[JOINT_INDEX[f"left_{finger}{k}"]] = previous
            joints[JOINT_INDEX[f"right_{finger}{k}"]] = previous * (-1.0, 1.0, 1.0)
    return joints


def floor_height(rest_joints) -> float:
    """Height (y, metres) of the floor under ``rest_joints`` (55, 3) standing in their rest pose:
    the lowest foot joint less ``FOOT_CLEARANCE`` (foot joints are joint centres, the sole is below
    them). ``FLOOR_Y`` for the built-in skeleton."""
    rest = np.asarray(rest_joints, np.float64)
    return float(rest[list(FOOT_JOINTS), 1].min()) - FOOT_CLEARANCE


def standing_rest_joints(rest_joints=None) -> np.ndarray:
    """(55, 3) float64 ``rest_joints`` (None = the built-in skeleton) moved up so that the floor
    under their feet is at y = 0: the skeleton every Gestura armature and BVH file is built on."""
    rest = default_rest_joints() if rest_joints is None else np.array(rest_joints, np.float64)
    rest[:, 1] -= floor_height(rest)
    return rest


class SMPLXModelError(GesturaError, ValueError):
    """The SMPL-X model file is missing or unusable; the message says what to do."""


_GENDERS = ("neutral", "male", "female")


def _model_file(model_path, gender: str) -> Path:
    path = Path(model_path).expanduser()
    if gender not in _GENDERS:
        raise SMPLXModelError(f"gender must be one of {', '.join(_GENDERS)}, got {gender!r}")
    if path.is_dir():
        name = f"SMPLX_{gender.upper()}.npz"
        # The smplx package's layouts: the folder itself, or a 'smplx' folder inside it.
        for candidate in (path / name, path / "smplx" / name):
            if candidate.is_file():
                return candidate
        raise SMPLXModelError(
            f"no {name} in {path} or {path / 'smplx'}: download the SMPL-X model (npz) from "
            "https://smpl-x.is.tue.mpg.de and point to its folder or file"
        )
    if path.suffix == ".pkl":
        raise SMPLXModelError(
            f"{path} is a pickle; Gestura does not load pickles. Use the .npz model file from the "
            "same SMPL-X download (for example SMPLX_NEUTRAL.npz)"
        )
    if not path.is_file():
        raise SMPLXModelError(
            f"SMPL-X model file {path} does not exist: download the SMPL-X model (npz) from "
            "https://smpl-x.is.tue.mpg.de and give the path to SMPLX_NEUTRAL.npz (or its folder)"
        )
    return path


def smplx_rest_joints(model_path, betas=None, gender: str = "neutral") -> np.ndarray:
    """(55, 3) float64 exact SMPL-X rest joints for shape ``betas`` (None = the mean shape).

    Positions are those of the smplx package (pelvis not at the origin), so forward kinematics
    with them reproduces its joints. ``model_path`` is an SMPL-X ``.npz`` file or a folder
    holding ``SMPLX_<GENDER>.npz``.
    """
    path = _model_file(model_path, gender)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in ("v_template", "shapedirs", "J_regressor") if key not in data.files]
            if missing:
                raise SMPLXModelError(f"{path} is not an SMPL-X model file: it has no {', '.join(missing)}")
            v_template = np.asarray(data["v_template"], np.float64)
            shapedirs = np.asarray(data["shapedirs"], np.float64)
            regressor = np.asarray(data["J_regressor"], np.float64)
    except SMPLXModelError:
        raise
    except (OSError, ValueError) as error:
        raise SMPLXModelError(f"cannot read SMPL-X model file {path}: {error}") from error
    if shapedirs.ndim == 2:
        shapedirs = shapedirs[:, :, None]
    vertices = v_template.shape[0]
    if v_template.shape != (vertices, 3) or shapedirs.shape[:2] != (vertices, 3) or regressor.shape[1:] != (vertices,):
        raise SMPLXModelError(
            f"{path} has inconsistent shapes: v_template {v_template.shape}, shapedirs {shapedirs.shape}, "
            f"J_regressor {regressor.shape}"
        )
    if regressor.shape[0] < NUM_JOINTS:
        raise SMPLXModelError(f"{path} regresses {regressor.shape[0]} joints, SMPL-X has {NUM_JOINTS}")
    # The smplx package's split: 300 shape + 100 expression directions in the 2020 models, 10 + 10
    # in the older ones.
    shape_dims = 300 if shapedirs.shape[-1] >= 400 else min(10, shapedirs.shape[-1])
    betas = np.zeros(0) if betas is None else np.asarray(betas, np.float64).reshape(-1)
    if betas.size > shape_dims:
        extra = betas[shape_dims:]
        if np.any(extra != 0):
            raise SMPLXModelError(
                f"{betas.size} shape coefficients given but {path.name} has {shape_dims}: use a model "
                f"with more shape components or pass at most {shape_dims} betas"
            )
        betas = betas[:shape_dims]
    if not np.isfinite(betas).all():
        raise SMPLXModelError("betas contain NaN or infinite values")
    shaped = v_template + shapedirs[:, :, : betas.size] @ betas
    return regressor[:NUM_JOINTS] @ shaped


def bone_lengths(rest_joints) -> dict[str, float]:
    """Distance from each joint to its parent (the pelvis gets 0); handy for checks and display."""
    from .skeleton import PARENTS

    rest = np.asarray(rest_joints, np.float64)
    return {
        name: 0.0 if PARENTS[i] < 0 else float(np.linalg.norm(rest[i] - rest[PARENTS[i]]))
        for i, name in enumerate(JOINT_NAMES)
    }
