"""What "Generate from audio" reads from a scene and writes back into it.

Reads: the speech (a file, or a sound strip of the sequencer) and the target armature.
Writes: a new action on the SMPL-X armature (via the rig glue), the sound strip, the frame range.
Writing is all-or-nothing: when any step fails, everything it added is removed again and the
previous assignments are restored, so a failed generation leaves the scene as it was.
"""
from __future__ import annotations

import os
import tempfile
import wave
from dataclasses import dataclass

import bpy
import numpy as np

from ..errors import GesturaError
from ..inference.batch import bones_for_parts
from ..inference.notices import notify


class SceneError(GesturaError, ValueError):
    """The scene cannot be used as asked; the message names the problem and the fix."""


# ---------------------------------------------------------------- sequencer (4.2 "sequences", 5.0 "strips")

def _top_strips(editor):
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def _all_strips(editor):
    return editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all


def sound_strips(scene) -> list:
    editor = scene.sequence_editor
    if editor is None:
        return []
    return [strip for strip in _all_strips(editor) if strip.type == "SOUND"]


def find_sound_strip(scene, name: str):
    editor = scene.sequence_editor
    strip = _all_strips(editor).get(name) if editor is not None and name else None
    if strip is None:
        if not name:
            raise SceneError("No sound strip is chosen: pick one in the Gestura panel, or switch Audio to File")
        raise SceneError(f"The scene has no strip named '{name}': pick an existing sound strip")
    if strip.type != "SOUND":
        raise SceneError(f"Strip '{name}' is a {strip.type.lower()} strip, not a sound strip: pick a sound strip")
    if strip.sound is None:
        raise SceneError(f"Sound strip '{name}' has no sound loaded: re-add the audio file")
    return strip


def strip_start_frame(strip) -> int:
    """The frame where ``strip`` becomes audible on the timeline (its visible left edge), where the
    motion must start; refuses strips whose timing the motion cannot follow.

    Left trims and offsets are followed (see ``strip_window``); a retimed strip plays its sound
    at another speed and pitch than the recording, which speech features do not survive, and a
    scene cannot start before frame 0, so both are refused.
    """
    if len(getattr(strip, "retiming_keys", ())) or abs(getattr(strip, "pitch", 1.0) - 1.0) > 1e-6:
        raise SceneError(f"Sound strip '{strip.name}' is retimed, so it may play at another speed than its recording: "
                         "reset its retiming (Strip > Retiming > Reset Retiming), then generate again")
    start, end = strip_edges(strip)
    if end <= start:
        raise SceneError(f"Sound strip '{strip.name}' is hidden by the meta strip it is in, which is trimmed past it: "
                         "widen the meta strip or pick another strip")
    if start < 0:
        raise SceneError(f"Sound strip '{strip.name}' starts at frame {start}, but a scene cannot start before "
                         "frame 0: move the strip to frame 0 or later, then generate again")
    return start


def strip_edges(strip) -> tuple[int, int]:
    """``(first, end)`` frames where ``strip`` is heard: its own visible edges, cut down to those of
    the meta strips it is in (a meta's trim silences what it hides)."""
    first, end = int(strip.frame_final_start), int(strip.frame_final_end)
    parent = strip.parent_meta() if hasattr(strip, "parent_meta") else None
    while parent is not None:
        first, end = max(first, int(parent.frame_final_start)), min(end, int(parent.frame_final_end))
        parent = parent.parent_meta()
    return first, end


