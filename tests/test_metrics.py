"""BNN metrics: flip ratio of binary weights and the fraction of +1 outputs of binary activations."""
import numpy as np
import pytest
from scipy.stats import norm

from minibnn import Module, Parameter, Sequential, Tensor
from minibnn import metrics, quantizers


class BinaryLinear(Module):
    """A minimal quantized layer for tests, with the attribute names the metrics rely on."""

    def __init__(self, w, input_quantizer="ste_sign"):
        super().__init__()
        self.weight = Parameter(np.asarray(w, dtype=np.float64))
        self.kernel_quantizer = quantizers.get("ste_sign")
        self.input_quantizer = quantizers.get(input_quantizer)

    def forward(self, x):
        return self.input_quantizer(x) @ self.kernel_quantizer(self.weight).T


def test_flip_ratio_hand_worked_example():
    a = Parameter(np.array([0.5, -0.2, 0.0, -0.7]))  # signs + - + -
    b = Parameter(np.array([[1.0, 2.0], [-3.0, 4.0]]))  # signs + + - +
    flips = metrics.FlipRatio([a, b])
    a.data = np.array([-0.1, -0.3, 0.0, 0.4])  # + -> -, -, +, - -> + : 2 flips
    b.data = np.array([[1.0, -2.0], [-3.0, 4.0]])  # 1 flip
    assert flips.update() == pytest.approx(3 / 8)
    a.data = a.data - 1e-9  # the 0.0 entry becomes negative: sign(0) = +1 -> -1 is a flip
    assert flips.update() == pytest.approx(1 / 8)
    assert flips.update() == 0.0  # nothing moved
    assert flips.history == pytest.approx([3 / 8, 1 / 8, 0.0])
    assert flips.result() == pytest.approx(np.mean([3 / 8, 1 / 8, 0.0]))
    flips.reset()
    assert flips.history == [] and np.isnan(flips.result())


def test_flip_ratio_finds_quantized_layers_of_a_model_and_counts_ternary_values():
    rng = np.random.default_rng(0)
    model = Sequential(BinaryLinear(rng.normal(size=(3, 4))), BinaryLinear(rng.normal(size=(2, 3))))
    flips = metrics.FlipRatio(model)
    assert flips.names == ["0.weight", "1.weight"]
    model[1].weight.data = -model[1].weight.data  # all 6 of 18 flip
    assert flips.update() == pytest.approx(6 / 18)
    w = Parameter(np.array([0.01, 0.5, -0.5]))
    tern = metrics.FlipRatio([w], binarize=lambda v: quantizers.ste_tern(v, threshold_value=0.1).data)
    w.data = np.array([0.2, 0.5, -0.05])  # 0 -> +1 and -1 -> 0: two of three ternary values changed
    assert tern.update() == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="found no layer with a Parameter 'weight' and a 'kernel_quantizer'"):
        metrics.FlipRatio(Sequential(quantizers.SteSign()))


def test_plus_one_fraction_on_hooks_over_several_batches():
    rng = np.random.default_rng(1)
    model = Sequential(BinaryLinear(rng.normal(size=(3, 4))), BinaryLinear(rng.normal(size=(2, 3))))
    tracker = metrics.PlusOneFraction(model)
    assert list(tracker.counts) == ["0.input_quantizer", "1.input_quantizer"]  # kernel quantizers left out
    seen = {name: [] for name in tracker.counts}
    for _ in range(3):
        x = rng.normal(size=(5, 4))
        h = np.where(x >= 0, 1.0, -1.0)
        seen["0.input_quantizer"].append(h)
        seen["1.input_quantizer"].append(np.where(h @ np.where(model[0].weight.data >= 0, 1, -1).T >= 0, 1, -1))
        model(Tensor(x))
    for name, outputs in seen.items():
        assert tracker.fractions()[name] == pytest.approx(np.mean(np.concatenate(outputs) > 0))
    tracker.reset()
    assert all(np.isnan(f) for f in tracker.fractions().values())
    tracker.detach()
    model(Tensor(rng.normal(size=(2, 4))))
    assert tracker.counts["0.input_quantizer"] == [0, 0]


def test_shifted_threshold_unbalances_activations_as_kim_et_al_report():
    # For standard normal pre-activations, P(sign(x - t) = +1) = 1 - Φ(t); n = 40000 draws give a standard
    # error of at most sqrt(0.25 / n) = 0.0025, so 5 standard errors is 0.0125.
    rng = np.random.default_rng(2)
    n = 40000
    x = Tensor(rng.normal(size=(n // 4, 4)))
    layers = {t: quantizers.ShiftedThreshold("ste_sign", shift=t) for t in (0.0, 0.6, 1.2)}
    tracker = metrics.PlusOneFraction(list(layers.values()))
    for q in layers.values():
        q(x)
    for (t, q), fraction in zip(layers.items(), tracker.fractions().values()):
        assert abs(fraction - (1 - norm.cdf(t))) < 0.0125
    assert metrics.plus_one_fraction(quantizers.ste_heaviside(Tensor([-1.0, 0.0, 2.0, -3.0]))) == 0.5


def test_trainable_threshold_is_counted_once():
    model = Sequential(quantizers.TrainableThreshold(2), quantizers.get("dorefa"), quantizers.get("ss_t"))
    named = metrics.binary_activations(model)
    assert [n for n, _ in named] == ["0", "2"]  # not 0.quantizer (inside), not the 2-bit DoReFa
    with pytest.raises(ValueError, match="found no 1-bit activation quantizer"):
        metrics.PlusOneFraction(Sequential(quantizers.get("dorefa")))
