"""What a generation reads and writes, decided without bpy or torch.

Shared by the Blender operator, the ``blender -b -P blender_batch.py`` script and
``gestura generate``: which audio files a batch covers, what the new action is called, which
bones a set of body parts keys, and which output files already exist.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import GesturaError
from ..rigs.skeleton import JOINT_NAMES, PART_JOINTS, PARTS, ordered_parts
from .audio import BLENDER_AUDIO_EXTENSIONS, SOUNDFILE_EXTENSIONS

# Audio files a folder contributes, for every front end: what either decoder reads (the lists
# are inference.audio's). A front end whose Python lacks a decoder takes only what it can read
# (``collect_audio``'s ``extensions``) and names the files it left out.
AUDIO_EXTENSIONS = tuple(dict.fromkeys(SOUNDFILE_EXTENSIONS + BLENDER_AUDIO_EXTENSIONS))

# What the front ends write, and other files an output name may wrongly name: such a name is a
# mistake (refused), not a folder to create.
OUTPUT_FORMATS = (".npz", ".bvh", ".blend", ".fbx")
_OTHER_FILES = (".safetensors", ".json", ".txt", ".csv", ".pkl", ".abc", ".usd", ".usda", ".usdc", ".glb",
                ".gltf", ".obj", ".dae", ".png", ".gif", ".mp4") + AUDIO_EXTENSIONS

# Blender truncates ID names at 63 bytes; the seed suffix must survive that.
_MAX_ID_BYTES = 63


class JobError(GesturaError, ValueError):
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
    if text is None or text.strip().lower() == "all":
        return PARTS
    names = [name.strip().lower() for name in text.replace(" ", ",").split(",") if name.strip()]
    if not names:
        raise JobError(f"no body part named in {text!r}: give some of {', '.join(PARTS)} (or leave the option out "
                       "for all)")
    unknown = [name for name in names if name not in PARTS]
    if unknown:
        raise JobError(f"unknown body part {unknown[0]!r}: use a comma-separated list of {', '.join(PARTS)}")
    return ordered_parts(names)


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


def collect_audio(inputs, recursive: bool = False, extensions=AUDIO_EXTENSIONS, skipped: list | None = None
                  ) -> list[Path]:
    """Audio files named by ``inputs`` (files, or folders whose audio files are taken in name order).

    A folder contributes the files whose extension is in ``extensions`` (what this Python can
    decode); other audio files in it are appended to ``skipped``, when given, for the caller to name.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(os.fspath(item)).expanduser()
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            audio = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            files = [p for p in audio if p.suffix.lower() in extensions]
            if skipped is not None:
                skipped.extend(p for p in audio if p.suffix.lower() not in extensions)
            if not files:
                raise JobError(f"folder '{path}' holds no audio files this Python can read ({', '.join(extensions)})")
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


def named_format(path: str | os.PathLike) -> str | None:
    """The file extension of ``path`` when it names a known kind of file (lower case), else None."""
    suffix = Path(os.fspath(path)).suffix.lower()
    return suffix if suffix in OUTPUT_FORMATS or suffix in _OTHER_FILES else None


def output_paths(audio_files, out: str | os.PathLike, formats=(".blend",),
                 folder_format: str | None = None) -> list[Path]:
    """Where each audio file's result goes, judged by what is on disk first.

    ``out`` is a folder (``out/<audio stem><format>`` each) when it ends in a path separator or
    is an existing folder; else one output file when its extension is one of ``formats`` (a
    single audio file only); else, when its extension names another kind of file, a mistake;
    otherwise (no extension, or one like ``session.2024-05``) a folder to create. A folder
    receives ``folder_format`` (default ``formats[0]``); given with a file name, it must agree.
    Raises JobError with one sentence. Nothing is created here.
    """
    text = os.fspath(out)
    path = Path(text).expanduser()
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    audio_files = list(audio_files)
    wants_folder = text.endswith(("/", os.sep)) or path.is_dir()
    if not wants_folder and (path.exists() or named_format(path)):
        suffix = path.suffix.lower()
        if suffix not in formats:
            kind = "an existing file" if path.exists() else f"a {suffix} file"
            raise JobError(f"output '{text}' is {kind}, but only {', '.join(formats)} files can be written: "
                           f"name one of those, or a folder")
        if folder_format is not None and folder_format.lower() != suffix:
            raise JobError(f"output '{text}' names a {suffix} file but the format {folder_format} was asked for: "
                           f"name a {folder_format} file, or leave the format out")
        if len(audio_files) != 1:
            raise JobError(f"'{text}' names one file but {len(audio_files)} audio files were given: "
                           "pass a folder as the output")
        return [path]
    if path.exists() and not path.is_dir():
        raise JobError(f"output '{text}' is a file, not a folder: pass a folder or a {formats[0]} file name")
    suffix = (folder_format or formats[0]).lower()
    paths = [path / (Path(audio).stem + suffix) for audio in audio_files]
    seen: dict[Path, Path] = {}
    for audio, target in zip(audio_files, paths):
        if target in seen:
            raise JobError(f"'{seen[target]}' and '{audio}' would both write '{target}': rename one of them")
        seen[target] = Path(audio)
    return paths


def check_output_folder(folder: str | os.PathLike) -> None:
    """Refuse, before any work, a folder that cannot be written into or created (JobError).

    Creates nothing: the nearest existing folder on the way is tried with a probe file, which
    tells what the OS allows (permissions, read-only or immutable folders), root included.
    """
    from ..rigs.motion_io import probe_folder

    folder = Path(os.fspath(folder)).expanduser()
    existing = folder
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise JobError(f"output folder '{folder}' cannot be created: '{existing}' is a file, not a folder")
    reason = probe_folder(existing)
    if reason is not None and existing == folder:
        raise JobError(f"cannot write into output folder '{folder}': {reason}")
    if reason is not None:
        raise JobError(f"cannot create output folder '{folder}': cannot write into '{existing}' ({reason})")
