"""Retargeting math on synthetic skeletons: targets that differ from the SMPL-X-like source in rest
pose (A-pose), bone rolls and local axes, scale, facing, names and extra helper bones.

The rig builders here (``BoneSpec`` lists) are shared with the Blender tests, which build the same
rigs as real armatures.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from gestura.rigs.retarget import (
    EULER_ORDERS,
    RetargetError,
    Skeleton,
    euler_to_matrix,
    matrix_to_euler,
    pose_matrices,
    retarget,
    rotation_channels,
    SMPLX_AIM_OVERRIDES,
)
from gestura.rigs.rotations import axis_angle_to_matrix, quaternion_to_matrix
from gestura.rigs.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS

FINGERS = ("index", "middle", "pinky", "ring", "thumb")


# --- rig builders -----------------------------------------------------------------------------------


def humanoid_joints() -> np.ndarray:
    """(55, 3) T-pose joint heads in Blender's frame (Z up, the character faces -Y), metres."""
    p = {
        "pelvis": (0, 0, 0.95), "spine1": (0, 0.01, 1.07), "spine2": (0, 0.0, 1.2), "spine3": (0, -0.01, 1.32),
        "neck": (0, 0.0, 1.5), "head": (0, -0.02, 1.6), "jaw": (0, -0.06, 1.6),
        "left_eye_smplhf": (0.03, -0.09, 1.67), "right_eye_smplhf": (-0.03, -0.09, 1.67),
    }
    for side, x in (("left", 1.0), ("right", -1.0)):
        p[f"{side}_hip"] = (0.09 * x, 0.0, 0.88)
        p[f"{side}_knee"] = (0.1 * x, -0.01, 0.5)
        p[f"{side}_ankle"] = (0.1 * x, 0.03, 0.1)
        p[f"{side}_foot"] = (0.11 * x, -0.1, 0.03)
        p[f"{side}_collar"] = (0.06 * x, 0.0, 1.42)
        p[f"{side}_shoulder"] = (0.18 * x, 0.01, 1.43)
        p[f"{side}_elbow"] = (0.45 * x, 0.02, 1.43)
        p[f"{side}_wrist"] = (0.7 * x, 0.01, 1.43)
        for finger, dy in zip(FINGERS, (-0.03, -0.01, 0.03, 0.01, -0.04)):
            start = 0.74 if finger == "thumb" else 0.78
            for k in range(3):
                y = 0.01 + dy - (0.02 * k if finger == "thumb" else 0.0)
                p[f"{side}_{finger}{k + 1}"] = ((start + 0.03 * k) * x, y, 1.43 - (0.02 if finger == "thumb" else 0.0))
    return np.array([p[name] for name in JOINT_NAMES], np.float64)


def rotation_about(axis, angle) -> np.ndarray:
    axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def a_pose(joints: np.ndarray, degrees: float = 40.0) -> np.ndarray:
    """Lower both arms by ``degrees`` about the forward axis at the shoulders."""
    out = joints.copy()
    for side, sign in (("left", -1.0), ("right", 1.0)):
        pivot = joints[JOINT_INDEX[f"{side}_shoulder"]]
        turn = rotation_about((0, 1, 0), sign * np.radians(degrees))
        arm = [f"{side}_{n}" for n in ("elbow", "wrist")] + [f"{side}_{f}{k}" for f in FINGERS for k in (1, 2, 3)]
        for name in arm:
            out[JOINT_INDEX[name]] = pivot + turn @ (joints[JOINT_INDEX[name]] - pivot)
    return out


def aim_joint(name: str) -> str | None:
    """The SMPL-X joint a bone points at (as the retargeting math defines it), None for leaves."""
    if name in SMPLX_AIM_OVERRIDES:
        return SMPLX_AIM_OVERRIDES[name] or None
    kids = [JOINT_NAMES[c] for c, p in enumerate(PARENTS) if p == JOINT_INDEX[name]]
    return kids[0] if len(kids) == 1 else None


@dataclass
class BoneSpec:
    name: str
    parent: str | None
    head: np.ndarray
    tail: np.ndarray
    z_axis: np.ndarray  # the roll: the bone's Z axis points as close to this as it can

    def matrix(self) -> np.ndarray:
        y = (self.tail - self.head) / np.linalg.norm(self.tail - self.head)
        z = self.z_axis - np.dot(self.z_axis, y) * y
        z /= np.linalg.norm(z)
        m = np.eye(4)
        m[:3, :3] = np.stack([np.cross(y, z), y, z], axis=1)
        m[:3, 3] = self.head
        return m


