"""Motion files from SMPL-family tools, read into a Motion plus one line per conversion made.

Layouts read (arrays only; every file is opened with allow_pickle=False):

- BEAT2 (the project's own, ``shared/design/SMPLX.md``): ``poses`` (N, 165), ``trans``,
  ``expressions`` (N, 100), ``betas``, ``mocap_frame_rate``. Y up. Read as it is, no notice.
- AMASS: SMPL-X releases (``poses`` (N, 165) plus ``root_orient``, ``pose_body``, ...,
  ``surface_model_type``, ``mocap_frame_rate``) and SMPL+H releases (``poses`` (N, 156),
  ``mocap_framerate``, ``dmpls``). AMASS's world is Z up: the root rotation and translation are
  turned to Y up (-90 degrees about X). The keys say so; the motion is not guessed from.
- ``poses`` with 52 (SMPL+H), 24 (SMPL) or 22 (body only) joints instead of 55, as (N, 3J),
  (N, J, 3) axis-angle or (N, J, 3, 3) rotation matrices: mapped onto the 55 SMPL-X joints, the
  joints the file lacks at rest.
- Separate SMPL-X parameters as fitting tools (SMPLer-X, OSX, PIXIE, 4D-Humans-like exports)
  write them: ``global_orient``, ``body_pose``, ``left_hand_pose``/``right_hand_pose``,
  ``jaw_pose``, ``leye_pose``/``reye_pose``, ``expression``, ``transl``, ``betas``, each
  axis-angle or rotation matrices, with or without a joint axis. PCA hand poses cannot be
  decoded without the licensed model's hand components: the hands stay flat, with a notice.
  Such files state no up axis: it is read off the motion (see ``_standing_axis``), which tells
  Y up from a camera's Y down and a Z-up world for any clip where the body is mostly upright.

Anything converted or assumed (frame rate, missing translation or face, padded or cut expressions,
turned axes) gives one line in the returned notices. Pickles (``.pkl``, or arrays of Python
objects inside ``.npz``/``.npy``) are refused with a pointer to converting them (README, "Pickled motion files"), never unpickled.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from .motion import Motion, MotionError
from .rotations import axis_angle_to_matrix, matrix_to_axis_angle
from .skeleton import FPS, NUM_EXPRESSIONS, NUM_JOINTS, POSE_DIM

FRAME_RATE_KEYS = ("mocap_frame_rate", "mocap_framerate", "fps", "frame_rate", "framerate")
# Keys only AMASS writes (SMPL-X releases: surface_model_type, root_orient, pose_*; SMPL+H releases:
# mocap_framerate without the underscore, dmpls). Their presence means a Z-up world.
AMASS_KEYS = ("surface_model_type", "root_orient", "pose_body", "pose_hand", "pose_jaw", "pose_eye",
              "mocap_framerate", "dmpls", "markers_latent")
UP_AXES = ("AUTO", "Y", "Z", "-Y")
# Rotations taking each world's up axis to SMPL-X's +Y (applied on the left of the root rotation).
_TO_Y_UP = {
    "Y": np.eye(3),
    "Z": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),  # -90 degrees about X
    "-Y": np.diag([1.0, -1.0, -1.0]),  # 180 degrees about X: a camera's Y down, Z forward
}
_TURNS = {"Z": "-90 degrees about X", "-Y": "180 degrees about X"}
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".pk", ".p")

# Joints each pose source fills, as (first SMPL-X joint, count) spans per part of the file.
_JAW, _EYES, _LEFT_HAND, _RIGHT_HAND = 22, 23, 25, 40
_JOINT_LAYOUTS = {  # joints per frame in 'poses' -> (name, [(from, to, count)], joints left at rest)
    55: ("SMPL-X", [(0, 0, 55)], ""),
    52: ("SMPL+H", [(0, 0, 22), (22, _LEFT_HAND, 30)], "the jaw and eyes"),
    24: ("SMPL", [(0, 0, 22)], "the jaw, eyes and fingers (SMPL's two hand joints have no SMPL-X match)"),
    22: ("body-only", [(0, 0, 22)], "the jaw, eyes and fingers"),
}


def read_motion(path, up_axis: str = "AUTO") -> tuple[Motion, list[str]]:
    """Read a motion file of any layout above as a Motion (Y up) and a list of one-line notices.

    ``up_axis``: "AUTO" (the file's keys, else the motion's own standing direction), or the
    world's up axis as the user knows it: "Y" (BEAT2, SMPL-X), "Z" (AMASS), "-Y" (camera
    coordinates). Raises MotionError with one sentence naming the file, what differs and what
    to do.
    """
    if up_axis not in UP_AXES:
        raise ValueError(f"up_axis must be one of {UP_AXES}, got {up_axis!r}")
    path = Path(path)
    name = path.name
    if path.is_dir():
        raise MotionError(f"{path} is a folder; choose a motion file (.npz) in it")
    if not path.is_file():
        raise MotionError(f"motion file {path} does not exist")
    with open(path, "rb") as handle:
        head = handle.read(6)
    # Protocol 2+ pickles start with PROTO (0x80) and the protocol number; npz with PK, npy with \x93NUMPY.
    pickled = len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    if pickled or path.suffix.lower() in _PICKLE_SUFFIXES:
        raise MotionError(
            f"'{name}' is a Python pickle, which Gestura never opens because unpickling can run code: "
            f"if you trust it, convert it to '{path.stem}.npz' in your own Python (README, \"Pickled motion files\")"
        )
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as error:
        if head == b"\x93NUMPY":  # a .npy holding a dict or other Python objects
            raise MotionError(
                f"'{name}' holds Python objects (a pickle), which Gestura never opens because unpickling "
                f"can run code: if you trust it, convert it to '{path.stem}.npz' in your own Python "
                f"(README, \"Pickled motion files\")"
            ) from error
        raise MotionError(f"{path} is not a readable npz file: {error}") from error
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise MotionError(f"{path} is not a readable npz file: {error}") from error
    if isinstance(data, np.ndarray):  # a bare .npy: the poses alone
        return _convert(_Arrays({"poses": data}, path), up_axis)
    try:
        with data:
            return _convert(_Arrays(data, path), up_axis)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:  # a member damaged inside the zip
        raise MotionError(f"{path} is not a readable npz file: {error}") from error


class _Arrays:
    """The file's arrays by key, fetched only when used (so unused object arrays never matter)."""

    def __init__(self, data, path: Path):
        self.data, self.path, self.keys = data, path, set(getattr(data, "files", None) or data.keys())

    def first(self, *keys: str) -> str | None:
        return next((key for key in keys if key in self.keys), None)

    def get(self, key: str) -> np.ndarray:
        try:
            array = np.asarray(self.data[key])
        except ValueError as error:  # object arrays need pickle, which is never allowed
            raise MotionError(
                f"{self.path}: key '{key}' holds Python objects, which Gestura never unpickles: save it "
                f"again in your own trusted Python as plain numbers (np.savez with float arrays)"
            ) from error
        if not np.issubdtype(array.dtype, np.number):
            raise MotionError(f"{self.path}: key '{key}' has dtype {array.dtype}, expected numbers")
        finite = np.isfinite(array)
        if not finite.all():
            where = f" (first at frame {np.argwhere(~finite)[0][0]})" if array.ndim >= 2 else ""
            raise MotionError(f"{self.path}: key '{key}' contains NaN or infinite values{where}")
        return array.astype(np.float64)