def strip_window(scene, strip) -> tuple[float, float]:
    """``(first, last)``: the times in the strip's sound file (seconds) that Blender plays at the
    strip's visible left and right edges (``strip_edges``).

    What Blender plays at timeline frame ``f`` (checked against a scene mixdown) is the file's time
    ``(f - frame_start + animation_offset_start) / fps - sound_offset``: the left trim
    (``frame_offset_start``) moves the visible edge into the file, ``animation_offset_start`` cuts
    the sound's head off, a positive ``sound_offset`` plays it later (silence first). ``fps`` is
    the scene's rate (``fps / fps_base``); the scene's own start frame plays no part.
    """
    fps = scene_fps(scene)
    shift = float(getattr(strip, "animation_offset_start", 0)) - float(strip.frame_start)
    offset = float(getattr(strip, "sound_offset", 0.0))
    first, end = strip_edges(strip)
    return (first + shift) / fps - offset, (end + shift) / fps - offset


def strip_audio_file(strip, scene) -> tuple[str, bool]:
    """``(file holding what the strip plays, is a temporary file)``: the sound's own file when the
    strip plays all of it from its start, else the played part cut out (``strip_window``), with
    silence in front where the sound starts after the strip's left edge; the caller removes a
    temporary file. Packed sound is copied out first."""
    sound = strip.sound
    if sound.packed_file is not None:
        suffix = os.path.splitext(sound.filepath)[1] or ".wav"
        handle, path = tempfile.mkstemp(prefix="gestura-strip-", suffix=suffix)
        with os.fdopen(handle, "wb") as out:
            out.write(bytes(sound.packed_file.data))
        temporary = True
    else:
        path = bpy.path.abspath(sound.filepath, library=sound.library)
        if not os.path.isfile(path):
            raise SceneError(f"The sound of strip '{strip.name}' is missing on disk ('{path}'): relink or re-add it")
        path, temporary = os.path.normpath(path), False
    try:
        cut = _cut_to_window(strip, path, *strip_window(scene, strip))
    except BaseException:
        if temporary:
            os.remove(path)
        raise
    if cut is None:
        return path, temporary
    if temporary:
        os.remove(path)
    return cut, True


