"""Stage 2, the span generator: the speech encoder streams and is causal, a code hears the audio
up to the look-ahead beyond its last frame and no further, a span is read in both directions, the
training masks hide runs of codes, the loss counts hidden codes only, and a tiny model overfits."""
import math

import numpy as np
import pytest
torch = pytest.importorskip("torch")

from gestura.inference.torch_model.generator import generator_losses, masking_ratio, span_mask
from gestura.inference.torch_model.model import GesturaModel
from gestura.inference.stroke_plan import stroke_plan
from gestura.rigs.skeleton import PARTS
from random_checkpoint import tiny_config
from loss_windows import window_ratio

torch.set_num_threads(1)
CONFIG = tiny_config(d_model=32)  # the shipped timing: 4 frames per code, 30 frames (1 s) of look-ahead
R, L = CONFIG.frames_per_code, CONFIG.lookahead


def _model(seed=0, config=CONFIG):
    torch.manual_seed(seed)
    return GesturaModel(config)


def _generator(seed=0):
    return _model(seed).generator.double().eval()


def _codebooks(model):
    return {p: w.detach().double() for p, w in model.codebooks().items()}


def _contexts(gen, feats, n, plan):
    """The code contexts of n codes from features (B, n r + L, F) with the stroke plan ``plan``."""
    speech, _ = gen.speech_states(feats)
    return gen.code_context(gen.window_pairs(speech[:, :n * R + L]), plan)


def test_speech_states_in_pieces_with_carried_state_equal_the_whole_clip():
    gen = _generator()
    feats = torch.randn(2, 70, CONFIG.feature_dim, dtype=torch.float64)
    with torch.no_grad():
        whole, _ = gen.speech_states(feats)
        state, pieces = None, []
        for lo, hi in ((0, 1), (1, 16), (16, 17), (17, 48), (48, 70)):
            s, state = gen.speech_states(feats[:, lo:hi], state)
            pieces.append(s)
    assert whole.shape == (2, 70, CONFIG.d_model)
    assert torch.allclose(torch.cat(pieces, 1), whole, atol=1e-10)


def test_speech_encoder_is_causal():
    gen = _generator()
    feats = torch.randn(1, 50, CONFIG.feature_dim, dtype=torch.float64)
    with torch.no_grad():
        before, _ = gen.speech_states(feats)
        for j in (0, 20, 48):
            changed = feats.clone()
            changed[:, j + 1:] = torch.randn_like(changed[:, j + 1:])
            after, _ = gen.speech_states(changed)
            assert torch.allclose(after[:, :j + 1], before[:, :j + 1], atol=1e-12), j
            assert not torch.allclose(after[:, j + 1:], before[:, j + 1:]), j


def test_a_window_hears_its_audio_up_to_the_lookahead_beyond_its_last_code_and_no_further():
    # A window of n codes covers motion frames [0, n r); its codes hear audio frames < n r + L,
    # every code all of them (the window scan runs both ways), and nothing later.
    assert L == 30  # the shipped look-ahead: one second at 30 fps
    gen = _generator()
    n = 8
    feats = torch.randn(1, n * R + L + 12, CONFIG.feature_dim, dtype=torch.float64)
    plan = torch.zeros(1, n * R, dtype=torch.float64)
    plan[0, 9] = 1.0
    with torch.no_grad():
        before = _contexts(gen, feats, n, plan)
        assert before.shape == (1, n, CONFIG.d_model)
        later = feats.clone()
        later[:, n * R + L:] = torch.randn_like(later[:, n * R + L:])
        assert torch.equal(_contexts(gen, later, n, plan), before)
        last_heard = feats.clone()
        last_heard[:, n * R + L - 1] += 1.0  # a full second after the window's last frame
        after = _contexts(gen, last_heard, n, plan)
    assert torch.all((after - before).abs().amax(-1) > 0)  # the first code hears it too