def _convert(arrays: _Arrays, up_axis: str) -> tuple[Motion, list[str]]:
    path, notices = arrays.path, []
    if "poses" in arrays.keys:
        poses, joints = _full_pose(arrays, notices)
    elif arrays.first("global_orient", "root_orient", "body_pose", "pose_body"):
        poses, joints = _pose_from_parts(arrays, notices), None
    else:
        raise MotionError(
            f"{path}: key 'poses' is missing; expected an array of shape (N, {POSE_DIM}) as BEAT2 and "
            f"AMASS write it, or 'global_orient' and 'body_pose' as SMPL-X fitting tools write them "
            f"(found {', '.join(sorted(arrays.keys)) or 'no arrays'})"
        )
    n = poses.shape[0]
    trans = _translation(arrays, n, notices)
    expressions = _expressions(arrays, n, notices)
    # SMPL+H shape coefficients mean nothing to SMPL-X's shape space: the mean shape instead.
    betas = np.zeros(300) if joints == 52 else _betas(arrays)
    fps = _frame_rate(arrays, notices)
    amass = [key for key in AMASS_KEYS if key in arrays.keys]
    standing = _standing_axis(poses[:, 0])
    if up_axis != "AUTO":
        world, why = up_axis, "Up Axis was set"
    elif amass:
        world, why = "Z", f"AMASS keys ({', '.join(amass[:2])})"
    elif joints == NUM_JOINTS and "trans" in arrays.keys:
        # The project's own layout, BEAT2's, is Y up; a body that disagrees only gets a notice.
        world, why = "Y", ""
        if standing not in (None, "Y"):
            hint = {"Z": "Z Up", "-Y": "Y Down"}.get(standing)
            notices.append(
                f"the body's up direction is {_signed(standing)} in most "
                f"frames, not +Y as in BEAT2 files: "
                + (f"if it lies down, import it again with Up Axis set to {hint}" if hint
                   else "it may come from a world with another up axis")
            )
    else:
        # Nothing in the file says: the way the body stands decides.
        world = standing if standing in _TO_Y_UP else "Y"
        why = f"the body's up direction was {_signed(standing)} in most frames"
        if world == "Y" and standing != "Y" and n:
            seen = "changes too much to tell" if standing is None else f"is {_signed(standing)} in most frames"
            notices.append(
                f"the file does not say which way is up and the body's up direction {seen}: read as Y up "
                f"(if it imports lying down, import it again with another Up Axis)"
            )
    if world != "Y":
        fix = _TO_Y_UP[world]
        poses[:, 0] = matrix_to_axis_angle(fix @ axis_angle_to_matrix(poses[:, 0]))
        trans = trans @ fix.T
        frame = {"Z": "a Z-up world", "-Y": "camera coordinates (Y down)"}[world]
        notices.append(f"turned from {frame} to Y up ({_TURNS[world]}): {why}")
    motion = Motion(poses=poses, trans=trans, expressions=expressions, fps=fps, betas=betas)
    return motion, notices