def smplx_specs(joints: np.ndarray) -> list[BoneSpec]:
    """The source: SMPL-X names, tails toward the aim joint, every bone's Z axis pointing -Y."""
    specs = []
    for j, name in enumerate(JOINT_NAMES):
        aim = aim_joint(name)
        if aim is not None:
            tail = joints[JOINT_INDEX[aim]]
        else:
            d = joints[j] - joints[PARENTS[j]]
            tail = joints[j] + 0.04 * d / np.linalg.norm(d)
        parent = JOINT_NAMES[PARENTS[j]] if PARENTS[j] >= 0 else None
        specs.append(BoneSpec(name, parent, joints[j], tail, _z_hint(tail - joints[j], np.array([0.0, -1.0, 0.0]))))
    return specs


def _z_hint(direction: np.ndarray, want: np.ndarray) -> np.ndarray:
    d = direction / np.linalg.norm(direction)
    return want if abs(np.dot(d, want)) < 0.95 else np.array([0.0, 0.0, 1.0])


def target_specs(joints: np.ndarray, names: dict[str, str], *, seed: int, scale: float = 1.0,
                 helpers: bool = True, fingers: bool = True) -> list[BoneSpec]:
    """A target rig from SMPL-X joints: renamed by ``names``, scaled, with random bone rolls and
    tail directions off the joint line (local axes unlike the source's). With ``helpers`` it
    gains a root bone, a twist bone splitting each upper arm and a head-top leaf, all unmapped."""
    rng = np.random.default_rng(seed)
    j = joints * scale
    specs: list[BoneSpec] = []
    if helpers:
        specs.append(BoneSpec("root", None, np.zeros(3), np.array([0.0, 0.1 * scale, 0.0]), np.array([0.0, 0.0, 1.0])))
    for i, src in enumerate(JOINT_NAMES):
        if src not in names:
            continue
        if not fingers and any(f in src for f in FINGERS):
            continue
        # Parent: the nearest mapped SMPL-X ancestor (collars may be absent, etc.).
        p = PARENTS[i]
        while p >= 0 and JOINT_NAMES[p] not in names:
            p = PARENTS[p]
        parent = names[JOINT_NAMES[p]] if p >= 0 else ("root" if helpers else None)
        if helpers and src.endswith("_elbow"):
            parent = names[src.replace("elbow", "shoulder")] + "Twist"
        aim = aim_joint(src)
        direction = j[JOINT_INDEX[aim]] - j[i] if aim else j[i] - j[PARENTS[i]]
        direction = direction / np.linalg.norm(direction) + rng.normal(scale=0.25, size=3)  # local axes off the joint line
        length = (np.linalg.norm(j[JOINT_INDEX[aim]] - j[i]) if aim else 0.05 * scale)
        z = rng.normal(size=3)  # a random roll
        specs.append(BoneSpec(names[src], parent, j[i], j[i] + length * direction / np.linalg.norm(direction), z))
        if helpers and src.endswith("_shoulder"):
            mid = 0.5 * (j[i] + j[JOINT_INDEX[src.replace("shoulder", "elbow")]])
            specs.append(BoneSpec(names[src] + "Twist", names[src], mid, j[JOINT_INDEX[src.replace("shoulder", "elbow")]], rng.normal(size=3)))
        if helpers and src == "head":
            specs.append(BoneSpec("HeadTop_End", names[src], j[i] + [0, 0, 0.15 * scale], j[i] + [0, 0, 0.2 * scale], np.array([0.0, -1.0, 0.0])))
    return specs


def skeleton_from_specs(specs: list[BoneSpec], object_matrix=None) -> Skeleton:
    names = [s.name for s in specs]
    return Skeleton(
        names,
        [names.index(s.parent) if s.parent else -1 for s in specs],
        np.stack([s.matrix() for s in specs]),
        np.array([np.linalg.norm(s.tail - s.head) for s in specs]),
        np.eye(4) if object_matrix is None else object_matrix,
    )


