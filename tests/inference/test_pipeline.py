"""The generation pipeline on the torch engine: real speech in, Motion out; seeds, temperature,
streaming == whole clip, part toggles, start pose, progress, cancel, errors."""
import warnings

import numpy as np
import pytest
torch = pytest.importorskip("torch")

from gestura.inference import pipeline
from gestura.inference.audio import SAMPLE_RATE, SilentAudioWarning, load_audio
from gestura.inference.checkpoint import load_checkpoint, save_checkpoint
from gestura.inference.engines import EngineError, resolve_engine
from gestura.inference.engines.torch import TorchEngine
from gestura.inference.features import BLOCK as FEATURE_BLOCK, audio_features, energy_db, num_frames
from gestura.inference.frozen_arms import ARM_PARTS, FrozenArmWatch
from gestura.inference.pauses import PAUSE_MARGIN, pause_codes
from gestura.inference.sampling import DEFAULT_STYLE_STRENGTH, PASSES, still_hidden
from gestura.inference.stroke_plan import APEX_FLOOR, spoken_frames
from gestura.inference.pipeline import Cancelled, GenerationError, GenerationRequest, GenerationStream, generate
from gestura.inference.torch_model.model import GesturaModel
from gestura.rigs.motion import Motion
from gestura.rigs.skeleton import PART_JOINTS
from frozen_watch import EveryPoseFrozen
from random_checkpoint import speech_stats, tiny_config

torch.set_num_threads(1)
CONFIG = tiny_config(codebook_size=32, d_model=32)  # the shipped timing: spans of 16 codes of 4 frames, 1 s look-ahead


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, speech_wav):
    """A randomly initialised tiny model, with audio statistics of the test speech so that the
    features are in the range training would give them."""
    torch.manual_seed(0)
    model = GesturaModel(CONFIG)
    with torch.no_grad():  # make the code logits sharp enough that seeds visibly matter
        for head in model.generator.logits.values():
            head.weight.mul_(20.0)
    path = model.save(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", styles=["calm", "lively"],
                      stats=speech_stats(load_audio(speech_wav)))
    return load_checkpoint(path)


@pytest.fixture(scope="module")
def speech(speech_wav):
    return load_audio(speech_wav)


def run(checkpoint, audio, **kwargs):
    return generate(GenerationRequest(audio=audio, **kwargs), checkpoint=checkpoint, engine="torch")


def with_config(checkpoint, path, **changes):
    """``checkpoint``'s weights saved with config fields changed, loaded."""
    return load_checkpoint(save_checkpoint(path, checkpoint.tensors, checkpoint.config.with_(**changes),
                                           stats=checkpoint.stats, styles=checkpoint.styles))


def with_plan_decoders(checkpoint, path, scale: float = 5.0):
    """``checkpoint`` with upper-body and hand decoders that read the stroke plan strongly (random
    ``plan_in`` weights of spread ``scale``), loaded."""
    from gestura.inference.architecture import tensor_shapes

    config = checkpoint.config.with_(plan_decoders=True)
    rng = np.random.default_rng(0)
    tensors = dict(checkpoint.tensors)
    for name, shape in tensor_shapes(config).items():
        if ".plan_in." in name:
            tensors[name] = (scale * rng.normal(size=shape)).astype(np.float32)
    return load_checkpoint(save_checkpoint(path, tensors, config, stats=checkpoint.stats, styles=checkpoint.styles))


def test_speech_file_gives_motion_of_matching_length(checkpoint, speech_wav, speech):
    motion = run(checkpoint, str(speech_wav), seed=3)
    assert isinstance(motion, Motion) and motion.fps == 30
    assert motion.num_frames == num_frames(len(speech))
    assert np.isfinite(motion.poses).all() and np.abs(motion.poses).max() > 0
    assert np.abs(np.diff(motion.trans[:, [0, 2]], axis=0)).max() > 0  # the root moves


def test_same_seed_same_motion_different_seed_different(checkpoint, speech):
    a = run(checkpoint, speech, seed=1)
    b = run(checkpoint, speech, seed=1)
    c = run(checkpoint, speech, seed=2)
    assert np.array_equal(a.poses, b.poses) and np.array_equal(a.trans, b.trans)
    assert not np.allclose(a.poses, c.poses)


def test_temperature_zero_is_deterministic_whatever_the_seed(checkpoint, speech):
    a = run(checkpoint, speech, seed=1, temperature=0.0)
    b = run(checkpoint, speech, seed=99, temperature=0.0)
    assert np.array_equal(a.poses, b.poses)


