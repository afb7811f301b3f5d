"""Bone maps from SMPL-X joints to other rigs' bones: the bundled presets (json files beside this
module), users' own map files, and picking a preset from a target armature's bone names.

A map file is json:

    {"name": "...", "description": "...",
     "bones": {"<SMPL-X joint>": "<target bone>", ...},   # or "<bone>, <bone>, ...": a chain
     "optional": ["<SMPL-X joint>", ...],       # may be missing on a target without error
     "detect": ["<target bone>", ...],          # names that identify the rig (presets only)
     "root": "<target bone>",                   # moves with the pelvis (default: the pelvis's bone)
     "rest_directions_from": "<preset id>",     # control rigs: measure rest directions on the
                                                # (deform) bones that preset names
     "keyed_properties": [{"bone": "...", "property": "...", "value": 1.0}]}  # keyed constant

Finger joints are always optional: a rig without fingers still takes the body motion.

A joint may drive a chain of target bones, named parent first and separated by commas
(``"neck": "Neck, Neck1"``): the rotations of the joint and of the unmapped joints just above it
(up to its nearest mapped ancestor) are spread along the chain by length. That is how a
rig with two spine bones takes SMPL-X's three (``"spine3": "Ab, Chest"``, spine1 and spine2 left
out), or one with two neck bones takes its one.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ...errors import GesturaError
from ..skeleton import HAND_JOINTS, JOINT_NAMES

PRESET_DIR = Path(__file__).resolve().parent
FINGER_JOINTS: frozenset[str] = frozenset(JOINT_NAMES[i] for i in HAND_JOINTS)
# A map without these cannot drive a body: the operator refuses targets that lack any of them.
CORE_JOINTS: tuple[str, ...] = (
    "pelvis", "spine1", "neck", "head",
    "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
    "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle",
)


def chain_bones(target: str) -> tuple[str, ...]:
    """The target bones one map entry names: one bone, or a comma-separated chain."""
    return tuple(part.strip() for part in target.split(",")) if "," in target else (target,)


class BoneMapError(GesturaError, ValueError):
    """A bone map file or map that cannot be used; the message names the problem and the fix."""


@dataclass(frozen=True)
class BoneMap:
    name: str
    bones: dict[str, str]  # SMPL-X joint -> target bone
    optional: frozenset[str] = frozenset()
    description: str = ""
    detect: tuple[str, ...] = ()
    keyed_properties: tuple[dict, ...] = ()
    preset: str = ""  # the preset's id (file stem) for bundled maps
    root: str = ""  # target bone carrying the root translation ('' = the one the pelvis maps to)
    rest_directions_from: str = ""  # preset whose bones show where this map's bones point

    def required(self) -> list[str]:
        """Source joints whose target bones must exist."""
        return [s for s in self.bones if s not in self.optional and s not in FINGER_JOINTS]

    def to_dict(self) -> dict:
        data = {"name": self.name, "description": self.description, "bones": dict(self.bones),
                "optional": sorted(self.optional)}
        if self.detect:
            data["detect"] = list(self.detect)
        if self.keyed_properties:
            data["keyed_properties"] = [dict(p) for p in self.keyed_properties]
        if self.root:
            data["root"] = self.root
        if self.rest_directions_from:
            data["rest_directions_from"] = self.rest_directions_from
        return data

    def with_prefix(self, prefix: str) -> "BoneMap":
        """The same map for a rig whose bones carry a namespace prefix (``mixamorig1:Hips``)."""
        return BoneMap(
            self.name if not prefix else f"{self.name} ({prefix})",
            {s: ", ".join(prefix + b for b in chain_bones(t)) for s, t in self.bones.items()},
            self.optional,
            self.description,
            tuple(prefix + d for d in self.detect),
            tuple({**p, "bone": prefix + p["bone"]} for p in self.keyed_properties),
            self.preset,
            prefix + self.root if self.root else "",
            self.rest_directions_from,
        )


def bone_map_from_dict(data, origin: str = "bone map") -> BoneMap:
    if not isinstance(data, dict) or not isinstance(data.get("bones"), dict):
        raise BoneMapError(f"{origin} must be a json object with a \"bones\" object of SMPL-X joint -> target bone")
    bones = data["bones"]
    unknown = sorted(s for s in bones if s not in JOINT_NAMES)
    if unknown:
        raise BoneMapError(f"{origin} maps joints SMPL-X does not have: {', '.join(unknown)} (joint names are like 'left_elbow')")
    empty = sorted(s for s, t in bones.items() if not isinstance(t, str) or not all(chain_bones(t)))
    if empty:
        raise BoneMapError(f"{origin} gives no target bone name for: {', '.join(empty)}")
    seen: dict[str, str] = {}
    for s, t in bones.items():
        for bone in chain_bones(t):
            if bone in seen:
                raise BoneMapError(f"{origin} maps both '{seen[bone]}' and '{s}' to the bone '{bone}'; each target bone once")
            seen[bone] = s
    optional = data.get("optional", [])
    if not isinstance(optional, list) or any(o not in JOINT_NAMES for o in optional):
        raise BoneMapError(f"{origin}: \"optional\" must be a list of SMPL-X joint names")
    props = data.get("keyed_properties", [])
    if not isinstance(props, list) or not all(
        isinstance(p, dict) and isinstance(p.get("bone"), str) and isinstance(p.get("property"), str)
        and isinstance(p.get("value"), (int, float)) for p in props
    ):
        raise BoneMapError(f"{origin}: \"keyed_properties\" entries need \"bone\", \"property\" and a number \"value\"")
    root = data.get("root", "")
    if not isinstance(root, str):
        raise BoneMapError(f"{origin}: \"root\" must be a target bone name")
    return BoneMap(
        name=str(data.get("name") or origin),
        bones=dict(bones),
        optional=frozenset(optional),
        description=str(data.get("description", "")),
        detect=tuple(data.get("detect", ())),
        keyed_properties=tuple(props),
        root=root,
        rest_directions_from=str(data.get("rest_directions_from", "")),
    )


def load_bone_map(path) -> BoneMap:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BoneMapError(f"bone map file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BoneMapError(f"bone map file {path} is not valid json: {error}") from None
    return bone_map_from_dict(data, origin=f"bone map file {path.name}")


def save_bone_map(bone_map: BoneMap, path, overwrite: bool = False) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".json":
        path = path.with_suffix(".json")
    if path.exists() and not overwrite:
        raise BoneMapError(f"{path} already exists; choose another name or allow overwriting")
    bone_map_from_dict(bone_map.to_dict())  # never write a map that could not be read back
    path.write_text(json.dumps(bone_map.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def presets() -> dict[str, BoneMap]:
    """The bundled maps, by id (file stem), in a stable order."""
    return dict(_bundled())


@functools.lru_cache(maxsize=1)
def _bundled() -> tuple[tuple[str, BoneMap], ...]:
    # Read once: the panel detects the preset on every redraw.
    out = []
    for path in sorted(PRESET_DIR.glob("*.json")):
        m = load_bone_map(path)
        out.append((path.stem, BoneMap(m.name, m.bones, m.optional, m.description, m.detect, m.keyed_properties,
                                       path.stem, m.root, m.rest_directions_from)))
    return tuple(out)


def _namespace_prefixes(names: Iterable[str]) -> list[str]:
    """Namespace prefixes in use (``mixamorig1:``), most common first."""
    counts: dict[str, int] = {}
    for n in names:
        if ":" in n:
            prefix = n[: n.rindex(":") + 1]
            counts[prefix] = counts.get(prefix, 0) + 1
    return sorted(counts, key=lambda p: -counts[p])


def detect_preset(target_names: Iterable[str]) -> BoneMap | None:
    """The bundled map that fits a rig best, judged by its bone names, or None when none fits.

    A preset fits when its identifying bones and every core joint's bone exist; among those the one
    matching most bones wins. Rigs whose bones carry another namespace (``mixamorig2:``) match
    the unprefixed maps with that prefix put back.
    """
    names = set(target_names)
    presets_by_id = presets()
    best, best_score = None, None
    for candidate in _candidates(names):
        core = [s for s in CORE_JOINTS if s in candidate.bones]
        if not candidate.detect or not all(d in names for d in candidate.detect):
            continue
        if not all(candidate.bones[s] in names for s in core):
            continue
        # Bundled names as they are beat the same map re-prefixed; then more specific presets win.
        exact = candidate.name == presets_by_id.get(candidate.preset, candidate).name
        score = (sum(t in names for t in candidate.bones.values()), exact, len(candidate.detect))
        if best_score is None or score > best_score:
            best, best_score = candidate, score
    return best


def fitting_preset(target_names: Iterable[str]) -> BoneMap | None:
    """The detected preset when the rig has every bone it requires, else None (CMU BVH skeletons
    share Mixamo's names but not its three spine bones: they are better guessed)."""
    names = set(target_names)
    detected = detect_preset(names)
    return detected if detected is not None and resolve(detected, names).ok else None


def _candidates(names: set[str]) -> list[BoneMap]:
    found = list(presets().values())
    for prefix in _namespace_prefixes(names):
        found += [m.with_prefix(prefix) for m in presets().values() if not any(":" in t for t in m.bones.values())]
    return found


@dataclass
class Resolution:
    """A map checked against a target rig: what will be keyed and what is missing, by name."""

    pairs: dict[str, str]  # SMPL-X joint -> target bone (or comma-separated chain), all present on the target
    missing_required: list[str] = field(default_factory=list)  # target bones the map needs but the rig lacks
    missing_optional: list[str] = field(default_factory=list)
    skipped_fingers: bool = False

    @property
    def ok(self) -> bool:
        return not self.missing_required


def resolve(bone_map: BoneMap, target_names: Iterable[str], source_names: Iterable[str] = JOINT_NAMES,
            fingers: bool = True) -> Resolution:
    """Check ``bone_map`` against the target's (and source's) bone names."""
    names = set(target_names)
    sources = set(source_names)
    required = set(bone_map.required())
    pairs, missing_required, missing_optional = {}, [], []
    for s, t in bone_map.bones.items():
        if s in FINGER_JOINTS and not fingers:
            continue
        absent = [b for b in chain_bones(t) if b not in names]
        if not absent and s in sources:
            pairs[s] = t
        elif s in required:
            missing_required.extend(absent or [f"{s} (source)"])
        else:
            missing_optional.extend(absent or [f"{s} (source)"])
    if bone_map.root and bone_map.root not in names:
        missing_required.append(bone_map.root)
    return Resolution(pairs, missing_required, missing_optional, skipped_fingers=not fingers)
