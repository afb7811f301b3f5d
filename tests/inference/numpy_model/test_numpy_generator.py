"""numpy_model.generator against torch_model.generator on the same weights, and the stacked
span pass against the module-by-module reference."""
from __future__ import annotations

import numpy as np
import pytest

from gestura.inference.checkpoint import Checkpoint, identity_stats
from gestura.inference.numpy_model.model import NumpyModel
from gestura.rigs.skeleton import PARTS

from model_pair import assert_close, model_pair, small_config
from random_checkpoint import random_tensors


@pytest.fixture(params=[(4, (1,), False), (1, (1,), False), (4, (1, 2, 4, 8), False), (4, (1,), True)],
                ids=["r4", "r1", "r4-granular", "r4-planner"])
def pair(request):
    return model_pair(*request.param)


def _known_codes(rng, n, k):
    """(n, 4) codes with runs of -1 (unknown), one part unknown throughout (switched off)."""
    codes = rng.integers(0, k, (n, len(PARTS)))
    codes[n // 3:n // 3 + 4, 0] = -1
    codes[:, 2] = -1
    codes[n - 3:, 1] = -1
    return codes


@pytest.mark.parametrize("stroke_planner, pitch", [(False, False), (True, False), (True, True)],
                         ids=["head", "planner", "planner-pitch"])
def test_streamed_speech_states_in_pieces_equal_whole_and_torch(stroke_planner, pitch):
    torch = pytest.importorskip("torch")
    model, numpy_model = model_pair(4, stroke_planner=stroke_planner, planner_pitch=pitch)
    features = np.random.default_rng(1).normal(size=(70, model.config.input_width)).astype(np.float32)
    with torch.no_grad():
        expected, _ = model.generator.stream_speech(torch.from_numpy(features)[None])
    whole, _ = numpy_model.generator.stream_speech(features)
    assert whole.shape == (70, model.config.speech_width)
    assert_close(whole, expected[0].numpy())
    state, pieces = None, []
    for lo, hi in ((0, 1), (1, 30), (30, 31), (31, 64), (64, 70)):
        s, state = numpy_model.generator.stream_speech(features[lo:hi], state)
        pieces.append(s)
    np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=0, atol=1e-5)


def test_apex_code_context_and_known_latents_match_torch(pair):
    torch = pytest.importorskip("torch")
    model, numpy_model = pair
    gen, np_gen = model.generator, numpy_model.generator
    rng = np.random.default_rng(2)
    n, r = 9, model.config.frames_per_code
    speech = rng.normal(size=(n * r + model.config.lookahead, model.config.speech_width)).astype(np.float32)
    codes = _known_codes(rng, n, model.config.codebook_size)
    styles = (1, None)
    with torch.no_grad():
        pairs = gen.window_pairs(torch.from_numpy(speech)[None, :, :model.config.d_model])
        apex = gen.apex_probabilities(torch.from_numpy(speech)[None], styles).numpy()
        context, plan = gen.window_context(torch.from_numpy(speech)[None], styles)
        context = context.numpy()
        latents = gen.known_latents(model.codebooks(), torch.from_numpy(codes)[None])[0].numpy()
    np_pairs = np_gen.window_pairs(speech[:, :model.config.d_model])
    assert_close(np_pairs, pairs[0].numpy())
    assert_close(np_gen.apex_probabilities(speech, styles), apex)
    assert context.shape == (2, n, model.config.d_model)
    np_context, np_plan = np_gen.window_context(speech, styles)
    assert_close(np_context, context)
    np.testing.assert_array_equal(np_plan, plan)
    np.testing.assert_array_equal(np_gen.known_latents(numpy_model.codebooks(), codes), latents)


def test_span_logits_for_several_styles_match_torch_and_pick_the_same_codes(pair):
    torch = pytest.importorskip("torch")
    model, numpy_model = pair
    gen, np_gen = model.generator, numpy_model.generator
    rng = np.random.default_rng(3)
    n, r = 14, model.config.frames_per_code
    speech = rng.normal(size=(n * r + model.config.lookahead, model.config.speech_width)).astype(np.float32)
    codes = _known_codes(rng, n, model.config.codebook_size)
    styles = (3, None)
    context, _ = np_gen.window_context(speech, styles)
    latents = np_gen.known_latents(numpy_model.codebooks(), codes)
    logits = np_gen.span_logits(context, styles, latents)
    reference = np_gen.span_logits_reference(context, styles, latents)
    with torch.no_grad():
        t_latents = gen.known_latents(model.codebooks(), torch.from_numpy(codes)[None])
        expected = []
        for s in styles:
            style = gen.style_embedding(None if s is None else torch.tensor([s]))
            expected.append(gen.span_logits(gen.window_context(torch.from_numpy(speech)[None], (s,))[0], style, t_latents))
    for part in PARTS:
        assert logits[part].shape == (2, n, model.config.codebook_size)
        for i in range(len(styles)):
            want = expected[i][part][0].numpy()
            assert_close(reference[part][i], want)
            assert_close(logits[part][i], want)
            np.testing.assert_array_equal(logits[part][i].argmax(-1), want.argmax(-1))
    # The styles differ, so the batch is not one style repeated.
    assert not np.allclose(logits["upper"][0], logits["upper"][1], atol=1e-3)


@pytest.mark.parametrize("parts", [PARTS, ("face", "lower"), ("hands",), ("upper", "hands", "lower"), ()])
def test_stacked_span_pass_equals_the_reference_for_any_parts(parts):
    # numpy only (runs in Blender's Python too): weights from random_checkpoint, face with two local layers.
    config = small_config(local_layers={"face": 2, "upper": 1, "hands": 3, "lower": 1})
    model = NumpyModel(Checkpoint(tensors=random_tensors(config, 4), config=config, stats=identity_stats(),
                                  styles=list("abcd"), stage="full"))
    gen = model.generator
    rng = np.random.default_rng(4)
    n = 11
    styles = (0, None, 2)
    speech = rng.normal(size=(n * config.frames_per_code + config.lookahead, config.d_model)).astype(np.float32)
    context, _ = gen.window_context(speech, styles)
    latents = gen.known_latents(model.codebooks(), _known_codes(rng, n, config.codebook_size))
    logits = gen.span_logits(context, styles, latents, parts)
    reference = gen.span_logits_reference(context, styles, latents, parts)
    assert sorted(logits) == sorted(reference) == sorted(parts)
    for part in parts:
        assert logits[part].shape == (3, n, config.codebook_size)
        assert_close(logits[part], reference[part], 1e-5)
