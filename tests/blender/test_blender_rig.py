"""The SMPL-X armature in the real Blender (4.2 and 5.0): bone frames, keyframes written and read
back, world-space joints against the bpy-free forward kinematics, expressions, BVH through
Blender's own importer, and armatures built like the SMPL-X add-on's."""
from __future__ import annotations

import numpy as np
import pytest

from gestura.rigs.kinematics import forward_kinematics
from gestura.rigs.motion import Motion
from gestura.rigs.resample import resample
from gestura.rigs.rest_skeleton import FOOT_CLEARANCE, default_rest_joints, standing_rest_joints
from gestura.rigs.rotations import axis_angle_to_matrix
from gestura.rigs.skeleton import FOOT_JOINTS, JOINT_NAMES, PARENTS

pytestmark = pytest.mark.blender

Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # SMPL-X -> Blender


@pytest.fixture
def scene(bpy, empty_scene):
    empty_scene.render.fps = 30
    empty_scene.render.fps_base = 1.0
    return empty_scene


@pytest.fixture(scope="module")
def rig():
    from gestura.blender import rigs as blender

    return blender


def random_motion(n=24, seed=0, scale=0.5) -> Motion:
    rng = np.random.default_rng(seed)
    # A smooth random walk: consecutive frames close, like real motion, with large angles overall.
    poses = np.cumsum(rng.normal(scale=scale / 3, size=(n, 55, 3)), axis=0) + rng.normal(scale=scale, size=(1, 55, 3))
    return Motion(poses, np.cumsum(rng.normal(scale=0.05, size=(n, 3)), axis=0),
                  rng.normal(size=(n, 100)), betas=rng.normal(size=300))


def world_joints(bpy, obj) -> np.ndarray:
    """World-space bone heads of the evaluated pose, (55, 3)."""
    matrix = np.array(obj.matrix_world)
    heads = np.array([obj.pose.bones[name].head for name in JOINT_NAMES])
    return heads @ matrix[:3, :3].T + matrix[:3, 3]


def fcurve_list(obj, action=None):
    action = action or obj.animation_data.action
    if "slots" not in type(action).bl_rna.properties:
        return list(action.fcurves)
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    bag = action_get_channelbag_for_slot(action, obj.animation_data.action_slot)
    return list(bag.fcurves) if bag is not None else []


def assert_same_rotations(a, b, atol=2e-5):
    np.testing.assert_allclose(axis_angle_to_matrix(np.asarray(a, np.float64)),
                               axis_angle_to_matrix(np.asarray(b, np.float64)), atol=atol)


def test_armature_follows_the_smplx_bone_convention(bpy, scene, rig):
    obj = rig.create_smplx_armature(bpy.context, "Body")
    assert sorted(b.name for b in obj.data.bones) == sorted(JOINT_NAMES)
    assert rig.missing_smplx_bones(obj) == []
    rest = standing_rest_joints()  # the built-in skeleton, lifted to stand on the object's origin
    for joint, name in enumerate(JOINT_NAMES):
        bone = obj.data.bones[name]
        # Rest frame = SMPL-X model frame, so axis-angle goes straight into the quaternion.
        np.testing.assert_allclose(np.array(bone.matrix_local.to_3x3()), np.eye(3), atol=1e-6)
        np.testing.assert_allclose(bone.head_local, rest[joint], atol=1e-6)
        parent = bone.parent.name if bone.parent else None
        assert parent == (JOINT_NAMES[PARENTS[joint]] if PARENTS[joint] >= 0 else None)
    # Y up to Z up once, at object level.
    np.testing.assert_allclose(np.array(obj.matrix_world)[:3, :3], Z_UP, atol=1e-6)
    np.testing.assert_allclose(world_joints(bpy, obj), rest @ Z_UP.T, atol=1e-6)
    np.testing.assert_allclose(rig.armature_rest_joints(obj), rest, atol=1e-6)
    assert world_joints(bpy, obj)[list(FOOT_JOINTS), 2].min() == pytest.approx(FOOT_CLEARANCE, abs=1e-6)


