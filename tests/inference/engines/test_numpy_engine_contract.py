"""The NumPy engine's contract (``engines/base.py``) against ``torch_model`` on the same weights:
speech streamed in blocks, one span pass for several styles, decoding with carried state, and
the errors it gives. (Whole generation through the pipeline, both engines: test_engine_numpy.py.)"""
from __future__ import annotations

import numpy as np
import pytest

from gestura.inference.checkpoint import Checkpoint
from gestura.inference.engines import EngineError
from gestura.inference.engines.numpy import NumpyEngine
from gestura.rigs.skeleton import LOWER_ROOT, PART_DIMS, PARTS

from model_pair import assert_close, model_pair, pair_checkpoint

torch = pytest.importorskip("torch")


def _engine(frames_per_code=4, stroke_planner=False):
    engine = NumpyEngine()
    engine.prepare(pair_checkpoint(frames_per_code, stroke_planner))
    return engine


def test_speech_in_blocks_and_decode_in_pieces_match_the_torch_model():
    model, _ = model_pair(4)
    engine = _engine()
    state = engine.start(PARTS)
    rng = np.random.default_rng(1)
    features = rng.normal(size=(70, model.config.feature_dim)).astype(np.float32)
    speech = np.concatenate([engine.speech(state, features[:32]), engine.speech(state, features[32:])])
    codes = {p: rng.integers(0, model.config.codebook_size, 13) for p in PARTS}
    pieces = [engine.decode(state, {p: c[:5] for p, c in codes.items()}),
              engine.decode(state, {p: c[5:] for p, c in codes.items()})]
    with torch.no_grad():
        expected, _ = model.generator.speech_states(torch.from_numpy(features)[None])
        assert_close(speech, expected[0].numpy())
        for part in PARTS:
            want, _ = model.vq[part].decode_codes(torch.from_numpy(codes[part])[None])
            if part == "lower":  # the root channels come from the global motion predictor
                root, _ = model.gmp(want)
                want = torch.cat([want[..., :LOWER_ROOT.start], root, want[..., LOWER_ROOT.stop:]], -1)
            got = np.concatenate([piece[part] for piece in pieces])
            assert got.shape == (13 * 4, PART_DIMS[part]) and got.dtype == np.float32
            assert_close(got, want[0].numpy())


def test_plan_reading_decoders_decode_a_plan_in_pieces_as_torch_does():
    model, _ = model_pair(4, plan_decoders=True)
    engine = NumpyEngine()
    engine.prepare(pair_checkpoint(4, plan_decoders=True))
    rng = np.random.default_rng(6)
    codes = {p: rng.integers(0, model.config.codebook_size, 9) for p in PARTS}
    plan = np.zeros(36, np.float32)
    plan[[4, 5, 22, 23]] = [0.6, 1.0, 0.6, 1.0]  # two small bumps, one in each piece
    state = engine.start(PARTS)
    pieces = [engine.decode(state, {p: c[:4] for p, c in codes.items()}, plan[:16]),
              engine.decode(state, {p: c[4:] for p, c in codes.items()}, plan[16:])]
    unplanned = engine.decode(engine.start(PARTS), codes)
    for part in ("face", "upper", "hands"):
        with torch.no_grad():
            want, _ = model.vq[part].decode_codes(torch.from_numpy(codes[part])[None], None, torch.from_numpy(plan)[None])
        got = np.concatenate([piece[part] for piece in pieces])
        assert_close(got, want[0].numpy())
        # Only the upper body's and the hands' decoders read the plan.
        assert np.allclose(got, unplanned[part], atol=1e-6) == (part == "face"), part
    assert_close(np.concatenate([piece["lower"] for piece in pieces]), unplanned["lower"])
    # No plan is a plan without apexes.
    zeros = engine.decode(engine.start(PARTS), codes, np.zeros(36, np.float32))
    for part in PARTS:
        np.testing.assert_array_equal(zeros[part], unplanned[part])
    with pytest.raises(EngineError, match=r"the stroke plan must give one value per decoded frame \[36\], got shape \(35,\)"):
        engine.decode(engine.start(PARTS), codes, plan[:35])


@pytest.mark.parametrize("frames_per_code, stroke_planner", [(4, False), (1, False), (4, True)],
                         ids=["r4", "r1", "r4-planner"])