def test_a_window_reads_the_heads_stroke_plan_and_code_context_the_plan_it_is_given():
    gen = _generator()
    speech = torch.randn(1, 8 * R + L, CONFIG.d_model, dtype=torch.float64)
    style = gen.style_embedding(torch.tensor([1]))
    with torch.no_grad():
        pairs = gen.window_pairs(speech)
        own, own_plan = gen.window_context(speech, (1,))
        probability = torch.sigmoid(gen.apex_logits(pairs, style)).numpy()
        np.testing.assert_array_equal(own_plan, stroke_plan(probability, CONFIG.apex_threshold))
        plan = torch.from_numpy(stroke_plan(probability, CONFIG.apex_threshold)).double()
        assert torch.allclose(gen.code_context(pairs, plan), own, atol=1e-12)
        other_plan = plan.clone()
        other_plan[0, 2 * R + 1] = 1.0 - other_plan[0, 2 * R + 1]  # a stroke in code 2's second frame
        other = gen.code_context(pairs, other_plan)
    changed = (other - own).abs().amax(-1)[0]
    assert changed[2] > 0 and torch.all(changed[torch.arange(8) != 2] == 0)


def test_a_stroke_planner_makes_the_plan_from_its_own_scans_and_trains_on_what_generation_reads():
    config = CONFIG.with_(stroke_planner=True)
    gen = _model(config=config).generator.double().eval()
    n = 8
    feats = torch.randn(1, 40 + n * R + L, CONFIG.feature_dim, dtype=torch.float64)
    with torch.no_grad():
        speech, _ = gen.stream_speech(feats)
        body, _ = gen.speech_states(feats)
        planned, _ = gen.planner.speech_states(feats)
        assert speech.shape == (1, feats.shape[1], 2 * CONFIG.d_model)
        assert torch.equal(speech[..., :CONFIG.d_model], body) and torch.equal(speech[..., CONFIG.d_model:], planned)
        window = speech[:, 40:]
        probability = gen.apex_probabilities(window, (1, None))
        want = torch.sigmoid(gen.planner.apex_logits(gen.planner.window_pairs(planned[:, 40:]),
                                                      gen.planner.style_embeddings((1, None))))
        assert torch.equal(probability, want)
        before, _ = gen.window_context(window, (1,))
        gen.apex.bias += 5.0  # the generator's own head does not make the plan...
        assert torch.equal(gen.window_context(window, (1,))[0], before)
        gen.planner.apex.bias += 50.0  # ...the planner's does
        assert not torch.equal(gen.window_context(window, (1,))[0], before)
        # Training reads the window as generation does: after 40 frames of earlier speech, or
        # from the clip's start (its frames past the window's look-ahead unread).
        style = torch.tensor([1, 0])
        batch = torch.stack([feats[0], torch.cat([feats[0, :n * R + L], torch.randn(40, CONFIG.feature_dim,
                                                                                    dtype=torch.float64)])])
        logits = gen.planner(batch, style, torch.tensor([40, 0]), n * R)
        starts = (gen.planner.window_pairs(planned[:, 40:]), gen.planner.window_pairs(planned[:, :n * R + L]))
    assert logits.shape == (2, n * R)
    for i, pairs in enumerate(starts):
        assert torch.allclose(logits[i], gen.planner.apex_logits(pairs, gen.planner.style(style[i:i + 1]))[0],
                              atol=1e-12)


def test_the_apex_head_hears_the_style():
    # Speakers stroke at different rates; the head must be able to plan that.
    gen = _generator()
    pairs = gen.window_pairs(torch.randn(1, 8 * R + L, CONFIG.d_model, dtype=torch.float64))
    with torch.no_grad():
        first = gen.apex_logits(pairs, gen.style_embedding(torch.tensor([0])))
        second = gen.apex_logits(pairs, gen.style_embedding(torch.tensor([1])))
    assert first.shape == (1, 8 * R) and not torch.allclose(first, second)


def test_known_latents_are_codebook_rows_and_the_mask_latent_where_unknown():
    model = _model()
    gen, books = model.generator, _codebooks(model)
    codes = torch.tensor([[[3, -1, 0, 15], [-1, -1, -1, -1], [7, 2, -1, 1]]])
    with torch.no_grad():
        latents = gen.known_latents(books, codes)
    assert latents.shape == (1, 3, len(PARTS), CONFIG.code_dim)
    for n in range(3):
        for i, part in enumerate(PARTS):
            c = int(codes[0, n, i])
            expected = gen.mask_latent[i].double() if c < 0 else books[part][c]
            assert torch.equal(latents[0, n, i], expected), (n, part)


