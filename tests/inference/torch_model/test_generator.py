"""Stage 2: the generator streams exactly, its teacher-forced and step forms agree, and it
overfits a tiny set so that argmax decoding reproduces the training codes."""
import numpy as np
import pytest
torch = pytest.importorskip("torch")

from gestura.inference.torch_model.generator import generator_losses, random_prev_mask
from gestura.inference.torch_model.model import GesturaModel
from gestura.rigs.skeleton import PARTS
from random_checkpoint import tiny_config
from loss_windows import window_ratio

torch.set_num_threads(1)
CONFIG = tiny_config(d_model=32, lookahead=3)


def _model(seed=0):
    torch.manual_seed(seed)
    return GesturaModel(CONFIG)


def test_context_in_chunks_with_state_equals_whole_clip():
    gen = _model().generator.double()
    feats = torch.randn(2, 70, CONFIG.feature_dim, dtype=torch.float64)
    style = torch.tensor([0, 1])
    whole, _ = gen.context(feats, style)
    state, pieces = None, []
    for lo, hi in ((0, 1), (1, 30), (30, 31), (31, 64), (64, 70)):
        c, state = gen.context(feats[:, lo:hi], style, state)
        pieces.append(c)
    assert torch.allclose(torch.cat(pieces, 1), whole, atol=1e-10)


def test_teacher_forced_scan_equals_frame_by_frame_steps():
    gen = _model().generator.double()
    context = torch.randn(1, 25, CONFIG.d_model, dtype=torch.float64)
    prev = torch.randn(1, 25, len(PARTS), CONFIG.code_dim, dtype=torch.float64)
    logits, _, _ = gen.local_scan(context, prev)
    state = None
    for t in range(25):
        step, state = gen.local_step(context[:, t], prev[:, t], PARTS, state)
        for part in PARTS:
            assert torch.allclose(step[part], logits[part][:, t], atol=1e-10)


def test_previous_latents_shift_by_one_frame_and_mask():
    gen = _model().generator
    latents = {p: torch.randn(1, 5, CONFIG.code_dim) for p in PARTS}
    mask = torch.zeros(1, 5, 4, dtype=torch.bool)
    mask[0, 3, 1] = True
    prev = gen.previous_latents(latents, mask)
    assert torch.equal(prev[0, 0], gen.mask_latent.detach())
    assert torch.equal(prev[0, 2, 0], latents["face"][0, 1])
    assert torch.equal(prev[0, 3, 1], gen.mask_latent[1].detach())
    assert torch.equal(prev[0, 4, 1], latents["upper"][0, 3])


def test_random_mask_never_hides_seed_frames():
    g = torch.Generator().manual_seed(0)
    mask = random_prev_mask(8, 30, max_ratio=1.0, part_drop=0.5, keep_first=4, generator=g)
    assert mask.shape == (8, 30, 4) and not mask[:, :4].any() and mask[:, 4:].any()


def test_nothing_depends_on_audio_beyond_the_lookahead():
    gen = _model().generator.double().eval()
    feats = torch.randn(1, 40, CONFIG.feature_dim, dtype=torch.float64)
    latents = {p: torch.randn(1, 30, CONFIG.code_dim, dtype=torch.float64) for p in PARTS}
    logits, _ = gen(feats, torch.tensor([0]), latents)
    changed = feats.clone()
    changed[:, 20 + CONFIG.lookahead:] = 0  # audio frames that motion frame 20 may hear, and later
    logits2, _ = gen(changed, torch.tensor([0]), latents)
    for p in PARTS:
        assert torch.allclose(logits[p][:, :20], logits2[p][:, :20])
        assert not torch.allclose(logits[p][:, 20:], logits2[p][:, 20:])


def _piecewise_codes(rng, frames):
    cuts = np.sort(rng.choice(np.arange(1, frames), 3, replace=False))
    values = rng.integers(0, CONFIG.codebook_size, 4)
    return np.repeat(values, np.diff(np.concatenate([[0], cuts, [frames]])))