def test_top_k_one_equals_argmax(checkpoint, speech):
    a = run(checkpoint, speech[:16000], seed=5, temperature=1.0, top_k=1)
    b = run(checkpoint, speech[:16000], temperature=0.0)
    assert np.array_equal(a.poses, b.poses)
    c = run(checkpoint, speech[:16000], seed=5, temperature=1.0, top_p=1e-6)
    assert np.array_equal(c.poses, b.poses)


def with_pause(speech, seconds=2.5):
    """``speech`` with ``seconds`` of digital silence after its first 2 s."""
    return np.concatenate([speech[:SAMPLE_RATE * 2], np.zeros(int(SAMPLE_RATE * seconds), np.float32),
                           speech[SAMPLE_RATE * 2:]])


def with_pitch_planner(checkpoint, path):
    """``checkpoint`` with a stroke planner that hears voicing and pitch (``planner_pitch``): the
    generator's head path copied, the pitch columns of its input random and strong, loaded."""
    from gestura.inference.architecture import tensor_shapes

    config = checkpoint.config.with_(stroke_planner=True, planner_pitch=True)
    rng = np.random.default_rng(1)
    tensors = dict(checkpoint.tensors)
    for name, shape in tensor_shapes(config).items():
        if name.startswith("generator.planner."):
            own = checkpoint.tensors[name.replace("planner.", "", 1)]
            tensors[name] = own if own.shape == shape else np.concatenate(
                [own, (3.0 * rng.normal(size=(shape[0], shape[1] - own.shape[1]))).astype(np.float32)], axis=1)
    return load_checkpoint(save_checkpoint(path, tensors, config, stats=checkpoint.stats, styles=checkpoint.styles))


LOOKAHEAD = {"face": 1, "upper": 2, "hands": 4, "lower": 0}  # frames; each part's own


@pytest.mark.parametrize("chunk, carried, rates, plan_decoders, pause, pitch, lookahead",
                         [(160, None, (), False, False, False, False), (4000, None, (), False, False, False, False),
                          (16000 * 3 + 11, None, (), False, False, False, False),
                          (4000, 0, (), False, False, False, False), (4000, None, (0.8, 3.0), False, False, False, False),
                          (4000, None, (), True, False, False, False), (160, None, (), False, True, False, False),
                          (4000, None, (0.8, 3.0), True, True, False, False),
                          (4000, None, (0.8, 3.0), True, True, True, False), (160, None, (), True, False, False, True),
                          (16000 * 3 + 11, 0, (), False, False, False, True)])
def test_streaming_in_chunks_equals_whole_clip(checkpoint, speech, chunk, carried, rates, plan_decoders, pause,
                                               pitch, lookahead, tmp_path):
    if pause:  # codes in a pause are chosen on the loudness around them (the margins cross windows)
        speech = with_pause(speech)
    if carried is not None:  # each span starts afresh
        checkpoint = with_config(checkpoint, tmp_path / "carried.safetensors", carried_codes=carried)
    if plan_decoders:  # the decoders carry their state across spans, each span's plan its own
        checkpoint = with_plan_decoders(checkpoint, tmp_path / "planned.safetensors")
    if pitch:  # the planner's features have two more columns, streamed in the same blocks
        checkpoint = with_pitch_planner(checkpoint, tmp_path / "pitch.safetensors")
    if rates:  # the plan's threshold follows the windows so far
        checkpoint = with_config(checkpoint, tmp_path / "rated.safetensors", apex_rates=rates, apex_threshold=0.9)
    if lookahead:  # each span's last frames come with the next span, the clip's with the decoders' tail
        checkpoint = with_config(checkpoint, tmp_path / "ahead.safetensors", decoder_lookahead=LOOKAHEAD)
    whole = run(checkpoint, speech, seed=7, style="lively")
    stream = GenerationStream(resolve_engine("torch"), checkpoint, GenerationRequest(audio=None, seed=7, style="lively"))
    pieces = []
    for start in range(0, len(speech), chunk):
        out = stream.push_audio(speech[start:start + chunk])
        if out is not None:
            pieces.append(out)
    pieces.append(stream.finish())
    poses = np.concatenate([p.poses for p in pieces])
    trans = np.concatenate([p.trans for p in pieces])
    assert np.array_equal(poses, whole.poses) and np.array_equal(trans, whole.trans)


@pytest.mark.parametrize("samples", [200, 1600, 2200])  # a fraction of a code, one code, a code and a half
def test_a_clip_shorter_than_the_decoders_look_ahead_still_gets_its_frames(checkpoint, speech, samples, tmp_path):
    # Every frame of the first span is held back (hands look a whole code ahead), so the span
    # hands on none: the root must not be continued from an empty piece (a reported IndexError).
    ahead = with_config(checkpoint, tmp_path / "ahead.safetensors", decoder_lookahead=LOOKAHEAD)
    motion = run(ahead, speech[:samples], seed=0)
    assert motion.num_frames == num_frames(samples) and np.isfinite(motion.trans).all()


