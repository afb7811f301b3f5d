import pytest

from gestura.rigs import skeleton


def test_joint_names_match_the_smplx_package():
    joint_names = pytest.importorskip("smplx.joint_names")
    assert skeleton.JOINT_NAMES == tuple(joint_names.JOINT_NAMES[:55])


def test_parents_form_a_tree_rooted_at_the_pelvis():
    assert skeleton.PARENTS[0] == -1
    for joint, parent in enumerate(skeleton.PARENTS[1:], start=1):
        assert 0 <= parent < joint, skeleton.JOINT_NAMES[joint]
    # Spot checks against SMPLX.md.
    names = skeleton.JOINT_NAMES
    assert names[skeleton.PARENTS[skeleton.JOINT_INDEX["right_thumb1"]]] == "right_wrist"
    assert names[skeleton.PARENTS[skeleton.JOINT_INDEX["left_pinky3"]]] == "left_pinky2"
    assert names[skeleton.PARENTS[skeleton.JOINT_INDEX["jaw"]]] == "head"


def test_parts_cover_every_joint_but_the_eyes_exactly_once():
    owned = [j for part in skeleton.PARTS for j in skeleton.PART_JOINTS[part]]
    assert sorted(owned + list(skeleton.EYE_JOINTS)) == list(range(55))
    assert skeleton.PART_DIMS == {"face": 106, "upper": 78, "hands": 180, "lower": 61}
    assert len(skeleton.UPPER_JOINTS) * 6 == skeleton.PART_DIMS["upper"]