def _rotations(array: np.ndarray, n: int, joints: tuple[int, ...], key: str, path: Path) -> tuple[np.ndarray, int]:
    """(n, J, 3) axis-angle from ``array`` holding n frames of J joints (J one of ``joints``) as
    axis-angle or 3x3 rotation matrices, with or without a joint axis, and J."""
    if array.ndim >= 1 and array.shape[0] != n and n == 1:
        array = array[None]  # one frame stored without its frame axis
    per_frame = int(np.prod(array.shape[1:])) if array.ndim >= 2 and array.shape[0] == n else -1
    for count in joints:
        if per_frame == count * 3:
            return array.reshape(n, count, 3), count
        if per_frame == count * 9:
            matrices = array.reshape(n, count, 3, 3)
            error = np.abs(matrices @ np.swapaxes(matrices, -1, -2) - np.eye(3)).max(initial=0.0)
            if error > 1e-3 or (n and np.linalg.det(matrices).min() <= 0):
                raise MotionError(f"{path}: key '{key}' has shape {array.shape} but does not hold rotation matrices")
            return matrix_to_axis_angle(matrices), count
    shapes = " or ".join(f"(N, {c * 3})" for c in joints)
    raise MotionError(
        f"{path}: key '{key}' has shape {array.shape}, expected {shapes} axis-angle numbers "
        f"(or the same as (N, J, 3) or (N, J, 3, 3) rotation matrices) for N = {n} frames"
    )


