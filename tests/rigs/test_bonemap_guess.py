"""Guessing a bone map from a rig's bone names and hierarchy, over the naming schemes of real
skeletons: Biovision BVH (Boxing_Toes.bvh), CMU BVH, 3ds Max Biped, DAZ Genesis, Rigify-style
``upper_arm.L``, Unreal-style snake case with extra hip/clavicle/neck joints, and Mixamo."""
from __future__ import annotations

import pytest

from gestura.rigs.bonemaps import bone_map_from_dict, fitting_preset, presets
from gestura.rigs.bonemaps.guess import guess_bone_map, kind_of, name_words, side_of


def tree(text: str, left: str = "", right: str = "") -> tuple[list[str], list[str | None]]:
    """Bones from lines 'parent > child, child, ...' (the first parent is the root; names may hold
    spaces). ``{s}`` in a name stands for the side marker: such bones come as ``left`` and ``right``."""
    names, parents = [], []

    def sides(name: str) -> list[str]:
        return [name.replace("{s}", left), name.replace("{s}", right)] if "{s}" in name else [name]

    for line in text.strip().splitlines():
        parent, kids = (part.strip() for part in line.split(">"))
        for k, p in enumerate(sides(parent)):
            if p not in names:
                names.append(p)
                parents.append(None)
            for kid in (piece.strip() for piece in kids.split(",")):
                # Under a sided parent, a sided child is on the same side.
                for c in ([sides(kid)[k]] if "{s}" in parent and "{s}" in kid else sides(kid)):
                    names.append(c)
                    parents.append(p)
    return names, parents


def limbs(collar, upper, fore, hand, thigh, shin, foot, toe, left: str, right: str) -> dict:
    """The expected arm and leg entries of both sides (``{s}`` in a name: the side marker)."""
    return {f"{side}_{joint}": bone.replace("{s}", marker)
            for side, marker in (("left", left), ("right", right))
            for joint, bone in (("collar", collar), ("shoulder", upper), ("elbow", fore), ("wrist", hand),
                                ("hip", thigh), ("knee", shin), ("ankle", foot), ("foot", toe))}


BOXING = (tree("""
Hips > Ab, {s}Hip
Ab > Chest
Chest > Neck, {s}Collar
Neck > Head
{s}Collar > {s}Shoulder
{s}Shoulder > {s}Elbow
{s}Elbow > {s}Wrist
{s}Hip > {s}Knee
{s}Knee > {s}Ankle
{s}Ankle > {s}Toes
""", "Left", "Right"), {"pelvis": "Hips", "spine3": "Ab, Chest", "neck": "Neck", "head": "Head",
                        **limbs("{s}Collar", "{s}Shoulder", "{s}Elbow", "{s}Wrist", "{s}Hip", "{s}Knee", "{s}Ankle",
                                "{s}Toes", left="Left", right="Right")})

CMU = (tree("""
Hips > {s}HipJoint, LowerBack
{s}HipJoint > {s}UpLeg
{s}UpLeg > {s}Leg
{s}Leg > {s}Foot
{s}Foot > {s}ToeBase
LowerBack > Spine
Spine > Spine1
Spine1 > Neck, {s}Shoulder
Neck > Neck1
Neck1 > Head
{s}Shoulder > {s}Arm
{s}Arm > {s}ForeArm
{s}ForeArm > {s}Hand
{s}Hand > {s}FingerBase, {s}Thumb
{s}FingerBase > {s}HandIndex1
""", "Left", "Right"),
    {"pelvis": "Hips", "spine1": "LowerBack", "spine2": "Spine", "spine3": "Spine1", "neck": "Neck, Neck1",
     "head": "Head", "left_index1": "LeftHandIndex1", "left_thumb1": "LeftThumb", "right_index1": "RightHandIndex1",
     "right_thumb1": "RightThumb",
     **limbs("{s}Shoulder", "{s}Arm", "{s}ForeArm", "{s}Hand", "{s}UpLeg", "{s}Leg", "{s}Foot", "{s}ToeBase",
             left="Left", right="Right")})

# 3ds Max Biped hangs the thighs off the first spine bone and the clavicles off the neck.
BIPED = (tree("""
Bip01 > Bip01 Pelvis
Bip01 Pelvis > Bip01 Spine
Bip01 Spine > Bip01 Spine1, Bip01 {s} Thigh
Bip01 Spine1 > Bip01 Neck
Bip01 Neck > Bip01 Head, Bip01 {s} Clavicle
Bip01 Head > Bip01 HeadNub
Bip01 {s} Thigh > Bip01 {s} Calf
Bip01 {s} Calf > Bip01 {s} Foot
Bip01 {s} Foot > Bip01 {s} Toe0
Bip01 {s} Toe0 > Bip01 {s} Toe0Nub
Bip01 {s} Clavicle > Bip01 {s} UpperArm
Bip01 {s} UpperArm > Bip01 {s} Forearm
Bip01 {s} Forearm > Bip01 {s} Hand
Bip01 {s} Hand > Bip01 {s} Finger0, Bip01 {s} Finger1
""", "L", "R"),
    {"pelvis": "Bip01 Spine", "spine3": "Bip01 Spine1", "neck": "Bip01 Neck", "head": "Bip01 Head",
     **limbs("Bip01 {s} Clavicle", "Bip01 {s} UpperArm", "Bip01 {s} Forearm", "Bip01 {s} Hand", "Bip01 {s} Thigh",
             "Bip01 {s} Calf", "Bip01 {s} Foot", "Bip01 {s} Toe0", left="L", right="R")})

