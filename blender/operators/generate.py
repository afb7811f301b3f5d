"""Generate from audio: speech in, a new action on an SMPL-X armature out.

Three steps, each usable on its own (the tests drive them directly, since ``modal()`` never
runs in background mode):
- ``plan_generation`` (main thread) reads the scene, the operator's arguments and the
  preferences into a ``Plan`` of plain values, loading the checkpoint; every user error surfaces
  here, before anything runs;
- ``run_generation`` (any thread) runs the model: no Blender data is touched;
- ``apply_generation`` (main thread) writes the result, all-or-nothing.
In the UI the operator runs the middle step on a ``GenerationJob`` thread and stays modal (progress
bar, Esc cancels); in background mode, or when called from a script, it runs all three in a row.
"""
from __future__ import annotations

import os
import random
import time
import traceback
from dataclasses import dataclass

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ...errors import GesturaError
from ...inference.batch import JobError, action_name
from ...inference.notices import collect
from ...inference.sampling import DEFAULT_PLAN_STRENGTH, DEFAULT_STYLE_STRENGTH, DEFAULT_TEMPERATURE
from ...rigs.skeleton import ordered_parts
from .. import checkpoint_cache, generate_scene, preferences
from ..generation_job import GenerationJob
from ..properties import ENGINE_OVERRIDE_ITEMS, enabled_parts

PART_ITEMS = (
    ("face", "Face", "Jaw and face expression"),
    ("upper", "Upper Body", "Spine, head and arms"),
    ("hands", "Hands", "Fingers"),
    ("lower", "Lower Body", "Legs, pelvis and root motion"),
)

# Operator arguments that, when given, win over the scene's panel settings.
_OVERRIDABLE = ("audio_path", "sound_strip", "style", "seed", "temperature", "style_strength", "plan_strength",
                "sampling_steps", "parts", "start_frame", "engine", "checkpoint", "new_armature")

# The job running in the background, if any: one generation at a time.
_active_job: GenerationJob | None = None


@dataclass
class Plan:
    """What a generation will do, decided on the main thread from the scene, the preferences and
    the operator's arguments. ``request`` holds the generation settings (audio path, style, seed,
    temperature, style strength, parts, device) exactly as the pipeline takes them; the rest is
    where the result goes in the scene."""

    scene_name: str
    request: object  # inference.pipeline.GenerationRequest; request.audio is the audio file's path
    audio_label: str
    start_frame: int
    engine: str
    external_python: str
    checkpoint: object
    target_name: str | None
    action_name: str
    strip_name: str | None = None  # the speech came from this sound strip (it is already in place)
    temporary_audio: bool = False  # audio_path is a copy of packed sound, removed after generating


def _user_message(error: BaseException) -> str:
    """One sentence for Blender's report line."""
    text = " ".join(str(error).split())
    if isinstance(error, GesturaError) and text:
        return text
    # A bug rather than a user error: one line here, the traceback in the system console.
    return f"Generation failed with an internal error ({type(error).__name__}: {text}); see the system console"


# ---------------------------------------------------------------- step 1: read settings