def _full_pose(arrays: _Arrays, notices: list[str]) -> tuple[np.ndarray, int]:
    """The 55 SMPL-X joints from 'poses', and how many joints the file had."""
    poses = arrays.get("poses")
    n = poses.shape[0] if poses.ndim >= 2 else 0
    try:
        local, count = _rotations(poses, n, tuple(_JOINT_LAYOUTS), "poses", arrays.path)
    except MotionError:
        raise MotionError(
            f"{arrays.path}: key 'poses' has shape {poses.shape}, expected (N, {POSE_DIM}) "
            f"({NUM_JOINTS} SMPL-X joints x 3 axis-angle numbers per frame; SMPL+H's 156, SMPL's 72 and "
            f"body-only 66 are read too)"
        ) from None
    full = np.zeros((n, NUM_JOINTS, 3))
    model, spans, at_rest = _JOINT_LAYOUTS[count]
    for source, target, length in spans:
        full[:, target:target + length] = local[:, source:source + length]
    if count == 52:
        dropped = ", and its body shape (betas), which is not SMPL-X's, left out" if "betas" in arrays.keys else ""
        notices.append(
            f"SMPL+H poses (52 joints): mapped onto SMPL-X's {NUM_JOINTS} joints with {at_rest} at rest{dropped}"
        )
    elif count != NUM_JOINTS:
        notices.append(
            f"{model} poses ({count} joints): mapped onto SMPL-X's {NUM_JOINTS} joints with {at_rest} at rest"
        )
    return full, count


# Separate parameters as fitting tools write them: (SMPL-X joint, joints, keys; AMASS's names last).
_PARTS = (
    (0, 1, ("global_orient", "root_orient")),
    (_JAW, 1, ("jaw_pose", "pose_jaw")),
    (_EYES, 1, ("leye_pose",)),
    (_EYES + 1, 1, ("reye_pose",)),
    (_LEFT_HAND, 15, ("left_hand_pose",)),
    (_RIGHT_HAND, 15, ("right_hand_pose",)),
)
# AMASS's keys holding both eyes or both hands, for files that have them instead of the pairs.
_BOTH = {"leye_pose": ("pose_eye", 2), "left_hand_pose": ("pose_hand", 30)}


def _pose_from_parts(arrays: _Arrays, notices: list[str]) -> np.ndarray:
    body_key = arrays.first("body_pose", "pose_body")
    orient_key = arrays.first("global_orient", "root_orient")
    if body_key is None or orient_key is None:
        missing = "body_pose" if body_key is None else "global_orient"
        raise MotionError(
            f"{arrays.path}: key '{missing}' is missing; a pose needs both 'global_orient' and 'body_pose'"
        )
    body = arrays.get(body_key)
    n = body.shape[0] if body.ndim >= 2 else 1
    full = np.zeros((n, NUM_JOINTS, 3))
    # 23 joints: SMPL's body_pose, whose last two (its hands) have no SMPL-X match.
    local, count = _rotations(body, n, (21, 23), body_key, arrays.path)
    full[:, 1:22] = local[:, :21]
    if count == 23:
        notices.append(f"SMPL '{body_key}' (23 joints): its two hand joints have no SMPL-X match and were left out")
    at_rest, pca = [], []
    for joint, count, keys in _PARTS:
        key = arrays.first(*keys)
        if key is None and keys[0] in _BOTH and _BOTH[keys[0]][0] in arrays.keys:
            key, count = _BOTH[keys[0]]
        elif key is None:
            if not (keys[0] in ("reye_pose", "right_hand_pose") and {"pose_eye", "pose_hand"} & arrays.keys):
                at_rest.append(keys[0])
            continue
        values = arrays.get(key)
        per_frame = values.size // n if n else 0
        if count == 15 and per_frame < 45 and values.shape[:1] == (n,):
            pca.append((key, per_frame))
            continue
        full[:, joint:joint + count] = _rotations(values, n, (count,), key, arrays.path)[0]
    if pca:
        keys = " and ".join(f"'{key}'" for key, _ in pca)
        notices.append(
            f"{keys} hold {pca[0][1]} PCA coefficients, which only the licensed SMPL-X model's hand components "
            f"turn into finger rotations: the hands are flat (save full hand poses, 45 numbers per hand, to keep them)"
        )
    if at_rest:
        notices.append(f"no {', '.join(at_rest)} in the file: those joints stay at rest")
    return full


