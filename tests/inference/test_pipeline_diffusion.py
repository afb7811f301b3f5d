"""Generation with a "dim-gestor" checkpoint (DiM-Gestor, ``pipeline.DiffusionStream``): the same
request interface as the code generator's, on both engines, with real speech."""
from pathlib import Path

import numpy as np
import pytest
torch = pytest.importorskip("torch")

from gestura.inference import pipeline
from gestura.inference.audio import SAMPLE_RATE, load_audio
from gestura.inference.checkpoint import load_checkpoint, save_checkpoint
from gestura.inference.engines.numpy import NumpyEngine
from gestura.inference.engines.torch import TorchEngine
from gestura.inference.errors import EngineError
from gestura.inference.features import audio_features
from gestura.inference.frozen_arms import ARM_PARTS, FrozenArmWatch
from gestura.inference.pipeline import Cancelled, DiffusionStream, GenerationRequest, generate, open_stream
from gestura.rigs.motion import Motion
from gestura.rigs.rotations import axis_angle_to_matrix
from gestura.rigs.skeleton import PART_JOINTS, PARTS
from frozen_watch import EveryPoseFrozen
from random_checkpoint import speech_stats, tiny_config, write_random_checkpoint

torch.set_num_threads(1)
CONFIG = tiny_config(family="dim-gestor", d_model=32, headdim=16, mamba2_d_state=8, denoiser_layers=2,
                     speech_layers=1, span_codes=12, prefix_codes=4, sampling_steps=4)


@pytest.fixture(scope="module")
def speech(speech_wav):
    return load_audio(speech_wav)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, speech):
    return load_checkpoint(write_random_checkpoint(tmp_path_factory.mktemp("dim") / "dim.safetensors", CONFIG,
                                                   ["calm", "lively"], seed=1, stats=speech_stats(speech)))


def run(checkpoint, audio, engine="numpy", **kwargs):
    return generate(GenerationRequest(audio=audio, **kwargs), checkpoint=checkpoint, engine=engine)


def test_the_checkpoint_family_picks_the_diffusion_stream(checkpoint):
    stream = open_stream(NumpyEngine(), checkpoint, GenerationRequest(audio=None))
    assert isinstance(stream, DiffusionStream)


def test_numpy_and_torch_engines_give_the_same_motion_from_the_same_noise(checkpoint, speech):
    a = run(checkpoint, speech, engine="numpy", seed=3, style="lively", style_strength=1.5)
    b = run(checkpoint, speech, engine="torch", seed=3, style="lively", style_strength=1.5)
    assert a.num_frames == b.num_frames == len(audio_features(speech))
    assert np.abs(a.poses).max() > 0.05
    # float32 rounding, amplified by 4 DDIM steps and guidance, on random weights: the stated
    # tolerance is 5e-3 rad at any frame and 1e-4 rad on average.
    np.testing.assert_allclose(a.poses, b.poses, atol=5e-3)
    assert np.abs(a.poses - b.poses).mean() < 1e-4
    np.testing.assert_allclose(a.trans, b.trans, atol=5e-3)


def test_seeds_give_different_takes_and_temperature_zero_repeats(checkpoint, speech):
    one, two = run(checkpoint, speech, seed=0), run(checkpoint, speech, seed=1)
    assert np.abs(one.poses - two.poses).max() > 0.05
    np.testing.assert_array_equal(one.poses, run(checkpoint, speech, seed=0).poses)
    cold = [run(checkpoint, speech, seed=s, temperature=0.0).poses for s in (0, 5)]
    np.testing.assert_array_equal(cold[0], cold[1])


