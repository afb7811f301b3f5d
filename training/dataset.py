"""Read a data set in the BEAT2 layout: motion, audio features, body parts, foot contacts, statistics.

Layout (BEAT2's language folder, or any folder laid out the same way)::

    DIR/train_test_split.csv      columns id,type  (type: train / val / test / additional)
    DIR/smplxflame_30/<id>.npz    poses (N,165), trans (N,3), expressions (N,100), mocap_frame_rate
    DIR/wave16k/<id>.wav          mono speech (any rate is resampled to 16 kHz)

Ids look like ``2_scott_0_1_1``: the leading number is the speaker. A long run must not die on
one bad file, so a clip whose files are missing, unreadable, or whose audio and motion lengths
disagree is reported with a ``DataWarning`` naming the file and the reason, and skipped.

Computed per clip (and cached, because audio features and forward kinematics of an hour of
motion take minutes): the model's part arrays, audio features at 30 fps, joint positions and
foot contacts. NumPy only - no torch - so the metrics and the evaluation can use it too.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GesturaError
from ..rigs.motion import Motion, MotionError
from ..rigs.skeleton import FPS, PARTS

SPLIT_FILE = "train_test_split.csv"
MOTION_DIR = "smplxflame_30"
AUDIO_DIR = "wave16k"
SPLITS = ("train", "val", "test", "additional")
CACHE_FORMAT = 1
STROKE_APEX = "stroke_apex"  # per-frame planned stroke apexes, written by ``gestura synth``


class DatasetError(GesturaError, ValueError):
    """The folder cannot be used at all (no split file, no motion folder...); names the fix."""


class ClipError(GesturaError, ValueError):
    """One clip cannot be used; the message names the file and the reason."""


class DataWarning(UserWarning):
    """A clip was skipped; the run goes on without it."""


@dataclass(frozen=True)
class ClipRef:
    id: str
    speaker: int
    split: str
    motion_path: Path
    audio_path: Path

    @property
    def style(self) -> str:
        return style_name(self.id)


@dataclass
class Clip:
    """One usable clip, motion and audio trimmed to the same number of frames."""

    ref: ClipRef
    motion: Motion  # 30 fps
    features: np.ndarray  # (N, F) audio features, float32
    parts: dict[str, np.ndarray]  # part -> (N, PART_DIMS[part]), not normalized
    positions: np.ndarray  # (N, 55, 3) joint positions, with translation
    contacts: np.ndarray  # (N, 4) float32 0/1 for FOOT_JOINTS
    wave: np.ndarray | None = None  # 16 kHz, kept only when asked for (evaluation)
    # (N,) float32, 1 on the frames where a stroke ends: the synthesizer's planned apexes (npz key
    # ``stroke_apex``) or, for data without them, ``metrics.derive_stroke_apexes`` of the motion.
    stroke_apex: np.ndarray | None = None
    stroke_apex_planned: bool = False

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[0])


def speaker_of(clip_id: str) -> int:
    head = clip_id.split("_", 1)[0]
    if not head.isdigit():
        raise ClipError(f"clip id {clip_id!r} does not start with a speaker number (like 2_scott_0_1_1)")
    return int(head)


def style_name(clip_id: str) -> str:
    """The style (speaker) name a checkpoint lists: "<number>_<name>", e.g. "2_scott"."""
    parts = clip_id.split("_")
    return f"{parts[0]}_{parts[1]}" if len(parts) > 1 and not parts[1].isdigit() else parts[0]


def parse_speakers(text: str | None) -> set[int] | None:
    """``"2"``, ``"2,4,7-9"`` or ``"all"``/None (every speaker) -> a set of speaker numbers."""
    if text is None or str(text).strip().lower() in ("", "all"):
        return None
    chosen: set[int] = set()
    for item in str(text).split(","):
        item = item.strip()
        try:
            if "-" in item:
                lo, hi = item.split("-", 1)
                chosen.update(range(int(lo), int(hi) + 1))
            else:
                chosen.add(int(item))
        except ValueError:
            raise DatasetError(f"speakers {text!r}: use numbers, ranges and commas like 2,4-6 or 'all'") from None
    return chosen


def read_split(root: Path) -> list[tuple[str, str]]:
    """(id, type) rows of ``train_test_split.csv``."""
    root = Path(root)
    path = root / SPLIT_FILE
    if not root.is_dir():
        raise DatasetError(f"data folder '{root}' does not exist: give a folder in the BEAT2 layout "
                           f"({SPLIT_FILE}, {MOTION_DIR}/, {AUDIO_DIR}/), or make one with gestura synth")
    if not path.is_file():
        raise DatasetError(
            f"{path} is missing: a BEAT2-layout folder needs {SPLIT_FILE} (columns id,type), "
            f"{MOTION_DIR}/ and {AUDIO_DIR}/"
        )
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"id", "type"} <= {n.strip() for n in reader.fieldnames}:
            raise DatasetError(f"{path} must have a header line with columns id,type; found {reader.fieldnames}")
        for row in reader:
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if row.get("id"):
                rows.append((row["id"], row.get("type", "").lower()))
    return rows


def list_clips(
    root: Path,
    splits: tuple[str, ...] | str = ("train",),
    speakers: set[int] | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> list[ClipRef]:
    """Clips of the given splits and speakers whose two files exist; others warn, are skipped and
    are appended to ``skipped`` as (id, reason)."""
    root = Path(root)
    if isinstance(splits, str):
        splits = (splits,)
    for s in splits:
        if s not in SPLITS:
            raise DatasetError(f"unknown split {s!r}; use one of {', '.join(SPLITS)}")
    rows = read_split(root)
    if not (root / MOTION_DIR).is_dir():
        raise DatasetError(f"{root / MOTION_DIR} is missing: motion files go there as <id>.npz")
    refs = []
    for clip_id, split in rows:
        if split not in splits:
            continue
        try:
            speaker = speaker_of(clip_id)
        except ClipError as error:
            _skip(clip_id, str(error), skipped)
            continue
        if speakers is not None and speaker not in speakers:
            continue
        ref = ClipRef(clip_id, speaker, split, root / MOTION_DIR / f"{clip_id}.npz", root / AUDIO_DIR / f"{clip_id}.wav")
        missing = [str(p) for p in (ref.motion_path, ref.audio_path) if not p.is_file()]
        if missing:
            _skip(clip_id, f"missing {' and '.join(missing)}", skipped)
            continue
        refs.append(ref)
    return refs


def _skip(clip_id: str, reason: str, skipped: list | None = None) -> None:
    warnings.warn(f"skipping clip {clip_id}: {reason}", DataWarning, stacklevel=3)
    if skipped is not None:
        skipped.append((clip_id, reason))


def read_motion_npz(path: Path) -> Motion:
    """A motion file as a 30 fps Motion, read as Import SMPL-X Motion reads it (BEAT2's layout, or
    any other that ``rigs.motion_formats`` converts); ClipError naming the file when it cannot be
    used. The conversion notices are not repeated for every clip."""
    from ..rigs.motion_formats import read_motion

    try:
        motion, _ = read_motion(path)
    except MotionError as error:
        raise ClipError(f"cannot read motion file: {error}") from None
    if motion.num_frames < 2:
        raise ClipError(f"{path}: only {motion.num_frames} frames")
    if abs(motion.fps - FPS) > 1e-6:
        from ..rigs.resample import resample

        motion = resample(motion, FPS)
    return motion


def joint_positions(motion: Motion, rest_joints: np.ndarray | None = None) -> np.ndarray:
    """(N, 55, 3) joint positions (metres, Y up, translation included) by forward kinematics."""
    from ..rigs.kinematics import forward_kinematics
    from ..rigs.rest_skeleton import default_rest_joints

    rest = default_rest_joints() if rest_joints is None else rest_joints
    positions, _ = forward_kinematics(motion.poses, motion.trans, rest)
    return np.asarray(positions, np.float32)


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    """Changes when the code that computes cached arrays changes, so stale caches are rebuilt."""
    from .. import inference, rigs

    h = hashlib.sha1(str(CACHE_FORMAT).encode())
    here = Path(__file__).resolve().parent
    for path in (
        Path(inference.__file__).parent / "features.py",
        Path(inference.__file__).parent / "audio.py",
        Path(inference.__file__).parent / "parts.py",
        Path(rigs.__file__).parent / "kinematics.py",
        Path(rigs.__file__).parent / "motion_formats.py",
        Path(rigs.__file__).parent / "rest_skeleton.py",
        here / "dataset.py",
    ):
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _file_signature(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def default_cache_dir(root: Path) -> Path:
    """``DIR/.gestura_cache`` when the data folder is writable, else a per-folder user cache."""
    root = Path(root).resolve()
    local = root / ".gestura_cache"
    if local.is_dir() or os.access(root, os.W_OK):
        return local
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "gestura" / hashlib.sha1(str(root).encode()).hexdigest()[:16]


def load_clip(
    ref: ClipRef,
    *,
    cache_dir: Path | None = None,
    max_mismatch_s: float = 1.0,
    keep_wave: bool = False,
) -> Clip:
    """Read, align and derive one clip (from the cache when it is current). Raises ClipError."""
    motion = read_motion_npz(ref.motion_path)
    signature = json.dumps(
        [_code_version(), _file_signature(ref.motion_path), _file_signature(ref.audio_path), max_mismatch_s]
    )
    cache_path = Path(cache_dir) / f"{ref.id}.npz" if cache_dir is not None else None
    cached = _read_cache(cache_path, signature) if cache_path is not None else None
    wave = None
    if cached is None or keep_wave:
        wave = read_wave(ref.audio_path)
    if cached is not None:
        n = cached["features"].shape[0]
        motion = _trim(motion, n)
        parts = {p: cached[f"part_{p}"] for p in PARTS}
        features, positions, contacts = cached["features"], cached["positions"], cached["contacts"]
    else:
        from ..inference.features import audio_features

        features = np.asarray(audio_features(wave), np.float32)
        n_motion, n_audio = motion.num_frames, features.shape[0]
        if abs(n_motion - n_audio) > max_mismatch_s * FPS:
            raise ClipError(
                f"{ref.motion_path.name} has {n_motion / FPS:.2f} s of motion but {ref.audio_path.name} has "
                f"{n_audio / FPS:.2f} s of audio (more than {max_mismatch_s:g} s apart)"
            )
        n = min(n_motion, n_audio)
        if n < 2:
            raise ClipError(f"{ref.id}: fewer than 2 frames once audio and motion are aligned")
        features, motion = features[:n], _trim(motion, n)
        from ..inference.parts import foot_contacts, motion_to_parts

        positions = joint_positions(motion)
        contacts = foot_contacts(positions)  # displacement < 1 cm per frame (SMPLX.md)
        parts = {p: np.asarray(a, np.float32) for p, a in motion_to_parts(motion, contacts=contacts).items()}
        if cache_path is not None:
            _write_cache(cache_path, signature, features, positions, contacts, parts)
    if wave is not None and keep_wave:
        wave = wave[: int(round(n / FPS * 16000))]
    apex = read_stroke_apex(ref.motion_path, n)
    if apex is None:
        from .metrics import derive_stroke_apexes

        apex_planned, apex = False, derive_stroke_apexes(positions)
    else:
        apex_planned = True
    return Clip(ref, motion, features, parts, positions, contacts, wave if keep_wave else None, apex, apex_planned)


def read_stroke_apex(path: Path, num_frames: int) -> np.ndarray | None:
    """The npz's planned ``stroke_apex`` channel at 30 fps over ``num_frames``, or None when
    it has none (BEAT2 itself). Raises ClipError when it is there but not a per-frame vector."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if STROKE_APEX not in data.files:
                return None
            apex = np.asarray(data[STROKE_APEX], np.float32)
            fps = float(data["mocap_frame_rate"]) if "mocap_frame_rate" in data.files else FPS
    except Exception as error:
        raise ClipError(f"{path}: cannot read ({type(error).__name__}: {error})") from None
    if apex.ndim != 1:
        raise ClipError(f"{path}: '{STROKE_APEX}' has shape {apex.shape}, expected one value per frame")
    # At another frame rate the motion is resampled to 30 fps (read_motion_npz): move the events along.
    frames = np.rint(np.flatnonzero(apex > 0.5) * FPS / fps).astype(np.int64)
    out = np.zeros(num_frames, np.float32)
    out[frames[frames < num_frames]] = 1.0
    return out