def test_mannequin_is_skinned_to_the_bones(bpy, scene, rig):
    obj = rig.create_smplx_armature(bpy.context, "Body")
    (body,) = obj.children
    assert body.type == "MESH" and len(body.data.vertices) > 500
    assert any(m.type == "ARMATURE" and m.object == obj for m in body.modifiers)
    groups = {g.name for g in body.vertex_groups}
    assert groups <= set(JOINT_NAMES) and {"head", "jaw", "left_wrist", "right_index3", "pelvis"} <= groups
    # Every vertex follows exactly one bone.
    assert all(len(v.groups) == 1 and v.groups[0].weight == 1.0 for v in body.data.vertices)

    # Lowering the left arm moves the left hand's vertices with the wrist.
    motion = Motion.rest(1)
    motion.poses[0, JOINT_NAMES.index("left_shoulder")] = [0, 0, -np.pi / 2]
    wrist_group = body.vertex_groups["left_wrist"].index
    members = [v.index for v in body.data.vertices if v.groups[0].group == wrist_group]
    before = np.array([(body.matrix_world @ body.data.vertices[i].co)[:] for i in members])
    rig.write_motion(obj, motion, "lower arm")
    scene.frame_set(1)
    evaluated = body.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    after = np.array([(body.matrix_world @ mesh.vertices[i].co)[:] for i in members])
    evaluated.to_mesh_clear()
    assert (before[:, 2] - after[:, 2]).min() > 0.3  # the hand dropped by the arm's length


def test_keyframes_read_back_equal(bpy, scene, rig):
    obj = rig.create_smplx_armature(bpy.context, "Body")
    motion = random_motion(40)
    action = rig.write_motion(obj, motion, "clip")
    assert action.name == "clip" and obj.animation_data.action == action
    assert tuple(round(v) for v in action.frame_range) == (1, 40)
    back = rig.read_motion(obj)
    assert back.num_frames == 40 and back.fps == 30.0
    assert_same_rotations(back.poses, motion.poses)
    np.testing.assert_array_equal(back.trans, motion.trans)  # float32 keys hold float32 exactly
    np.testing.assert_array_equal(back.expressions, motion.expressions)
    np.testing.assert_allclose(back.betas, motion.betas, atol=1e-6)
    # Quaternion channels never flip hemisphere between frames (no spurious full turns).
    quaternions = {}
    for curve in fcurve_list(obj):
        if curve.data_path.endswith("rotation_quaternion"):
            co = np.zeros(2 * len(curve.keyframe_points), np.float32)
            curve.keyframe_points.foreach_get("co", co)
            quaternions.setdefault(curve.data_path, {})[curve.array_index] = co[1::2]
    assert len(quaternions) == 55
    for channels in quaternions.values():
        q = np.stack([channels[i] for i in range(4)], axis=-1)
        assert (np.sum(q[1:] * q[:-1], axis=-1) > 0).all()


def test_world_bone_heads_equal_forward_kinematics_at_every_frame(bpy, scene, rig):
    obj = rig.create_smplx_armature(bpy.context, "Body")
    obj.location = (0.5, -1.0, 0.2)  # the object's own transform is part of the chain
    motion = random_motion(12, seed=4, scale=0.8)
    rig.write_motion(obj, motion, "clip", start_frame=5)
    positions, _ = forward_kinematics(motion.poses.astype(np.float64), motion.trans, standing_rest_joints())
    for k in range(motion.num_frames):
        scene.frame_set(5 + k)
        expected = positions[k] @ Z_UP.T + [0.5, -1.0, 0.2]
        np.testing.assert_allclose(world_joints(bpy, obj), expected, atol=2e-5, err_msg=f"frame {5 + k}")


def test_scene_frame_rate_is_honoured(bpy, scene, rig):
    scene.render.fps = 24
    obj = rig.create_smplx_armature(bpy.context, "Body")
    motion = random_motion(31, seed=2)
    rig.write_motion(obj, motion, "clip")
    back = rig.read_motion(obj)
    expected = resample(motion, 24)
    assert back.fps == 24.0 and back.num_frames == expected.num_frames == 25
    assert_same_rotations(back.poses, expected.poses)
    np.testing.assert_allclose(back.trans, expected.trans, atol=1e-6)


def test_every_write_makes_a_new_action_and_keeps_the_old(bpy, scene, rig):
    obj = rig.create_smplx_armature(bpy.context, "Body")
    first = rig.write_motion(obj, random_motion(5, seed=1), "take")
    second = rig.write_motion(obj, random_motion(7, seed=2), "take")
    assert first != second and second.name != first.name
    assert obj.animation_data.action == second
    assert first.name in bpy.data.actions and first.use_fake_user  # survives saving without users
    np.testing.assert_array_equal(rig.read_motion(obj, first).trans, random_motion(5, seed=1).trans)


