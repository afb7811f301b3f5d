"""numpy_model.layers against torch's layers on the same weights."""
from __future__ import annotations

import numpy as np
import pytest

from gestura.inference.numpy_model.layers import ConvStack, Downsample, Upsample

from model_pair import assert_close

torch = pytest.importorskip("torch")


def _tensors(module, prefix):
    return {f"{prefix}.{k}": v.detach().numpy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("rate", [1, 3, 4])
def test_strided_down_and_up_sampling_match_torch_conv_and_transposed_conv(rate):
    torch.manual_seed(rate)
    down, up = torch.nn.Conv1d(5, 7, rate, stride=rate), torch.nn.ConvTranspose1d(7, 5, rate, stride=rate)
    x = torch.randn(2, 6 * rate, 5)
    with torch.no_grad():
        z = down(x.transpose(1, 2)).transpose(1, 2)
        y = up(z.transpose(1, 2)).transpose(1, 2)
    np_down, np_up = Downsample(_tensors(down, "down"), "down"), Upsample(_tensors(up, "up"), "up")
    assert_close(np_down(x.numpy()), z.numpy())  # with a batch axis
    assert_close(np_down(x[0].numpy()), z[0].numpy())  # and without
    assert_close(np_up(z.numpy()), y.numpy())
    assert_close(np_up(z[1].numpy()), y[1].numpy())
    with pytest.raises(ValueError, match="whole codes"):
        if rate > 1:
            np_down(x[0, :rate + 1].numpy())
        else:
            raise ValueError("whole codes: every length is whole at one frame per code")


def test_conv_stack_in_pieces_equals_whole_and_torch():
    from gestura.inference.torch_model.layers import ConvStack as TorchConvStack

    torch.manual_seed(0)
    net = TorchConvStack(6, 16, 4, layers=2)
    x = torch.randn(1, 50, 6)
    with torch.no_grad():
        expected, _ = net(x)
    stack = ConvStack(_tensors(net, "net"), "net", 2)
    whole, _ = stack(x[0].numpy())
    assert_close(whole, expected[0].numpy())
    state, pieces = None, []
    for lo, hi in ((0, 1), (1, 2), (2, 20), (20, 50)):
        y, state = stack(x[0, lo:hi].numpy(), state)
        pieces.append(y)
    np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=0, atol=1e-5)


def test_activations_match_torch_over_the_whole_float32_range_without_warnings():
    from gestura.inference.numpy_model.layers import sigmoid, silu, softplus

    x = np.concatenate([np.linspace(-100, 100, 20001), [-3e38, -1e4, 1e4, 3e38]]).astype(np.float32)
    t = torch.from_numpy(x)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # numpy would warn the user
        got = {"softplus": softplus(x), "sigmoid": sigmoid(x), "silu": silu(x[np.abs(x) < 1e4])}
    expected = {"softplus": torch.nn.functional.softplus(t), "sigmoid": torch.sigmoid(t),
                "silu": torch.nn.functional.silu(t[t.abs() < 1e4])}
    for name, value in got.items():
        assert value.dtype == np.float32, name
        np.testing.assert_allclose(value, expected[name].numpy(), rtol=1e-6, atol=1e-6, err_msg=name)