@pytest.mark.parametrize("chunk", [SAMPLE_RATE // 3, 4 * SAMPLE_RATE])
def test_streaming_in_chunks_equals_whole_clip(checkpoint, speech, chunk):
    whole = run(checkpoint, speech, seed=2)
    engine = NumpyEngine()
    stream = open_stream(engine, checkpoint, GenerationRequest(audio=None, seed=2))
    pieces = [stream.push_audio(speech[i:i + chunk]) for i in range(0, len(speech), chunk)] + [stream.finish()]
    streamed = Motion.join([m for m in pieces if m is not None])
    np.testing.assert_array_equal(streamed.poses, whole.poses)
    np.testing.assert_array_equal(streamed.trans, whole.trans)


def test_a_named_style_and_its_strength_change_the_motion_and_no_style_is_the_voice_alone(checkpoint, speech):
    voice = run(checkpoint, speech, seed=2)
    calm = run(checkpoint, speech, seed=2, style="calm")
    assert np.abs(calm.poses - voice.poses).max() > 0.01
    # Strength 0 is the voice alone.
    np.testing.assert_array_equal(run(checkpoint, speech, seed=2, style="calm", style_strength=0.0).poses, voice.poses)
    assert np.abs(run(checkpoint, speech, seed=2, style="calm", style_strength=2.0).poses - calm.poses).max() > 0.01


def test_switched_off_parts_stay_at_rest_and_a_start_pose_is_kept(checkpoint, speech):
    motion = run(checkpoint, speech, parts=("upper",))
    upper = list(PART_JOINTS["upper"])
    others = [j for j in range(55) if j not in upper]
    assert np.abs(motion.poses[:, upper]).max() > 0
    assert np.all(motion.poses[:, others] == 0) and np.all(motion.trans == 0)
    rng = np.random.default_rng(0)
    pose = Motion(rng.normal(0, 0.3, (1, 55, 3)), np.array([[0.5, 0.9, -1.0]]), rng.normal(0, 1, (1, 100)))
    held = run(checkpoint, speech, parts=("hands", "lower"), start_pose=pose)
    kept = list(PART_JOINTS["upper"])
    assert np.allclose(held.poses[:, kept], pose.poses[0, kept])


def test_progress_and_cancel_work_between_sampling_steps(checkpoint, speech):
    seen = []
    generate(GenerationRequest(audio=speech), checkpoint=checkpoint, engine="numpy",
             progress=lambda f, m: seen.append(f))
    windows = -(-len(audio_features(speech)) // CONFIG.frames_per_code // CONFIG.span_codes)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert len(seen) >= windows * CONFIG.sampling_steps  # a report (and a chance to cancel) per step
    calls = []
    with pytest.raises(Cancelled):
        generate(GenerationRequest(audio=speech), checkpoint=checkpoint, engine="numpy",
                 cancel=lambda: calls.append(1) or len(calls) > 3)
    assert len(calls) == 4


@pytest.mark.parametrize("engine", [NumpyEngine, TorchEngine])
def test_code_generator_calls_on_a_diffusion_checkpoint_fail_clearly(checkpoint, engine):
    e = engine()
    e.prepare(checkpoint)
    with pytest.raises(EngineError, match="needs a 'vq-mamba' checkpoint"):
        e.context(np.zeros((CONFIG.span_codes * 4 + CONFIG.lookahead, CONFIG.d_model), np.float32), (0,))


def test_code_sampling_settings_are_refused_with_a_reason(checkpoint, speech):
    from gestura.inference.pipeline import GenerationError

    with pytest.raises(GenerationError, match="top-k and top-p choose among codes"):
        run(checkpoint, speech, top_k=5)


def test_sampling_steps_are_chosen_per_generation(checkpoint, speech):
    clip = speech[: 5 * SAMPLE_RATE]
    reports = {}
    for steps in (2, 7):
        seen = []
        generate(GenerationRequest(audio=clip, sampling_steps=steps), checkpoint=checkpoint, engine="numpy",
                 progress=lambda f, m: seen.append(f))
        reports[steps] = len(seen)
    windows = -(-len(audio_features(clip)) // CONFIG.frames_per_code // CONFIG.span_codes)
    assert reports[7] - reports[2] == windows * 5  # one report per window and step: 7 steps ran, not 4
    own = run(checkpoint, clip)
    assert np.array_equal(run(checkpoint, clip, sampling_steps=CONFIG.sampling_steps).poses, own.poses)
    assert not np.allclose(run(checkpoint, clip, sampling_steps=2).poses, own.poses)


@pytest.mark.parametrize("steps", [0, -3, 1001, 2.5, True])
def test_bad_sampling_steps_are_refused_in_one_line(checkpoint, speech, steps):
    from gestura.inference.pipeline import GenerationError

    with pytest.raises(GenerationError, match=r"^sampling steps must be a whole number from 1 to 1000, got"):
        run(checkpoint, speech[:SAMPLE_RATE], sampling_steps=steps)


def test_sampling_steps_on_a_code_model_are_refused(speech):
    from gestura.inference.pipeline import GenerationError

    with pytest.raises(GenerationError, match="sampling steps apply to a diffusion \\(dim-gestor\\) model, and this one "
                                              "is vq-mamba: leave them out"):
        run(None, speech[:SAMPLE_RATE], sampling_steps=10)


@pytest.mark.parametrize("parts", [("face", "upper", "hands", "lower"), ("face", "hands", "lower")])
def test_after_a_frozen_arm_the_next_window_carries_no_arm_latents(checkpoint, speech, parts, monkeypatch):
    monkeypatch.setattr(pipeline, "FrozenArmWatch", EveryPoseFrozen)
    monkeypatch.setattr(EveryPoseFrozen, "shown", [])
    engine = NumpyEngine()
    masks = []
    denoise = engine.denoise

    def spy(x, t, cond, style, known, mask):
        masks.append(np.array(mask))
        return denoise(x, t, cond, style, known, mask)

    monkeypatch.setattr(engine, "denoise", spy)
    audio = np.tile(speech, 2)[:8 * SAMPLE_RATE]  # 5 windows of 48 frames
    generate(GenerationRequest(audio=audio, seed=7, parts=parts), checkpoint=checkpoint, engine=engine)
    frames, prefix = CONFIG.span_codes * CONFIG.frames_per_code, checkpoint.config.generation_prefix
    firsts = masks[::CONFIG.sampling_steps]  # each window's first step: what it was given
    assert len(firsts) == 5 and prefix >= 1 and frames < EveryPoseFrozen.WINDOW
    watched = "upper" in parts  # the hands alone never move a frozen arm
    for k, mask in enumerate(firsts[1:], 1):
        # Every pose is frozen: once the watch has seen its window, the next window's arms start afresh.
        let_go = watched and frames * k >= EveryPoseFrozen.WINDOW
        for part in PARTS:
            given = part in parts and not (let_go and part in ARM_PARTS)
            assert (mask[:prefix, PARTS.index(part)] == float(given)).all(), (k, part)


def test_streaming_equals_whole_clip_when_frozen_arms_are_let_go(checkpoint, speech, monkeypatch):
    monkeypatch.setattr(pipeline, "FrozenArmWatch", EveryPoseFrozen)
    audio = np.tile(speech, 2)[:8 * SAMPLE_RATE]
    whole = run(checkpoint, audio, seed=7)
    stream = open_stream(NumpyEngine(), checkpoint, GenerationRequest(audio=None, seed=7))
    pieces = [stream.push_audio(audio[i:i + 5000]) for i in range(0, len(audio), 5000)] + [stream.finish()]
    streamed = Motion.join([p for p in pieces if p is not None])
    np.testing.assert_array_equal(streamed.poses, whole.poses)
    np.testing.assert_array_equal(streamed.trans, whole.trans)
    # Not vacuous: the motion differs from the one the real watch lets be.
    monkeypatch.setattr(pipeline, "FrozenArmWatch", FrozenArmWatch)
    assert not np.array_equal(run(checkpoint, audio, seed=7).poses, whole.poses)


# --- a model that reads a stroke plan (``config.stroke_planner``, ``gestura train --planner-from``) ---
PLANNED = CONFIG.with_(stroke_planner=True, apex_rates=(0.5, 1.5))


@pytest.fixture(scope="module")
def planned(tmp_path_factory, speech):
    return load_checkpoint(write_random_checkpoint(tmp_path_factory.mktemp("planned") / "dim.safetensors", PLANNED,
                                                   ["calm", "lively"], seed=1, stats=speech_stats(speech)))


def spied_plans(engine, monkeypatch) -> list:
    """The plans the engine's ``condition`` makes, one per window, as the pipeline gets them (not
    plan guidance's given empty plans)."""
    plans, condition = [], engine.condition

    def spy(*args, **kwargs):
        out = condition(*args, **kwargs)
        if kwargs.get("plan") is None:
            plans.append(out[2])
        return out

    monkeypatch.setattr(engine, "condition", spy)
    return plans


def test_a_planned_model_generates_alike_on_both_engines_and_streamed(planned, speech):
    a = run(planned, speech, engine="numpy", seed=3, style="lively", style_strength=1.5)
    b = run(planned, speech, engine="torch", seed=3, style="lively", style_strength=1.5)
    # At the default plan strength (3) guidance amplifies float32 rounding further, and a joint
    # turned by about pi may come out as its axis's opposite: compared as rotation matrices.
    gap = np.abs(axis_angle_to_matrix(a.poses.reshape(-1, 3)) - axis_angle_to_matrix(b.poses.reshape(-1, 3)))
    assert gap.max() < 3e-2 and gap.mean() < 2e-4  # measured here: 9.8e-3 and 6.0e-5
    stream = open_stream(NumpyEngine(), planned, GenerationRequest(audio=None, seed=3, style="lively",
                                                                   style_strength=1.5))
    chunk = SAMPLE_RATE // 3  # blocks of the planner's encoder and windows fall across chunks
    pieces = [stream.push_audio(speech[i:i + chunk]) for i in range(0, len(speech), chunk)] + [stream.finish()]
    np.testing.assert_array_equal(Motion.join([m for m in pieces if m is not None]).poses, a.poses)


def test_each_window_reads_the_plan_its_planner_makes(planned, speech, monkeypatch):
    from gestura.inference.stroke_plan import plan_apexes

    engine = NumpyEngine()
    plans = spied_plans(engine, monkeypatch)
    frames = len(audio_features(speech))
    planned_motion = generate(GenerationRequest(audio=speech, seed=3, style="lively"), checkpoint=planned,
                              engine=engine)
    r, span, prefix = PLANNED.frames_per_code, PLANNED.span_codes, PLANNED.generation_prefix
    assert len(plans) == -(-frames // (r * span))
    # One value per motion frame of the window: its span, and after the first the carried codes'.
    assert plans[0].shape == (span * r,) and all(p.shape == ((prefix + span) * r,) for p in plans[1:-1])
    assert all(p.dtype == np.float32 and p.max() <= 1.0 for p in plans)
    # Strokes planned over the clip's new frames (the random head plans about 3 a second).
    new = np.concatenate([plans[0]] + [p[prefix * r:] for p in plans[1:]])[:frames]
    assert plan_apexes(new, 0.5).sum() >= 5
    # A planner that plans nothing (its head's bias far below) gives other motion: the denoiser reads the plan.
    silent = dict(planned.tensors)
    silent["generator.planner.apex.bias"] = np.full_like(silent["generator.planner.apex.bias"], -50.0)
    quiet = load_checkpoint(save_checkpoint(Path(planned.path).parent / "silent.safetensors", silent, PLANNED,
                                            styles=["calm", "lively"], stage="full", stats=planned.stats))
    plans.clear()
    unplanned = generate(GenerationRequest(audio=speech, seed=3, style="lively"), checkpoint=quiet, engine=engine)
    assert all(not p.any() for p in plans)
    assert np.abs(unplanned.poses - planned_motion.poses).max() > 0.01


def test_eval_reports_the_plan_a_planned_model_strokes_on(checkpoint, planned, speech, monkeypatch):
    # `gestura eval`'s stroke-plan line and the real-speech bench's plan columns read a model's
    # plan through clip_stroke_plan; for DiM-Gestor they must be the apexes its windows are
    # conditioned on, window by window at the style's stroke rate, to the clip's last frame.
    from gestura.inference.features import energy_db, normalize
    from gestura.inference.torch_model.model import GesturaModel
    from gestura.training.evaluate import clip_stroke_plan

    engine = TorchEngine("cpu")
    plans = spied_plans(engine, monkeypatch)
    generate(GenerationRequest(audio=speech, seed=3, style="lively"), checkpoint=planned, engine=engine)
    r, prefix = PLANNED.frames_per_code, PLANNED.generation_prefix
    new = np.concatenate([plans[0]] + [p[prefix * r:] for p in plans[1:]])
    raw = audio_features(speech)
    features = normalize(raw, planned.stats["audio_mean"], planned.stats["audio_std"])
    model = GesturaModel.from_checkpoint(planned).eval()
    probability, apexes = clip_stroke_plan(model, features, 1, energy_db(raw))
    assert len(probability) == len(features) and len(apexes) >= 5
    # A bump's peak, exactly 1, marks each apex the windows were conditioned on.
    np.testing.assert_array_equal(apexes, np.flatnonzero(new[:len(features)] == 1.0))
    assert planned.config.plans_strokes and not checkpoint.config.plans_strokes


def test_plan_strength_moves_the_estimate_away_from_an_empty_plan_at_low_noise_only(checkpoint, planned, speech,
                                                                                    monkeypatch):
    from gestura.inference.diffusion import PLAN_GUIDANCE_TIME, sampling_times

    engine = NumpyEngine()
    calls, denoise, condition = [], engine.denoise, engine.condition

    def spy_denoise(x, t, cond, style, known, mask):
        calls.append((t, len(x)))
        return denoise(x, t, cond, style, known, mask)

    def spy_condition(features, styles, speech=None, threshold=None, plan=None):
        if plan is not None:
            calls.append(("empty plan", float(np.abs(plan).max()), styles))
        return condition(features, styles, speech, threshold, plan)

    monkeypatch.setattr(engine, "denoise", spy_denoise)
    monkeypatch.setattr(engine, "condition", spy_condition)
    plans = spied_plans(engine, monkeypatch)
    settings = dict(audio=speech, seed=3, style="lively", style_strength=1.5)
    as_learnt = generate(GenerationRequest(**settings, plan_strength=1.0), checkpoint=planned, engine=engine)
    assert all(len(c) == 2 for c in calls) and len(calls) == len(plans) * PLANNED.sampling_steps
    calls.clear()
    plans.clear()
    guided = generate(GenerationRequest(**settings, plan_strength=3.0), checkpoint=planned, engine=engine)
    assert np.abs(guided.poses - as_learnt.poses).max() > 0.01
    # Per window with strokes planned: the styled row's condition with an all-zero plan, then
    # one more single-row denoiser call at each step at noise levels up to PLAN_GUIDANCE_TIME.
    low = int(np.sum(sampling_times(PLANNED.sampling_steps)[:-1] <= PLAN_GUIDANCE_TIME))
    assert 0 < low < PLANNED.sampling_steps
    planned_windows = sum(bool(p.any()) for p in plans)
    assert planned_windows >= 1
    assert [c for c in calls if c[0] == "empty plan"] == [("empty plan", 0.0, (1,))] * planned_windows
    extra = [c for c in calls if c[0] != "empty plan" and c[1] == 1]
    assert len(extra) == planned_windows * low and all(t <= PLAN_GUIDANCE_TIME for t, _ in extra)
    # One step from pure noise never reaches low noise: plan strength changes nothing there, and
    # nothing on a model without a planner.
    one = dict(settings, sampling_steps=1)
    np.testing.assert_array_equal(run(planned, **one, plan_strength=3.0).poses,
                                  run(planned, **one, plan_strength=1.0).poses)
    np.testing.assert_array_equal(run(checkpoint, speech, seed=3, style="lively", plan_strength=3.0).poses,
                                  run(checkpoint, speech, seed=3, style="lively", plan_strength=1.0).poses)


@pytest.mark.parametrize("engine", [NumpyEngine, TorchEngine])
def test_planner_calls_that_do_not_fit_the_model_fail_clearly(checkpoint, planned, engine):
    window = np.zeros((CONFIG.span_codes * 4 + CONFIG.lookahead, CONFIG.input_width), np.float32)
    e = engine()
    e.prepare(checkpoint)
    with pytest.raises(EngineError, match="speech\\(\\) needs a 'vq-mamba' checkpoint or one with a stroke planner"):
        e.speech(e.start(PARTS), window)
    with pytest.raises(EngineError, match="has no stroke planner: pass None"):
        e.condition(window, (None,), np.zeros((len(window), CONFIG.d_model), np.float32))
    with pytest.raises(EngineError, match="on a model with a stroke planner only"):
        e.condition(window, (None,), plan=np.zeros(CONFIG.span_codes * 4, np.float32))
    e.prepare(planned)
    with pytest.raises(EngineError, match="needs the window's planner states"):
        e.condition(window, (None,))
    states = np.zeros((len(window), CONFIG.d_model), np.float32)
    with pytest.raises(EngineError, match="reads a given plan \\(48,\\) of the window's frames"):
        e.condition(window, (None,), states, plan=np.zeros(47, np.float32))
    given = np.zeros(CONFIG.span_codes * 4, np.float32)
    given[[5, 20]] = 1.0
    cond, _, plan = e.condition(window, (None,), states, plan=given)
    np.testing.assert_array_equal(plan, given)
    assert np.abs(cond - e.condition(window, (None,), states, plan=np.zeros_like(given))[0]).max() > 0


def test_decoders_that_read_the_plan_decode_each_window_with_its_plan(tmp_path, speech, monkeypatch):
    config = PLANNED.with_(plan_decoders=True)
    checkpoint = load_checkpoint(write_random_checkpoint(tmp_path / "dec.safetensors", config, ["calm", "lively"],
                                                         seed=1, stats=speech_stats(speech)))
    engine = NumpyEngine()
    plans = spied_plans(engine, monkeypatch)
    decoded, decode = [], engine.decode_latents

    def spy(state, latents, plan=None):
        decoded.append(plan)
        return decode(state, latents, plan)

    monkeypatch.setattr(engine, "decode_latents", spy)
    generate(GenerationRequest(audio=speech, seed=3), checkpoint=checkpoint, engine=engine)
    r, prefix = config.frames_per_code, config.generation_prefix
    # Each window decodes its new codes' frames with their stretch of the window's plan.
    np.testing.assert_array_equal(decoded[0], plans[0])
    for plan, window in zip(decoded[1:len(plans)], plans[1:]):
        np.testing.assert_array_equal(plan, window[prefix * r:])
    assert any(p.any() for p in decoded[:len(plans)])


def test_codes_in_a_pause_start_from_no_noise(checkpoint, speech, monkeypatch):
    engine = NumpyEngine()
    starts, denoise = [], engine.denoise

    def spy(x, t, cond, style, known, mask):
        if t == 1.0:  # a window's first step: its noise, where nothing is given
            starts.append((np.array(x[0]), np.array(mask)))
        return denoise(x, t, cond, style, known, mask)

    monkeypatch.setattr(engine, "denoise", spy)
    clip = speech[:3 * SAMPLE_RATE]
    audio = np.concatenate([clip, np.zeros(5 * SAMPLE_RATE, np.float32), clip])
    generate(GenerationRequest(audio=audio, seed=4), checkpoint=checkpoint, engine=engine)
    silent = speaking = 0
    for x, mask in starts:
        rows = np.abs(x[mask.sum(-1) == 0]).max(-1)  # the codes with nothing given
        silent += int(np.sum(rows == 0))
        speaking += int(np.sum(rows > 0.1))
    # 5 s of digital silence is about 37 codes, less the pause margins at either end.
    assert silent >= 25 and speaking >= 30
