"""Choosing codes from logits (known values), MaskGIT's schedule of decoding passes, plan and style guidance."""
import math

import numpy as np
import pytest

from gestura.inference.sampling import MAX_SEED, PASSES, check_seed, guided, part_rngs, sample_codes, still_hidden

# Three codes with probabilities 0.5, 0.3 and 0.2 under softmax(logits), at every position.
P = np.array([0.5, 0.3, 0.2])
LOGITS = np.tile(np.log(P) + 1.7, (200, 1))


def _uniforms(seed, n):
    return np.random.default_rng(seed).random(n)


def test_temperature_zero_takes_the_argmax_and_its_probability():
    logits = np.array([[1.0, 3.0, 2.0], [0.0, 0.0, -1.0], [-5.0, -6.0, -4.0]])
    rng = np.random.default_rng(0)
    codes, confidence = sample_codes(logits, rng, 0.0)
    assert codes.tolist() == [1, 0, 2] and codes.dtype == np.int64  # a tie goes to the lowest index
    expected = [math.e ** 3 / (math.e + math.e ** 3 + math.e ** 2), 1 / (2 + math.exp(-1)),
                math.exp(-4) / (math.exp(-5) + math.exp(-6) + math.exp(-4))]
    np.testing.assert_allclose(confidence, expected, rtol=1e-12)
    assert rng.random() == np.random.default_rng(0).random()  # nothing drawn


def test_a_draw_follows_the_cumulative_distribution_of_its_uniform():
    codes, confidence = sample_codes(LOGITS, np.random.default_rng(3), 1.0)
    u = _uniforms(3, len(LOGITS))
    np.testing.assert_array_equal(codes, np.where(u < 0.5, 0, np.where(u < 0.8, 1, 2)))
    np.testing.assert_allclose(confidence, P[codes], rtol=1e-12)
    # Temperature 2 flattens the distribution to sqrt(p), renormalised.
    flat = np.sqrt(P) / np.sqrt(P).sum()
    codes, confidence = sample_codes(LOGITS, np.random.default_rng(3), 2.0)
    np.testing.assert_array_equal(codes, np.where(u < flat[0], 0, np.where(u < flat[:2].sum(), 1, 2)))
    np.testing.assert_allclose(confidence, P[codes], rtol=1e-12)  # the model's probability, not the tempered one


def test_top_k_and_top_p_keep_the_most_likely_codes():
    u = _uniforms(4, len(LOGITS))
    two = np.where(u < 0.5 / 0.8, 0, 1)  # codes 0 and 1, renormalised to 0.625 and 0.375
    for kwargs in ({"top_k": 2}, {"top_p": 0.6}, {"top_k": 2, "top_p": 0.9}):
        codes, confidence = sample_codes(LOGITS, np.random.default_rng(4), 1.0, **kwargs)
        np.testing.assert_array_equal(codes, two, err_msg=str(kwargs))
        np.testing.assert_allclose(confidence, P[codes], rtol=1e-12)
    # top_p keeps each code whose higher-ranked codes hold less than top_p: at 0.45 only code 0.
    for temperature, kwargs in ((1.0, {"top_p": 0.45}), (1.3, {"top_k": 1}), (1.3, {"top_p": 1e-6})):
        codes, confidence = sample_codes(LOGITS, np.random.default_rng(4), temperature, **kwargs)
        assert np.all(codes == 0), kwargs
        np.testing.assert_allclose(confidence, 0.5, rtol=1e-12)
    # top_k 1 at any temperature is the argmax with the argmax's confidence.
    logits = np.random.default_rng(5).normal(0, 2, (50, 16))
    for temperature in (0.3, 1.0, 4.0):
        sampled = sample_codes(logits, np.random.default_rng(6), temperature, top_k=1)
        argmax = sample_codes(logits, np.random.default_rng(6), 0.0)
        np.testing.assert_array_equal(sampled[0], argmax[0])
        np.testing.assert_array_equal(sampled[1], argmax[1])


def test_a_fixed_stream_repeats_its_codes_and_advances_by_one_draw_per_position():
    logits = np.random.default_rng(7).normal(0, 1, (30, 16))
    a = sample_codes(logits, np.random.default_rng(8), 0.9)
    b = sample_codes(logits, np.random.default_rng(8), 0.9)
    c = sample_codes(logits, np.random.default_rng(9), 0.9)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    for kwargs in ({}, {"top_k": 3}, {"top_p": 0.7}):
        rng = np.random.default_rng(10)
        sample_codes(logits, rng, 0.9, **kwargs)
        after = np.random.default_rng(10)
        after.random(30)
        assert rng.random() == after.random(), kwargs
    assert sample_codes(np.zeros((0, 16)), np.random.default_rng(0), 0.9)[0].shape == (0,)


