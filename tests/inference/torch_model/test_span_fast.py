"""``Generator.span_logits_fast`` (stacked mixers, for generation) against ``span_logits`` (the
module-by-module form training runs) on the same weights."""
import pytest
torch = pytest.importorskip("torch")

from gestura.inference.torch_model.model import GesturaModel
from gestura.rigs.skeleton import PARTS
from model_pair import small_config

torch.set_num_threads(1)
CONFIG = small_config()


def _model(config=CONFIG):
    torch.manual_seed(5)
    model = GesturaModel(config).double().eval()
    with torch.no_grad():  # norms, biases and D away from their initial values, so a wrong one shows
        for name, p in model.generator.named_parameters():
            if "norm" in name or "bias" in name or name.endswith(".D") or "fuse" in name:
                p.add_(torch.randn_like(p) * 0.3)
    return model


def _span_inputs(model, n=9):
    gen = model.generator
    g = torch.Generator().manual_seed(0)
    context = torch.randn(1, n, CONFIG.d_model, generator=g, dtype=torch.float64).expand(2, -1, -1)
    style = torch.cat([gen.style_embedding(torch.tensor([1])), gen.style_embedding(None)])  # styled, neutral
    codes = torch.randint(-1, CONFIG.codebook_size, (1, n, len(PARTS)), generator=g)
    latents = gen.known_latents(model.codebooks(), codes).expand(2, -1, -1, -1)
    return context, style, latents


@pytest.mark.parametrize("granularities", [(1,), (1, 2, 4, 8)], ids=["single", "granular"])
@pytest.mark.parametrize("parts", [PARTS, ("upper", "lower"), ("face",), ("hands",)],
                         ids=["all", "upper-lower", "face", "hands"])
def test_fast_span_logits_equal_the_module_form(parts, granularities):
    # "face" has two local layers, the others one: the fast form runs layer 2 for face alone.
    model = _model(small_config(granularities=granularities))
    args = _span_inputs(model)
    with torch.inference_mode():
        expected = model.generator.span_logits(*args, parts)
        fast = model.generator.span_logits_fast(*args, parts)
    assert list(fast) == list(parts)
    for part in parts:
        assert fast[part].shape == expected[part].shape == (2, 9, CONFIG.codebook_size)
        assert torch.allclose(fast[part], expected[part], atol=1e-10)


def test_fast_span_logits_follow_changed_weights():
    # The stacked copies are made again when a parameter changes in place (as an optimiser does).
    model = _model()
    args = _span_inputs(model)
    with torch.inference_mode():
        before = model.generator.span_logits_fast(*args)
    with torch.no_grad():
        model.generator.local["upper"][0].mixer_back.out_proj.weight.mul_(2.0)
        model.generator.global_blocks[1].mixer.A_log.add_(0.5)
    with torch.inference_mode():
        after = model.generator.span_logits_fast(*args)
        expected = model.generator.span_logits(*args)
    assert not torch.allclose(after["upper"], before["upper"], atol=1e-6)
    for part in PARTS:
        assert torch.allclose(after[part], expected[part], atol=1e-10)
