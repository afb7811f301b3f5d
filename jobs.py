"""What a generation reads and writes, decided without bpy or torch.

Shared by the Blender operator, the ``blender -b -P blender_batch.py`` script and
``gestura generate``: which audio files a batch covers, what the new action is called, which
bones a set of body parts keys, and which output files already exist.
"""
from __future__ import annotations

import os
from pathlib import Path

from .rigs.skeleton import JOINT_NAMES, PART_JOINTS, PARTS

# What the audio loaders read (soundfile, Blender's aud with ffmpeg, or the stdlib wave module).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".m4a", ".opus")

# Blender truncates ID names at 63 bytes; the seed suffix must survive that.
_MAX_ID_BYTES = 63


class JobError(ValueError):
    """Input a batch cannot use; the message names the problem and the fix."""


def action_name(audio_path: str | os.PathLike, seed: int) -> str:
    """``<audio stem>_seed<seed>``: tells apart takes of the same clip in the action list."""
    suffix = f"_seed{int(seed)}"
    stem = Path(os.fspath(audio_path)).stem or "speech"
    budget = _MAX_ID_BYTES - len(suffix.encode())
    encoded = stem.encode()[:budget]
    # Cutting inside a multi-byte character would leave invalid UTF-8.
    stem = encoded.decode("utf-8", errors="ignore")
    return stem + suffix


def parse_parts(text: str | None) -> tuple[str, ...]:
    """``"upper,hands"`` -> ``("upper", "hands")`` in the model's order; None or "all" -> every part."""
    if text is None or text.strip().lower() in ("", "all"):
        return PARTS
    names = [name.strip().lower() for name in text.replace(" ", ",").split(",") if name.strip()]
    unknown = [name for name in names if name not in PARTS]
    if unknown:
        raise JobError(f"unknown body part {unknown[0]!r}: use a comma-separated list of {', '.join(PARTS)}")
    return tuple(part for part in PARTS if part in names)


def bones_for_parts(parts) -> tuple[str, ...]:
    """Joint (bone) names a generation keys: the joints the switched-on parts own.

    Eye joints belong to no part; they are never keyed, so an animator's eye rig stays free.
    """
    chosen = set()
    for part in parts:
        if part not in PART_JOINTS:
            raise JobError(f"unknown body part {part!r}: use {', '.join(PARTS)}")
        chosen.update(PART_JOINTS[part])
    return tuple(JOINT_NAMES[i] for i in sorted(chosen))


def collect_audio(inputs, recursive: bool = False) -> list[Path]:
    """Audio files named by ``inputs`` (files, or folders whose audio files are taken in name order)."""
    found: list[Path] = []
    for item in inputs:
        path = Path(os.fspath(item)).expanduser()
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            if not files:
                raise JobError(f"folder '{path}' holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            raise JobError(f"audio input '{path}' does not exist: check the path")
    unique: list[Path] = []
    seen = set()
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    if not unique:
        raise JobError("no audio given: name one or more audio files or folders")
    return unique


def output_paths(audio_files, out: str | os.PathLike, suffix: str) -> list[Path]:
    """Where each audio file's result goes: ``out`` itself when it names one ``suffix`` file for a
    single input, else ``out/<audio stem><suffix>``."""
    out = Path(os.fspath(out)).expanduser()
    audio_files = list(audio_files)
    if out.suffix.lower() == suffix.lower():
        if len(audio_files) != 1:
            raise JobError(f"'{out}' names one file but {len(audio_files)} audio files were given: "
                           "pass a folder as the output")
        return [out]
    if out.exists() and not out.is_dir():
        raise JobError(f"output '{out}' is a file, not a folder: pass a folder or a {suffix} file name")
    paths = [out / (Path(audio).stem + suffix) for audio in audio_files]
    seen: dict[Path, Path] = {}
    for audio, path in zip(audio_files, paths):
        if path in seen:
            raise JobError(f"'{seen[path]}' and '{audio}' would both write '{path}': rename one of them")
        seen[path] = Path(audio)
    return paths