def test_a_decoder_that_looks_ahead_gives_each_frame_what_its_causal_output_gives_that_many_frames_later(
        checkpoint, speech, tmp_path):
    # The same codes (the decoders' look-ahead changes nothing before them), decoded by the same
    # weights: frame t of a part that looks l frames ahead is the causal output at t + l, and the
    # clip keeps its length (the last frames come from the last code decoded once more). Without
    # the upper body no frozen arm is let go, so both runs draw the same codes.
    parts = ("face", "hands", "lower")
    ahead = with_config(checkpoint, tmp_path / "ahead.safetensors", decoder_lookahead=LOOKAHEAD)
    causal, looking = (run(c, speech, seed=3, parts=parts) for c in (checkpoint, ahead))
    assert looking.num_frames == causal.num_frames == num_frames(len(speech))
    for part in parts:
        joints, l = list(PART_JOINTS[part]), LOOKAHEAD[part]
        shifted = causal.poses[l:, joints]
        assert np.array_equal(looking.poses[:len(shifted), joints], shifted), part
    assert np.array_equal(looking.expressions[:-1], causal.expressions[1:])
    # The root follows the lower body, which looks not ahead (integrated over other pieces: float rounding).
    np.testing.assert_allclose(looking.trans, causal.trans, rtol=0, atol=1e-5)
    assert not np.array_equal(looking.poses[:, list(PART_JOINTS["hands"])], causal.poses[:, list(PART_JOINTS["hands"])])


def test_stream_emits_a_span_once_it_has_heard_the_lookahead_beyond_it(checkpoint, speech):
    # A span of 64 frames is final once the audio reaches 1 s beyond its end, rounded up to whole
    # blocks of the feature stream and of the speech encoder: well before this 5.3 s clip ends.
    span, look = CONFIG.span_frames, CONFIG.lookahead
    assert (span, look) == (64, 30)
    stream = GenerationStream(resolve_engine("torch"), checkpoint, GenerationRequest(audio=None, seed=0))
    frame = SAMPLE_RATE // 30
    for received in range(1, num_frames(len(speech)) + 1):
        out = stream.push_audio(speech[(received - 1) * frame:received * frame])
        if out is not None:
            break
    assert out is not None and out.num_frames == span and stream.frames_done == span
    assert span + look <= received <= span + look + pipeline.CONTEXT_BLOCK + FEATURE_BLOCK, received  # 97 here
    assert received < num_frames(len(speech)) - 30
    whole = run(checkpoint, speech, seed=0)
    assert np.array_equal(out.poses, whole.poses[:span])


class RecordingTorchEngine(TorchEngine):
    """The torch engine, keeping a copy of what each window's context and each span pass was given
    and what each context returned (and, where the threshold is a stroke rate's, the apex
    probabilities it was asked about)."""

    def __init__(self):
        super().__init__("cpu")
        self.windows, self.passes, self.span_styles, self.thresholds, self.probabilities = [], [], [], [], []
        self.contexts = []

    def context(self, speech, styles, plans=None, threshold=None):
        self.windows.append(len(speech))
        self.rows = (styles, plans)
        if callable(threshold):
            rule = threshold

            def threshold(probability):
                self.probabilities.append(probability.copy())
                self.thresholds.append(rule(probability))
                return self.thresholds[-1]
        else:
            self.thresholds.append(threshold)
        context, plan = super().context(speech, styles, plans, threshold)
        self.contexts.append((context, plan))
        return context, plan

    def span(self, context, known, styles, parts, style_strength=1.0):
        self.passes.append(({p: v.copy() for p, v in known.items()}, context.shape[1]))
        self.span_styles.append((styles, style_strength))
        return super().span(context, known, styles, parts, style_strength)