# DAZ Genesis 2: the spine branches off 'hip'; 'pelvis' is an extra bone carrying the thighs.
DAZ = (tree("""
hip > pelvis, abdomen
pelvis > {s}Thigh
{s}Thigh > {s}Shin
{s}Shin > {s}Foot
{s}Foot > {s}Toe
abdomen > abdomen2
abdomen2 > chest
chest > neck, {s}Collar
neck > head
{s}Collar > {s}Shldr
{s}Shldr > {s}ForeArm
{s}ForeArm > {s}Hand
{s}Hand > {s}Thumb1, {s}Carpal1, {s}Carpal2
{s}Thumb1 > {s}Thumb2
{s}Thumb2 > {s}Thumb3
{s}Carpal1 > {s}Index1
{s}Index1 > {s}Index2
{s}Carpal2 > {s}Mid1
""", "l", "r"),
    {"pelvis": "hip", "spine1": "abdomen", "spine2": "abdomen2", "spine3": "chest", "neck": "neck", "head": "head",
     **{f"{side}_{joint}": f"{side[0]}{bone}" for side in ("left", "right") for joint, bone in (
         ("thumb1", "Thumb1"), ("thumb2", "Thumb2"), ("thumb3", "Thumb3"), ("index1", "Index1"),
         ("index2", "Index2"), ("middle1", "Mid1"))},
     **limbs("{s}Collar", "{s}Shldr", "{s}ForeArm", "{s}Hand", "{s}Thigh", "{s}Shin", "{s}Foot", "{s}Toe",
             left="l", right="r")})

RIGIFY_STYLE = (tree("""
hips > spine, thigh{s}
spine > chest
chest > neck, shoulder{s}
neck > head
shoulder{s} > upper_arm{s}
upper_arm{s} > forearm{s}
forearm{s} > hand{s}
thigh{s} > shin{s}
shin{s} > foot{s}
foot{s} > toe{s}
""", ".L", ".R"),
    {"pelvis": "hips", "spine3": "spine, chest", "neck": "neck", "head": "head",
     **limbs("shoulder{s}", "upper_arm{s}", "forearm{s}", "hand{s}", "thigh{s}", "shin{s}", "foot{s}", "toe{s}",
             left=".L", right=".R")})

# Snake case with more joints than SMPL-X: four spine bones, two necks, two clavicles, an extra
# hip joint per leg (it follows the pelvis), twist helpers and end bones.
SNAKE = (tree("""
root > pelvis
pelvis > spine1, hip{s}
spine1 > spine2
spine2 > spine3
spine3 > spine4
spine4 > neck_01, clavicle_inner{s}
neck_01 > neck_02
neck_02 > head
head > head_end
clavicle_inner{s} > clavicle{s}
clavicle{s} > upperarm{s}
upperarm{s} > upperarm_twist_01{s}, lowerarm{s}
lowerarm{s} > hand{s}
hip{s} > thigh{s}
thigh{s} > calf{s}
calf{s} > foot{s}
foot{s} > ball{s}
""", "_l", "_r"),
    {"pelvis": "pelvis", "spine3": "spine1, spine2, spine3, spine4", "neck": "neck_01, neck_02",
     "head": "head",
     **limbs("clavicle_inner{s}, clavicle{s}", "upperarm{s}", "lowerarm{s}", "hand{s}", "thigh{s}", "calf{s}",
             "foot{s}", "ball{s}", left="_l", right="_r")})

PREFIXED = (tree("""
Hips > Spine, {s}thigh
Spine > Chest
Chest > UpperChest
UpperChest > Neck, {s}clavicle
Neck > Head
{s}clavicle > {s}upperarm
{s}upperarm > {s}forearm
{s}forearm > {s}hand
{s}thigh > {s}calf
{s}calf > {s}foot
{s}foot > {s}toe
""", "l_", "r_"),
    {"pelvis": "Hips", "spine1": "Spine", "spine2": "Chest", "spine3": "UpperChest", "neck": "Neck", "head": "Head",
     **limbs("{s}clavicle", "{s}upperarm", "{s}forearm", "{s}hand", "{s}thigh", "{s}calf", "{s}foot", "{s}toe",
             left="l_", right="r_")})