def _cut_to_window(strip, path: str, first: float, last: float) -> str | None:
    """A temporary wav of ``path`` from ``first`` to ``last`` seconds (silence before 0), or None
    when that is the whole file."""
    # Half a sample at 8 kHz: finer than any frame, coarser than float noise.
    tolerance = 1.0 / 16000.0
    try:
        import aud
    except ImportError:
        if abs(first) < tolerance and strip_edges(strip)[1] >= strip.frame_start + strip.frame_duration:
            return None  # plays the file from its start to its end: no need to read it here
        raise SceneError(f"Sound strip '{strip.name}' is trimmed or offset, and this Blender build has no audio "
                         "support to cut its sound: generate from the file instead (Audio: File)") from None
    try:
        sound = aud.Sound(path)
        rate, channels = sound.specs
        length = sound.length / rate
    except aud.error as error:
        raise SceneError(f"Blender could not read the sound of strip '{strip.name}' ({error}): "
                         "convert it to wav, flac, ogg or mp3") from None
    if abs(first) < tolerance and last >= length - tolerance:
        return None
    start, end = max(0.0, first), min(last, length)
    if end - start < tolerance:
        raise SceneError(f"Sound strip '{strip.name}' plays none of its sound between its edges (frames "
                         f"{'-'.join(map(str, strip_edges(strip)))}): undo the trim or offset")
    samples = np.asarray(sound.limit(start, end).data(), dtype=np.float32).reshape(-1, int(channels))
    if first < 0:
        samples = np.concatenate([np.zeros((int(round(-first * rate)), int(channels)), np.float32), samples])
    handle, out = tempfile.mkstemp(prefix="gestura-strip-", suffix=".wav")
    os.close(handle)
    try:
        # The standard library's 16-bit PCM, not aud's writer, which pads the file past its end.
        with wave.open(out, "wb") as file:
            file.setnchannels(int(channels))
            file.setsampwidth(2)
            file.setframerate(int(rate))
            file.writeframes(np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2").tobytes())
    except BaseException:
        os.remove(out)
        raise
    return out


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def find_strip_for(scene, audio_path: str, start_frame: int):
    for strip in sound_strips(scene):
        path = bpy.path.abspath(strip.sound.filepath, library=strip.sound.library) if strip.sound else ""
        if int(round(strip.frame_start)) == int(start_frame) and path and _same_file(path, audio_path):
            return strip
    return None


def sound_supported() -> bool:
    """False in Blender builds without audio (the bpy 4.2 wheel has no audaspace)."""
    return bool(getattr(bpy.app.build_options, "audaspace", True))


def _free_channel(scene, start: int, end: int) -> int:
    editor = scene.sequence_editor
    busy = set()
    if editor is not None:
        for strip in _top_strips(editor):
            if strip.frame_final_start < end and strip.frame_final_end > start:
                busy.add(strip.channel)
    channel = 1
    while channel in busy:
        channel += 1
    return channel


def add_sound_strip(scene, audio_path: str, start_frame: int, length: int):
    editor = scene.sequence_editor_create()
    name = os.path.splitext(os.path.basename(audio_path))[0] or "speech"
    channel = _free_channel(scene, start_frame, start_frame + max(1, length))
    return _top_strips(editor).new_sound(name, audio_path, channel, start_frame)


# ---------------------------------------------------------------- target armature

def resolve_target(context, missing_smplx_bones, force_new: bool = False):
    """The SMPL-X armature to animate: the selected one (or the armature of a selected SMPL-X mesh);
    None when a new one should be built."""
    if force_new:
        return None
    obj = context.active_object
    if obj is None or not obj.select_get():
        return None
    if obj.type != "ARMATURE" and obj.parent is not None and obj.parent.type == "ARMATURE":
        obj = obj.parent
    if obj.type != "ARMATURE":
        return None
    missing = missing_smplx_bones(obj)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise SceneError(
            f"The selected armature '{obj.name}' is not an SMPL-X rig (it has no bone '{missing[0]}'{more}): "
            "select an SMPL-X armature, deselect it to build a new one, or retarget afterwards"
        )
    return obj


def check_target_animation(obj, parts) -> None:
    """Refuse, before the model runs, a target whose animation data cannot take the new action
    (NLA tweak mode, linked, drivers on keyed channels: ``blender.rigs.actions.check_new_action``)."""
    if obj is None:
        return
    from .rigs.actions import check_new_action
    from .rigs.keyframes import keyed_paths

    parts = tuple(parts)
    check_new_action(obj, keyed_paths(bones_for_parts(parts), "face" in parts))


# ---------------------------------------------------------------- applying a generated motion

def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


_ID_COLLECTIONS = ("objects", "actions", "armatures", "meshes", "materials", "sounds", "collections")


def _id_snapshot() -> dict:
    return {name: {id_.as_pointer() for id_ in getattr(bpy.data, name)} for name in _ID_COLLECTIONS}


def _assignments() -> list:
    """Action assignments of every animatable ID the rig glue may touch, to restore on failure."""
    saved = []
    for owner in list(bpy.data.objects) + list(bpy.data.shape_keys):
        anim = owner.animation_data
        if anim is not None:
            saved.append((owner, anim.action, getattr(anim, "action_slot", None)))
        else:
            saved.append((owner, None, None))
    return saved


@dataclass
class Applied:
    armature: object
    action: object
    strip: object | None
    strip_added: bool
    frame_start: int
    frame_end: int


def apply_motion(context, motion, *, target_name: str | None, audio_path: str, start_frame: int,
                 action_name: str, parts, add_strip: bool = True) -> Applied:
    """Write ``motion`` onto the target (or a new SMPL-X armature) as a new action, all-or-nothing.

    ``add_strip``: put ``audio_path`` in the sequencer at ``start_frame`` unless it is there.
    """
    from .rigs import create_smplx_armature, write_motion
    from .rigs.actions import object_fcurves

    scene = context.scene
    before_ids = _id_snapshot()
    before_assign = _assignments()
    before_range = (scene.frame_start, scene.frame_end, scene.frame_current)
    view_layer = context.view_layer
    # The view layer can list None for an object removed since its last update.
    before_selection = ([o for o in view_layer.objects if o is not None and o.select_get()], view_layer.objects.active)
    strip = None
    strip_added = False
    try:
        obj = bpy.data.objects.get(target_name) if target_name else None
        if target_name and obj is None:
            raise SceneError(f"The armature '{target_name}' was deleted while generating: generate again")
        if obj is None:
            obj = create_smplx_armature(context)
        parts = tuple(parts)
        # Feet on the floor by the same rule as Import Motion, so an exported take imported
        # again stands where it stood.
        action = write_motion(
            obj, motion, action_name, start_frame=start_frame,
            bones=list(bones_for_parts(parts)), expressions="face" in parts, on_floor=True,
        )
        first, last = (int(round(v)) for v in action.frame_range)
        frame_end = max(last, start_frame)
        last_frame = scene.bl_rna.properties["frame_end"].hard_max
        # frame_range stops at Blender's last frame; the keys themselves do not.
        keyed_end = max((int(round(c.keyframe_points[-1].co[0])) for c in object_fcurves(obj, action)
                         if len(c.keyframe_points)), default=frame_end)
        if keyed_end > last_frame:
            # The scene's range could not cover the motion: refused (and rolled back) rather than clipped.
            raise SceneError(f"The motion would end at frame {keyed_end}, after Blender's last frame {last_frame}: "
                             "use an earlier start frame")
        strip = find_strip_for(scene, audio_path, start_frame) if add_strip else None
        if strip is None and add_strip:
            if sound_supported():
                strip = add_sound_strip(scene, audio_path, start_frame, frame_end - start_frame + 1)
                strip_added = True
            else:
                # A notice: the operator's report, the CLI's warning line, the batch script's file line.
                notify("This Blender build has no audio support, so no sound strip was added", key="no-sound")
        scene.frame_start = start_frame
        scene.frame_end = frame_end
        scene.frame_set(start_frame)
        return Applied(obj, action, strip, strip_added, start_frame, frame_end)
    except BaseException:
        _roll_back(scene, before_ids, before_assign, before_range, strip if strip_added else None)
        _restore_selection(view_layer, *before_selection)
        raise


def _restore_selection(view_layer, selected, active) -> None:
    try:
        for obj in view_layer.objects:
            if obj is not None:
                obj.select_set(False)
        for obj in selected:
            obj.select_set(True)
        view_layer.objects.active = active
    except ReferenceError:
        pass


def _roll_back(scene, before_ids, before_assign, before_range, strip) -> None:
    if strip is not None and scene.sequence_editor is not None:
        try:
            _top_strips(scene.sequence_editor).remove(strip)
        except (ReferenceError, RuntimeError):
            pass
    alive = {name: {id_.as_pointer(): id_ for id_ in getattr(bpy.data, name)} for name in _ID_COLLECTIONS}
    created = {name: [id_ for key, id_ in alive[name].items() if key not in before_ids[name]] for name in _ID_COLLECTIONS}
    for owner, action, slot in before_assign:
        try:
            anim = owner.animation_data
            # Only what changed: an unchanged owner may be read-only (NLA tweak mode, linked).
            if anim is None or (anim.action == action and getattr(anim, "action_slot", None) == slot):
                continue
            anim.action = action
            if slot is not None and hasattr(anim, "action_slot"):
                anim.action_slot = slot
        except (ReferenceError, AttributeError, RuntimeError):
            continue
    # Objects before their data, so armatures and meshes have no users left when removed.
    for name in _ID_COLLECTIONS:
        collection = getattr(bpy.data, name)
        for id_ in created[name]:
            try:
                collection.remove(id_)
            except (ReferenceError, RuntimeError):
                pass
    scene.frame_start, scene.frame_end = before_range[0], before_range[1]
    scene.frame_set(before_range[2])