MIXAMO_NAMES = {
    "pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck", "head": "Head",
    **{f"{s}_{a}": f"{S}{b}" for s, S in (("left", "Left"), ("right", "Right")) for a, b in (
        ("collar", "Shoulder"), ("shoulder", "Arm"), ("elbow", "ForeArm"), ("wrist", "Hand"),
        ("hip", "UpLeg"), ("knee", "Leg"), ("ankle", "Foot"), ("foot", "ToeBase"))},
    **{f"{s}_{f}{k}": f"{S}Hand{f.capitalize()}{k}" for s, S in (("left", "Left"), ("right", "Right"))
       for f in FINGERS for k in (1, 2, 3)},
}


def random_motion(count: int, seed: int, scale: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Random local rotations (N, 55, 3, 3) within ``scale`` radians, and a wandering root (N, 3)."""
    rng = np.random.default_rng(seed)
    rotations = axis_angle_to_matrix(rng.uniform(-scale, scale, size=(count, 55, 3)))
    trans = np.cumsum(rng.normal(scale=0.02, size=(count, 3)), axis=0)
    return rotations, trans


def source_pose(source: Skeleton, rotations: np.ndarray, trans: np.ndarray) -> np.ndarray:
    basis = np.tile(np.eye(4), (len(rotations), len(source.names), 1, 1))
    basis[:, :, :3, :3] = rotations
    # The root's location channel is in its rest frame.
    basis[:, 0, :3, 3] = trans @ source.rest[0, :3, :3]
    return pose_matrices(source, basis)


def world_heads(skeleton: Skeleton, pose: np.ndarray) -> np.ndarray:
    return pose[..., :3, 3] @ skeleton.object_matrix[:3, :3].T + skeleton.object_matrix[:3, 3]


def direction_errors(source: Skeleton, src_pose, target: Skeleton, tgt_pose, names: dict[str, str], facing=np.eye(3)):
    """Degrees between each mapped bone's world direction (head to aim head) on both rigs, per frame;
    leaves compare their world rotation away from the aligned rest instead (see ``rotation_errors``)."""
    sh, th = world_heads(source, src_pose), world_heads(target, tgt_pose)
    out = {}
    for s, t in names.items():
        aim = aim_joint(s)
        if aim is None or aim not in names:
            continue
        a = (sh[:, source.index(aim)] - sh[:, source.index(s)]) @ facing.T
        b = th[:, target.index(names[aim])] - th[:, target.index(t)]
        cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        out[s] = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    return out


# --- tests --------------------------------------------------------------------------------------


def _source():
    return skeleton_from_specs(smplx_specs(humanoid_joints()))


def test_pose_matrices_follow_blenders_parent_rule():
    src = _source()
    rotations, trans = random_motion(3, seed=1)
    pose = source_pose(src, rotations, trans)
    # A child's head rides on its parent: distance between heads is kept.
    rest_gap = np.linalg.norm(src.rest[JOINT_INDEX["left_elbow"], :3, 3] - src.rest[JOINT_INDEX["left_shoulder"], :3, 3])
    posed_gap = np.linalg.norm(pose[:, JOINT_INDEX["left_elbow"], :3, 3] - pose[:, JOINT_INDEX["left_shoulder"], :3, 3], axis=-1)
    np.testing.assert_allclose(posed_gap, rest_gap, atol=1e-9)
    # Identity basis gives back the rest pose.
    identity = pose_matrices(src, np.tile(np.eye(4), (1, 55, 1, 1)))
    np.testing.assert_allclose(identity[0], src.rest, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_pose_rolled_scaled_target_follows_source_directions(seed):
    joints = humanoid_joints()
    src = _source()
    # Target: A-pose, 1.3x taller, authored in centimetres under a 0.01-scaled object, random rolls.
    specs = target_specs(a_pose(joints), MIXAMO_NAMES, seed=seed, scale=130.0)
    object_matrix = np.diag([0.01, 0.01, 0.01, 1.0])
    tgt = skeleton_from_specs(specs, object_matrix)
    rotations, trans = random_motion(20, seed=seed)
    pose = source_pose(src, rotations, trans)

    result = retarget(src, pose, tgt, MIXAMO_NAMES)
    tgt_pose = pose_matrices(tgt, result.basis(tgt))
    errors = direction_errors(src, pose, tgt, tgt_pose, MIXAMO_NAMES)
    assert len(errors) == 39  # every body and finger segment with an aim
    worst = max(float(e.max()) for e in errors.values())
    assert worst < 0.01, {k: float(v.max()) for k, v in errors.items() if v.max() >= 0.01}

    # Leaves (head, toes, finger tips) turn in world space exactly as their source bones do.
    src_world = pose[:, :, :3, :3]
    tgt_world = tgt_pose[:, :, :3, :3]
    for s in ("head", "left_foot", "right_index3"):
        d_src = src_world[:, src.index(s)] @ src.rest[src.index(s), :3, :3].T
        d_tgt = tgt_world[:, tgt.index(MIXAMO_NAMES[s])] @ np.swapaxes(tgt_world[0, tgt.index(MIXAMO_NAMES[s])], 0, 1)
        d_src_rel = d_src @ np.swapaxes(d_src[0], 0, 1)
        np.testing.assert_allclose(d_tgt, d_src_rel, atol=1e-9)

    # What the keys aim at is what the target's chain then shows.
    np.testing.assert_allclose(result.root_head, tgt_pose[:, tgt.index("Hips"), :3, 3], atol=1e-9)
    for k, name in enumerate(result.bones):
        np.testing.assert_allclose(result.wanted[:, k], tgt_pose[:, tgt.index(name), :3, :3], atol=1e-9)

    # The root moves by the source's displacement times the leg-length ratio (1.3).
    assert result.scale == pytest.approx(1.3, rel=1e-9)
    hips = world_heads(tgt, tgt_pose)[:, tgt.index("Hips")]
    src_hips = world_heads(src, pose)[:, 0]
    np.testing.assert_allclose(hips - hips[0], 1.3 * (src_hips - src_hips[0]), atol=1e-9)
    np.testing.assert_allclose(hips, 1.3 * joints[0] + 1.3 * (src_hips - joints[0]), atol=1e-9)

    # Unmapped helpers keep their rest local pose; the twist bone rides its upper arm rigidly.
    basis = result.basis(tgt)
    for helper in ("root", "LeftArmTwist", "RightArmTwist", "HeadTop_End"):
        assert helper not in result.bones
        np.testing.assert_allclose(basis[:, tgt.index(helper)], np.tile(np.eye(4), (20, 1, 1)))


def test_target_facing_another_way_performs_facing_its_own_way():
    joints = humanoid_joints()
    src = _source()
    turn = np.eye(4)
    turn[:3, :3] = rotation_about((0, 0, 1), np.radians(90))
    turn[:3, 3] = (3.0, -1.0, 0.0)
    tgt = skeleton_from_specs(target_specs(joints, MIXAMO_NAMES, seed=3, helpers=False), turn)
    rotations, trans = random_motion(10, seed=3)
    pose = source_pose(src, rotations, trans)
    result = retarget(src, pose, tgt, MIXAMO_NAMES)
    np.testing.assert_allclose(result.facing, turn[:3, :3], atol=1e-9)
    tgt_pose = pose_matrices(tgt, result.basis(tgt))
    errors = direction_errors(src, pose, tgt, tgt_pose, MIXAMO_NAMES, facing=turn[:3, :3])
    assert max(float(e.max()) for e in errors.values()) < 0.01


def test_unmapped_bones_keep_their_current_pose_and_mapped_children_compensate():
    joints = humanoid_joints()
    src = _source()
    names = {k: v for k, v in MIXAMO_NAMES.items() if k not in ("left_collar", "spine2")}
    specs = target_specs(joints, MIXAMO_NAMES, seed=4)
    tgt = skeleton_from_specs(specs)
    current = np.tile(np.eye(4), (len(tgt.names), 1, 1))
    current[tgt.index("LeftShoulder"), :3, :3] = rotation_about((1, 0, 0), 0.4)  # posed by hand, not mapped
    rotations, trans = random_motion(8, seed=4)
    pose = source_pose(src, rotations, trans)
    result = retarget(src, pose, tgt, names, target_basis=current)
    assert "LeftShoulder" not in result.bones and "Spine1" not in result.bones
    basis = result.basis(tgt, current)
    np.testing.assert_allclose(basis[:, tgt.index("LeftShoulder")], np.broadcast_to(current[tgt.index("LeftShoulder")], (8, 4, 4)))
    tgt_pose = pose_matrices(tgt, basis)
    errors = direction_errors(src, pose, tgt, tgt_pose, names)
    # The arm still points where the source's does although its parent is off.
    assert errors["left_shoulder"].max() < 0.01 and errors["left_elbow"].max() < 0.01


def test_without_fingers_and_without_root_motion():
    joints = humanoid_joints()
    src = _source()
    names = {k: v for k, v in MIXAMO_NAMES.items() if not any(f in k for f in FINGERS)}
    tgt = skeleton_from_specs(target_specs(a_pose(joints), names, seed=5, fingers=False))
    rotations, trans = random_motion(6, seed=5)
    pose = source_pose(src, rotations, trans)
    result = retarget(src, pose, tgt, names, root_motion=False)
    assert result.root_location is None
    tgt_pose = pose_matrices(tgt, result.basis(tgt))
    np.testing.assert_allclose(tgt_pose[:, tgt.index("Hips"), :3, 3], np.broadcast_to(tgt.rest[tgt.index("Hips"), :3, 3], (6, 3)), atol=1e-12)
    errors = direction_errors(src, pose, tgt, tgt_pose, names)
    assert "left_wrist" not in errors  # no aim without fingers: the hand keeps its rest offset
    assert max(float(e.max()) for e in errors.values()) < 0.01


def test_bad_maps_are_refused_with_the_names():
    src = _source()
    tgt = skeleton_from_specs(target_specs(humanoid_joints(), MIXAMO_NAMES, seed=6))
    pose = source_pose(src, *random_motion(2, seed=6))
    with pytest.raises(RetargetError, match="NoSuchBone"):
        retarget(src, pose, tgt, {"pelvis": "NoSuchBone"})
    with pytest.raises(RetargetError, match="tail_bone"):
        retarget(src, pose, tgt, {"tail_bone": "Hips"})
    with pytest.raises(RetargetError, match="'Hips' is mapped from both"):
        retarget(src, pose, tgt, {"pelvis": "Hips", "spine1": "Hips"})
    with pytest.raises(RetargetError, match="shape"):
        retarget(src, pose[:, :10], tgt, MIXAMO_NAMES)


def test_skeleton_validation():
    rest = np.tile(np.eye(4), (2, 1, 1))
    with pytest.raises(RetargetError, match="loops"):
        Skeleton(("a", "b"), (1, 0), rest, np.ones(2))
    sheared = rest.copy()
    sheared[1, 0, 1] = 0.5
    with pytest.raises(RetargetError, match="rigid"):
        Skeleton(("a", "b"), (-1, 0), sheared, np.ones(2))
    with pytest.raises(RetargetError, match="unique"):
        Skeleton(("a", "a"), (-1, 0), rest, np.ones(2))


@pytest.mark.parametrize("order", EULER_ORDERS)
def test_euler_round_trip_every_order(order):
    rng = np.random.default_rng(7)
    angles = rng.uniform(-1.4, 1.4, size=(50, 3))
    m = euler_to_matrix(angles, order)
    np.testing.assert_allclose(euler_to_matrix(matrix_to_euler(m, order), order), m, atol=1e-9)
    # Gimbal lock: the middle axis at 90 degrees still round-trips.
    locked = angles.copy()
    locked[:, "XYZ".index(order[1])] = np.pi / 2
    m = euler_to_matrix(locked, order)
    np.testing.assert_allclose(euler_to_matrix(matrix_to_euler(m, order), order), m, atol=1e-7)


def test_euler_matches_blender_convention_xyz():
    # Blender's XYZ Euler applies X, then Y, then Z: R = Rz @ Ry @ Rx.
    x, y, z = 0.3, -0.5, 1.1
    expected = rotation_about((0, 0, 1), z) @ rotation_about((0, 1, 0), y) @ rotation_about((1, 0, 0), x)
    np.testing.assert_allclose(euler_to_matrix(np.array([x, y, z]), "XYZ"), expected, atol=1e-12)


def test_rotation_channels_are_continuous_and_exact():
    turn = np.linspace(0, 4 * np.pi, 60)
    m = np.stack([rotation_about((0.2, 1.0, 0.1), a) for a in turn])
    q = rotation_channels(m, "QUATERNION")
    assert np.all(np.sum(q[1:] * q[:-1], -1) > 0)  # no sign flips between frames
    np.testing.assert_allclose(quaternion_to_matrix(q), m, atol=1e-9)
    e = rotation_channels(m, "ZXY")
    assert np.abs(np.diff(e, axis=0)).max() < 1.0
    np.testing.assert_allclose(euler_to_matrix(e, "ZXY"), m, atol=1e-9)
    aa = rotation_channels(m, "AXIS_ANGLE")
    np.testing.assert_allclose(axis_angle_to_matrix(aa[:, :1] * aa[:, 1:]), m, atol=1e-9)


# --- chains: a joint driving several target bones -------------------------------------------------


def _chord_errors(src, pose, tgt, tgt_pose, source_pair, target_pair) -> np.ndarray:
    """Degrees between the source's and the target's head-to-head lines, per frame."""
    sh, th = world_heads(src, pose), world_heads(tgt, tgt_pose)
    a = sh[:, src.index(source_pair[1])] - sh[:, src.index(source_pair[0])]
    b = th[:, tgt.index(target_pair[1])] - th[:, tgt.index(target_pair[0])]
    cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_two_spine_bones_take_smplx_three_spread_by_length():
    joints = humanoid_joints()
    src = _source()
    # A rig with two spine bones: 'Spine' from spine1's place, 'Spine2' from spine3's.
    rig_names = {k: v for k, v in MIXAMO_NAMES.items() if k != "spine2"}
    tgt = skeleton_from_specs(target_specs(a_pose(joints), rig_names, seed=21))
    pose = source_pose(src, *random_motion(12, seed=21, scale=0.35))
    body = {k: v for k, v in rig_names.items() if k not in ("spine1", "spine3")}
    spread = retarget(src, pose, tgt, {**body, "spine3": "Spine, Spine2"})
    ends = retarget(src, pose, tgt, {**body, "spine1": "Spine", "spine3": "Spine2"})
    assert set(spread.bones) >= {"Spine", "Spine2"}
    errors = {}
    for label, result in (("spread", spread), ("ends", ends)):
        tgt_pose = pose_matrices(tgt, result.basis(tgt))
        errors[label] = _chord_errors(src, pose, tgt, tgt_pose, ("spine1", "neck"), ("Spine", "Neck"))
        # Whatever the spine does, the bones mapped one to one point exactly where theirs do.
        one_to_one = direction_errors(src, pose, tgt, tgt_pose, {k: v for k, v in body.items() if k != "pelvis"})
        assert max(float(e.max()) for e in one_to_one.values()) < 0.01
    # The chain's line from the hips to the neck follows the source's spine closely, closer than
    # mapping its two ends would (each frame's spine joints turn up to 0.35 rad about each axis).
    assert errors["spread"].max() < 2.0, errors["spread"]
    assert errors["spread"].mean() < 0.5 * errors["ends"].mean(), (errors["spread"].mean(), errors["ends"].mean())


def test_two_neck_bones_turn_with_the_one_neck():
    joints = humanoid_joints()
    src = _source()
    specs = target_specs(joints, MIXAMO_NAMES, seed=22, helpers=False)
    neck = next(s for s in specs if s.name == "Neck")
    head = next(s for s in specs if s.name == "Head")
    mid = 0.5 * (neck.head + head.head)
    head.parent = "Neck1"
    specs.append(BoneSpec("Neck1", "Neck", mid, head.head, np.array([0.0, -1.0, 0.0])))
    tgt = skeleton_from_specs(specs)
    pose = source_pose(src, *random_motion(6, seed=22))
    result = retarget(src, pose, tgt, {**MIXAMO_NAMES, "neck": "Neck, Neck1"})
    tgt_pose = pose_matrices(tgt, result.basis(tgt))
    # The neck is one rigid segment on SMPL-X: both bones turn with it, the line to the head follows.
    assert _chord_errors(src, pose, tgt, tgt_pose, ("neck", "head"), ("Neck", "Head")).max() < 0.01
    assert _chord_errors(src, pose, tgt, tgt_pose, ("neck", "head"), ("Neck1", "Head")).max() < 0.01


def test_a_chain_must_run_from_parent_to_child():
    src = _source()
    tgt = skeleton_from_specs(target_specs(humanoid_joints(), MIXAMO_NAMES, seed=23))
    pose = source_pose(src, *random_motion(2, seed=23))
    names = {k: v for k, v in MIXAMO_NAMES.items() if k not in ("spine1", "spine2", "spine3")}
    with pytest.raises(RetargetError, match="from parent to child: 'Spine' is not below 'Spine2'"):
        retarget(src, pose, tgt, {**names, "spine3": "Spine2, Spine"})