def lowest_foot(bpy, scene, obj, frames) -> float:
    """World z of the lowest foot joint (ankles, feet) over ``frames``."""
    lowest = np.inf
    for frame in frames:
        scene.frame_set(frame)
        lowest = min(lowest, world_joints(bpy, obj)[list(FOOT_JOINTS), 2].min())
    return float(lowest)


@pytest.mark.parametrize("armature", ["gestura", "addon-style"])
def test_on_floor_stands_the_clip_on_the_origin_and_reading_takes_the_shift_off(bpy, scene, rig, armature):
    motion = random_motion(15, seed=11, scale=0.3)
    motion.trans[:, 1] += 0.9  # a file whose own floor is elsewhere
    if armature == "gestura":
        obj = rig.create_smplx_armature(bpy.context, "Body", mannequin=False)
    else:  # pelvis at the armature's origin, feet below it, like the SMPL-X add-on's rig
        obj = build_addon_style_armature(bpy, scene, default_rest_joints())
    action = rig.write_motion(obj, motion, "clip", on_floor=True)
    assert lowest_foot(bpy, scene, obj, range(1, 16)) == pytest.approx(FOOT_CLEARANCE, abs=1e-5)
    shift = action["smplx_floor_offset"]
    assert abs(shift) > 0.1
    np.testing.assert_allclose(rig.read_motion(obj).trans, motion.trans, atol=1e-6)
    np.testing.assert_allclose(rig.read_motion(obj, with_floor_offset=True).trans, motion.trans + [0.0, shift, 0.0], atol=1e-6)
    # Without the pelvis keyed there is nothing to shift.
    upper = rig.write_motion(obj, motion, "arms", bones=["left_shoulder", "right_shoulder"], on_floor=True)
    assert upper["smplx_floor_offset"] == 0.0


def test_bone_subset_keys_only_those_bones(bpy, scene, rig):
    obj = rig.create_smplx_armature(bpy.context, "Body")
    rig.write_motion(obj, random_motion(6), "hands", bones=["left_wrist", "jaw"], expressions=False)
    paths = {c.data_path for c in fcurve_list(obj)}
    assert paths == {'pose.bones["left_wrist"].rotation_quaternion', 'pose.bones["jaw"].rotation_quaternion'}
    with pytest.raises(rig.RigError, match="not SMPL-X joint names: elbow"):
        rig.write_motion(obj, random_motion(6), "bad", bones=["elbow"])


def test_expressions_animate_the_property_and_drive_exp_shape_keys(bpy, scene, rig):
    obj = rig.create_smplx_armature(bpy.context, "Body", mannequin=False)
    # A face mesh named like the SMPL-X add-on's: expression shape keys Exp000, Exp001, ...
    bpy.ops.mesh.primitive_cube_add()
    face = bpy.context.active_object
    face.parent = obj
    face.shape_key_add(name="Basis")
    for i in range(10):
        face.shape_key_add(name=f"Exp{i:03d}")
    face.shape_key_add(name="Shape000").value = 0.25
    motion = random_motion(8, seed=5)
    rig.write_motion(obj, motion, "face")
    blocks = face.data.shape_keys.key_blocks
    for frame in (1, 4, 8):
        scene.frame_set(frame)
        np.testing.assert_allclose(list(obj[rig.EXPRESSION_PROPERTY]), motion.expressions[frame - 1], atol=1e-6)
        for i in range(10):
            assert blocks[f"Exp{i:03d}"].value == pytest.approx(motion.expressions[frame - 1, i], abs=1e-5)
        assert blocks["Shape000"].value == 0.25  # not an expression key: left alone
    # Writing again adds no second set of drivers.
    rig.write_motion(obj, motion, "face again")
    assert len(face.data.shape_keys.animation_data.drivers) == 10


