"""Guess a bone map for a humanoid rig no preset knows, from its bone names and hierarchy. No bpy.

Names say what a bone is (``LeftElbow``, ``Bip01 L Forearm``, ``lShin``, ``upper_arm.L``...): a
side marker in any spelling (Left/Right, L/R, l_/r_, _l/_r, .L/.R, -L, lThigh) and the usual word
for the joint. The hierarchy says which bone plays which part, where words are ambiguous or
missing: walking up from each hand, the bones up to the spine are forearm, upper arm and then
clavicle(s) ("shoulder" is a clavicle when an upper arm follows it, else the upper arm); from each
foot, shin, thigh and then extra hip joints (left unmapped: they follow the pelvis as SMPL-X's
pelvis carries its hips). The pelvis is where the legs and the spine branch; the spine runs from
there to the bone the arms hang from; neck bones lead on to the head.

Chains whose bone count differs from SMPL-X's are mapped as chains (see ``rigs.bonemaps``): a
spine of one, two or four bones takes spine1-spine3's combined rotation (``"spine3": "Ab, Chest"``),
two neck bones share the neck's, two clavicles the collar's. Fingers, jaw and eyes are mapped when
named, and optional.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from ..skeleton import JOINT_NAMES
from . import FINGER_JOINTS, BoneMap

_LEFT = frozenset({"left", "l", "lft"})
_RIGHT = frozenset({"right", "r", "rt", "rgt"})
# Name parts that say nothing about the joint (exporters' prefixes).
_NOISE = frozenset({"bip", "def", "org", "jnt", "joint", "bone", "b", "c", "cc", "base"})
_FINGERS = {"thumb": "thumb", "index": "index", "middle": "middle", "mid": "middle", "ring": "ring",
            "pinky": "pinky", "pinkie": "pinky", "little": "pinky"}
_SPINE_WORDS = ("spine", "ab", "abdomen", "abs", "chest", "torso", "back", "lowerback", "upperback", "waist",
                "upperchest", "belly", "stomach")

GUESSED_DESCRIPTION = "Guessed from the rig's bone names and hierarchy"
# Joints a rig of the same kind may lack when the guessed map is saved and used again.
_OPTIONAL = frozenset({"left_foot", "right_foot", "jaw", "left_eye_smplhf", "right_eye_smplhf"}) | FINGER_JOINTS
# SMPL-X body joints a humanoid must show; the others are guessed when present.
_ESSENTIAL = ("pelvis", "head", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow",
              "right_wrist", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle")


def name_words(name: str) -> list[str]:
    """Lower-case words of a bone name: namespace dropped, camel case and separators split."""
    name = name.rsplit(":", 1)[-1]
    return [w.lower() for w in re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", name)]


def side_of(words: Sequence[str]) -> str:
    """'left', 'right' or '' from a bone's words."""
    left, right = any(w in _LEFT for w in words), any(w in _RIGHT for w in words)
    return "left" if left and not right else "right" if right and not left else ""


def kind_of(words: Sequence[str]) -> str:
    """What a bone's words call it: a limb part, a trunk part, a finger, 'end' (tip helpers such as
    HeadTop_End), 'helper' (twist and control bones) or '' (unknown)."""
    core = [w for w in words if w not in _LEFT and w not in _RIGHT and w not in _NOISE and not w.isdigit()]
    joined = "".join(core)
    if any(w in ("end", "nub", "tip", "site", "top") for w in core) or joined.endswith("end"):
        return "end"
    if any(w in ("twist", "roll", "ik", "pole", "target", "ctrl", "helper", "mch", "tweak", "bend") for w in core):
        return "helper"
    if any(w in _FINGERS or w in ("finger", "fingers", "carpal", "metacarpal") for w in core):
        return "finger"
    for kind, keys in (
        ("toe", ("toe", "toes", "ball")),
        ("foot", ("foot", "ankle")),
        ("thigh", ("thigh", "upleg", "upperleg", "femur")),
        ("shin", ("calf", "shin", "knee", "lowerleg", "loleg", "leg")),
        ("hand", ("hand", "wrist", "palm")),
        ("forearm", ("forearm", "lowerarm", "loarm", "elbow")),
        ("upperarm", ("upperarm", "uparm", "arm", "humerus")),
        ("shoulder", ("shoulder", "shldr")),
        ("collar", ("collar", "clavicle", "clav", "collarbone")),
        ("hip", ("hip", "hips", "pelvis")),
        ("face", ("face", "facial")),  # a face rig's root under the head: not the head
        ("eye", ("eye",)),
        ("jaw", ("jaw",)),
        ("head", ("head",)),
        ("neck", ("neck",)),
        ("spine", _SPINE_WORDS),
    ):
        # The whole name first ("UpLeg" is a thigh), then any of its words ("clavicle_inner").
        if joined in keys or any(w in keys for w in core):
            return kind
    return ""