def read_wave(path: Path) -> np.ndarray:
    """A clip's audio as the model hears it: mono float32 at 16 kHz. ClipError when unreadable or empty."""
    from ..inference.audio import load_audio

    try:
        wave = load_audio(path)
    except Exception as error:  # AudioError, soundfile's LibsndfileError, ...
        raise ClipError(f"{path}: cannot read audio ({error})") from None
    if wave.size == 0:
        raise ClipError(f"{path}: empty audio")
    return wave


def _trim(motion: Motion, n: int) -> Motion:
    if motion.num_frames == n:
        return motion
    return Motion(motion.poses[:n], motion.trans[:n], motion.expressions[:n], motion.fps, motion.betas)


def _read_cache(path: Path, signature: str) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["signature"]) != signature:
                return None
            return {k: np.array(data[k]) for k in data.files if k != "signature"}
    except Exception:  # a cache file cut short by a killed run: rebuild it
        return None


def _write_cache(path, signature, features, positions, contacts, parts) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(
        tmp,
        signature=np.array(signature),
        features=features,
        positions=positions,
        contacts=contacts,
        **{f"part_{p}": a for p, a in parts.items()},
    )
    os.replace(tmp, path)  # atomic: parallel ranks never read half a file


@dataclass
class Beat2Dataset:
    """All usable clips of some splits and speakers of a BEAT2-layout folder, loaded in memory."""

    root: Path
    clips: list[Clip]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def load(
        cls,
        root: Path | str,
        splits: tuple[str, ...] | str = ("train",),
        speakers: set[int] | None = None,
        *,
        cache: bool | Path = True,
        max_mismatch_s: float = 1.0,
        keep_wave: bool = False,
        progress=None,
    ) -> "Beat2Dataset":
        root = Path(root)
        cache_dir = (default_cache_dir(root) if cache is True else Path(cache)) if cache else None
        skipped: list[tuple[str, str]] = []
        refs = list_clips(root, splits, speakers, skipped)
        clips = []
        for i, ref in enumerate(refs):
            try:
                clips.append(load_clip(ref, cache_dir=cache_dir, max_mismatch_s=max_mismatch_s, keep_wave=keep_wave))
            except ClipError as error:
                _skip(ref.id, str(error), skipped)
            if progress is not None:
                progress(i + 1, len(refs))
        return cls(root, clips, skipped)

    @property
    def speakers(self) -> list[int]:
        return sorted({c.ref.speaker for c in self.clips})

    @property
    def styles(self) -> list[str]:
        """One style name per speaker present, ordered by speaker number."""
        names: dict[int, str] = {}
        for c in self.clips:
            names.setdefault(c.ref.speaker, c.ref.style)
        return [names[s] for s in sorted(names)]

    @property
    def num_frames(self) -> int:
        return sum(c.num_frames for c in self.clips)

    def style_index(self, clip: Clip) -> int:
        return self.speakers.index(clip.ref.speaker)

    def describe(self) -> str:
        return (
            f"{len(self.clips)} clips, {self.num_frames / FPS / 60:.1f} min, speakers "
            f"{', '.join(self.styles) or 'none'}; {len(self.skipped)} skipped"
        )