def test_a_temperature_per_position_takes_the_argmax_where_it_is_zero_and_draws_elsewhere():
    logits = np.random.default_rng(11).normal(0, 1, (40, 16))
    temperature = np.where(np.arange(40) % 3 == 0, 0.0, 0.9)
    mixed = sample_codes(logits, np.random.default_rng(12), temperature)
    drawn = sample_codes(logits, np.random.default_rng(12), 0.9)
    argmax = sample_codes(logits, np.random.default_rng(12), 0.0)
    zero = temperature == 0
    np.testing.assert_array_equal(mixed[0][zero], argmax[0][zero])
    np.testing.assert_array_equal(mixed[0][~zero], drawn[0][~zero])  # the same uniforms, one per position
    # Every position at 0 still takes its uniforms: the draws after a pause are those without it.
    rng = np.random.default_rng(12)
    np.testing.assert_array_equal(sample_codes(logits, rng, np.zeros(40))[0], argmax[0])
    after = np.random.default_rng(12)
    after.random(40)
    assert rng.random() == after.random()
    # Truncation applies to the drawn positions alone.
    mixed = sample_codes(logits, np.random.default_rng(12), temperature, top_k=1)
    np.testing.assert_array_equal(mixed[0], argmax[0])


def test_seeds_are_the_whole_numbers_the_blender_panel_takes():
    assert check_seed(0) == 0 and check_seed(np.int64(MAX_SEED)) == MAX_SEED == 2**31 - 1
    for bad in (-1, MAX_SEED + 1, 2**32, 1.5, True, "3"):
        with pytest.raises(ValueError, match="is out of range: use a whole number from 0 to 2147483647"):
            check_seed(bad)
    # Every seed of that range draws its own codes (2^32 used to draw seed 0's, silently).
    assert part_rngs(MAX_SEED)["upper"].random() != part_rngs(0)["upper"].random()


def test_each_part_has_its_own_stream_whatever_parts_are_on():
    every = part_rngs(11)
    some = part_rngs(11, ("hands",))
    assert set(some) == {"hands"} and every["hands"].random() == some["hands"].random()
    assert part_rngs(11)["face"].random() != part_rngs(11)["upper"].random()


def test_plan_guidance_moves_the_logits_away_from_those_of_an_empty_plan_by_its_strength():
    planned, unplanned = np.array([1.0, 3.0]), np.array([2.0, 2.0])
    np.testing.assert_array_equal(guided(planned, unplanned, 0.0), unplanned)
    np.testing.assert_array_equal(guided(planned, unplanned, 1.0), planned)
    np.testing.assert_array_equal(guided(planned, unplanned, 2.5), [-0.5, 4.5])


def test_style_guidance_moves_the_speaker_embedding_away_from_the_mean_by_its_strength():
    speaker, mean = np.array([1.0, 3.0], np.float32), np.array([2.0, 2.0], np.float32)
    np.testing.assert_array_equal(guided(speaker, mean, 0.0), mean)
    assert guided(speaker, mean, 1.0) is speaker  # as trained, with no rounding through the mean
    np.testing.assert_array_equal(guided(speaker, mean, 2.5), [-0.5, 4.5])
    torch = pytest.importorskip("torch")
    assert torch.equal(guided(torch.tensor(speaker), torch.tensor(mean), 2.5), torch.tensor([-0.5, 4.5]))


def test_still_hidden_follows_the_cosine_schedule_and_ends_at_zero():
    assert PASSES == 8
    assert [still_hidden(16, done, passes=4) for done in range(6)] == [16, 14, 11, 6, 0, 0]  # floor(16 cos(pi/2 done/4))
    assert [still_hidden(16, done) for done in range(10)] == [16, 15, 14, 13, 11, 8, 6, 3, 0, 0]
    for hidden in range(0, 41):
        counts = [still_hidden(hidden, done) for done in range(PASSES + 1)]
        assert counts[0] == hidden and counts[-1] == 0
        assert all(a >= b for a, b in zip(counts, counts[1:])), counts
        assert hidden == 0 or counts[1] < hidden  # the first pass always fixes a code
    assert [still_hidden(10, done, passes=2) for done in range(3)] == [10, 7, 0]
