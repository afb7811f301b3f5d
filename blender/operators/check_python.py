"""Preferences button: tell the user what the configured external Python can do."""
import bpy

from ...inference.probe import ProbeError, probe_interpreter
from .. import preferences


class GESTURA_OT_check_external_python(bpy.types.Operator):
    """Check whether the external Python has PyTorch, CUDA and mamba-ssm"""

    bl_idname = "gestura.check_external_python"
    bl_label = "Check"
    bl_options = {"INTERNAL"}

    def execute(self, context):
        path = bpy.path.abspath(preferences.get(context).external_python)
        try:
            report = probe_interpreter(path)
        except ProbeError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, report.summary())
        return {"FINISHED"}


CLASSES = (GESTURA_OT_check_external_python,)