@dataclass
class BoneGuess:
    """A guessed map and what it rests on; ``problems`` says what could not be found."""

    bone_map: BoneMap
    reasons: dict[str, str] = field(default_factory=dict)  # SMPL-X joint -> why it got its bone(s), or why none
    problems: list[str] = field(default_factory=list)  # what a body needs that was not found

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unmapped(self) -> list[str]:
        """Body joints (fingers aside) the map leaves out."""
        return [j for j in JOINT_NAMES if j not in self.bone_map.bones and j not in FINGER_JOINTS]


class _Rig:
    def __init__(self, names: Sequence[str], parents: Sequence[str | None]):
        if len(names) != len(parents):
            raise ValueError(f"{len(names)} bone names but {len(parents)} parents")
        self.names = list(names)
        self.parent = {n: (p or None) for n, p in zip(names, parents)}
        self.children: dict[str, list[str]] = {n: [] for n in names}
        for n, p in self.parent.items():
            if p in self.children:
                self.children[p].append(n)
        words = {n: name_words(n) for n in names}
        self.side = {n: side_of(w) for n, w in words.items()}
        self.kind = {n: kind_of(w) for n, w in words.items()}
        self.words = words

    def ancestors(self, name: str) -> list[str]:
        out, p = [], self.parent.get(name)
        while p is not None and p not in out:
            out.append(p)
            p = self.parent.get(p)
        return out

    def depth(self, name: str) -> int:
        return len(self.ancestors(name))

    def common_ancestor(self, names: Sequence[str]) -> str | None:
        """The deepest bone that is (or is above) all ``names``."""
        lines = [[n] + self.ancestors(n) for n in names]
        shared = [b for b in lines[0] if all(b in line for line in lines[1:])]
        return shared[0] if shared else None

    def path_down(self, top: str, bottom: str) -> list[str]:
        """Bones from just below ``top`` down to ``bottom`` (inclusive)."""
        line = [bottom] + self.ancestors(bottom)
        return list(reversed(line[: line.index(top)])) if top in line else []


def _limb(rig: _Rig, side: str, end_kind: str, middle_kind: str, upper_kinds: tuple[str, ...]):
    """Walk up from the side's shallowest ``end_kind`` bone to the trunk: (end, middle, upper,
    bones above upper) or None, with the reason."""
    ends = sorted((n for n in rig.names if rig.side[n] == side and rig.kind[n] == end_kind), key=rig.depth)
    if not ends:
        return None
    end = ends[0]
    above = []
    for a in rig.ancestors(end):
        if rig.side[a] != side:
            break
        above.append(a)
    above.reverse()  # trunk first
    usable = [a for a in above if rig.kind[a] not in ("helper", "end")]
    if len(usable) < 2:
        return None
    # Unnamed bones may fill a part by their place; a bone named as another part may not.
    middles = [i for i, a in enumerate(usable) if rig.kind[a] == middle_kind]
    m = middles[-1] if middles else len(usable) - 1
    if m == 0 or rig.kind[usable[m]] not in ("", middle_kind):
        return None
    uppers = [i for i in range(m) if rig.kind[usable[i]] in upper_kinds]
    u = uppers[-1] if uppers else m - 1
    if rig.kind[usable[u]] not in ("",) + upper_kinds:
        return None
    return end, usable[m], usable[u], usable[:u]


