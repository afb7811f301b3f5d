"""Create an SMPL-X rig; import a BEAT2 / SMPL-X npz onto a new or the selected rig."""
from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from ..rigs.motion import MotionError


def selected_armature(context):
    """The active selected armature, or the armature of an active selected mesh; else None."""
    obj = context.active_object
    if obj is None or not obj.select_get():
        return None
    if obj.type != "ARMATURE" and obj.parent is not None and obj.parent.type == "ARMATURE":
        return obj.parent
    return obj if obj.type == "ARMATURE" else None


def _lift_to_floor(obj, rest) -> None:
    """Stand the unanimated rig on its object's origin: a pose offset on the pelvis, which keyed
    motion replaces."""
    from ..rigs.rest_skeleton import FOOT_CLEARANCE
    from ..rigs.skeleton import FOOT_JOINTS

    lowest = min(float(rest[j][1]) for j in FOOT_JOINTS)
    obj.pose.bones["pelvis"].location = (0.0, FOOT_CLEARANCE - lowest, 0.0)


class GESTURA_OT_create_rig(bpy.types.Operator):
    """Add an SMPL-X armature with a mannequin body at the 3D cursor"""

    bl_idname = "gestura.create_rig"
    bl_label = "Create SMPL-X Rig"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty(name="Name", default="SMPLX")
    body: BoolProperty(name="Mannequin Body", description="Add a simple skinned body mesh", default=True)
    smplx_model: StringProperty(
        name="SMPL-X Model",
        description="Optional: your licensed SMPL-X model (SMPLX_NEUTRAL.npz or its folder) for exact "
        "joint positions; empty uses built-in adult proportions",
        subtype="FILE_PATH",
        default="",
    )
    gender: EnumProperty(
        name="Gender",
        items=(("neutral", "Neutral", ""), ("male", "Male", ""), ("female", "Female", "")),
        default="neutral",
    )

    def execute(self, context):
        from ..rigs.blender import create_smplx_armature
        from ..rigs.rest_skeleton import SMPLXModelError, default_rest_joints, smplx_rest_joints

        rest = default_rest_joints()
        if self.smplx_model.strip():
            try:
                rest = smplx_rest_joints(bpy.path.abspath(self.smplx_model.strip()), None, self.gender)
                rest = rest - rest[0]  # the rig's origin is its pelvis, as with the built-in skeleton
            except SMPLXModelError as error:
                self.report({"ERROR"}, str(error))
                return {"CANCELLED"}
        obj = create_smplx_armature(context, self.name or "SMPLX", rest_joints=rest, mannequin=self.body)
        obj.location = context.scene.cursor.location
        _lift_to_floor(obj, rest)
        self.report({"INFO"}, f"Created SMPL-X rig '{obj.name}'")
        return {"FINISHED"}


class GESTURA_OT_import_motion(bpy.types.Operator, ImportHelper):
    """Import a BEAT2 / SMPL-X motion file (.npz) as a new action on the selected SMPL-X rig, or on a new one"""

    bl_idname = "gestura.import_motion"
    bl_label = "Import SMPL-X Motion"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    new_armature: BoolProperty(
        name="New Rig", description="Always create a new SMPL-X rig instead of using the selected one", default=False
    )
    frame_rate: EnumProperty(
        name="Frame Rate",
        items=(
            ("RESAMPLE", "Keep Scene Rate", "Resample the motion to the scene's frame rate"),
            ("SCENE", "Use File's Rate", "Set the scene's frame rate to the file's"),
        ),
        default="RESAMPLE",
    )
    on_floor: BoolProperty(
        name="Feet on Floor",
        description="Move the motion up or down once so its lowest foot touches the rig's origin",
        default=True,
    )
    start_frame: IntProperty(name="Start Frame", default=1)

    def execute(self, context):
        from ..rigs import kinematics, motion_io
        from ..rigs.blender import RigError, armature_rest_joints, create_smplx_armature, require_smplx_bones, write_motion

        from ..rigs.blender.actions import check_new_action
        from ..rigs.blender.keyframes import keyed_paths

        # Everything that can fail is checked before the scene is touched.
        if self.start_frame < 0:
            self.report({"ERROR"}, f"Start frame {self.start_frame} is negative, but a Blender scene cannot start "
                        "before frame 0: use 0 or later")
            return {"CANCELLED"}
        try:
            motion = motion_io.load_npz(self.filepath)
            if motion.num_frames == 0:
                raise MotionError(f"{self.filepath} holds no frames")
            target = None if self.new_armature else selected_armature(context)
            if target is not None:
                require_smplx_bones(target)
                check_new_action(target, keyed_paths())
        except (MotionError, RigError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}

        scene = context.scene
        if self.frame_rate == "SCENE":
            rate = round(motion.fps)
            scene.render.fps = max(1, rate)
            scene.render.fps_base = scene.render.fps / motion.fps
        if target is None:
            target = create_smplx_armature(context)
            target.location = scene.cursor.location
        if self.on_floor:
            from ..rigs.rest_skeleton import FOOT_CLEARANCE

            motion = kinematics.ground(motion, armature_rest_joints(target), clearance=FOOT_CLEARANCE)
        action = write_motion(target, motion, Path(self.filepath).stem, start_frame=self.start_frame)
        first, last = (int(round(v)) for v in action.frame_range)
        scene.frame_start = self.start_frame
        scene.frame_end = last
        scene.frame_set(self.start_frame)
        self.report({"INFO"}, f"Imported {last - first + 1} frames onto '{target.name}' as action '{action.name}'")
        return {"FINISHED"}


CLASSES = (GESTURA_OT_create_rig, GESTURA_OT_import_motion)
