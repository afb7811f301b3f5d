"""The moving average of the weights that ``--ema`` exports (training/ema.py)."""
import pytest

torch = pytest.importorskip("torch")

from gestura.training.ema import ParameterEMA, saved_decay


def line(weight: float) -> torch.nn.Linear:
    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(weight)
    return layer


def test_the_average_follows_the_warmed_up_decay_by_hand():
    layer = line(0.0)
    ema = ParameterEMA(layer, 0.5)
    expected = 0.0
    for n, w in enumerate([1.0, 2.0, 4.0, 8.0]):
        with torch.no_grad():
            layer.weight.fill_(w)
        decay = min(0.5, (1 + n) / (10 + n))  # 0.1, 0.18.., 0.25, 0.3: the warm-up, then 0.5 would cap it
        ema.update(layer)
        expected = decay * expected + (1 - decay) * w
        assert float(ema.shadow["weight"]) == pytest.approx(expected, rel=1e-6)
    assert ema.updates == 4
    assert ema.current_decay() == pytest.approx(min(0.5, 5 / 14))


def test_applied_lends_the_average_and_puts_the_weights_back_even_after_an_error():
    layer = line(3.0)
    ema = ParameterEMA(layer, 0.9)
    with torch.no_grad():
        layer.weight.fill_(5.0)
    with pytest.raises(RuntimeError):
        with ema.applied(layer):
            assert float(layer.weight) == 3.0
            raise RuntimeError("export failed")
    assert float(layer.weight) == 5.0


def test_frozen_parameters_are_not_averaged():
    model = torch.nn.Sequential(line(1.0), line(2.0))
    model[0].weight.requires_grad_(False)
    ema = ParameterEMA(model, 0.9)
    assert list(ema.shadow) == ["1.weight"]


def test_the_state_round_trip_carries_the_average_and_its_count():
    layer = line(0.0)
    ema = ParameterEMA(layer, 0.99)
    for w in (1.0, 2.0, 3.0):
        with torch.no_grad():
            layer.weight.fill_(w)
        ema.update(layer)
    again = ParameterEMA(line(7.0), 0.99)
    assert again.load_state_tensors(ema.state_tensors())
    assert again.updates == 3 and torch.equal(again.shadow["weight"], ema.shadow["weight"])
    assert saved_decay(ema.state_tensors()) == 0.99
    # A state without an average (a run without --ema) leaves it as it was.
    fresh = ParameterEMA(line(7.0), 0.99)
    assert not fresh.load_state_tensors({"since_reset.upper": torch.zeros(4)})
    assert fresh.updates == 0 and float(fresh.shadow["weight"]) == 7.0
    assert saved_decay({"since_reset.upper": torch.zeros(4)}) is None


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_a_decay_outside_zero_one_is_refused(decay):
    with pytest.raises(ValueError, match="outside"):
        ParameterEMA(line(0.0), decay)
