"""gestura.create_rig, gestura.import_motion and gestura.export_motion through the real installed
extension, on Blender 4.2 and 5.0."""
from __future__ import annotations

import pickle


import re

import numpy as np
import pytest

from gestura.rigs import motion_io
from gestura.rigs.kinematics import forward_kinematics
from gestura.rigs.motion import Motion
from gestura.rigs.rotations import axis_angle_to_matrix
from gestura.rigs.skeleton import JOINT_NAMES
from test_generate_operator import fcurves

pytestmark = pytest.mark.blender


def read_motion(obj):
    # Imported late: importing bpy while tests are still being collected would fix Blender's
    # user folder before every conftest import has run.
    from gestura.blender.rigs import read_motion as read

    return read(obj)

Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@pytest.fixture
def scene(bpy, extension, empty_scene):
    empty_scene.render.fps = 30
    empty_scene.render.fps_base = 1.0
    return empty_scene


def random_motion(n=20, seed=0) -> Motion:
    rng = np.random.default_rng(seed)
    poses = np.cumsum(rng.normal(scale=0.1, size=(n, 55, 3)), axis=0)
    return Motion(poses, np.cumsum(rng.normal(scale=0.02, size=(n, 3)), axis=0), rng.normal(size=(n, 100)))


def state(bpy) -> dict:
    scene = bpy.context.scene
    return {
        "objects": sorted(o.name for o in bpy.data.objects),
        "actions": sorted(a.name for a in bpy.data.actions),
        "assigned": sorted((o.name, o.animation_data.action.name) for o in bpy.data.objects
                           if o.animation_data and o.animation_data.action),
        "range": (scene.frame_start, scene.frame_end),
        "fps": (scene.render.fps, scene.render.fps_base),
    }


def select_only(bpy, obj) -> None:
    for other in bpy.context.selected_objects:
        other.select_set(False)
    if obj is not None:
        obj.select_set(True)
    bpy.context.view_layer.objects.active = obj


def world_joints(obj) -> np.ndarray:
    matrix = np.array(obj.matrix_world)
    heads = np.array([obj.pose.bones[name].head for name in JOINT_NAMES])
    return heads @ matrix[:3, :3].T + matrix[:3, 3]


def make_other_armature(bpy, scene):
    data = bpy.data.armatures.new("Mixamo")
    obj = bpy.data.objects.new("Mixamo", data)
    scene.collection.objects.link(obj)
    select_only(bpy, obj)
    bpy.ops.object.mode_set(mode="EDIT")
    for name in ("pelvis", "Hips", "Spine"):
        data.edit_bones.new(name).tail = (0, 0, 0.2)
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def test_create_rig_stands_at_the_cursor_with_a_body(bpy, scene):
    scene.cursor.location = (1.0, 2.0, 0.0)
    assert bpy.ops.gestura.create_rig(name="Speaker") == {"FINISHED"}
    obj = bpy.context.active_object
    assert obj.name == "Speaker" and obj.type == "ARMATURE"
    assert sorted(b.name for b in obj.data.bones) == sorted(JOINT_NAMES)
    assert [c.type for c in obj.children] == ["MESH"]
    bpy.context.view_layer.update()
    joints = world_joints(obj)
    feet = joints[[JOINT_NAMES.index(n) for n in ("left_foot", "right_foot", "left_ankle", "right_ankle")], 2]
    assert 0.0 < feet.min() < 0.1  # standing on the floor, not sunk into it
    np.testing.assert_allclose(joints[0, :2], [1.0, 2.0], atol=1e-6)


def test_create_rig_with_a_missing_smplx_model_changes_nothing(bpy, scene, tmp_path):
    before = state(bpy)
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.gestura.create_rig(smplx_model=str(tmp_path / "SMPLX_NEUTRAL.npz"))
    assert state(bpy) == before