def test_generator_overfits_and_argmax_decoding_reproduces_training_codes():
    model = _model(1)
    rng = np.random.default_rng(0)
    frames = 24
    feats = torch.tensor(rng.standard_normal((2, frames + CONFIG.lookahead, CONFIG.feature_dim)), dtype=torch.float32)
    style = torch.tensor([0, 1])
    codes = {p: torch.tensor(np.stack([_piecewise_codes(rng, frames) for _ in range(2)])) for p in PARTS}
    latents = {p: model.vq[p].lookup(c).detach() for p, c in codes.items()}
    optimizer = torch.optim.Adam(model.generator.parameters(), lr=5e-3)
    losses = []
    for step in range(400):
        loss = model.generator_loss(feats, style, codes, mask=False)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 10 == 9:  # stop once teacher-forced argmax gets every training code right
            with torch.no_grad():
                logits, _ = model.generator(feats, style, latents)
            if all(torch.equal(logits[p].argmax(-1), codes[p]) for p in PARTS):
                break
    assert window_ratio(losses, 3) < 0.2, (losses[:3], losses[-3:])  # 0.056 here (last 3 steps over first 3)

    # Free-running generation, frame by frame with carried state, argmax codes.
    gen = model.generator.eval()
    with torch.no_grad():
        context, _ = gen.context(feats, style)
        prev = gen.mask_latent.expand(2, len(PARTS), CONFIG.code_dim).clone()
        state, out = None, {p: [] for p in PARTS}
        for t in range(frames):
            logits, state = gen.local_step(context[:, t + CONFIG.lookahead], prev, PARTS, state)
            prev = prev.clone()
            for i, p in enumerate(PARTS):
                code = logits[p].argmax(-1)
                out[p].append(code)
                prev[:, i] = model.vq[p].codebook.weight[code]
    for p in PARTS:
        assert torch.equal(torch.stack(out[p], 1), codes[p]), p


def test_losses_have_per_part_terms():
    model = _model()
    feats = torch.randn(1, 10, CONFIG.feature_dim)
    codes = {p: torch.randint(0, CONFIG.codebook_size, (1, 10)) for p in PARTS}
    losses = model.generator_loss(feats, torch.tensor([0]), codes)
    assert set(losses) == {"loss"} | {f"{p}_{k}" for p in PARTS for k in ("ce", "latent")}
    losses["loss"].backward()
    assert model.generator.audio_in.weight.grad.abs().sum() > 0


def test_switch_weight_weighs_the_frames_where_the_code_changes():
    torch.manual_seed(0)
    logits = {"upper": torch.randn(1, 5, 4)}
    codes = {"upper": torch.tensor([[1, 1, 2, 2, 3]])}  # changes at frames 2 and 4
    latents = regressed = {"upper": torch.zeros(1, 5, 2)}
    per_frame = torch.nn.functional.cross_entropy(logits["upper"][0], codes["upper"][0], reduction="none")
    plain = generator_losses(logits, regressed, codes, latents)["upper_ce"]
    assert float(plain) == pytest.approx(float(per_frame.mean()))
    weighted = generator_losses(logits, regressed, codes, latents, switch_weight=4.0)["upper_ce"]
    w = torch.tensor([1.0, 1.0, 4.0, 1.0, 4.0])
    assert float(weighted) == pytest.approx(float((per_frame * w).sum() / w.sum()))


def test_fused_step_of_the_engine_equals_local_step():
    from gestura.inference.torch_model.fused_step import FusedLocalStep

    config = CONFIG.with_(local_layers={"face": 3, "upper": 1, "hands": 2, "lower": 1})
    torch.manual_seed(2)
    gen = GesturaModel(config).generator.double().eval()
    for parts in (PARTS, ("upper", "hands"), ("face",)):
        fused = FusedLocalStep(gen, parts)
        state_f, state_g = fused.initial_state("cpu"), None
        with torch.no_grad():
            for _ in range(6):
                context = torch.randn(config.d_model, dtype=torch.float64)
                prev = torch.randn(len(PARTS), config.code_dim, dtype=torch.float64)
                logits, state_f = fused.step(context, prev, state_f)
                expected, state_g = gen.local_step(context[None], prev[None], parts, state_g)
                for i, p in enumerate(parts):
                    assert torch.allclose(logits[i], expected[p][0], atol=1e-10), p