def _span_inputs(gen, model, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    context = torch.randn(1, n, CONFIG.d_model, dtype=torch.float64, generator=g)
    codes = torch.randint(0, CONFIG.codebook_size, (1, n, len(PARTS)), generator=g)
    style = gen.style_embedding(torch.tensor([1]))
    return context, style, codes


def test_span_logits_read_the_known_codes_in_both_directions():
    model = _model().double().eval()
    gen, books = model.generator, _codebooks(model)
    n = 12
    with torch.no_grad():
        context, style, codes = _span_inputs(gen, model, n)
        base = gen.span_logits(context, style, gen.known_latents(books, codes))
        assert {p: tuple(v.shape) for p, v in base.items()} == {p: (1, n, CONFIG.codebook_size) for p in PARTS}
        for i, part in enumerate(PARTS):
            # Hiding a later code changes the logits of earlier positions of every part (the
            # backward scan), and an earlier code those of later ones (the forward scan).
            for moved, earlier in ((9, slice(0, 9)), (2, slice(3, n))):
                changed = codes.clone()
                changed[0, moved, i] = -1
                out = gen.span_logits(context, style, gen.known_latents(books, changed))
                for p in PARTS:
                    assert (out[p][:, earlier] - base[p][:, earlier]).abs().amax(-1).min() > 0, (part, moved, p)
        # The style and the speech context count too.
        other_style = gen.span_logits(context, gen.style_embedding(torch.tensor([0])), gen.known_latents(books, codes))
        assert not torch.allclose(other_style["upper"], base["upper"])
        context2 = context.clone()
        context2[:, 5] += 1.0
        out = gen.span_logits(context2, style, gen.known_latents(books, codes))
        assert (out["hands"] - base["hands"]).abs().amax(-1).min() > 0  # every position, both sides of 5


def test_span_logits_of_some_parts_equal_those_of_all_parts():
    model = _model().double().eval()
    gen, books = model.generator, _codebooks(model)
    with torch.no_grad():
        context, style, codes = _span_inputs(gen, model, 10)
        latents = gen.known_latents(books, codes)
        every = gen.span_logits(context, style, latents)
        some = gen.span_logits(context, style, latents, ("face", "lower"))
        mean_style = gen.span_logits(context, gen.style_embedding(None), latents)
    assert set(some) == {"face", "lower"}
    for p in some:
        assert torch.equal(some[p], every[p])
    assert torch.allclose(gen.style_embedding(None), gen.style.weight.mean(0, keepdim=True))
    assert not torch.allclose(mean_style["face"], every["face"])


def test_training_forward_hears_the_window_and_reads_the_corpus_stroke_plan():
    model = _model().double().eval()
    gen, books = model.generator, _codebooks(model)
    n = 6
    feats = torch.randn(2, n * R + L, CONFIG.feature_dim, dtype=torch.float64)
    codes = torch.randint(0, CONFIG.codebook_size, (2, n, len(PARTS)))
    codes[:, 2:, 1] = -1
    style = torch.tensor([0, 1])
    plan = torch.zeros(2, n * R, dtype=torch.float64)
    plan[1, 5] = 1.0
    with torch.no_grad():
        logits, apex_logits = gen(feats, style, books, codes, plan)
        assert apex_logits.shape == (2, n * R)
        # The same as the pieces generation calls, given the same plan.
        speech, _ = gen.speech_states(feats)
        embedded = gen.style_embedding(style)
        context = gen.code_context(gen.window_pairs(speech[:, :n * R + L]), plan)
        pieces = gen.span_logits(context, embedded, gen.known_latents(books, codes))
        for p in PARTS:
            assert torch.allclose(logits[p], pieces[p], atol=1e-10)
        # Another plan for window 1 changes window 1 only.
        other_plan = plan.clone()
        other_plan[1, 5] = 0.0
        other, _ = gen(feats, style, books, codes, other_plan)
    for p in PARTS:
        assert torch.equal(other[p][0], logits[p][0]) and not torch.allclose(other[p][1], logits[p][1])


def test_apex_head_learns_from_its_own_loss_only():
    model = _model()
    gen = model.generator
    n = 6
    feats = torch.randn(1, n * R + L, CONFIG.feature_dim)
    codes = {p: torch.randint(0, CONFIG.codebook_size, (1, n)) for p in PARTS}
    hidden = torch.zeros(1, n, len(PARTS), dtype=torch.bool)
    hidden[:, 3:] = True
    known = torch.stack([codes[p] for p in PARTS], -1).masked_fill(hidden, -1)
    books = {p: w.detach() for p, w in model.codebooks().items()}
    target = torch.zeros(1, n * R)
    target[0, 7] = 1.0
    logits, apex_logits = gen(feats, torch.tensor([0]), books, known, target)
    losses = generator_losses(logits, codes, hidden, apex_logits, target, apex_weight=0.0)
    assert set(losses) == {f"{p}_ce" for p in PARTS} | {"apex_bce", "loss"}
    losses["loss"].backward()
    assert gen.audio_in.weight.grad.abs().sum() > 0  # the codes' loss trains the speech encoder
    assert gen.apex.weight.grad is None or gen.apex.weight.grad.abs().sum() == 0  # but not the apex head


def test_generator_losses_count_hidden_codes_only():
    logits = {"upper": torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [5.0, -5.0, 9.0], [0.0, 0.0, 0.0]]]),
              "hands": torch.tensor([[[1.0, 0.0, 0.0]] * 4])}
    codes = {"upper": torch.tensor([[0, 2, 1, 1]]), "hands": torch.tensor([[1, 1, 1, 1]])}
    hidden = torch.zeros(1, 4, len(PARTS), dtype=torch.bool)
    hidden[0, [0, 1, 3], PARTS.index("upper")] = True  # position 2 is known: its logits do not count
    apex_logits = torch.tensor([[0.0, 2.0]])
    apex_target = torch.tensor([[1.0, 0.0]])
    out = generator_losses(logits, codes, hidden, apex_logits, apex_target, apex_weight=0.5)
    # -log softmax: position 0, code 0 of (2, 0, 0); position 1, code 2 of (0, 1, 0); position 3, uniform.
    ce = (-(2 - math.log(math.exp(2) + 2)) - (0 - math.log(2 + math.e)) + math.log(3)) / 3
    bce = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert set(out) == {"upper_ce", "apex_bce", "loss"}  # "hands" has nothing hidden: no term
    assert float(out["upper_ce"]) == pytest.approx(ce, rel=1e-6)
    assert float(out["apex_bce"]) == pytest.approx(bce, rel=1e-6)
    assert float(out["loss"]) == pytest.approx(ce + 0.5 * bce, rel=1e-6)
    logits["upper"][0, 2] = torch.tensor([-9.0, 9.0, 0.0])  # a known position's logits do not matter
    assert float(generator_losses(logits, codes, hidden, apex_logits, apex_target)["upper_ce"]) == pytest.approx(ce, rel=1e-6)