def test_wrong_armature_is_refused_and_left_unchanged(bpy, scene, rig):
    data = bpy.data.armatures.new("Other")
    obj = bpy.data.objects.new("Other", data)
    scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for name in ("pelvis", "spine1", "head"):
        bone = data.edit_bones.new(name)
        bone.tail = (0, 0, 0.1)
    bpy.ops.object.mode_set(mode="OBJECT")
    missing = rig.missing_smplx_bones(obj)
    assert len(missing) == 52 and "left_hip" in missing and "pelvis" not in missing
    actions_before = len(bpy.data.actions)
    with pytest.raises(rig.RigError, match=r"missing 52 SMPL-X bone\(s\): left_hip, right_hip"):
        rig.write_motion(obj, random_motion(3), "nope")
    assert len(bpy.data.actions) == actions_before and obj.animation_data is None
    mesh = bpy.data.objects.new("Mesh", bpy.data.meshes.new("Mesh"))
    assert rig.missing_smplx_bones(mesh) == list(JOINT_NAMES)
    with pytest.raises(rig.RigError, match="not an armature"):
        rig.write_motion(mesh, random_motion(3), "nope")


def build_addon_style_armature(bpy, scene, rest, roll_bones=False):
    """An armature built the way the SMPL-X Blender add-on builds its rig: Z-up armature space
    (joint (x, y, z) at (x, -z, y)), every bone's tail 0.1 above its head, a 'root' bone above the
    pelvis. With ``roll_bones`` the bones instead point at their first child with a roll, like a
    hand-made rig, to show the writer adapts to any bone frames."""
    data = bpy.data.armatures.new("SMPLX-neutral")
    obj = bpy.data.objects.new("SMPLX-neutral", data)
    scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    root = data.edit_bones.new("root")
    root.head, root.tail = (0, 0, 0), (0, 0, 0.1)
    blender_rest = rest @ Z_UP.T
    for joint, name in enumerate(JOINT_NAMES):
        bone = data.edit_bones.new(name)
        bone.head = blender_rest[joint]
        kids = [c for c, p in enumerate(PARENTS) if p == joint]
        if roll_bones and kids:
            bone.tail = blender_rest[kids[0]] + (0.0, 0.0, 1e-3 * (joint + 1))
            bone.roll = 0.3 * joint
        else:
            bone.tail = blender_rest[joint] + (0, 0, 0.1)
        bone.parent = data.edit_bones[JOINT_NAMES[PARENTS[joint]]] if PARENTS[joint] >= 0 else root
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


@pytest.mark.parametrize("roll_bones", [False, True], ids=["addon-style", "rolled-bones"])
def test_other_smplx_named_armatures_get_the_same_world_motion(bpy, scene, rig, roll_bones):
    rest = default_rest_joints() * 1.1 + [0.0, 0.3, 0.0]
    obj = build_addon_style_armature(bpy, scene, rest, roll_bones)
    assert rig.missing_smplx_bones(obj) == []
    np.testing.assert_allclose(rig.armature_rest_joints(obj), rest, atol=1e-5)
    motion = random_motion(6, seed=7, scale=0.7)
    rig.write_motion(obj, motion, "clip")
    positions, _ = forward_kinematics(motion.poses.astype(np.float64), motion.trans, rest)
    for k in range(motion.num_frames):
        scene.frame_set(1 + k)
        np.testing.assert_allclose(world_joints(bpy, obj), positions[k] @ Z_UP.T, atol=5e-5)
    back = rig.read_motion(obj)
    assert_same_rotations(back.poses, motion.poses, atol=5e-5)
    np.testing.assert_allclose(back.trans, motion.trans, atol=1e-5)


def test_bvh_export_imported_by_blender_reproduces_the_joints(bpy, scene, rig, tmp_path):
    from gestura.rigs.motion_io import save_bvh

    motion = random_motion(10, seed=9, scale=0.6)
    path = save_bvh(motion, tmp_path / "clip.bvh")
    assert bpy.ops.import_anim.bvh(filepath=str(path), update_scene_fps=False, update_scene_duration=True) == {"FINISHED"}
    imported = bpy.context.active_object
    assert imported.type == "ARMATURE" and {b.name for b in imported.data.bones} == set(JOINT_NAMES)
    # Blender shows the built-in skeleton standing on the floor, as it shows Gestura's rigs.
    positions, _ = forward_kinematics(motion.poses.astype(np.float64), motion.trans, standing_rest_joints())
    for k in range(motion.num_frames):
        scene.frame_set(1 + k)
        np.testing.assert_allclose(world_joints(bpy, imported), positions[k] @ Z_UP.T, atol=1e-4, err_msg=f"frame {k + 1}")
