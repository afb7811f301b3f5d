"""Scene-level settings of a generation, shown in the sidebar panel."""
import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty


class GesturaSettings(bpy.types.PropertyGroup):
    audio_source: EnumProperty(
        name="Audio",
        items=(
            ("FILE", "File", "Read speech from an audio file"),
            ("STRIP", "Sound Strip", "Use a sound strip of the scene's sequencer"),
        ),
        default="FILE",
    )
    audio_path: StringProperty(name="Audio File", subtype="FILE_PATH", description="Speech recording (wav, flac, ogg)")
    sound_strip: StringProperty(name="Sound Strip", description="Name of the sound strip to read speech from")
    seed: IntProperty(name="Seed", default=0, min=0, description="Random seed: the same seed gives the same motion")
    temperature: FloatProperty(
        name="Temperature",
        default=0.8,
        min=0.0,
        soft_max=1.5,
        description="Sampling temperature: 0 always picks the most likely motion, higher is more varied",
    )
    use_face: BoolProperty(name="Face", default=True, description="Generate jaw and face expression")
    use_upper: BoolProperty(name="Upper Body", default=True, description="Generate spine, head and arms")
    use_hands: BoolProperty(name="Hands", default=True, description="Generate fingers")
    use_lower: BoolProperty(name="Lower Body", default=True, description="Generate legs, pelvis and root motion")
    start_frame: IntProperty(name="Start Frame", default=1, description="Frame at which the speech starts")


CLASSES = (GesturaSettings,)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.gestura = PointerProperty(type=GesturaSettings)


def unregister():
    del bpy.types.Scene.gestura
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