def test_import_onto_a_new_rig_reads_back_the_file(bpy, scene, tmp_path):
    motion = random_motion(20)
    path = motion_io.save_npz(motion, tmp_path / "2_scott_0_1_1.npz")
    select_only(bpy, None)
    assert bpy.ops.gestura.import_motion(filepath=str(path), on_floor=False) == {"FINISHED"}
    (obj,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert obj.animation_data.action.name == "2_scott_0_1_1"
    assert (scene.frame_start, scene.frame_end) == (1, 20)
    back = read_motion(obj)
    np.testing.assert_allclose(axis_angle_to_matrix(back.poses), axis_angle_to_matrix(motion.poses), atol=2e-5)
    np.testing.assert_array_equal(back.trans, motion.trans)
    np.testing.assert_array_equal(back.expressions, motion.expressions)


def test_import_onto_the_selected_rig_and_feet_on_floor(bpy, scene, tmp_path):
    bpy.ops.gestura.create_rig()
    rig = bpy.context.active_object
    motion = random_motion(10, seed=3)
    path = motion_io.save_npz(motion, tmp_path / "clip.npz")
    assert bpy.ops.gestura.import_motion(filepath=str(path)) == {"FINISHED"}
    assert [o.name for o in bpy.data.objects if o.type == "ARMATURE"] == [rig.name]
    assert rig.animation_data.action.name == "clip"
    lowest = np.inf
    for frame in range(1, 11):
        scene.frame_set(frame)
        joints = world_joints(rig)
        lowest = min(lowest, joints[[7, 8, 10, 11], 2].min())
    assert lowest == pytest.approx(0.04, abs=1e-4)  # the foot joints' clearance above the floor


@pytest.mark.parametrize("onto", ["new rig", "created rig"])
def test_a_beat2_file_imported_on_the_floor_and_exported_keeps_its_trans(bpy, scene, tmp_path, onto):
    motion = random_motion(15, seed=8)
    motion.trans[:, 1] += 0.3  # BEAT2's own floor is not the rig's: Feet on Floor shifts the clip
    path = motion_io.save_npz(motion, tmp_path / "2_scott_0_2_2.npz")
    if onto == "created rig":
        bpy.ops.gestura.create_rig()
    else:
        select_only(bpy, None)
    assert bpy.ops.gestura.import_motion(filepath=str(path)) == {"FINISHED"}
    rig = bpy.context.active_object
    lowest = np.inf
    for frame in range(1, 16):
        scene.frame_set(frame)
        lowest = min(lowest, world_joints(rig)[[7, 8, 10, 11], 2].min())
    assert lowest == pytest.approx(0.04, abs=1e-4)
    out = tmp_path / "again.npz"
    assert bpy.ops.gestura.export_motion(filepath=str(out), format="NPZ") == {"FINISHED"}
    back = motion_io.load_npz(out)
    # The file's translation, not the shift that stood it on the floor (float32 keys: < 1e-6 m).
    np.testing.assert_allclose(back.trans, motion.trans, rtol=0, atol=1e-6)
    np.testing.assert_allclose(axis_angle_to_matrix(back.poses), axis_angle_to_matrix(motion.poses), atol=2e-5)


def test_import_resamples_or_adopts_the_files_frame_rate(bpy, scene, tmp_path):
    path = motion_io.save_npz(random_motion(31), tmp_path / "clip.npz")
    scene.render.fps = 24
    select_only(bpy, None)
    bpy.ops.gestura.import_motion(filepath=str(path), new_armature=True)
    assert scene.render.fps == 24 and scene.frame_end == 25  # 30 frames of time at 24 fps
    bpy.ops.gestura.import_motion(filepath=str(path), new_armature=True, frame_rate="SCENE")
    assert scene.render.fps / scene.render.fps_base == 30 and scene.frame_end == 31


def test_import_onto_a_non_smplx_armature_lists_the_bones_and_changes_nothing(bpy, scene, tmp_path):
    path = motion_io.save_npz(random_motion(5), tmp_path / "clip.npz")
    make_other_armature(bpy, scene)
    before = state(bpy)
    with pytest.raises(RuntimeError, match=r"'Mixamo' is missing 54 SMPL-X bone\(s\): left_hip, right_hip, spine1"):
        bpy.ops.gestura.import_motion(filepath=str(path))
    assert state(bpy) == before


@pytest.mark.parametrize("kind", ["tweak", "driver", "linked"])
def test_import_onto_a_rig_that_cannot_take_a_new_action_is_refused_and_changes_nothing(bpy, scene, tmp_path, kind):
    from anim_states import actions_state, add_driver, anim_state, enter_tweak_mode, link_from_library

    path = motion_io.save_npz(random_motion(5), tmp_path / "clip.npz")
    bpy.ops.gestura.create_rig(body=False)
    rig = bpy.context.active_object
    assert bpy.ops.gestura.import_motion(filepath=str(path)) == {"FINISHED"}
    if kind == "tweak":
        enter_tweak_mode(rig)
        expected = r"^Error: 'SMPLX' is in NLA tweak mode: press Tab in the NLA editor to leave it, then try again$"
    elif kind == "driver":
        add_driver(rig, 'pose.bones["pelvis"].location', 2)
        expected = r"^Error: 'SMPLX' has a driver on pose\.bones\[\"pelvis\"\]\.location, which would override"
    else:
        rig = link_from_library(bpy, rig, tmp_path)
        select_only(bpy, rig)
        expected = r"^Error: 'SMPLX' is linked from 'SMPLX-library\.blend', so a new action on it would be lost"
    scene = bpy.context.scene
    scene.render.fps = 25
    before, actions, anim = state(bpy), actions_state(bpy), anim_state(rig)
    # The file's frame rate would be adopted first: the refusal must come before it.
    with pytest.raises(RuntimeError) as failure:
        bpy.ops.gestura.import_motion(filepath=str(path), frame_rate="SCENE", start_frame=7)
    assert re.search(expected, str(failure.value).strip()), str(failure.value)
    assert state(bpy) == before and actions_state(bpy) == actions and anim_state(rig) == anim


def test_import_with_a_negative_start_frame_is_refused(bpy, scene, tmp_path):
    path = motion_io.save_npz(random_motion(5), tmp_path / "clip.npz")
    before = state(bpy)
    with pytest.raises(RuntimeError, match=r"^Error: Start frame -100 is negative, but a Blender scene cannot start "
                       r"before frame 0: use 0 or later$"):
        bpy.ops.gestura.import_motion(filepath=str(path), start_frame=-100)
    assert state(bpy) == before


def test_import_of_a_bad_file_names_the_key_and_changes_nothing(bpy, scene, tmp_path):
    np.savez(tmp_path / "bad.npz", poses=np.zeros((4, 150)), trans=np.zeros((4, 3)))
    before = state(bpy)
    with pytest.raises(RuntimeError, match=r"key 'poses' has shape \(4, 150\), expected \(N, 165\)"):
        bpy.ops.gestura.import_motion(filepath=str(tmp_path / "bad.npz"))
    assert state(bpy) == before
    (tmp_path / "fit.pkl").write_bytes(pickle.dumps({"poses": np.zeros((4, 165))}))
    with pytest.raises(RuntimeError, match=r"'fit.pkl' is a Python pickle, which Gestura never opens"):
        bpy.ops.gestura.import_motion(filepath=str(tmp_path / "fit.pkl"))
    assert state(bpy) == before


def test_import_of_an_amass_file_stands_upright_and_says_it_was_turned(bpy, scene, tmp_path, capfd):
    # AMASS's world is Z up: a person standing at rest has the root turned +90 degrees about X and
    # the pelvis 0.9 m up the world's Z. Read as BEAT2's Y up, it would lie on its back.
    poses = np.zeros((4, 165))
    poses[:, :3] = (np.pi / 2, 0.0, 0.0)
    trans = np.tile((0.0, 0.0, 0.9), (4, 1))
    np.savez(tmp_path / "amass.npz", poses=poses, trans=trans, betas=np.zeros(16), gender=np.array("neutral"),
             surface_model_type=np.array("smplx"), mocap_frame_rate=np.array(30.0),
             root_orient=poses[:, :3], pose_body=poses[:, 3:66])
    select_only(bpy, None)
    capfd.readouterr()
    assert bpy.ops.gestura.import_motion(filepath=str(tmp_path / "amass.npz")) == {"FINISHED"}
    out = capfd.readouterr().out
    assert ("amass.npz: turned from a Z-up world to Y up (-90 degrees about X): AMASS keys (surface_model_type, "
            "root_orient)") in out
    assert "(2 notes on its format in the Info editor)" in out
    (obj,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    scene.frame_set(2)
    joints = world_joints(obj)
    head, pelvis = joints[JOINT_NAMES.index("head")], joints[JOINT_NAMES.index("pelvis")]
    assert head[2] - pelvis[2] > 0.5  # upright in Blender's Z
    np.testing.assert_allclose(head[:2], pelvis[:2], atol=0.05)
    # AMASS's translation is not measured from the same pelvis origin as Gestura's rig; Feet on Floor
    # (the default) stands the turned clip on the rig's origin all the same.
    feet = [joints[JOINT_NAMES.index(name)][2] for name in ("left_foot", "right_foot", "left_ankle", "right_ankle")]
    assert 0.0 <= min(feet) < 0.1


@pytest.fixture
def animated_rig(bpy, scene, tmp_path):
    motion = random_motion(12, seed=5)
    path = motion_io.save_npz(motion, tmp_path / "source.npz")
    select_only(bpy, None)
    bpy.ops.gestura.import_motion(filepath=str(path), on_floor=False)
    return bpy.context.active_object, motion


def test_export_npz_round_trips_and_never_clobbers(bpy, animated_rig, tmp_path):
    obj, motion = animated_rig
    target = tmp_path / "out.npz"
    assert bpy.ops.gestura.export_motion(filepath=str(target), format="NPZ") == {"FINISHED"}
    back = motion_io.load_npz(target)
    np.testing.assert_allclose(axis_angle_to_matrix(back.poses), axis_angle_to_matrix(motion.poses), atol=2e-5)
    np.testing.assert_array_equal(back.trans, motion.trans)
    np.testing.assert_array_equal(back.expressions, motion.expressions)
    target.write_bytes(b"keep me")
    with pytest.raises(RuntimeError, match="already exists.*Overwrite"):
        bpy.ops.gestura.export_motion(filepath=str(target), format="NPZ")
    assert target.read_bytes() == b"keep me"
    assert bpy.ops.gestura.export_motion(filepath=str(target), format="NPZ", overwrite=True) == {"FINISHED"}
    assert motion_io.load_npz(target).num_frames == 12


@pytest.mark.parametrize("on_floor", [False, True])
def test_export_bvh_adds_the_extension_and_reimports(bpy, scene, animated_rig, tmp_path, on_floor):
    obj, motion = animated_rig
    if on_floor:  # the same clip stood on the floor by the importer: the BVH stands there too
        motion_io.save_npz(motion, tmp_path / "floor.npz")
        select_only(bpy, obj)
        bpy.ops.gestura.import_motion(filepath=str(tmp_path / "floor.npz"))
        assert obj.animation_data.action["smplx_floor_offset"] != 0.0
    assert bpy.ops.gestura.export_motion(filepath=str(tmp_path / "take"), format="BVH") == {"FINISHED"}
    path = tmp_path / "take.bvh"
    assert path.read_text().startswith("HIERARCHY")
    expected = []
    for frame in (1, 6, 12):
        scene.frame_set(frame)
        expected.append(world_joints(obj))
    bpy.ops.import_anim.bvh(filepath=str(path), update_scene_fps=False)
    imported = bpy.context.active_object
    for frame, joints in zip((1, 6, 12), expected):
        scene.frame_set(frame)
        # The rig stands at the origin, like the BVH: same world joints.
        np.testing.assert_allclose(world_joints(imported), joints, atol=1e-4)


def test_export_fbx_through_blenders_exporter(bpy, scene, animated_rig, tmp_path):
    obj, motion = animated_rig
    selected_before = {o.name for o in bpy.context.selected_objects}
    path = tmp_path / "take.fbx"
    assert bpy.ops.gestura.export_motion(filepath=str(path), format="FBX") == {"FINISHED"}
    assert path.stat().st_size > 10_000 and path.read_bytes()[:18] == b"Kaydara FBX Binary"
    assert {o.name for o in bpy.context.selected_objects} == selected_before
    expected = {}
    for frame in (1, 7, 12):
        scene.frame_set(frame)
        expected[frame] = world_joints(obj)
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render.fps = 30
    # Blender's FBX exporter writes scene frame f at FBX time f; its importer shifts by
    # anim_offset (1 by default), so 0 puts keys back on the frames they came from.
    bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0)
    (imported,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    for frame, joints in expected.items():
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(world_joints(imported), joints, atol=1e-3, err_msg=f"frame {frame}")


def test_every_export_holds_the_whole_action_whatever_the_scene_range(bpy, scene, tmp_path):
    motion_io.save_npz(random_motion(208, seed=2), tmp_path / "long.npz")
    select_only(bpy, None)
    bpy.ops.gestura.import_motion(filepath=str(tmp_path / "long.npz"), on_floor=False)
    scene.frame_start, scene.frame_end, scene.frame_current = 5, 100, 42
    for fmt in ("NPZ", "BVH", "FBX"):
        assert bpy.ops.gestura.export_motion(filepath=str(tmp_path / "take"), format=fmt) == {"FINISHED"}
    # The scene is exactly as the user left it.
    assert (scene.frame_start, scene.frame_end, scene.frame_current) == (5, 100, 42)
    assert motion_io.load_npz(tmp_path / "take.npz").num_frames == 208
    assert (tmp_path / "take.bvh").read_text().count("\nFrames: 208\n") == 1
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(tmp_path / "take.fbx"), anim_offset=0)
    (imported,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    keyed = {round(point.co[0]) for curve in fcurves(imported) for point in curve.keyframe_points}
    assert keyed == set(range(1, 209))


def test_a_file_name_naming_another_format_is_refused(bpy, animated_rig, tmp_path):
    for name, fmt in (("x.bvh", "NPZ"), ("x.npz", "FBX"), ("x.fbx", "BVH"), ("x.blend", "NPZ")):
        with pytest.raises(RuntimeError, match=rf"'{name}' names a \.\w+ file but the format is {fmt}: name it x\."):
            bpy.ops.gestura.export_motion(filepath=str(tmp_path / name), format=fmt)
    assert list(tmp_path.iterdir()) == [tmp_path / "source.npz"]


@pytest.mark.parametrize("fmt", ["NPZ", "BVH", "FBX"])
def test_export_into_an_unwritable_folder_is_one_sentence(bpy, animated_rig, tmp_path, unwritable_folder, fmt):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(RuntimeError, match=r"folder .*locked is not writable \((Permission denied|Operation not "
                                           r"permitted)\)$"):
        bpy.ops.gestura.export_motion(filepath=str(unwritable_folder / "take"), format=fmt)
    with pytest.raises(RuntimeError, match=r"notes\.txt is a file, not a folder; choose another folder"):
        bpy.ops.gestura.export_motion(filepath=str(tmp_path / "notes.txt" / "take"), format=fmt)
    assert list(unwritable_folder.iterdir()) == []


def test_export_from_a_non_smplx_armature_writes_nothing(bpy, scene, tmp_path):
    make_other_armature(bpy, scene)
    with pytest.raises(RuntimeError, match="missing 54 SMPL-X bone"):
        bpy.ops.gestura.export_motion(filepath=str(tmp_path / "x.npz"), format="NPZ")
    assert list(tmp_path.iterdir()) == []


def test_forward_kinematics_of_an_imported_clip_matches_the_rig(bpy, scene, animated_rig):
    # The installed add-on's rig and the package's bpy-free maths agree.
    from gestura.rigs.rest_skeleton import standing_rest_joints

    obj, motion = animated_rig
    positions, _ = forward_kinematics(motion.poses.astype(np.float64), motion.trans, standing_rest_joints())
    for frame in (1, 12):
        scene.frame_set(frame)
        np.testing.assert_allclose(world_joints(obj), positions[frame - 1] @ Z_UP.T, atol=2e-5)


def test_an_fbx_export_the_disk_cannot_hold_names_the_file_and_the_reason(bpy, animated_rig, tmp_path):
    import resource
    import signal

    path = tmp_path / "take.fbx"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8000, hard))  # the OS refuses files past 8 kB: a full disk
    try:
        with pytest.raises(RuntimeError) as raised:
            bpy.ops.gestura.export_motion(filepath=str(path), format="FBX")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    message = str(raised.value).strip().splitlines()[-1]
    assert message.startswith(f"Error: could not write {path}: Blender's FBX exporter failed ("), message
    assert "File too large" in message and "Location:" not in message and ".tmp" not in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.npz"]