def test_masking_ratio_is_the_cosine_schedule():
    u = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    expected = torch.tensor([1.0, math.cos(math.pi / 8), math.cos(math.pi / 4), math.cos(3 * math.pi / 8), 0.0])
    assert torch.allclose(masking_ratio(u), expected, atol=1e-7)


def _runs(row):
    """(start, length) of each run of True in a 1-D bool array."""
    padded = np.concatenate([[False], row, [False]]).astype(int)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2], edges[1::2] - edges[::2]))


def test_span_mask_keeps_a_prefix_and_hides_runs_of_codes_a_cosine_share_at_a_time():
    prefix, n, batch = 4, 20, 400
    mask = span_mask(batch, n, prefix=prefix, part_drop=0.0, generator=torch.Generator().manual_seed(0)).numpy()
    assert mask.shape == (batch, n, len(PARTS)) and mask.dtype == bool
    # The prefix: the first 0..prefix codes known in every part, the rest of the prefix hidden in
    # every part; all of it known in about half the windows (0.5 + 0.5 / (prefix + 1) = 0.6).
    known = np.array([next((j for j in range(prefix) if mask[b, j].any()), prefix) for b in range(batch)])
    assert known.min() == 0 and known.max() == prefix
    for b in range(batch):
        assert not mask[b, :known[b]].any() and mask[b, known[b]:prefix].all()
    assert 0.5 < np.mean(known == prefix) < 0.7
    assert all(np.mean(known == k) > 0.05 for k in range(prefix))
    # After it, each part hides runs of at least 2 codes (only a run cut by the window's end is
    # shorter), never nothing, and a share that follows the cosine schedule: runs only add to the
    # drawn share, so each quantile is at least the schedule's; shares range from a few codes to all.
    span = mask[:, prefix:].transpose(0, 2, 1).reshape(-1, n - prefix)
    for row in span:
        assert row.any()
        for start, length in _runs(row):
            assert length >= 2 or start + length == n - prefix, row
    share = span.mean(1)
    for q in (0.1, 0.25, 0.5, 0.75):
        assert np.quantile(share, q) >= math.cos(0.5 * math.pi * (1 - q)) - 1e-9, q
    assert share.mean() >= 2 / math.pi - 0.02  # the schedule's mean share
    assert share.min() <= 0.15 and share.max() == 1.0 and np.quantile(share, 0.1) < 0.45