def plan_generation(context, overrides: dict | None = None) -> Plan:
    """Everything a generation needs, as plain values; raises a user error naming the fix."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(_OVERRIDABLE)
    if unknown:
        raise JobError(f"unknown generation setting(s) {sorted(unknown)}")
    scene = context.scene
    settings = scene.gestura
    prefs = preferences.get(context)

    def pick(name, scene_value):
        return overrides[name] if name in overrides else scene_value

    # Audio: an explicit file or strip argument wins, then the panel's choice.
    start_frame = int(pick("start_frame", settings.start_frame))
    strip = None
    if overrides.get("audio_path"):
        audio_path = _audio_file(overrides["audio_path"])
    elif overrides.get("sound_strip") or ("audio_path" not in overrides and settings.audio_source == "STRIP"):
        strip = generate_scene.find_sound_strip(scene, overrides.get("sound_strip") or settings.sound_strip)
        # The motion must line up with what the strip plays, from its visible left edge.
        start_frame = generate_scene.strip_start_frame(strip)
        if "start_frame" in overrides and int(overrides["start_frame"]) != start_frame:
            raise JobError(f"Start frame {overrides['start_frame']} does not line up with sound strip '{strip.name}', "
                           f"which plays from frame {start_frame}: leave Start Frame unset, or move the strip")
    else:
        if not settings.audio_path:
            raise JobError("No audio is chosen: pick a speech recording in the Gestura panel, or a sound strip")
        audio_path = _audio_file(settings.audio_path)
    if start_frame < 0:
        raise JobError(f"Start frame {start_frame} is negative, but a Blender scene cannot start before frame 0: "
                       "use 0 or later")

    parts = overrides.get("parts", enabled_parts(settings))
    parts = ordered_parts(parts)  # the operator's enum only holds known parts
    if not parts:
        raise JobError("All body parts are switched off: switch on at least one of face, upper body, hands, lower body")

    path = checkpoint_path(context, overrides.get("checkpoint"))
    checkpoint = checkpoint_cache.load(path)

    style = overrides.get("style") or settings.style or None
    if style is not None and style not in checkpoint.styles:
        choices = ", ".join(checkpoint.styles) or "none"
        raise JobError(f"Style '{style}' is not in the model '{os.path.basename(path)}': choose one of {choices}")

    engine = pick("engine", settings.engine)
    if engine == "PREFERENCES":
        engine = prefs.engine if prefs else "AUTO"
    device = prefs.device if prefs else "AUTO"
    external_python = bpy.path.abspath(prefs.external_python) if prefs and prefs.external_python else ""

    seed = int(pick("seed", settings.seed))
    temperature = float(pick("temperature", settings.temperature))
    if temperature < 0:
        raise JobError(f"Temperature {temperature} is negative: use 0 (most likely motion) or more")
    style_strength = float(pick("style_strength", settings.style_strength))
    plan_strength = float(pick("plan_strength", settings.plan_strength))
    # 0 (the panel's default) is the model's own; the panel shows the setting for diffusion models only.
    sampling_steps = int(pick("sampling_steps", settings.sampling_steps)) or None
    if sampling_steps is not None and checkpoint.config.family != "dim-gestor":
        if "sampling_steps" in overrides:
            raise JobError(f"Sampling steps apply to a diffusion (dim-gestor) model, and "
                           f"'{os.path.basename(path)}' is {checkpoint.config.family}: leave them out")
        sampling_steps = None  # a panel value left from a diffusion model, hidden for this one

    from ..rigs import missing_smplx_bones

    target = generate_scene.resolve_target(context, missing_smplx_bones, bool(pick("new_armature", settings.new_armature)))
    generate_scene.check_target_animation(target, parts)
    temporary = False
    if strip is not None:
        # Last, so that a plan failing on another setting leaves no copy of packed sound behind.
        audio_path, temporary = generate_scene.strip_audio_file(strip, scene)
        named_after = bpy.path.basename(strip.sound.filepath) or strip.name
    else:
        named_after = audio_path
    from ...inference.pipeline import GenerationRequest

    request = GenerationRequest(audio=audio_path, style=style, seed=seed, temperature=temperature,
                                style_strength=style_strength, plan_strength=plan_strength, parts=parts,
                                device=device.lower(),
                                sampling_steps=sampling_steps)
    return Plan(
        scene_name=scene.name, request=request, audio_label=os.path.basename(named_after), start_frame=start_frame,
        engine=engine.lower(), external_python=external_python, checkpoint=checkpoint,
        target_name=target.name if target is not None else None, action_name=action_name(named_after, seed),
        strip_name=strip.name if strip is not None else None, temporary_audio=temporary,
    )


def checkpoint_path(context, override=None):
    """The checkpoint a generation uses: the argument, else the preferences', else the bundled one."""
    prefs = preferences.get(context)
    configured = override or (prefs.checkpoint if prefs else "")
    return checkpoint_cache.resolve_path(bpy.path.abspath(os.fspath(configured)) if configured else "")


def _audio_file(path: str) -> str:
    from ...inference.audio import check_audio_path

    # bpy.path.abspath resolves only "//" (the .blend's folder); a plain relative path is taken
    # from the working folder now, and stored absolute so the .blend finds it from anywhere.
    resolved = os.path.abspath(bpy.path.abspath(os.fspath(path)))
    check_audio_path(resolved)  # a folder, a missing or an empty file: one sentence each
    return resolved


# ---------------------------------------------------------------- step 2: run the model (any thread)

def run_generation(plan: Plan, progress=None, cancel=None):
    """The generated ``Motion`` (30 fps); raises ``pipeline.Cancelled`` when ``cancel()`` turns true."""
    from ...inference import pipeline

    try:
        return pipeline.generate(plan.request, checkpoint=plan.checkpoint, engine=_engine_argument(plan),
                                 progress=progress, cancel=cancel)
    finally:
        if plan.temporary_audio:
            try:
                os.remove(plan.request.audio)
            except OSError:
                pass


def _engine_argument(plan: Plan):
    from ...inference.engines import resolve_engine

    # "auto" inside Blender prefers a healthy external Python, so it needs the path as well.
    return resolve_engine(plan.engine, plan.request.device, python=plan.external_python or None)


def start_job(plan: Plan) -> GenerationJob:
    global _active_job
    job = GenerationJob(lambda progress, cancel: run_generation(plan, progress, cancel))
    _active_job = job.start()
    return job


