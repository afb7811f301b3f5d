"""Stage 1: each part's VQ-VAE (one code per r frames) and the global motion predictor overfit a
tiny procedural set; codes are causal in time and decode in pieces exactly as whole."""
import numpy as np
import pytest
torch = pytest.importorskip("torch")

from gestura.inference.config import ModelConfig
from gestura.inference.parts import motion_to_parts
from gestura.inference.torch_model.vqvae import GlobalMotionPredictor, PartVQVAE
from gestura.rigs.skeleton import PART_DIMS, PARTS
from loss_windows import window_ratio
from test_parts import procedural_motion

torch.set_num_threads(1)
CONFIG = ModelConfig(name="tiny", code_dim=8, codebook_size=32, vq_hidden=32, gmp_hidden=16, gmp_layers=1,
                     vq_layers={"face": 1, "upper": 1, "hands": 1, "lower": 2})
FRAMES_PER_CODE = (1, 4)  # one code per frame (the old layout) and the shipped 4


@pytest.fixture(scope="module")
def data():
    """Two procedural clips in BEAT2 layout, as normalised part features (B=2, T=48)."""
    parts = [motion_to_parts(procedural_motion(48, seed=s)) for s in (0, 1)]
    out = {}
    for part in PARTS:
        x = np.stack([p[part] for p in parts])
        mean, std = x.reshape(-1, x.shape[-1]).mean(0), x.reshape(-1, x.shape[-1]).std(0) + 1e-3
        out[part] = torch.tensor((x - mean) / std, dtype=torch.float32)
    return out


