"""Export the selected SMPL-X rig's action as a BEAT2 npz, a BVH, or an FBX (Blender's exporter).

Every format holds the whole action (its frame range), whatever the scene's range. The file is
checked before anything is read or written, and is written beside its name then moved into place.
"""
from __future__ import annotations

import math
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

from ...errors import GesturaError
from ...inference.batch import named_format
from ...rigs.motion import MotionError
from .rig import selected_armature

_EXTENSIONS = {"NPZ": ".npz", "BVH": ".bvh", "FBX": ".fbx"}


class GESTURA_OT_export_motion(bpy.types.Operator, ExportHelper):
    """Export the selected SMPL-X rig's current action as .npz (BEAT2 / SMPL-X), .bvh or .fbx"""

    bl_idname = "gestura.export_motion"
    bl_label = "Export SMPL-X Motion"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz;*.bvh;*.fbx", options={"HIDDEN"})
    format: EnumProperty(
        name="Format",
        items=(
            ("NPZ", "NPZ (BEAT2 / SMPL-X)", "Axis-angle poses, translation, expressions: what EMAGE, MambaTalk "
             "and the SMPL-X Blender add-on read"),
            ("BVH", "BVH", "Skeleton animation for most animation tools"),
            ("FBX", "FBX", "The rig, its body and the action, through Blender's FBX exporter"),
        ),
        default="NPZ",
    )
    overwrite: BoolProperty(name="Overwrite", description="Replace an existing file of the same name", default=False)

    def check(self, context):
        # Keep the file name's extension in step with the chosen format.
        wanted = _EXTENSIONS[self.format]
        path = Path(self.filepath)
        if self.filepath and path.suffix.lower() != wanted:
            self.filepath = str(path.with_suffix(wanted)) if path.suffix.lower() in _EXTENSIONS.values() else self.filepath + wanted
            return True
        return False

    def execute(self, context):
        from ...rigs import motion_io
        from ..rigs import armature_rest_joints, read_motion, require_smplx_bones

        obj = selected_armature(context)
        path = Path(bpy.path.abspath(self.filepath))
        wanted = _EXTENSIONS[self.format]
        named = named_format(path)
        if named is not None and named != wanted:
            other = {ext: name for name, ext in _EXTENSIONS.items()}.get(named)
            choice = f", or choose the format {other}" if other else ""
            self.report({"ERROR"}, f"'{path.name}' names a {named} file but the format is {self.format}: "
                                   f"name it {path.stem}{wanted}{choice}")
            return {"CANCELLED"}
        if path.suffix.lower() != wanted:
            path = path.with_name(path.name + wanted)
        try:
            require_smplx_bones(obj)
            if obj.animation_data is None or obj.animation_data.action is None:
                raise RigError(f"'{obj.name}' has no action to export: import or generate motion first")
            if path.exists() and not self.overwrite:
                raise MotionError(f"{path} already exists: pick another name or tick Overwrite")
            motion_io.check_output(path, self.overwrite)
            if self.format == "FBX":
                motion_io.write_atomically(path, lambda temporary: self._export_fbx(context, obj, temporary, path),
                                           self.overwrite)
            else:
                # NPZ keeps the file convention; BVH stands where the viewport shows the body.
                motion = read_motion(obj, with_floor_offset=self.format == "BVH")
                if self.format == "NPZ":
                    motion_io.save_npz(motion, path, overwrite=self.overwrite)
                else:
                    motion_io.save_bvh(motion, path, armature_rest_joints(obj), overwrite=self.overwrite)
        except GesturaError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported '{obj.name}' to {path}")
        return {"FINISHED"}

    @staticmethod
    def _export_fbx(context, obj, path: Path, out: Path) -> None:
        """Blender's FBX exporter writes ``path`` (a temporary beside ``out``, the user's file)."""
        bodies = [child for child in obj.children if child.type == "MESH"]
        selected = list(context.selected_objects)
        active = context.view_layer.objects.active
        scene = context.scene
        saved_range = (scene.frame_start, scene.frame_end)
        # Blender's exporter bakes the scene's frame range: give it the action's, so a shorter
        # scene range never cuts the file short (NPZ and BVH hold the whole action too).
        first, last = obj.animation_data.action.frame_range
        try:
            for other in selected:
                other.select_set(False)
            for item in (obj, *bodies):
                item.select_set(True)
            context.view_layer.objects.active = obj
            # Start first: a start past the old end moves the end along, never the other way.
            scene.frame_start = int(math.floor(first + 1e-6))
            scene.frame_end = max(scene.frame_start, int(math.ceil(last - 1e-6)))
            try:
                result = bpy.ops.export_scene.fbx(
                    filepath=str(path),
                    use_selection=True,
                    object_types={"ARMATURE", "MESH"},
                    add_leaf_bones=False,
                    bake_anim=True,
                    bake_anim_use_all_actions=False,
                    bake_anim_use_nla_strips=False,
                    bake_anim_simplify_factor=0.0,  # keep every frame: the motion is dense by nature
                )
            except RuntimeError as error:  # the exporter's own failure, e.g. an OS error mid-write
                raise MotionError(f"could not write {out}: Blender's FBX exporter failed "
                                  f"({_exporter_reason(error)})") from None
        finally:
            scene.frame_start, scene.frame_end = saved_range
            for item in context.selected_objects:
                item.select_set(False)
            for other in selected:
                other.select_set(True)
            context.view_layer.objects.active = active
        if result != {"FINISHED"}:
            raise MotionError(f"Blender's FBX exporter did not finish ({result})")


def _exporter_reason(error: RuntimeError) -> str:
    """The exception line of a Python operator's failure, e.g. "OSError: [Errno 28] No space left
    on device", rather than the "Location: .../bpy/ops.py:109" Blender appends to it."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Location:")]
    reason = lines[-1].removeprefix("Error: ") if lines else "no reason given"
    if "Errno 28" in reason or "Errno 27" in reason:  # ENOSPC, EFBIG
        reason += "; check the free space on the disk"
    return reason


CLASSES = (GESTURA_OT_export_motion,)