def compute_stats(clips: list[Clip], eps: float = 1e-2) -> dict[str, np.ndarray]:
    """Normalization statistics over all frames of ``clips`` (the training split).

    Named as the checkpoint stores them (``inference.checkpoint.stats_shapes``): ``<part>_mean``
    / ``<part>_std`` per part and ``audio_mean`` / ``audio_std`` for the features; plus
    ``joint_speed_mean`` (55,), each joint's mean speed in m/s (BC normalizes by it); and the
    pose the clips start in, ``start_pose`` (55 * 3,) axis-angle and ``start_expressions`` (100,)
    (``start_frame``), which generation starts from when no start pose is given.
    Stds are floored at ``eps``: constant dimensions (a joint that never moves in the data) would
    otherwise blow up to inf when normalized.
    """
    if not clips:
        raise DatasetError("no usable training clips: check the folder, --speakers and the warnings above")
    stats: dict[str, np.ndarray] = {}
    for part in PARTS:
        stats[f"{part}_mean"], stats[f"{part}_std"] = _mean_std([c.parts[part] for c in clips], eps)
    stats["audio_mean"], stats["audio_std"] = _mean_std([c.features for c in clips], eps)
    speeds = [np.linalg.norm(np.diff(c.positions, axis=0), axis=-1) * FPS for c in clips]
    stats["joint_speed_mean"] = np.concatenate(speeds, axis=0).mean(axis=0).astype(np.float32)
    first = clips[start_frame(clips)]
    stats["start_pose"] = first.motion.poses[0].reshape(-1).astype(np.float32)
    stats["start_expressions"] = first.motion.expressions[0].astype(np.float32)
    return stats