def test_context_and_span_give_the_torch_logits_for_each_style_and_only_the_asked_parts(frames_per_code,
                                                                                      stroke_planner):
    model, _ = model_pair(frames_per_code, stroke_planner=stroke_planner)
    engine = _engine(frames_per_code, stroke_planner)
    config, gen = model.config, model.generator
    rng = np.random.default_rng(2)
    n = 12
    features = rng.normal(size=(n * frames_per_code + config.lookahead, config.feature_dim)).astype(np.float32)
    speech = engine.speech(engine.start(PARTS), features)
    known = {p: rng.integers(0, config.codebook_size, n) for p in PARTS}
    known["face"][4:] = -1
    known["hands"][:] = -1  # switched off
    parts = ("face", "upper", "lower")
    context, plan = engine.context(speech, (1, None))
    assert context.shape == (2, n, config.d_model) and context.dtype == np.float32
    assert plan.shape == (2, n * frames_per_code) and plan.dtype == np.float32
    logits = engine.span(context, known, (1, None), parts)
    assert tuple(logits) == parts
    codes = torch.from_numpy(np.stack([known[p] for p in PARTS], -1))[None]
    with torch.no_grad():
        latents = gen.known_latents(model.codebooks(), codes)
        for i, style in enumerate((1, None)):
            embedded = gen.style_embeddings((style,))
            t_context, t_plan = gen.window_context(torch.from_numpy(speech)[None], (style,))
            assert_close(context[i], t_context[0].numpy())
            np.testing.assert_array_equal(plan[i], t_plan[0])
            expected = gen.span_logits(t_context, embedded, latents, parts)
            for part in parts:
                assert logits[part].shape == (2, n, config.codebook_size) and logits[part].dtype == np.float32
                assert_close(logits[part][i], expected[part][0].numpy())
    # Codes of the span from fresh features, as the encoder gives them.
    lower = rng.normal(size=(n * frames_per_code, PART_DIMS["lower"])).astype(np.float32)
    with torch.no_grad():
        want = model.vq["lower"].encode_codes(torch.from_numpy(lower)[None])[0].numpy()
    np.testing.assert_array_equal(engine.encode("lower", lower), want)


@pytest.mark.parametrize("stroke_planner", [False, True], ids=["head", "planner"])
def test_a_row_without_the_plan_hears_an_empty_stroke_plan_as_torch_does(stroke_planner):
    model, _ = model_pair(4, stroke_planner=stroke_planner)
    engine = _engine(4, stroke_planner)
    config, gen = model.config, model.generator
    rng = np.random.default_rng(3)
    features = rng.normal(size=(12 * 4 + config.lookahead, config.feature_dim)).astype(np.float32)
    speech = engine.speech(engine.start(PARTS), features)
    context, plan = engine.context(speech, (1, 1), (True, False))
    np.testing.assert_array_equal(context[0], engine.context(speech, (1,))[0][0])
    assert not plan[1].any() and plan[0].any()
    with torch.no_grad():
        t_speech = torch.from_numpy(speech)[None]
        pairs = gen.window_pairs(t_speech[..., :config.d_model])
        empty = gen.code_context(pairs, torch.zeros(1, pairs.shape[1]))
        assert_close(context[1], empty[0].numpy())
        assert_close(context[1], gen.window_context(t_speech, (1,), (False,))[0][0].numpy())
        planned = gen.window_context(t_speech, (1,))[0][0].numpy()
    # The window has planned apexes, so the two rows differ where they are.
    assert np.abs(planned - empty[0].numpy()).max() > 1e-3
    with pytest.raises(EngineError, match=r"plans must be one True or False per style \(2\), got \(True,\)"):
        engine.context(speech, (1, 1), (True,))


def test_style_strength_moves_each_styles_embedding_away_from_the_mean_as_torch_does():
    model, _ = model_pair(4)
    engine = _engine(4, False)
    config, gen = model.config, model.generator
    rng = np.random.default_rng(4)
    n = 12
    features = rng.normal(size=(n * 4 + config.lookahead, config.feature_dim)).astype(np.float32)
    speech = engine.speech(engine.start(PARTS), features)
    known = {p: rng.integers(0, config.codebook_size, n) for p in PARTS}
    known["upper"][3:] = -1
    context, _ = engine.context(speech, (1,))
    both = np.repeat(context, 2, 0)
    codes = torch.from_numpy(np.stack([known[p] for p in PARTS], -1))[None]
    with torch.no_grad():
        latents = gen.known_latents(model.codebooks(), codes)
        for strength in (0.0, 1.0, 2.0):
            logits = engine.span(both, known, (1, None), PARTS, strength)
            styles = gen.style_embeddings((1, None), strength)
            expected = gen.span_logits(torch.from_numpy(both), styles, latents.expand(2, -1, -1, -1))
            for part in PARTS:
                assert_close(logits[part], expected[part].numpy())
            # The mean style has no speaker to move away from; at strength 0 no style has one.
            assert np.array_equal(logits["upper"][0], logits["upper"][1]) == (strength == 0.0)
        unguided = engine.span(context, known, (1,), PARTS)
        guided = engine.span(context, known, (1,), PARTS, 2.0)
    assert np.abs(guided["upper"] - unguided["upper"]).max() > 1e-3
    with pytest.raises(EngineError, match=r"style strength must be a finite number >= 0, got -0.5"):
        engine.span(context, known, (1,), PARTS, -0.5)


