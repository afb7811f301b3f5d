"""Bundled bone maps, users' map files and picking a preset from a rig's bone names."""
import json

import pytest

from gestura.rigs.bonemaps import (
    CORE_JOINTS,
    FINGER_JOINTS,
    BoneMapError,
    bone_map_from_dict,
    detect_preset,
    load_bone_map,
    presets,
    resolve,
    save_bone_map,
)
from gestura.rigs.skeleton import JOINT_NAMES

EXPECTED = {"mixamo", "mixamo_no_prefix", "rigify_deform", "rigify_fk", "unreal_mannequin", "unreal_manny"}


def test_bundled_presets_are_complete_body_maps():
    found = presets()
    assert EXPECTED <= set(found)
    for key, m in found.items():
        assert all(s in m.bones for s in CORE_JOINTS), key
        assert sum(s in FINGER_JOINTS for s in m.bones) == 30, key  # every finger joint
        assert len(set(m.bones.values())) == len(m.bones), key
        assert m.detect, key


def test_mixamo_with_and_without_prefix():
    found = presets()
    assert found["mixamo"].bones["left_elbow"] == "mixamorig:LeftForeArm"
    assert found["mixamo_no_prefix"].bones["left_elbow"] == "LeftForeArm"
    assert {s: "mixamorig:" + t for s, t in found["mixamo_no_prefix"].bones.items()} == found["mixamo"].bones


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_preset_is_detected_from_its_own_bone_names(key):
    m = presets()[key]
    rig = set(m.bones.values()) | set(m.detect) | {"root", "HeadTop_End"}
    if key == "rigify_fk":
        rig |= set(presets()["rigify_deform"].bones.values())  # generated rigs carry both
    if key == "unreal_manny":
        rig |= set(presets()["unreal_mannequin"].bones.values()) | {"spine_02", "spine_04", "neck_02"}
    detected = detect_preset(rig)
    assert detected is not None and detected.preset == key


def test_detection_handles_other_namespaces_and_rigs_without_fingers():
    m = presets()["mixamo_no_prefix"]
    body = {t for s, t in m.bones.items() if s not in FINGER_JOINTS}
    detected = detect_preset({"mixamorig7:" + t for t in body})
    assert detected is not None and detected.bones["pelvis"] == "mixamorig7:Hips"
    result = resolve(detected, {"mixamorig7:" + t for t in body})
    assert result.ok and "left_index1" not in result.pairs
    assert "mixamorig7:LeftHandIndex1" in result.missing_optional


def test_unknown_rig_is_not_detected():
    assert detect_preset({"Bone", "Bone.001", "Bone.002"}) is None
    # A Mixamo rig without its left forearm does not pass as Mixamo.
    m = presets()["mixamo"]
    assert detect_preset(set(m.bones.values()) - {"mixamorig:LeftForeArm"}) is None


def test_resolve_reports_missing_bones_by_name():
    m = presets()["unreal_mannequin"]
    rig = set(m.bones.values()) - {"lowerarm_l", "ball_r", "index_02_l"}
    result = resolve(m, rig)
    assert not result.ok
    assert result.missing_required == ["lowerarm_l"]
    assert sorted(result.missing_optional) == ["ball_r", "index_02_l"]
    assert "left_elbow" not in result.pairs and result.pairs["left_wrist"] == "hand_l"
    no_fingers = resolve(m, rig, fingers=False)
    assert not any(s in FINGER_JOINTS for s in no_fingers.pairs) and no_fingers.missing_optional == ["ball_r"]


def test_user_map_round_trip_and_refusals(tmp_path):
    m = bone_map_from_dict({"name": "My rig", "bones": {"pelvis": "root_hips", "left_elbow": "arm_lower.L"},
                            "optional": ["left_elbow"]})
    path = save_bone_map(m, tmp_path / "mine")
    assert path.name == "mine.json"
    again = load_bone_map(path)
    assert again.bones == m.bones and again.optional == m.optional and again.name == "My rig"
    with pytest.raises(BoneMapError, match="already exists"):
        save_bone_map(m, path)
    save_bone_map(m, path, overwrite=True)

    with pytest.raises(BoneMapError, match="left_ebow"):
        bone_map_from_dict({"bones": {"left_ebow": "x"}})
    with pytest.raises(BoneMapError, match="'hips'"):
        bone_map_from_dict({"bones": {"pelvis": "hips", "spine1": "hips"}})
    with pytest.raises(BoneMapError, match="no target bone name"):
        bone_map_from_dict({"bones": {"pelvis": ""}})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BoneMapError, match="not valid json"):
        load_bone_map(bad)
    with pytest.raises(BoneMapError, match="does not exist"):
        load_bone_map(tmp_path / "nope.json")
    bad.write_text(json.dumps({"bones": ["pelvis"]}))
    with pytest.raises(BoneMapError, match="\"bones\" object"):
        load_bone_map(bad)


def test_map_sources_are_smplx_joints():
    for m in presets().values():
        assert set(m.bones) <= set(JOINT_NAMES)


def test_a_joint_may_name_a_chain_of_bones(tmp_path):
    m = bone_map_from_dict({"name": "two spines", "bones": {"pelvis": "Hips", "spine3": "Ab, Chest"}})
    assert save_bone_map(m, tmp_path / "two.json") and load_bone_map(tmp_path / "two.json").bones == m.bones
    assert m.with_prefix("rig:").bones["spine3"] == "rig:Ab, rig:Chest"
    result = resolve(m, {"Hips", "Ab"})
    assert not result.ok and result.missing_required == ["Chest"]
    assert resolve(m, {"Hips", "Ab", "Chest"}).pairs == {"pelvis": "Hips", "spine3": "Ab, Chest"}
    with pytest.raises(BoneMapError, match="maps both 'spine3' and 'neck' to the bone 'Chest'"):
        bone_map_from_dict({"bones": {"spine3": "Ab, Chest", "neck": "Chest"}})
    with pytest.raises(BoneMapError, match="no target bone name for: spine3"):
        bone_map_from_dict({"bones": {"spine3": "Ab, "}})