def start_frame(clips: list[Clip]) -> int:
    """Index of the clip whose first frame is the medoid of all clips' first frames: the smallest
    summed distance to the others, over joint positions relative to the pelvis (m). A real pose
    of the data, not an average of rotations; the synthetic corpus starts every clip at rest in
    its leading silence, so this is that rest."""
    firsts = np.stack([c.positions[0] - c.positions[0, :1] for c in clips]).reshape(len(clips), -1).astype(np.float64)
    # Row by row: memory stays linear in the number of clips.
    return int(np.argmin([np.linalg.norm(firsts - first, axis=1).sum() for first in firsts]))


def _mean_std(arrays: list[np.ndarray], eps: float) -> tuple[np.ndarray, np.ndarray]:
    # Sums in float64: an hour of frames in float32 loses digits in the variance.
    count = sum(len(a) for a in arrays)
    total = sum(a.astype(np.float64).sum(axis=0) for a in arrays)
    mean = total / count
    var = sum(((a.astype(np.float64) - mean) ** 2).sum(axis=0) for a in arrays) / count
    return mean.astype(np.float32), np.maximum(np.sqrt(var), eps).astype(np.float32)


def window_index(clips: list[Clip], length: int, stride: int) -> np.ndarray:
    """(K, 2) array of (clip index, start frame) for every window of ``length`` frames taken every
    ``stride`` frames. A clip shorter than ``length`` gives one window at 0 (padded by the reader
    of the window). Deterministic, so every DDP rank sees the same index."""
    rows = []
    for i, clip in enumerate(clips):
        n = clip.num_frames
        starts = range(0, max(n - length, 0) + 1, max(stride, 1))
        rows.extend((i, s) for s in starts)
    return np.asarray(rows, np.int64).reshape(-1, 2)


def take_window(array: np.ndarray, start: int, length: int) -> np.ndarray:
    """``array[start:start+length]``, repeating the last frame when the clip is too short."""
    out = array[start : start + length]
    if len(out) < length:
        pad = np.repeat(out[-1:], length - len(out), axis=0)
        out = np.concatenate([out, pad], axis=0)
    return out