def _translation(arrays: _Arrays, n: int, notices: list[str]) -> np.ndarray:
    key = arrays.first("trans", "transl")
    if key is None:
        notices.append("no translation ('trans' or 'transl') in the file: the body stays in place")
        return np.zeros((n, 3))
    trans = arrays.get(key)
    if trans.size == 3 * n and trans.shape in ((n, 1, 3), (3,)):
        trans = trans.reshape(n, 3)
    if trans.shape != (n, 3):
        raise MotionError(
            f"{arrays.path}: key '{key}' has shape {trans.shape}, expected {(n, 3)} (N = {n} frames from 'poses')"
        )
    return trans


def _expressions(arrays: _Arrays, n: int, notices: list[str]) -> np.ndarray:
    key = arrays.first("expressions", "expression")
    if key is None:
        notices.append("no facial expressions ('expressions' or 'expression') in the file: the face stays neutral")
        return np.zeros((n, NUM_EXPRESSIONS))
    values = arrays.get(key)
    if values.ndim == 1 and n == 1:
        values = values[None]
    if values.ndim != 2 or values.shape[0] != n or values.shape[1] == 0:
        raise MotionError(
            f"{arrays.path}: key '{key}' has shape {values.shape}, expected {(n, NUM_EXPRESSIONS)} "
            f"(N = {n} frames from 'poses'; fewer than {NUM_EXPRESSIONS} coefficients are padded)"
        )
    if values.shape[1] > NUM_EXPRESSIONS:
        notices.append(
            f"'{key}' holds {values.shape[1]} expression coefficients: the rig drives the first {NUM_EXPRESSIONS} "
            f"(the strongest), the rest are left out"
        )
        values = values[:, :NUM_EXPRESSIONS]
    if values.shape[1] < NUM_EXPRESSIONS:
        notices.append(
            f"'{key}' holds {values.shape[1]} expression coefficients: padded to the rig's {NUM_EXPRESSIONS} with zeros"
        )
        values = np.concatenate([values, np.zeros((n, NUM_EXPRESSIONS - values.shape[1]))], axis=1)
    return values


def _betas(arrays: _Arrays) -> np.ndarray:
    if "betas" not in arrays.keys:
        return np.zeros(300)
    betas = arrays.get("betas")
    if betas.ndim == 2 and betas.shape[0] >= 1:
        betas = betas[0]  # some exporters store one row per frame of a constant shape
    if betas.ndim != 1:
        raise MotionError(f"{arrays.path}: key 'betas' has shape {betas.shape}, expected (B,) shape coefficients")
    return betas


def _frame_rate(arrays: _Arrays, notices: list[str]) -> float:
    key = arrays.first(*FRAME_RATE_KEYS)
    if key is None:
        notices.append(f"no frame rate in the file ({', '.join(FRAME_RATE_KEYS)}): assumed {FPS:g} fps")
        return FPS
    value = arrays.get(key)
    if value.size != 1:
        raise MotionError(f"{arrays.path}: key '{key}' has shape {value.shape}, expected a single number")
    fps = float(value.reshape(()))
    if not fps > 0:
        raise MotionError(f"{arrays.path}: key '{key}' is {fps}, expected a positive frame rate")
    return fps


def _signed(axis: str | None) -> str:
    return "unclear" if axis is None else axis if axis.startswith("-") else "+" + axis


def _standing_axis(root_axis_angle: np.ndarray) -> str | None:
    """The world axis ("Y", "-Y", "Z", "-Z", "X", "-X") the body's up direction points along in
    most frames, or None when no axis holds it clearly.

    The body's up is its root rotation applied to the model's +Y. Averaged over the clip it stays
    within 45 degrees of the world's up for anyone standing, sitting, walking or gesturing, and
    is opposite for a camera's Y-down frame; only a clip spent lying or upside down misleads it.
    """
    if len(root_axis_angle) == 0:
        return None
    up = axis_angle_to_matrix(np.asarray(root_axis_angle, np.float64))[:, :, 1].mean(axis=0)
    axis = int(np.argmax(np.abs(up)))
    if abs(up[axis]) < np.sqrt(0.5):
        return None
    return ("-" if up[axis] < 0 else "") + "XYZ"[axis]