def test_a_threshold_function_sees_the_windows_apex_probabilities_and_plans_as_torch_does():
    model, _ = model_pair(4)
    engine = _engine(4, False)
    config, gen = model.config, model.generator
    rng = np.random.default_rng(5)
    features = rng.normal(size=(12 * 4 + config.lookahead, config.feature_dim)).astype(np.float32)
    speech = engine.speech(engine.start(PARTS), features)
    seen = []

    def rule(probability):
        seen.append(probability)
        return float(np.sort(probability[0])[-3]) - 1e-3  # the third-highest frame: a low threshold

    context, _ = engine.context(speech, (1, None), None, rule)
    with torch.no_grad():
        t_speech = torch.from_numpy(speech)[None]
        probability = gen.apex_probabilities(t_speech, (1, None)).numpy()
        assert len(seen) == 1 and seen[0].shape == (2, 12 * 4)
        assert_close(seen[0], probability)
        assert_close(context, gen.window_context(t_speech, (1, None), None, rule(probability))[0].numpy())
        default = gen.window_context(t_speech, (1, None))[0].numpy()
    # A number is the threshold itself, and None the checkpoint's calibrated one.
    assert_close(engine.context(speech, (1, None), None, config.apex_threshold)[0], default)
    assert_close(engine.context(speech, (1, None))[0], default)


def test_bad_requests_are_refused_with_one_clear_sentence():
    engine = _engine()
    config = engine.model.config
    state = engine.start(("face",))
    speech = engine.speech(state, np.zeros((8 + config.lookahead, config.feature_dim), np.float32))
    known = {p: np.full(2, -1) for p in PARTS}
    with pytest.raises(EngineError, match="style index 7 is out of range for this model"):
        engine.context(speech, (7,))
    context, _ = engine.context(speech, (0,))
    with pytest.raises(EngineError, match="style index 7 is out of range for this model"):
        engine.span(context, known, (7,), PARTS)
    with pytest.raises(EngineError, match=r"unknown body parts \['tail'\]"):
        engine.start(("face", "tail"))
    with pytest.raises(EngineError, match="7 speech states are not whole codes of 4 frames plus the look-ahead of 6"):
        engine.context(speech[:7], (0,))
    with pytest.raises(EngineError, match=r"speech states of shape \(14, 64\) do not fit this model's width 32"):
        engine.context(np.concatenate([speech, speech], 1), (0,))
    with pytest.raises(EngineError, match="known codes of 'upper' cover 3 codes, the span has 2"):
        engine.span(context, {**known, "upper": np.zeros(3, np.int64)}, (0,), PARTS)
    with pytest.raises(EngineError, match=r"a context of shape \(1, 2, \d+\) does not fit 2 styles"):
        engine.span(context, known, (0, None), PARTS)
    with pytest.raises(EngineError, match="6 frames of 'face' do not make whole codes of 4 frames"):
        engine.encode("face", np.zeros((6, PART_DIMS["face"]), np.float32))


def test_prepare_caches_by_checkpoint_and_refuses_a_stage_one_checkpoint():
    checkpoint = pair_checkpoint(4)
    engine = _engine()
    model = engine.model
    engine.prepare(checkpoint)
    assert engine.model is model
    vq = Checkpoint(tensors={k: v for k, v in checkpoint.tensors.items() if not k.startswith("generator.")},
                    config=checkpoint.config, stats=checkpoint.stats, styles=checkpoint.styles, stage="vq",
                    path="vq.safetensors")
    with pytest.raises(EngineError, match="checkpoint 'vq.safetensors' has no generator"):
        NumpyEngine().prepare(vq)
