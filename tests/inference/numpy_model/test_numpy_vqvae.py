"""numpy_model.vqvae against torch_model.vqvae on the same weights, 4 and 1 frames per code."""
from __future__ import annotations

import numpy as np
import pytest

from gestura.rigs.skeleton import PART_DIMS, PARTS

from model_pair import assert_close, model_pair

torch = pytest.importorskip("torch")


@pytest.fixture(params=[4, 1], ids=["r4", "r1"])
def pair(request):
    return model_pair(request.param)


def test_encode_gives_the_torch_codes(pair):
    model, numpy_model = pair
    rng = np.random.default_rng(1)
    r = model.config.frames_per_code
    for part in PARTS:
        x = rng.normal(size=(24 * r, PART_DIMS[part])).astype(np.float32)
        with torch.no_grad():
            z = model.vq[part].encode(torch.from_numpy(x)[None])[0].numpy()
            codes = model.vq[part].encode_codes(torch.from_numpy(x)[None])[0].numpy()
        assert_close(numpy_model.vq[part].encode(x), z)
        np.testing.assert_array_equal(numpy_model.vq[part].encode_codes(x), codes)
        assert len(set(codes.tolist())) > 3  # the test sees several codes, not one


def test_encode_refuses_frames_that_do_not_make_whole_codes():
    _, numpy_model = model_pair(4)
    with pytest.raises(ValueError, match="7 frames do not make whole codes of 4 frames"):
        numpy_model.vq["face"].encode(np.zeros((7, PART_DIMS["face"]), np.float32))


def test_decode_in_two_pieces_with_carried_state_equals_whole_and_torch(pair):
    model, numpy_model = pair
    rng = np.random.default_rng(2)
    r = model.config.frames_per_code
    for part in PARTS:
        codes = rng.integers(0, model.config.codebook_size, 13)
        with torch.no_grad():
            expected, _ = model.vq[part].decode_codes(torch.from_numpy(codes)[None])
        whole, _ = numpy_model.vq[part].decode_codes(codes)
        assert whole.shape == (13 * r, PART_DIMS[part])
        assert_close(whole, expected[0].numpy())
        first, state = numpy_model.vq[part].decode_codes(codes[:5])
        rest, _ = numpy_model.vq[part].decode_codes(codes[5:], state)
        np.testing.assert_allclose(np.concatenate([first, rest]), whole, rtol=0, atol=1e-5)


def test_global_motion_predictor_matches_torch_in_pieces(pair):
    model, numpy_model = pair
    lower = np.random.default_rng(3).normal(size=(30, PART_DIMS["lower"])).astype(np.float32)
    with torch.no_grad():
        expected, _ = model.gmp(torch.from_numpy(lower)[None])
    whole, _ = numpy_model.gmp(lower)
    assert whole.shape == (30, 3)
    assert_close(whole, expected[0].numpy())
    first, state = numpy_model.gmp(lower[:11])
    rest, _ = numpy_model.gmp(lower[11:], state)
    np.testing.assert_allclose(np.concatenate([first, rest]), whole, rtol=0, atol=1e-5)