@pytest.mark.parametrize("carried", [None, 2])
def test_each_span_is_filled_in_a_few_passes_most_confident_first_and_hands_its_tail_on(checkpoint, speech, carried,
                                                                                        tmp_path):
    # carried_codes: how many of the previous span's codes the next is given (None: all prefix_codes).
    if carried is not None:
        checkpoint = with_config(checkpoint, tmp_path / "carried.safetensors", carried_codes=carried)
    engine = RecordingTorchEngine()
    motion = generate(GenerationRequest(audio=speech, seed=3, parts=("face", "upper", "hands")), checkpoint=checkpoint,
                      engine=engine)
    span, r = CONFIG.span_codes, CONFIG.frames_per_code
    prefix = CONFIG.prefix_codes if carried is None else carried
    codes = -(-motion.num_frames // r)  # 40 codes for 159 frames
    firsts = list(range(0, codes, span))
    assert len(engine.passes) == PASSES * len(firsts)  # one engine call per pass: no per-frame loop
    assert len(engine.windows) == len(firsts)  # the window's context once, whatever the passes
    final = None
    for n, first in enumerate(firsts):
        calls = engine.passes[n * PASSES:(n + 1) * PASSES]
        start, stop = max(first - prefix, 0), min(first + span, codes)
        assert engine.windows[n] == (stop - start) * r + CONFIG.lookahead  # the window's frames and the look-ahead
        for known, width in calls:
            assert width == stop - start
            assert np.all(known["lower"] == -1)  # a switched-off part is unknown throughout
        for part in ("face", "upper", "hands"):
            opening = calls[0][0][part]
            if final is not None:  # the previous span's last codes, as it fixed them
                tail, fixed = opening[:first - start], final[part][-prefix:]  # before its last pass
                assert np.all(tail >= 0)
                np.testing.assert_array_equal(tail[fixed >= 0], fixed[fixed >= 0])
            assert np.all(opening[first - start:] == -1)
            hidden = stop - first
            for done, (known, _) in enumerate(calls):
                assert np.sum(known[part] < 0) == still_hidden(hidden, done), (first, part, done)
                if done:  # a code once fixed stays as it was
                    before = calls[done - 1][0][part]
                    np.testing.assert_array_equal(known[part][before >= 0], before[before >= 0])
        final = calls[-1][0]


def test_style_strength_zero_is_speaker_neutral_and_higher_strength_changes_the_motion(checkpoint, speech):
    # At strength 0 only the mean-style stream decides, so every style gives the same motion.
    calm = run(checkpoint, speech, style="calm", seed=2, style_strength=0.0)
    lively = run(checkpoint, speech, style="lively", seed=2, style_strength=0.0)
    np.testing.assert_array_equal(calm.poses, lively.poses)
    np.testing.assert_array_equal(calm.expressions, lively.expressions)
    as_learnt = run(checkpoint, speech, style="lively", seed=2, style_strength=1.0)
    assert np.abs(as_learnt.poses - lively.poses).max() > 0.05
    assert np.abs(run(checkpoint, speech, style="calm", seed=2, style_strength=1.0).poses - as_learnt.poses).max() > 0.05
    stronger = run(checkpoint, speech, style="lively", seed=2, style_strength=2.5)
    # Other codes somewhere (float rounding alone moves a pose by less than 1e-5 rad); how far
    # they move the pose depends on the random weights (0.047 rad for the current init order).
    assert np.abs(stronger.poses - as_learnt.poses).max() > 0.01


def test_style_strength_reaches_the_span_and_plan_strength_adds_an_empty_plan_row(checkpoint, speech):
    def heard(**settings):
        engine = RecordingTorchEngine()
        motion = generate(GenerationRequest(audio=speech, style="lively", seed=2, **settings), checkpoint=checkpoint,
                          engine=engine)
        return (engine.rows, {strength for _, strength in engine.span_styles}), motion

    as_asked, as_learnt = heard(style_strength=1.0, plan_strength=1.0)
    assert as_asked == (((1,), None), {1.0})
    assert heard()[0] == (((1, 1), (True, False)), {DEFAULT_STYLE_STRENGTH})  # the defaults guide on both
    # At style strength 0 the stroke planner hears the mean style as well.
    assert heard(style_strength=0.0, plan_strength=2.0)[0] == (((None, None), (True, False)), {0.0})
    assert np.abs(heard(style_strength=2.0, plan_strength=1.0)[1].poses - as_learnt.poses).max() > 0.01
    assert np.abs(heard(style_strength=1.0, plan_strength=2.0)[1].poses - as_learnt.poses).max() > 0.01
    assert np.abs(heard(style_strength=1.0, plan_strength=0.0)[1].poses - as_learnt.poses).max() > 0.01
    with pytest.raises(GenerationError, match="plan strength must be a finite number >= 0"):
        run(checkpoint, speech, plan_strength=-1.0)


def test_a_window_without_planned_apexes_runs_only_its_styled_row(checkpoint, speech, tmp_path):
    # In a pause the head plans no apex, so the empty-plan row would hear what the styled row hears
    # and the guidance would change nothing. This random head's peaks: 0.72-0.74 in the speech's
    # windows, 0.55 in the silent ones.
    checkpoint = with_config(checkpoint, tmp_path / "planned.safetensors", apex_threshold=0.6)
    audio = np.concatenate([speech, np.zeros(6 * SAMPLE_RATE, np.float32)])
    engine = RecordingTorchEngine()
    generate(GenerationRequest(audio=audio, style="lively", seed=2, style_strength=1.0, plan_strength=2.0),
             checkpoint=checkpoint, engine=engine)
    assert engine.rows == ((1, 1), (True, False))
    rows_per_window = [len(styles) for styles, _ in engine.span_styles[::PASSES]]
    assert set(rows_per_window) == {1, 2}
    for (context, plan), rows in zip(engine.contexts, rows_per_window):
        assert (rows == 2) == plan[0].any()
        if rows == 1:
            np.testing.assert_array_equal(context[0], context[1])


def test_a_voice_the_head_is_unsure_of_gets_its_styles_rate_of_strokes(checkpoint, speech, tmp_path):
    # This random head's peaks stay below 0.75: at the calibrated 0.9 it plans nothing. Given the
    # styles' stroke rates, each window's threshold comes down to plan RATE_SHARE of "lively"'s 3
    # per second of speech, never below the floor; a checkpoint without rates keeps its fixed one.
    fixed = with_config(checkpoint, tmp_path / "fixed.safetensors", apex_threshold=0.9)
    rated = with_config(checkpoint, tmp_path / "rated.safetensors", apex_threshold=0.9, apex_rates=(0.5, 3.0))
    request = GenerationRequest(audio=speech, style="lively", seed=3, plan_strength=1.0)
    engine = RecordingTorchEngine()
    still = generate(request, checkpoint=fixed, engine=engine)
    assert set(engine.thresholds) == {None}
    engine = RecordingTorchEngine()
    moved = generate(request, checkpoint=rated, engine=engine)
    assert len(engine.thresholds) == len(engine.windows) > 1
    assert all(APEX_FLOOR <= t < 0.9 for t in engine.thresholds[1:]), engine.thresholds
    assert not np.array_equal(still.poses, moved.poses)
    # The calm style's lower rate asks for fewer strokes: a higher threshold in every window.
    engine_calm = RecordingTorchEngine()
    generate(GenerationRequest(audio=speech, style="calm", seed=3, plan_strength=1.0), checkpoint=rated,
             engine=engine_calm)
    assert all(calm > lively for calm, lively in zip(engine_calm.thresholds, engine.thresholds))


@pytest.mark.parametrize("pitch", [False, True], ids=["speech-features", "pitch-planner"])
def test_eval_plans_every_window_as_generation_does_to_the_clips_end(checkpoint, speech, tmp_path, pitch):
    # `gestura eval`, the real-speech bench and the threshold's calibration read the plan through
    # head_windows; beyond the clip's end both must hear training's padding (normalised zeros), or
    # the last window's plan differs from the one generation strokes on. A planner that hears pitch
    # must get the voicing and pitch training gives it (normalized_features: pitch_features of the
    # wave after the normalised speech features), aligned frame by frame.
    from gestura.inference.features import FEATURE_DIM, energy_db, normalize, pitch_features
    from gestura.training.evaluate import clip_stroke_plan
    from gestura.training.train_generator import head_windows

    if pitch:
        checkpoint = with_pitch_planner(checkpoint, tmp_path / "pitch.safetensors")
    rated = with_config(checkpoint, tmp_path / "rated.safetensors", apex_threshold=0.9, apex_rates=(0.5, 3.0))
    engine = RecordingTorchEngine()
    generate(GenerationRequest(audio=speech, style="lively", seed=3, plan_strength=1.0), checkpoint=rated,
             engine=engine)
    raw = audio_features(speech)
    features = normalize(raw, rated.stats["audio_mean"], rated.stats["audio_std"])
    if pitch:
        features = np.concatenate([features, pitch_features(speech)], axis=1)
        assert features.shape[1] == FEATURE_DIM + 2
    windows = head_windows(engine.model, features, 1, torch.device("cpu"))
    assert len(windows) == len(engine.probabilities) > 1
    for (_, _, _, heard), generated in zip(windows, engine.probabilities):
        np.testing.assert_allclose(heard, generated[0], atol=1e-5)
    probability, plan = clip_stroke_plan(engine.model, features, 1, energy_db(raw))
    assert len(probability) == len(features) and len(plan) > 0
    # And the apexes it reports are those the styled row's plan has over each span's new frames
    # (a bump's peak, exactly 1, marks each apex, two on neighbouring frames too).
    r, prefix = rated.config.frames_per_code, rated.config.generation_prefix
    new = np.concatenate([engine.contexts[0][1][0]] + [p[0, prefix * r:] for _, p in engine.contexts[1:]])
    np.testing.assert_array_equal(plan, np.flatnonzero(new[:len(features)] == 1.0))


def test_plan_reading_decoders_read_the_styled_rows_plan_over_each_spans_new_frames(checkpoint, speech, tmp_path):
    class PlanRecorder(TorchEngine):
        def __init__(self):
            super().__init__("cpu")
            self.windows, self.decoded = [], []

        def context(self, speech, styles, plans=None, threshold=None):
            context, plan = super().context(speech, styles, plans, threshold)
            self.windows.append(plan)
            return context, plan

        def decode(self, state, codes, plan=None):
            self.decoded.append((len(next(iter(codes.values()))), plan))
            return super().decode(state, codes, plan)

    planned = with_plan_decoders(checkpoint, tmp_path / "planned.safetensors")
    engine = PlanRecorder()
    settings = dict(audio=speech, style="lively", seed=4, style_strength=1.0, plan_strength=2.0)
    motion = generate(GenerationRequest(**settings), checkpoint=planned, engine=engine)
    r = CONFIG.frames_per_code
    assert len(engine.decoded) == len(engine.windows) > 1
    for window, (codes, plan) in zip(engine.windows, engine.decoded):
        assert window.shape[0] == 2 and not window[1].any()  # the plan-strength row reads no plan...
        np.testing.assert_array_equal(plan, window[0, window.shape[1] - codes * r:])  # ...the decoders the styled one
    assert any(plan.any() for _, plan in engine.decoded)
    # The plan moves the upper body and hands only; face and lower body decode as without it.
    plain = run(checkpoint, **settings)
    upper = PART_JOINTS["upper"] + PART_JOINTS["hands"]
    assert not np.allclose(motion.poses[:, upper], plain.poses[:, upper], atol=1e-3)
    others = [j for j in range(motion.poses.shape[1]) if j not in upper]
    np.testing.assert_array_equal(motion.poses[:, others], plain.poses[:, others])
    np.testing.assert_array_equal(motion.trans, plain.trans)


def test_switched_off_parts_stay_at_rest(checkpoint, speech):
    motion = run(checkpoint, speech, parts=("upper",))
    upper = list(PART_JOINTS["upper"])
    assert np.abs(motion.poses[:, upper]).max() > 0
    others = [j for j in range(55) if j not in upper]
    assert np.all(motion.poses[:, others] == 0) and np.all(motion.trans == 0) and np.all(motion.expressions == 0)


def test_toggling_a_part_does_not_change_the_others_draws(checkpoint, speech):
    # Each part has its own random stream, but the parts read each other's latents: switching
    # "hands" off changes what the others see, so only the draws (not the motion) are shared.
    a = run(checkpoint, speech, parts=("upper",), seed=4)
    b = run(checkpoint, speech, parts=("upper",), seed=4)
    assert np.array_equal(a.poses, b.poses)


def test_start_pose_is_kept_by_switched_off_parts_and_starts_the_root(checkpoint, speech):
    rng = np.random.default_rng(0)
    pose = Motion(rng.normal(0, 0.3, (1, 55, 3)), np.array([[0.5, 0.9, -1.0]]), rng.normal(0, 1, (1, 100)))
    motion = run(checkpoint, speech, parts=("hands", "lower"), start_pose=pose)
    kept = list(PART_JOINTS["upper"]) + [22, 23, 24]
    assert np.allclose(motion.poses[:, kept], pose.poses[0, kept])
    assert np.allclose(motion.expressions, pose.expressions[0])
    assert np.linalg.norm(motion.trans[0, [0, 2]] - pose.trans[0, [0, 2]]) < 0.2
    # The start pose fixes the first codes: the same pose gives the same opening whatever the seed.
    other = run(checkpoint, speech, parts=("hands", "lower"), start_pose=pose, seed=9)
    n = pipeline.START_POSE_CODES * CONFIG.frames_per_code
    assert np.array_equal(motion.poses[:n], other.poses[:n])


def test_without_a_start_pose_the_motion_starts_in_the_pose_the_training_clips_start_in(checkpoint, speech, tmp_path):
    # The corpus starts every clip at rest; a model left to start anywhere raised an arm at frame 0
    # and held it. A checkpoint that carries its data's start pose (``dataset.start_frame``) starts
    # there, as if that pose were given; one without it starts free, as before.
    rng = np.random.default_rng(1)
    rest = Motion(rng.normal(0, 0.2, (1, 55, 3)), np.zeros((1, 3)), rng.normal(0, 0.5, (1, 100)))
    stats = {**checkpoint.stats, "start_pose": rest.poses[0].reshape(-1), "start_expressions": rest.expressions[0]}
    path = save_checkpoint(tmp_path / "start.safetensors", checkpoint.tensors, checkpoint.config, stats=stats,
                           styles=checkpoint.styles)
    with_start = load_checkpoint(path)
    default = run(with_start, speech, seed=4)
    given = run(checkpoint, speech, seed=4, start_pose=rest)
    joints = sorted(j for part in ("upper", "hands", "lower") for j in PART_JOINTS[part])
    np.testing.assert_allclose(default.poses[:, joints], given.poses[:, joints], atol=1e-6)
    np.testing.assert_allclose(default.expressions, given.expressions, atol=1e-6)
    n = pipeline.START_POSE_CODES * CONFIG.frames_per_code
    assert np.array_equal(default.poses[:n], run(with_start, speech, seed=9).poses[:n])
    assert not np.allclose(run(checkpoint, speech, seed=4).poses[:n], default.poses[:n])


def test_progress_reaches_one_and_cancel_stops(checkpoint, speech):
    seen = []
    run_progress = generate(GenerationRequest(audio=speech), checkpoint=checkpoint, engine="torch",
                            progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and run_progress.num_frames > 0
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        generate(GenerationRequest(audio=speech), checkpoint=checkpoint, engine="torch", cancel=cancel)


def test_silent_audio_warns_and_still_gives_motion(checkpoint):
    with pytest.warns(SilentAudioWarning):
        motion = run(checkpoint, np.zeros(16000, np.float32))
    assert motion.num_frames == 30 and np.isfinite(motion.poses).all()


@pytest.mark.parametrize("chunk", [None, 160, 4000])
def test_each_window_finds_the_pauses_the_whole_clip_has(checkpoint, speech, chunk, monkeypatch):
    audio = with_pause(speech, 3.0)
    levels = energy_db(audio_features(audio))
    margin, r = PAUSE_MARGIN, checkpoint.config.frames_per_code
    codes = -(-len(levels) // r)
    padded = np.ones(margin + codes * r + margin, bool)
    padded[margin:margin + len(levels)] = ~spoken_frames(levels)[0]
    expected = pause_codes(padded, r, margin)
    assert expected.sum() >= 12  # the 3 s gap holds 0.5 s margins and at least 12 resting codes
    found = {}
    original = GenerationStream._pause_codes

    def spy(self, start, stop):
        result = original(self, start, stop)
        for code, paused in zip(range(start, stop), result):
            assert found.setdefault(code, paused) == paused  # a code read by two windows is judged alike
        return result

    monkeypatch.setattr(GenerationStream, "_pause_codes", spy)
    stream = GenerationStream(resolve_engine("torch"), checkpoint, GenerationRequest(audio=None))
    for start in range(0, len(audio), chunk or len(audio)):
        stream.push_audio(audio[start:start + (chunk or len(audio))])
    stream.finish()
    assert [found[c] for c in range(codes)] == expected.tolist()


@pytest.mark.parametrize("parts", [("face", "upper", "hands", "lower"), ("upper",), ("face", "hands", "lower"),
                                   ("face", "lower")])
def test_after_a_frozen_arm_the_next_span_carries_no_arm_codes(checkpoint, speech, parts, monkeypatch):
    monkeypatch.setattr(pipeline, "FrozenArmWatch", EveryPoseFrozen)
    monkeypatch.setattr(EveryPoseFrozen, "shown", [])
    engine = resolve_engine("torch")
    windows = []
    span = engine.span

    def spy(context, known, styles, generated, style_strength=1.0):
        windows.append({p: np.array(v) for p, v in known.items() if p in generated})
        return span(context, known, styles, generated, style_strength)

    monkeypatch.setattr(engine, "span", spy)
    audio = np.tile(speech, 2)[:8 * SAMPLE_RATE]  # 4 spans of 64 frames
    generate(GenerationRequest(audio=audio, seed=7, parts=parts), checkpoint=checkpoint, engine=engine)
    prefix, frames = checkpoint.config.generation_prefix, CONFIG.span_frames
    firsts = windows[::PASSES]  # each span's first pass: what it was given
    assert len(firsts) == 4 and prefix >= 1 and frames < EveryPoseFrozen.WINDOW <= 2 * frames
    # Only a generated upper body moves the arms: without it (the hands alone) nothing is let go.
    watched = "upper" in parts
    for k, given in enumerate(firsts[1:], 1):
        # Every pose is frozen: once the watch has seen its window, the next span's arms start afresh.
        let_go = watched and frames * k >= EveryPoseFrozen.WINDOW
        assert set(given) == set(parts)
        for part, codes in given.items():
            assert (codes[:prefix] < 0).all() if let_go and part in ARM_PARTS else (codes[:prefix] >= 0).all()


def test_streaming_equals_whole_clip_when_frozen_arms_are_let_go(checkpoint, speech, monkeypatch):
    monkeypatch.setattr(pipeline, "FrozenArmWatch", EveryPoseFrozen)
    monkeypatch.setattr(EveryPoseFrozen, "shown", [])
    audio = np.tile(speech, 2)[:8 * SAMPLE_RATE]
    whole = run(checkpoint, audio, seed=7)
    whole_shown, EveryPoseFrozen.shown = EveryPoseFrozen.shown, []
    stream = GenerationStream(resolve_engine("torch"), checkpoint, GenerationRequest(audio=None, seed=7))
    pieces = [stream.push_audio(audio[i:i + 4000]) for i in range(0, len(audio), 4000)] + [stream.finish()]
    streamed = Motion.join([p for p in pieces if p is not None])
    for key in ("poses", "trans", "expressions"):
        assert np.array_equal(getattr(streamed, key), getattr(whole, key))
    # The watch saw every frame once, in order, in both (the last span's beyond the audio's end too).
    for shown in (whole_shown, EveryPoseFrozen.shown):
        seen = Motion.join(shown)
        assert seen.num_frames >= whole.num_frames and np.array_equal(seen.poses[:whole.num_frames], whole.poses)
    # Not vacuous: the real watch's motion differs from that of one that lets go after every span.
    monkeypatch.setattr(pipeline, "FrozenArmWatch", FrozenArmWatch)
    assert not np.array_equal(run(checkpoint, audio, seed=7).poses, whole.poses)


def test_codes_in_a_pause_are_the_most_likely_ones_whatever_the_seed(checkpoint, speech):
    # A silent clip is one long pause: every code is chosen as at temperature 0.
    with pytest.warns(SilentAudioWarning):
        silent = [run(checkpoint, np.zeros(5 * SAMPLE_RATE, np.float32), seed=s, temperature=1.5) for s in (1, 2)]
        argmax = run(checkpoint, np.zeros(5 * SAMPLE_RATE, np.float32), temperature=0.0)
    assert np.array_equal(silent[0].poses, argmax.poses) and np.array_equal(silent[1].poses, argmax.poses)
    # Speech around a 4 s pause: the seeds still differ where there is speech.
    gap = np.concatenate([speech[:3 * SAMPLE_RATE], np.zeros(4 * SAMPLE_RATE, np.float32), speech[:3 * SAMPLE_RATE]])
    a, b = (run(checkpoint, gap, seed=s, temperature=1.5) for s in (1, 2))
    assert not np.allclose(a.poses[:60], b.poses[:60])


def test_the_request_checks_and_orders_its_parts_once_for_every_caller():
    assert GenerationRequest(audio=None, parts=["lower", "face", "lower"]).parts == ("face", "lower")
    with pytest.raises(GenerationError, match=r"unknown body parts \['tail'\]: choose from face, upper, hands, lower"):
        GenerationRequest(audio=None, parts=("tail",))


def test_bad_requests_fail_clearly(checkpoint, speech):
    with pytest.raises(GenerationError, match="style 'opera' is not in this model: choose one of calm, lively"):
        run(checkpoint, speech, style="opera")
    with pytest.raises(GenerationError, match="unknown body parts"):
        run(checkpoint, speech, parts=("tail",))
    with pytest.raises(GenerationError, match="temperature"):
        run(checkpoint, speech, temperature=-1)
    with pytest.raises(GenerationError, match="style strength must be a finite number >= 0"):
        run(checkpoint, speech, style_strength=-0.5)
    with pytest.raises(GenerationError, match="unknown engine"):
        generate(GenerationRequest(audio=speech), checkpoint=checkpoint, engine="tpu")
    with pytest.raises(EngineError, match="unknown device"):
        resolve_engine("torch", "metal")


def test_stage_one_checkpoint_cannot_generate(tmp_path, speech):
    path = GesturaModel(CONFIG, with_generator=False).save(tmp_path / "vq.safetensors", styles=["calm", "lively"])
    with pytest.raises(GenerationError, match="has no generator"):
        generate(GenerationRequest(audio=speech[:16000]), checkpoint=path, engine="torch")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback on a machine without CUDA")
def test_cuda_request_without_cuda_falls_back_to_cpu_with_a_warning(checkpoint, speech):
    with pytest.warns(UserWarning, match="CUDA"):
        motion = run(checkpoint, speech[:16000], device="cuda")
    assert motion.num_frames == 30