def guess_bone_map(names: Sequence[str], parents: Sequence[str | None], rig_name: str = "rig") -> BoneGuess:
    """Guess the SMPL-X joint -> bone map of a humanoid rig from its bone ``names`` and each one's
    ``parents`` entry (a bone name, or None / '' for a root). Never raises on a strange rig: what
    cannot be found is listed in ``problems`` (then the map must not be used as it is)."""
    rig = _Rig(names, parents)
    bones: dict[str, str] = {}
    reasons: dict[str, str] = {}
    problems: list[str] = []

    def put(joint: str, chain: Sequence[str], why: str) -> None:
        bones[joint] = ", ".join(chain)
        reasons[joint] = why

    tops = {}
    thighs = {}
    for side in ("left", "right"):
        arm = _limb(rig, side, "hand", "forearm", ("upperarm", "shoulder"))
        if arm is None:
            problems.append(f"no {side} arm (a {side} hand or wrist bone below an upper arm and forearm)")
        else:
            hand, forearm, upper, collars = arm
            put(f"{side}_wrist", [hand], f"'{hand}' is named as a hand")
            put(f"{side}_elbow", [forearm], f"'{forearm}' is the forearm above '{hand}'")
            put(f"{side}_shoulder", [upper], f"'{upper}' is the upper arm above '{forearm}'")
            if collars:
                put(f"{side}_collar", collars, f"{_quoted(collars)} between the spine and the upper arm")
            else:
                reasons[f"{side}_collar"] = "no bone between the spine and the upper arm"
            tops[side] = (collars or [upper])[0]
            _fingers(rig, side, hand, put)
        leg = _limb(rig, side, "foot", "shin", ("thigh", "hip"))
        if leg is None:
            problems.append(f"no {side} leg (a {side} foot or ankle bone below a thigh and shin)")
            continue
        foot, shin, thigh, extra = leg
        put(f"{side}_ankle", [foot], f"'{foot}' is named as a foot")
        put(f"{side}_knee", [shin], f"'{shin}' is the shin above '{foot}'")
        put(f"{side}_hip", [thigh], f"'{thigh}' is the thigh above '{shin}'"
            + (f" ({_quoted(extra)} above it follow the pelvis)" if extra else ""))
        thighs[side] = extra[0] if extra else thigh
        toes = [c for c in rig.children[foot] if rig.kind[c] == "toe"] or [
            c for c in rig.children[foot] if rig.side[c] == side and rig.kind[c] not in ("end", "helper")]
        if len(toes) == 1:
            put(f"{side}_foot", toes, f"'{toes[0]}' is the toe below '{foot}'")
        else:
            reasons[f"{side}_foot"] = f"no single toe bone below '{foot}'"

    if len(tops) == 2 and len(thighs) == 2:
        chest = rig.common_ancestor([tops["left"], tops["right"]])
        pelvis = rig.common_ancestor([thighs["left"], thighs["right"], chest]) if chest else None
        if chest is None or pelvis is None or pelvis == chest:
            problems.append("no spine between the hips and the arms")
        else:
            _trunk(rig, pelvis, chest, set(bones.values()), put, reasons, problems)
    return BoneGuess(
        BoneMap(f"{rig_name} (guessed)", bones, frozenset(j for j in bones if j in _OPTIONAL),
                GUESSED_DESCRIPTION),
        reasons, problems + [f"nothing found for {j}" for j in _ESSENTIAL if j not in bones and not problems],
    )


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _trunk(rig: _Rig, pelvis: str, chest: str, used: set, put, reasons: dict, problems: list) -> None:
    put("pelvis", [pelvis], f"'{pelvis}' is where the legs and the spine branch")
    path = rig.path_down(pelvis, chest)
    neck_low = []
    while path and rig.kind[path[-1]] == "neck":  # 3ds Max Biped hangs the clavicles off the neck
        neck_low.insert(0, path.pop())
    spine = path
    if not spine:
        problems.append(f"no spine bone between '{pelvis}' and the arms")
        return
    if len(spine) == 3:
        for joint, bone in zip(("spine1", "spine2", "spine3"), spine):
            put(joint, [bone], f"'{bone}' is on the spine from '{pelvis}' to the arms")
    else:
        put("spine3", spine, f"the spine from '{pelvis}' to the arms has {len(spine)} bone(s) where SMPL-X "
            "has three: spine1-spine3's rotation is spread along " + _quoted(spine))
        for joint in ("spine1", "spine2"):
            reasons[joint] = f"spread over {_quoted(spine)} (see spine3)"
    # The head: a bone named so above the arms, else the top of the trunk's single chain.
    above = [n for n in rig.names if chest in rig.ancestors(n) and n not in used and not rig.side[n]]
    heads = sorted((n for n in above + neck_low if rig.kind[n] == "head"), key=rig.depth)
    if heads:
        head = heads[0]
        why = f"'{head}' is named as the head"
    else:
        line, bone = [], chest
        while True:
            kids = [c for c in rig.children[bone]
                    if c in above and rig.kind[c] not in ("end", "helper", "eye", "jaw", "face")]
            if len(kids) != 1:
                break
            bone = kids[0]
            line.append(bone)
        if not line:
            problems.append(f"no head above '{chest}'")
            return
        head = line[-1]
        why = f"'{head}' ends the chain above the arms"
    put("head", [head], why)
    necks = neck_low + [b for b in rig.path_down(chest, head) if b != head]
    if necks:
        put("neck", necks, f"{_quoted(necks)} between the spine and the head"
            + (": the neck's rotation is spread along them" if len(necks) > 1 else ""))
    else:
        reasons["neck"] = "no bone between the spine and the head"
    for joint, kind, side in (("jaw", "jaw", ""), ("left_eye_smplhf", "eye", "left"), ("right_eye_smplhf", "eye", "right")):
        found = sorted((n for n in rig.names if head in rig.ancestors(n) and rig.kind[n] == kind and rig.side[n] == side),
                       key=rig.depth)
        if found:
            put(joint, found[:1], f"'{found[0]}' is named so, below the head")


def _fingers(rig: _Rig, side: str, hand: str, put) -> None:
    below = [n for n in rig.names if hand in rig.ancestors(n) and rig.kind[n] == "finger"]
    for word, finger in _FINGERS.items():
        chain = sorted((n for n in below if word in rig.words[n]), key=rig.depth)
        for k, bone in enumerate(chain[:3], 1):
            joint = f"{side}_{finger}{k}"
            if joint not in FINGER_JOINTS:
                continue
            put(joint, [bone], f"'{bone}' is the {finger} finger's bone {k}")