# Rigify's human metarig: a spine numbered to the head, with no neck or head names, a face rig.
METARIG = (tree("""
spine > spine.001, thigh{s}
spine.001 > spine.002
spine.002 > spine.003
spine.003 > spine.004, shoulder{s}, breast{s}
spine.004 > spine.005
spine.005 > spine.006
spine.006 > face
face > jaw, eye{s}, nose
shoulder{s} > upper_arm{s}
upper_arm{s} > forearm{s}
forearm{s} > hand{s}
thigh{s} > shin{s}
shin{s} > foot{s}
foot{s} > toe{s}, heel.02{s}
""", ".L", ".R"),
    {"pelvis": "spine", "spine1": "spine.001", "spine2": "spine.002", "spine3": "spine.003",
     "neck": "spine.004, spine.005", "head": "spine.006", "jaw": "jaw", "left_eye_smplhf": "eye.L",
     "right_eye_smplhf": "eye.R",
     **limbs("shoulder{s}", "upper_arm{s}", "forearm{s}", "hand{s}", "thigh{s}", "shin{s}", "foot{s}", "toe{s}",
             left=".L", right=".R")})

SCHEMES = {"boxing_bvh": BOXING, "rigify_metarig": METARIG, "cmu_bvh": CMU, "max_biped": BIPED, "daz": DAZ, "rigify_style": RIGIFY_STYLE,
           "snake_extra_joints": SNAKE, "l_prefix": PREFIXED}


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_each_naming_scheme_is_guessed(scheme):
    (names, parents), expected = SCHEMES[scheme]
    assert len(set(names)) == len(names)
    assert fitting_preset(names) is None  # no preset fits: the guess is what Automatic uses
    guess = guess_bone_map(names, parents, scheme)
    assert guess.ok, guess.problems
    assert guess.bone_map.bones == expected
    # Every joint the map leaves out says why, and the map is a valid map file.
    for joint in ("spine1", "spine2", "left_collar", "neck", "left_foot"):
        assert joint in guess.bone_map.bones or joint in guess.reasons, joint
    assert bone_map_from_dict(guess.bone_map.to_dict()).bones == expected


def test_the_spread_and_the_extra_joints_are_explained():
    (names, parents), _ = SNAKE
    guess = guess_bone_map(names, parents, "snake")
    assert "4 bone(s) where SMPL-X has three" in guess.reasons["spine3"]
    assert guess.reasons["spine1"] == "spread over 'spine1', 'spine2', 'spine3', 'spine4' (see spine3)"
    assert "'hip_l' above it follow the pelvis" in guess.reasons["left_hip"]
    assert guess.unmapped == ["spine1", "spine2", "jaw", "left_eye_smplhf", "right_eye_smplhf"]


def test_mixamo_names_guess_what_the_mixamo_preset_maps():
    from gestura.rigs.skeleton import JOINT_NAMES, PARENTS

    bones = presets()["mixamo"].bones
    # The preset's bones in SMPL-X's own hierarchy, with Mixamo's end bone.
    joints = [j for j in JOINT_NAMES if j in bones]
    names = [bones[j] for j in joints] + ["mixamorig:HeadTop_End"]
    parents = [bones[JOINT_NAMES[PARENTS[JOINT_NAMES.index(j)]]] if j != "pelvis" else None for j in joints]
    parents.append("mixamorig:Head")
    assert fitting_preset(names).preset == "mixamo"  # Automatic still picks the preset
    guess = guess_bone_map(names, parents, "mixamo")
    assert guess.ok and guess.bone_map.bones == bones


@pytest.mark.parametrize("names, parents, problem", [
    (["Bone0", "Bone1", "Bone2"], [None, "Bone0", "Bone1"], "no left arm"),
    (["Hips", "LeftHand", "RightHand"], [None, "Hips", "Hips"], "no left arm"),
    # Arms and legs but nothing between the hips and the arms.
    (*tree("""
Hips > {s}Arm, {s}UpLeg
{s}Arm > {s}ForeArm
{s}ForeArm > {s}Hand
{s}UpLeg > {s}Leg
{s}Leg > {s}Foot
""", "Left", "Right"), "no spine"),
])
def test_rigs_that_are_no_body_say_what_is_missing(names, parents, problem):
    guess = guess_bone_map(names, parents)
    assert not guess.ok
    assert any(problem in p for p in guess.problems), guess.problems


@pytest.mark.parametrize("name, side, kind", [
    ("LeftUpLeg", "left", "thigh"), ("Bip01 R Calf", "right", "shin"), ("lShldr", "left", "shoulder"),
    ("upper_arm.L", "left", "upperarm"), ("forearm-R", "right", "forearm"), ("thigh_l", "left", "thigh"),
    ("r_wrist", "right", "hand"), ("LHipJoint", "left", "hip"), ("mixamorig2:RightToeBase", "right", "toe"),
    ("HeadTop_End", "", "end"), ("upperarm_twist_01_l", "left", "helper"), ("LeftHandIndex1", "left", "finger"),
    ("Ab", "", "spine"), ("LowerBack", "", "spine"), ("Neck1", "", "neck"), ("LeftAnkle", "left", "foot"),
    ("Left_Knee", "left", "shin"), ("RightCollar", "right", "collar"), ("clavicle_inner_l", "left", "collar"),
])
def test_words_sides_and_kinds(name, side, kind):
    words = name_words(name)
    assert side_of(words) == side and kind_of(words) == kind, words