def job_running() -> bool:
    return _active_job is not None and _active_job.running


# ---------------------------------------------------------------- step 3: write the result (main thread)

def apply_generation(context, plan: Plan, motion) -> generate_scene.Applied:
    if context.scene.name != plan.scene_name:
        raise generate_scene.SceneError(
            f"The scene changed from '{plan.scene_name}' to '{context.scene.name}' while generating: generate again")
    return generate_scene.apply_motion(
        context, motion, target_name=plan.target_name, audio_path=plan.request.audio,
        start_frame=plan.start_frame, action_name=plan.action_name, parts=plan.request.parts,
        add_strip=plan.strip_name is None,
    )


def _done_message(plan: Plan, applied, motion, seconds: float) -> str:
    return (f"Generated {motion.duration:.1f} s of motion for '{plan.audio_label}' on '{applied.armature.name}' "
            f"as action '{applied.action.name}' (frames {applied.frame_start}-{applied.frame_end}) in {seconds:.1f} s")


# ---------------------------------------------------------------- the operators

class GESTURA_OT_generate(bpy.types.Operator):
    """Generate gesture animation on an SMPL-X armature from a speech recording"""

    bl_idname = "gestura.generate"
    bl_label = "Generate from Audio"
    bl_options = {"REGISTER", "UNDO"}

    # SKIP_SAVE everywhere: an argument left out must fall back to the panel, not to the last call.
    audio_path: StringProperty(name="Audio File", subtype="FILE_PATH", options={"SKIP_SAVE"},
                               description="Speech recording; empty uses the panel's audio")
    sound_strip: StringProperty(name="Sound Strip", options={"SKIP_SAVE"},
                                description="Sound strip to read speech from; empty uses the panel's audio")
    style: StringProperty(name="Style", options={"SKIP_SAVE"}, description="Style name; empty uses the panel's")
    seed: IntProperty(name="Seed", min=0, options={"SKIP_SAVE"})
    temperature: FloatProperty(name="Temperature", min=0.0, soft_max=1.5, default=DEFAULT_TEMPERATURE, options={"SKIP_SAVE"})
    style_strength: FloatProperty(name="Style Strength", min=0.0, soft_max=3.0, default=DEFAULT_STYLE_STRENGTH,
                                  options={"SKIP_SAVE"})
    plan_strength: FloatProperty(name="Plan Strength", min=0.0, soft_max=5.0, default=DEFAULT_PLAN_STRENGTH,
                                 options={"SKIP_SAVE"})
    sampling_steps: IntProperty(name="Sampling Steps", min=0, max=1000, soft_max=50, options={"SKIP_SAVE"},
                                description="Denoising steps of a diffusion model; 0 uses the model's own")
    parts: EnumProperty(name="Parts", items=PART_ITEMS, options={"ENUM_FLAG", "SKIP_SAVE"},
                        default={"face", "upper", "hands", "lower"})
    start_frame: IntProperty(name="Start Frame", default=1, options={"SKIP_SAVE"})
    engine: EnumProperty(name="Engine", items=ENGINE_OVERRIDE_ITEMS, default="PREFERENCES", options={"SKIP_SAVE"})
    checkpoint: StringProperty(name="Checkpoint", subtype="FILE_PATH", options={"SKIP_SAVE"},
                               description="Model checkpoint; empty uses the preferences' (or the bundled one)")
    new_armature: BoolProperty(name="New Armature", options={"SKIP_SAVE"},
                               description="Build a new SMPL-X armature even when one is selected")

    @classmethod
    def poll(cls, context):
        if job_running():
            cls.poll_message_set("A generation is already running: wait for it or press Esc")
            return False
        return context.scene is not None

    # -- shared

    def _overrides(self) -> dict:
        values = {}
        for name in _OVERRIDABLE:
            if self.properties.is_property_set(name):
                value = getattr(self, name)
                values[name] = tuple(value) if name == "parts" else value
        return values

    def _remember(self, plan: Plan) -> None:
        # The redo panel then shows what was actually used, and "Adjust Last Operation" repeats it.
        if plan.strip_name is not None:
            self.sound_strip = plan.strip_name
        else:
            self.audio_path = plan.request.audio
        request = plan.request
        self.seed = request.seed
        self.temperature = request.temperature
        self.style_strength = request.style_strength
        self.plan_strength = request.plan_strength
        self.sampling_steps = request.sampling_steps or 0
        self.parts = set(request.parts)
        self.start_frame = plan.start_frame
        if request.style:
            self.style = request.style

    def _fail(self, error: BaseException) -> set:
        message = _user_message(error)
        if message.startswith("Generation failed with an internal error"):
            traceback.print_exception(type(error), error, error.__traceback__)
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

    def _report_done(self, plan, applied, motion, seconds, notices=()) -> None:
        self.report({"INFO"}, _done_message(plan, applied, motion, seconds))
        # After the summary: the status bar shows the latest report, so a warning stays in sight.
        # Notices come from reading the audio and running the engine (silence, a down-mix, a fallback).
        for warning in notices:
            self.report({"WARNING"}, warning)

    # -- synchronous: background mode, scripts, redo

    def execute(self, context):
        started = time.perf_counter()
        try:
            with collect() as notices:
                plan = plan_generation(context, self._overrides())
                self._remember(plan)
                motion = run_generation(plan)
                applied = apply_generation(context, plan, motion)
        except KeyboardInterrupt:
            # Ctrl+C in a terminal (a script, blender_batch.py): nothing was applied (apply_motion
            # rolls back); Blender would print a traceback for it and lose the interrupt anyway.
            return {"CANCELLED"}
        except Exception as error:  # noqa: BLE001 - every failure becomes one report line
            return self._fail(error)
        self._report_done(plan, applied, motion, time.perf_counter() - started, notices)
        return {"FINISHED"}

    # -- modal: the UI

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            with collect() as self._notices:
                self._plan = plan_generation(context, self._overrides())
        except Exception as error:  # noqa: BLE001
            return self._fail(error)
        self._remember(self._plan)
        self._job = start_job(self._plan)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)
        _show_status(context, 0.0, "Starting")
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self._job.cancel()
            self._end(context)
            _watch_cancelled(self._job)
            self.report({"INFO"}, "Generation cancelled: the scene is unchanged")
            return {"CANCELLED"}
        # Events carry no timer handle: any TIMER event is a moment to look at the job.
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = self._job.state()
        if not state.finished:
            context.window_manager.progress_update(int(state.fraction * 100))
            _show_status(context, state.fraction, state.message)
            return {"PASS_THROUGH"}
        self._end(context)
        try:
            motion = self._job.outcome()
            with collect() as applying:
                applied = apply_generation(context, self._plan, motion)
        except Exception as error:  # noqa: BLE001
            return self._fail(error)
        # The job's notices were collected on its thread: reported here, on the main thread.
        self._report_done(self._plan, applied, motion, state.elapsed,
                          [*self._notices, *self._job.notices, *applying])
        # FINISHED from a modal operator with the UNDO flag pushes the single undo step.
        return {"FINISHED"}

    def cancel(self, context):
        # Blender ends the operator itself (a file is loaded, the window closes): stop the thread.
        if self._job is not None:
            self._job.cancel()
        self._end(context)

    def _end(self, context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        _clear_status(context)

    _plan = None
    _notices = ()
    _job = None
    _timer = None


def _redraw_panels(context) -> None:
    screen = context.screen
    for area in screen.areas if screen is not None else ():
        if area.type == "VIEW_3D":
            area.tag_redraw()


def _show_status(context, fraction: float, message: str) -> None:
    status = context.window_manager.gestura_status
    status.running = True
    status.progress = fraction
    status.message = message
    if context.workspace is not None:
        context.workspace.status_text_set(f"Gestura: {message} ({fraction:.0%}) - Esc to cancel")
    _redraw_panels(context)


def _clear_status(context) -> None:
    status = context.window_manager.gestura_status
    status.running = False
    status.progress = 0.0
    status.message = ""
    if context.workspace is not None:
        context.workspace.status_text_set(None)
    _redraw_panels(context)


def _watch_cancelled(job: GenerationJob) -> None:
    """Redraw the panel once a cancelled job's thread has stopped, re-enabling Generate."""

    def check():
        if job.running:
            return 0.2
        for window in bpy.context.window_manager.windows:
            for area in window.screen.areas:
                if area.type == "VIEW_3D":
                    area.tag_redraw()
        return None

    bpy.app.timers.register(check, first_interval=0.2)


class GESTURA_OT_set_style(bpy.types.Operator):
    """Gesture in this speaker's style"""

    bl_idname = "gestura.set_style"
    bl_label = "Set Style"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    style: StringProperty(name="Style")

    def execute(self, context):
        context.scene.gestura.style = self.style
        return {"FINISHED"}


class GESTURA_OT_new_seed(bpy.types.Operator):
    """Pick a new random seed for the next generation"""

    bl_idname = "gestura.new_seed"
    bl_label = "New Seed"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.scene.gestura
        old = settings.seed
        # Five digits: easy to read back and type in, and enough takes for one clip.
        seed = random.randrange(0, 100_000)
        while seed == old:
            seed = random.randrange(0, 100_000)
        settings.seed = seed
        return {"FINISHED"}


CLASSES = (GESTURA_OT_generate, GESTURA_OT_set_style, GESTURA_OT_new_seed)
