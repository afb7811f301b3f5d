"""The "Gestura" tab: speech, style and generation settings."""
import bpy


class GESTURA_PT_generate(bpy.types.Panel):
    bl_idname = "GESTURA_PT_generate"
    bl_label = "Generate from Audio"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Gestura"

    def draw(self, context):
        settings = context.scene.gestura
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(settings, "audio_source", expand=True)
        if settings.audio_source == "FILE":
            layout.prop(settings, "audio_path")
        elif context.scene.sequence_editor:
            editor = context.scene.sequence_editor
            # Blender 5.0 renamed sequences_all to strips_all.
            collection = "strips_all" if hasattr(editor, "strips_all") else "sequences_all"
            layout.prop_search(settings, "sound_strip", editor, collection)
        else:
            layout.label(text="The scene has no sound strips")
        layout.prop(settings, "seed")
        layout.prop(settings, "temperature")
        layout.prop(settings, "start_frame")
        column = layout.column(heading="Parts", align=True)
        for name in ("use_face", "use_upper", "use_hands", "use_lower"):
            column.prop(settings, name)


CLASSES = (GESTURA_PT_generate,)
