"""Scene-level settings of a generation (shown in the sidebar) and the running job's status."""
import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from ..inference.engines.registry import engine_enum_items
from ..inference.sampling import DEFAULT_PLAN_STRENGTH, DEFAULT_STYLE_STRENGTH, DEFAULT_TEMPERATURE

# "From Preferences", then every engine: position 0 stays PREFERENCES (saved files store the position).
ENGINE_OVERRIDE_ITEMS = (
    ("PREFERENCES", "From Preferences", "Use the engine chosen in the add-on preferences"),
    *engine_enum_items(),
)


# No methods or property callbacks on these PropertyGroups (helpers are module functions): Blender
# 4.2 keeps a reference to a PropertyGroup class even after unregister_class, so a function on one
# keeps its module's globals, and through them the ``bpy`` module, alive past Python's shutdown.
# Blender's own exit runs when ``bpy`` is freed; without it the 4.2 wheel segfaults at process exit.
class GesturaSettings(bpy.types.PropertyGroup):
    audio_source: EnumProperty(
        name="Audio",
        items=(
            ("FILE", "File", "Read speech from an audio file"),
            ("STRIP", "Sound Strip", "Use a sound strip of the scene's sequencer"),
        ),
        default="FILE",
    )
    audio_path: StringProperty(name="Audio File", subtype="FILE_PATH", description="Speech recording (wav, flac, ogg, mp3)")
    sound_strip: StringProperty(name="Sound Strip", description="Name of the sound strip to read speech from")
    # A name, not a dynamic enum: the list comes from the checkpoint (menu GESTURA_MT_styles), a
    # stored name survives a change of checkpoint (an enum stores an index), and an items callback
    # would be a function the 4.2 wheel keeps alive past shutdown (see the note on this class).
    style: StringProperty(name="Style", description="Speaker style of the model; empty uses the model's default style "
                                                      "(a diffusion model then takes the style from the voice)")
    seed: IntProperty(name="Seed", default=0, min=0, description="Random seed: the same seed gives the same motion")
    temperature: FloatProperty(
        name="Temperature",
        default=DEFAULT_TEMPERATURE,
        min=0.0,
        soft_max=1.5,
        description="Sampling temperature: 0 always picks the most likely motion, higher is more varied",
    )
    style_strength: FloatProperty(
        name="Style Strength",
        default=DEFAULT_STYLE_STRENGTH,
        min=0.0,
        soft_max=3.0,
        description="How strongly the style shows: 0 is no particular speaker, 1 the style as the model learnt it, "
                    "more exaggerates it. Costs no time, except that other than 1 doubles a diffusion model's",
    )
    plan_strength: FloatProperty(
        name="Plan Strength",
        default=DEFAULT_PLAN_STRENGTH,
        min=0.0,
        soft_max=5.0,
        description="How closely the body strokes on its stroke plan (the stressed syllables the model picks): "
                    "0 ignores it, 1 follows it as the model learnt, more gives crisper strokes on it and fewer "
                    "arms held up. Other than 1 runs one more row where a stroke is planned",
    )
    sampling_steps: IntProperty(
        name="Sampling Steps",
        default=0,
        min=0,
        max=1000,
        soft_max=50,
        description="Denoising steps of a diffusion (dim-gestor) model: more are slower and usually smoother; "
                    "0 uses the model's own",
    )
    use_face: BoolProperty(name="Face", default=True, description="Generate jaw and face expression")
    use_upper: BoolProperty(name="Upper Body", default=True, description="Generate spine, head and arms")
    use_hands: BoolProperty(name="Hands", default=True, description="Generate fingers")
    use_lower: BoolProperty(name="Lower Body", default=True, description="Generate legs, pelvis and root motion")
    start_frame: IntProperty(
        name="Start Frame", default=1, description="Frame at which the speech starts (a sound strip's own start wins)"
    )
    engine: EnumProperty(name="Engine", items=ENGINE_OVERRIDE_ITEMS, default="PREFERENCES")
    new_armature: BoolProperty(
        name="New Armature",
        default=False,
        description="Always build a new SMPL-X armature instead of animating the selected one",
    )


def enabled_parts(settings: GesturaSettings) -> tuple:
    """Names of the body parts switched on in ``settings``, in PARTS order."""
    flags = (("face", settings.use_face), ("upper", settings.use_upper), ("hands", settings.use_hands),
             ("lower", settings.use_lower))
    return tuple(name for name, on in flags if on)


class GesturaStatus(bpy.types.PropertyGroup):
    """Progress of the generation running in the background (window manager data: never undone or saved)."""

    running: BoolProperty(name="Running", default=False)
    progress: FloatProperty(name="Progress", subtype="FACTOR", min=0.0, max=1.0)
    message: StringProperty(name="Status")


CLASSES = (GesturaSettings, GesturaStatus)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.gestura = PointerProperty(type=GesturaSettings)
    bpy.types.WindowManager.gestura_status = PointerProperty(type=GesturaStatus)


def unregister():
    del bpy.types.WindowManager.gestura_status
    del bpy.types.Scene.gestura
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
