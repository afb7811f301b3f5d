"""DiM-Gestor's network (``torch_model/diffusion.py``) against its contract (``architecture.py``)
and its NumPy mirror (``numpy_model/diffusion.py``) on the same weights."""
import numpy as np
import pytest
torch = pytest.importorskip("torch")

from gestura.inference.architecture import tensor_shapes
from gestura.inference.checkpoint import Checkpoint, identity_stats
from gestura.inference.config import ConfigError
from gestura.inference.numpy_model.model import NumpyModel
from gestura.inference.torch_model.model import GesturaModel

from random_checkpoint import random_tensors, tiny_config


def dim_config(**changes):
    base = dict(family="dim-gestor", d_model=32, headdim=16, mamba2_d_state=8, denoiser_layers=2, speech_layers=1,
                span_codes=6, prefix_codes=2, lookahead=6)
    return tiny_config(**{**base, **changes})


@pytest.mark.parametrize("block, planner", [("mamba2", False), ("attention", False), ("mamba2", True)])
def test_state_dict_is_the_architecture_spec(block, planner):
    config = dim_config(denoiser_block=block, stroke_planner=planner)
    model = GesturaModel(config)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == {k: tuple(v) for k, v in tensor_shapes(config).items()}


@pytest.mark.parametrize("block", ["mamba2", "attention"])
def test_numpy_denoiser_equals_torch_on_the_same_weights(block):
    torch.set_num_threads(1)
    config = dim_config(denoiser_block=block)
    tensors = random_tensors(config, seed=3)
    checkpoint = Checkpoint(tensors=tensors, config=config, stats=identity_stats(), styles=["a", "b"], stage="full")
    model = GesturaModel.from_checkpoint(checkpoint)
    numpy_gen = NumpyModel(checkpoint).generator
    rng = np.random.default_rng(0)
    n, r, look = 9, config.frames_per_code, config.lookahead
    features = rng.standard_normal((n * r + look, config.feature_dim)).astype(np.float32)
    cond, style = numpy_gen.condition(features, (None, 1))
    with torch.no_grad():
        t_cond, t_style = model.generator.condition(torch.from_numpy(features)[None].expand(2, -1, -1),
                                                    torch.tensor([-1, 1]))
    np.testing.assert_allclose(cond, t_cond[0].numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(style, t_style.numpy(), atol=1e-4, rtol=1e-4)
    x = rng.standard_normal((2, n, config.latent_dim)).astype(np.float32)
    known = rng.standard_normal((n, config.latent_dim)).astype(np.float32)
    mask = (rng.random((n, 4)) < 0.3).astype(np.float32)
    t = np.array([0.7, 0.7], np.float32)
    x0 = numpy_gen.denoise(x, t, cond, style, known, mask)
    with torch.no_grad():
        expected = model.generator.denoise(torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(cond)[None],
                                           torch.from_numpy(style), torch.from_numpy(known)[None],
                                           torch.from_numpy(mask)[None])
    assert np.abs(x0).max() > 0.1  # the random weights make a non-trivial estimate
    np.testing.assert_allclose(x0, expected.numpy(), atol=2e-4, rtol=1e-3)


def test_numpy_planner_and_planned_condition_equal_torch_on_the_same_weights():
    """A stroke_planner model: the planner's streamed states, its window plan, and the condition
    that reads the plan; the plan matters (an empty one conditions otherwise)."""
    torch.set_num_threads(1)
    config = dim_config(stroke_planner=True)
    checkpoint = Checkpoint(tensors=random_tensors(config, seed=4), config=config, stats=identity_stats(),
                            styles=["a", "b"], stage="full")
    gen, numpy_gen = GesturaModel.from_checkpoint(checkpoint).generator, NumpyModel(checkpoint).generator
    rng = np.random.default_rng(1)
    n, r, look = 9, config.frames_per_code, config.lookahead
    features = rng.standard_normal((n * r + look, config.input_width)).astype(np.float32)
    speech, _ = numpy_gen.stream_speech(features)
    with torch.no_grad():
        t_speech, _ = gen.stream_speech(torch.from_numpy(features)[None])
        np.testing.assert_allclose(speech, t_speech[0].numpy(), atol=1e-4, rtol=1e-4)
        plan = numpy_gen.window_plan(speech, 1, 0.3)
        np.testing.assert_array_equal(plan, gen.window_plan(torch.from_numpy(speech)[None], 1, 0.3))
        assert plan.shape == (n * r,) and plan.max() == 1.0
        cond, _ = numpy_gen.condition(features, (1,), plan)
        t_cond, _ = gen.condition(torch.from_numpy(features)[None], torch.tensor([1]), torch.from_numpy(plan)[None])
        np.testing.assert_allclose(cond, t_cond[0].numpy(), atol=1e-4, rtol=1e-4)
        empty, _ = numpy_gen.condition(features, (1,), np.zeros_like(plan))
    assert np.abs(cond - empty).max() > 1e-3
    with pytest.raises(ValueError, match="a stroke plan goes with a stroke_planner model"):
        numpy_gen.condition(features, (1,))


def test_the_denoiser_hears_its_whole_window_both_ways():
    torch.manual_seed(0)
    config = dim_config()
    gen = GesturaModel(config).generator.eval()
    with torch.no_grad():
        for p in gen.parameters():  # adaLN-Zero starts as the identity: give it something to say
            p.add_(torch.randn_like(p) * 0.05)
        n, c = 8, config.latent_dim
        x, known, mask = torch.randn(1, n, c), torch.zeros(1, n, c), torch.zeros(1, n, 4)
        cond, style = torch.zeros(1, n, config.d_model), torch.zeros(1, config.d_model)
        base = gen.denoise(x, torch.tensor([0.5]), cond, style, known, mask)
        later = x.clone()
        later[:, -1] += 1.0
        changed = gen.denoise(later, torch.tensor([0.5]), cond, style, known, mask)
    assert (changed[0, 0] - base[0, 0]).abs().max() > 1e-5  # the first token heard the last


@pytest.mark.parametrize("changes, message", [
    ({"headdim": 48}, "'headdim' \\(48\\) must divide the Mamba-2 inner width"),
    ({"family": "gan"}, "'family' must be one of"),
    ({"denoiser_block": "lstm"}, "'denoiser_block' must be one of"),
    ({"attention_heads": 5}, "'attention_heads' \\(5\\) must divide d_model"),
    ({"mlp_ratio": 0}, "'mlp_ratio' must be positive for the dim-gestor family"),
])
def test_config_errors_are_one_line(changes, message):
    with pytest.raises(ConfigError, match=message) as error:
        dim_config(**changes)
    assert "\n" not in str(error.value)


def test_a_new_model_tells_its_speakers_apart_as_loudly_as_it_hears_the_voice():
    # The speaker is added to the voice style (and so to conditions that grow to norms of 20-40 in
    # training); an embedding started at DiT's 0.02 stayed a 2 % perturbation through a CPU
    # training run, and every style then generated the same motion (wrist speed 0.25x bodhi's).
    torch.manual_seed(0)
    config = dim_config()
    gen = GesturaModel(config).generator.eval()
    features = torch.randn(1, 6 * config.frames_per_code + config.lookahead, config.feature_dim)
    with torch.no_grad():
        _, styles = gen.condition(features.expand(3, -1, -1), torch.tensor([-1, 0, 1]))
    voice = styles[0].norm()
    assert (styles[1] - styles[0]).norm() > 0.5 * voice
    assert (styles[2] - styles[1]).norm() > 0.5 * voice