def test_span_mask_hides_whole_parts_at_the_part_drop_rate():
    g = torch.Generator().manual_seed(1)
    assert span_mask(8, 20, prefix=4, part_drop=1.0, generator=g).all()
    for drop in (0.0, 0.3):
        mask = span_mask(400, 20, prefix=4, part_drop=drop, generator=g).numpy()
        whole = mask.all(1)  # (batch, parts): the part hidden from the first code to the last
        # Without part drop a whole part is hidden only when no prefix code is known and the drawn
        # share is all of the span: rare.
        assert (whole.mean() < 0.05) if drop == 0.0 else (0.25 < whole.mean() < 0.4), (drop, whole.mean())
        if drop:
            assert all(0.2 < whole[:, i].mean() < 0.45 for i in range(len(PARTS)))  # every part, independently
            assert whole.all(1).mean() < 0.05


def test_span_mask_is_repeatable_with_a_seeded_generator():
    a = span_mask(6, 20, prefix=4, generator=torch.Generator().manual_seed(5))
    b = span_mask(6, 20, prefix=4, generator=torch.Generator().manual_seed(5))
    c = span_mask(6, 20, prefix=4, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_a_tiny_generator_overfits_a_fixed_batch_and_fills_a_hidden_span_with_its_codes():
    config = tiny_config(d_model=32, lookahead=8, span_codes=8, prefix_codes=2)
    r, look, prefix = config.frames_per_code, config.lookahead, config.prefix_codes
    model = _model(1, config)
    gen = model.generator
    rng = np.random.default_rng(0)
    n, batch = config.span_codes + prefix, 2
    feats = torch.tensor(rng.standard_normal((batch, n * r + look, config.feature_dim)), dtype=torch.float32)
    style = torch.tensor([0, 1])
    codes = {p: torch.tensor(rng.integers(0, config.codebook_size, (batch, n))) for p in PARTS}
    every = torch.stack([codes[p] for p in PARTS], -1)
    apex = torch.zeros(batch, n * r)
    apex[:, [5, 17, 30]] = 1.0
    books = {p: w.detach() for p, w in model.codebooks().items()}
    optimizer = torch.optim.Adam(gen.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        hidden = span_mask(batch, n, prefix=prefix, generator=g)
        logits, apex_logits = gen(feats, style, books, every.masked_fill(hidden, -1), apex)
        loss = generator_losses(logits, codes, hidden, apex_logits, apex)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert window_ratio(losses, 10) < 0.2, (losses[:10], losses[-10:])  # 0.03 here
    # Everything after the prefix hidden, as generation starts a span: argmax gives the codes back.
    hidden = torch.zeros(batch, n, len(PARTS), dtype=torch.bool)
    hidden[:, prefix:] = True
    with torch.no_grad():
        logits, _ = gen.eval()(feats, style, books, every.masked_fill(hidden, -1), apex)
    for p in PARTS:
        assert torch.equal(logits[p].argmax(-1)[:, prefix:], codes[p][:, prefix:]), p
