"""Create an SMPL-X rig; import a BEAT2 / SMPL-X npz onto a new or the selected rig."""
from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from ...errors import GesturaError
from ...rigs.motion import MotionError


def selected_armature(context):
    """The active selected armature, or the armature of an active selected mesh; else None."""
    obj = context.active_object
    if obj is None or not obj.select_get():
        return None
    if obj.type != "ARMATURE" and obj.parent is not None and obj.parent.type == "ARMATURE":
        return obj.parent
    return obj if obj.type == "ARMATURE" else None


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
        from ..rigs import create_smplx_armature
        from ...rigs.rest_skeleton import SMPLXModelError, default_rest_joints, smplx_rest_joints

        rest = default_rest_joints()
        if self.smplx_model.strip():
            try:
                rest = smplx_rest_joints(bpy.path.abspath(self.smplx_model.strip()), None, self.gender)
                rest = rest - rest[0]  # centred over the origin like the built-in skeleton (which stands on it)
            except SMPLXModelError as error:
                self.report({"ERROR"}, str(error))
                return {"CANCELLED"}
        obj = create_smplx_armature(context, self.name or "SMPLX", rest_joints=rest, mannequin=self.body)
        obj.location = context.scene.cursor.location
        self.report({"INFO"}, f"Created SMPL-X rig '{obj.name}'")
        return {"FINISHED"}


class GESTURA_OT_import_motion(bpy.types.Operator, ImportHelper):
    """Import SMPL-X motion (.npz of BEAT2, AMASS or fitting tools) as a new action on the selected rig, or a new one"""

    bl_idname = "gestura.import_motion"
    bl_label = "Import SMPL-X Motion"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    # .npy and pickles are listed too: pickles only to be told how to convert them.
    filter_glob: StringProperty(default="*.npz;*.npy;*.pkl", options={"HIDDEN"})

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
        description="Move the motion up or down once so its lowest foot touches the rig's origin (the floor); "
        "exporting takes the shift off again",
        default=True,
    )
    start_frame: IntProperty(name="Start Frame", default=1)
    up_axis: EnumProperty(
        name="Up Axis",
        description="Which way is up in the file's world",
        items=(
            ("AUTO", "From File", "AMASS files are Z up, BEAT2 files Y up; files that do not say are read "
             "from the way the body stands"),
            ("Y", "Y Up", "BEAT2, SMPL-X model space"),
            ("Z", "Z Up", "AMASS"),
            ("-Y", "Y Down", "Camera coordinates, as image-based fitting tools write them"),
        ),
        default="AUTO",
    )

    def execute(self, context):
        from ...rigs import motion_formats
        from ..rigs import create_smplx_armature, require_smplx_bones, write_motion

        from ..rigs.actions import check_new_action
        from ..rigs.keyframes import keyed_paths

        # Everything that can fail is checked before the scene is touched.
        if self.start_frame < 0:
            self.report({"ERROR"}, f"Start frame {self.start_frame} is negative, but a Blender scene cannot start "
                        "before frame 0: use 0 or later")
            return {"CANCELLED"}
        try:
            motion, notices = motion_formats.read_motion(self.filepath, self.up_axis)
            if motion.num_frames == 0:
                raise MotionError(f"{self.filepath} holds no frames")
            target = None if self.new_armature else selected_armature(context)
            if target is not None:
                require_smplx_bones(target)
                check_new_action(target, keyed_paths())
        except GesturaError as error:
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
        action = write_motion(target, motion, Path(self.filepath).stem, start_frame=self.start_frame,
                              on_floor=self.on_floor)
        first, last = (int(round(v)) for v in action.frame_range)
        scene.frame_start = self.start_frame
        scene.frame_end = last
        scene.frame_set(self.start_frame)
        # What was converted or assumed goes to the Info log; the last line, in the status bar, counts it.
        for notice in notices:
            self.report({"WARNING"}, f"{Path(self.filepath).name}: {notice}")
        notes = f" ({len(notices)} note{'s' * (len(notices) > 1)} on its format in the Info editor)" if notices else ""
        frames = last - first + 1
        self.report({"INFO"}, f"Imported {frames} frames onto '{target.name}' as action '{action.name}'{notes}")
        return {"FINISHED"}


CLASSES = (GESTURA_OT_create_rig, GESTURA_OT_import_motion)