@pytest.mark.parametrize("r", FRAMES_PER_CODE)
@pytest.mark.parametrize("part", PARTS)
def test_part_vqvae_overfits_and_decodes_its_codes(part, r, data):
    torch.manual_seed(0)
    x = data[part]
    model = PartVQVAE(part, CONFIG.with_(frames_per_code=r))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(300):
        out = model(x)
        loss = torch.nn.functional.mse_loss(out["recon"], x) + out["vq_loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert out["recon"].shape == x.shape == (2, 48, PART_DIMS[part])
    # The last 10 steps against the first 10, seeds 0-2 on one machine: face 0.36-0.39 (its
    # features are the hardest to compress into 32 codes), the others 0.05-0.11 at r = 1 and
    # 0.07-0.29 at r = 4 (4 times fewer codes for the same motion).
    assert window_ratio(losses, 10) < (0.6 if part == "face" else 0.45), (losses[:10], losses[-10:])
    with torch.no_grad():
        codes = model.encode_codes(x)
        assert codes.shape == (2, 48 // r) and codes.dtype == torch.long
        assert len(torch.unique(codes)) > 1  # more than one code in use
        # The inference path (codes -> decoder) reproduces the training reconstruction exactly.
        decoded, _ = model.decode_codes(codes)
        assert decoded.shape == x.shape
        assert torch.allclose(decoded, model(x)["recon"], atol=1e-5)
        assert torch.nn.functional.mse_loss(decoded, x).item() < 0.5  # 0.03-0.38 here
        # Encoding the same input again gives the same codes (nearest neighbour is deterministic).
        assert torch.equal(model.encode_codes(x), codes)


def test_straight_through_gradient_reaches_the_encoder(data):
    torch.manual_seed(0)
    model = PartVQVAE("upper", CONFIG)
    out = model(data["upper"])
    torch.nn.functional.mse_loss(out["recon"], data["upper"]).backward()
    assert model.encoder.proj_in.weight.grad.abs().sum() > 0
    assert model.codebook.weight.grad is None or model.codebook.weight.grad.abs().sum() == 0
    out = model(data["upper"])
    model.zero_grad()
    out["vq_loss"].backward()
    assert model.codebook.weight.grad.abs().sum() > 0


def test_codes_swapped_for_the_decoder_teach_neither_the_codebook_nor_the_encoder(data):
    # --code-noise: the decoder reads other codes; only vq_loss may move the codebook.
    torch.manual_seed(0)
    model = PartVQVAE("upper", CONFIG)
    out = model(data["upper"], swap=lambda codes: (codes + 1) % CONFIG.codebook_size)
    torch.nn.functional.mse_loss(out["recon"], data["upper"]).backward()
    assert model.decoder.proj_in.weight.grad.abs().sum() > 0
    for weight in (model.codebook.weight, model.encoder.proj_in.weight):
        assert weight.grad is None or weight.grad.abs().sum() == 0


@pytest.mark.parametrize("r", FRAMES_PER_CODE)
def test_decoder_streams_with_carried_state(r):
    torch.manual_seed(0)
    model = PartVQVAE("lower", CONFIG.with_(frames_per_code=r)).double().eval()
    codes = torch.randint(0, CONFIG.codebook_size, (1, 40))
    with torch.no_grad():
        whole, _ = model.decode_codes(codes)
        state, pieces = None, []
        for lo, hi in ((0, 1), (1, 9), (9, 10), (10, 40)):
            y, state = model.decode_codes(codes[:, lo:hi], state)
            pieces.append(y)
    assert whole.shape == (1, 40 * r, PART_DIMS["lower"])
    assert torch.allclose(torch.cat(pieces, 1), whole, atol=1e-10)


@pytest.mark.parametrize("r", FRAMES_PER_CODE)
def test_decoded_frame_depends_only_on_codes_up_to_its_own(r):
    """Frame t is decoded from codes <= t // r: changing code k leaves frames < r k exactly as
    they were and changes the frames of code k."""
    torch.manual_seed(0)
    model = PartVQVAE("upper", CONFIG.with_(frames_per_code=r)).double().eval()
    codes = torch.randint(0, CONFIG.codebook_size, (1, 12))
    with torch.no_grad():
        before, _ = model.decode_codes(codes)
        for k in (0, 5, 11):
            changed = codes.clone()
            changed[0, k] = (changed[0, k] + 1) % CONFIG.codebook_size
            after, _ = model.decode_codes(changed)
            assert torch.equal(after[:, :r * k], before[:, :r * k]), k
            assert not torch.allclose(after[:, r * k:r * (k + 1)], before[:, r * k:r * (k + 1)]), k


@pytest.mark.parametrize("r", FRAMES_PER_CODE)
def test_code_depends_only_on_frames_up_to_its_last(r, data):
    """Code k is encoded from frames < r (k + 1): a change from frame r k on leaves the latents
    of the codes before k exactly as they were."""
    torch.manual_seed(0)
    model = PartVQVAE("hands", CONFIG.with_(frames_per_code=r)).double().eval()
    x = data["hands"][:1].double()
    with torch.no_grad():
        before = model.encode(x)
        assert before.shape == (1, 48 // r, CONFIG.code_dim)
        k = 5
        changed = x.clone()
        changed[:, r * k:] += 1.0
        after = model.encode(changed)
    assert torch.equal(after[:, :k], before[:, :k])
    assert not torch.allclose(after[:, k], before[:, k])


def test_encoder_refuses_frames_that_do_not_make_whole_codes(data):
    model = PartVQVAE("face", CONFIG.with_(frames_per_code=4))
    with pytest.raises(ValueError, match="46 frames do not make whole codes of 4 frames"):
        model.encode_codes(data["face"][:, :46])
    with pytest.raises(ValueError, match="do not make whole codes"):
        model(data["face"][:, :45])
    # One frame per code takes any length.
    assert PartVQVAE("face", CONFIG.with_(frames_per_code=1)).encode_codes(data["face"][:, :45]).shape == (2, 45)


def test_global_motion_predictor_learns_root_motion(data):
    torch.manual_seed(0)
    lower = data["lower"]
    target = lower[..., 54:57]
    gmp = GlobalMotionPredictor(CONFIG)
    optimizer = torch.optim.Adam(gmp.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        pred, _ = gmp(lower)
        loss = torch.nn.functional.l1_loss(pred, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert window_ratio(losses, 10) < 0.5, (losses[:10], losses[-10:])  # 0.034 here
    # It reads rotations and contacts only: the root channels themselves are not an input.
    changed = lower.clone()
    changed[..., 54:57] = 0
    assert torch.equal(gmp(changed)[0], gmp(lower)[0])
