"""minibnn.deploy: a frozen, bit-packed model predicts exactly what the float model predicts in eval mode.

Models of minibnn.models (and variants: average pooling, zero padding, other norms, no norm, shifted sign
thresholds, weight scales) get random BatchNorm statistics with negative and zero γ, so that thresholds point
both ways and max-pools need min-pooling; logits must equal the float model's bit for bit (weight scales: to
float32 rounding, with the same predictions), on every kernel path, and after a save/load round trip.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import strategies
from minibnn import Module, Sequential, deploy, models, no_grad, xnor
from minibnn.layers import BatchNorm1d, BatchNorm2d, Linear
from minibnn.normalization import FixedScaleNorm
from minibnn.quantized import QuantConv2d, QuantLinear
from minibnn.quantizers import ShiftedThreshold, TrainableThreshold
from minibnn.theory import fold_bn_sign

KERNEL_PATHS = [p for p in ("avx512", "avx2", "neon", "scalar", "numpy") if p in xnor.available_paths()]


def randomize_norms(model, rng, integer_means=False):
    """Trained-looking norms: means, variances, γ (10% exactly 0, about half negative) and β drawn at random."""
    for m in model.modules():
        if isinstance(m, (BatchNorm1d, BatchNorm2d, FixedScaleNorm)):
            c = m.num_features
            m.running_mean[:] = np.round(rng.normal(0, 3, c)) if integer_means else rng.normal(0, 3, c)
            m.running_var[:] = rng.uniform(0.5, 20, c)
            if m.weight is not None:
                m.weight.data[:] = rng.normal(0, 1, c)
                m.weight.data[rng.random(c) < 0.1] = 0
                m.bias.data[:] = 0 if integer_means else rng.normal(0, 1, c)
    return model


def float_logits(model, x):
    with no_grad():
        return model.eval()(x).data


MODELS = {
    "bnn_mlp": (lambda rng: models.bnn_mlp(in_features=30, num_classes=7, hidden_units=70, rng=rng), (30,)),
    "two_layer_mlp": (lambda rng: models.two_layer_mlp(in_features=20, num_classes=5, hidden_units=130, rng=rng),
                      (20,)),
    "lenet5": (lambda rng: models.lenet5(in_channels=1, num_classes=10, image_size=14, width=0.5, rng=rng),
               (1, 14, 14)),
    "vgg_small": (lambda rng: models.vgg_small(in_channels=3, num_classes=10, image_size=8, width=1 / 8,
                                               fc_units=(40, 30), rng=rng), (3, 8, 8)),
    "vgg_small_avg_pool": (lambda rng: models.vgg_small(image_size=8, width=1 / 8, fc_units=(40,), pool="avg",
                                                        rng=rng), (3, 8, 8)),
    "vgg_small_zero_pad_fixed_norm": (lambda rng: models.vgg_small(image_size=8, width=1 / 8, fc_units=(40,),
                                                                   pad_values=0.0, norm="fixed", rng=rng), (3, 8, 8)),
    "vgg_small_minus_one_pad_centred": (lambda rng: models.vgg_small(image_size=8, width=1 / 8, fc_units=(40,),
                                                                     pad_values=-1.0, norm="centred", rng=rng),
                                        (3, 8, 8)),
    "mlp_no_norm_relu_head": (lambda rng: models.bnn_mlp(in_features=30, num_classes=7, hidden_units=70, norm="none",
                                                         bias_init="random_bias", head_activation="relu", rng=rng),
                              (30,)),
    "mlp_binary_classifier": (lambda rng: models.bnn_mlp(in_features=30, num_classes=7, hidden_units=70,
                                                         last_full_precision=False, rng=rng), (30,)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@settings(max_examples=3)
@given(seed=st.integers(0, 2**16), batch=st.integers(1, 12))
def test_packed_model_gives_the_float_model_logits(name, seed, batch):
    make, shape = MODELS[name]
    rng = np.random.default_rng(seed)
    model = randomize_norms(make(rng), rng)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    packed = deploy.freeze(model.train(), shape)
    assert model.training and all(m.training for m in model.modules())       # modes restored
    for key, value in model.state_dict().items():                          # nothing changed, stats included
        np.testing.assert_array_equal(value, before[key])
    x = (rng.standard_normal((batch,) + shape) * rng.uniform(0.1, 3)).astype(np.float32)
    np.testing.assert_array_equal(packed(x), float_logits(model, x))
    np.testing.assert_array_equal(packed.predict(x), float_logits(model, x).argmax(axis=1))


@settings(max_examples=8)
@given(x=strategies.arrays((6, 30), -3, 3), seed=st.integers(0, 2**16))
def test_mlp_on_drawn_inputs_and_exact_ties(x, seed):
    """Integer running means and β = 0 put BN(s) = 0 exactly on reachable dot products: sign(0) = +1 must hold."""
    rng = np.random.default_rng(seed)
    model = randomize_norms(models.bnn_mlp(in_features=30, num_classes=7, hidden_units=64, rng=rng), rng,
                            integer_means=True)
    packed = deploy.freeze(model, (30,))
    np.testing.assert_array_equal(packed(x), float_logits(model, x.astype(np.float32)))
    x[0, 3] = np.nan      # a NaN input: sign(NaN) = +1 in the float model, and so in the packed one
    np.testing.assert_array_equal(packed(x), float_logits(model, x.astype(np.float32)))


def test_every_kernel_path_gives_the_same_logits():
    rng = np.random.default_rng(1)
    model = randomize_norms(models.vgg_small(image_size=8, width=1 / 8, fc_units=(40,), rng=rng), rng)
    packed = deploy.freeze(model, (3, 8, 8))
    # the float first layer, then its BatchNorm and the sign folded into per-channel thresholds: bits from there
    assert [s.kind for s in packed.stages][:3] == ["float", "pack_signs", "binary_conv"]
    x = rng.standard_normal((5, 3, 8, 8)).astype(np.float32)
    reference = float_logits(model, x)
    for path in KERNEL_PATHS:
        with xnor.use_path(path):
            np.testing.assert_array_equal(packed(x), reference, err_msg=path)


@pytest.mark.parametrize("weight_scale", ["xnor", "trainable"])
def test_weight_scales_agree_to_float_rounding(weight_scale):
    rng = np.random.default_rng(2)
    model = randomize_norms(models.vgg_small(image_size=8, width=1 / 8, fc_units=(40,), weight_scale=weight_scale,
                                             rng=rng), rng)
    if weight_scale == "trainable":
        for m in model.modules():
            if isinstance(m, QuantConv2d):
                m.alpha.data[::3] *= -1     # negative scales flip the signs the kernel packs
    packed = deploy.freeze(model, (3, 8, 8))
    x = rng.standard_normal((20, 3, 8, 8)).astype(np.float32)
    reference = float_logits(model, x)
    np.testing.assert_allclose(packed(x), reference, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(packed.predict(x), reference.argmax(axis=1))


def test_shifted_sign_thresholds_are_folded():
    rng = np.random.default_rng(3)
    model = randomize_norms(models.vgg_small(image_size=8, width=1 / 8, fc_units=(40,), rng=rng), rng)
    binary = [m for m in model if isinstance(m, (QuantConv2d, QuantLinear)) and m.is_binary]
    binary[0].input_quantizer = ShiftedThreshold("ste_sign", rng.normal(0, 0.5, binary[0].in_channels))  # float -> bits
    binary[1].input_quantizer = TrainableThreshold(binary[1].in_channels, init=rng.normal(0, 0.5,
                                                                                          binary[1].in_channels))
    binary[-1].input_quantizer = ShiftedThreshold("approx_sign", 0.3)                       # after the Flatten
    packed = deploy.freeze(model, (3, 8, 8))
    x = rng.standard_normal((7, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(packed(x), float_logits(model, x))


def test_thresholds_are_sari_eq2_where_no_float_tie_is_near():
    """The threshold found on the float32 model equals theory.fold_bn_sign's exact one (Sari et al. 2019, eq. 2,
    corrected) wherever no integer s lies within float rounding of τ = μ - σβ/γ."""
    rng = np.random.default_rng(4)
    model = randomize_norms(models.bnn_mlp(in_features=30, num_classes=7, hidden_units=200, num_hidden=3, rng=rng),
                            rng)
    packed = deploy.freeze(model, (30,))
    layer, bn = model[3], model[4]
    stage = next(s for s in packed.stages if isinstance(s, deploy.BinaryDense) and s.emits_bits)
    gamma, beta = bn.weight.data.astype(np.float64), bn.bias.data.astype(np.float64)
    std = np.sqrt(bn.running_var.astype(np.float64) + bn.eps)
    exact = fold_bn_sign(gamma, beta, bn.running_mean, std)
    tau = bn.running_mean - std * beta / np.where(gamma == 0, 1, gamma)
    k = layer.in_features
    clear = (gamma != 0) & (np.abs(tau - np.round(tau)) > 1e-3) & (np.abs(tau) < k)
    assert clear.sum() > 100
    np.testing.assert_array_equal(stage.threshold[clear], exact.threshold[clear])
    np.testing.assert_array_equal(stage.direction[clear], exact.direction[clear])
    assert np.any(stage.direction == -1)


def test_save_load_round_trip_is_bit_exact_and_atomic(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    model = randomize_norms(models.lenet5(image_size=14, width=0.5, rng=rng), rng)
    packed = deploy.freeze(model, (1, 14, 14))
    path = tmp_path / "lenet.npz"
    packed.save(path)
    loaded = deploy.load(path)
    x = rng.standard_normal((9, 1, 14, 14)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), packed(x))
    assert repr(loaded) == repr(packed)
    for a, b in zip(packed.stages, loaded.stages):
        assert a.config() == b.config() and sorted(a.arrays()) == sorted(b.arrays())
        for name in a.arrays():
            assert a.arrays()[name].dtype == b.arrays()[name].dtype
            np.testing.assert_array_equal(a.arrays()[name], b.arrays()[name])
    with np.load(path, allow_pickle=False) as data:          # a plain .npz, nothing pickled
        assert "__metadata__" in data.files
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        packed.save(path)
    assert path.read_bytes() == before                        # the previous file is untouched
    assert os.listdir(tmp_path) == ["lenet.npz"]              # and no temporary file is left behind
    monkeypatch.undo()
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        deploy.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a packed model"):
        deploy.load(tmp_path / "other.npz")


def test_size_report_packed_binary_layers_are_at_most_a_25th(capsys):
    rng = np.random.default_rng(6)
    model = models.bnn_mlp(in_features=64, num_classes=10, hidden_units=512, rng=rng)
    packed = deploy.freeze(model, (64,))
    report = packed.size_report()
    printed = capsys.readouterr().out
    assert "all binary layers" in printed and "whole model" in printed
    assert report.binary_float32_bytes == 2 * 512 * 512 * 4
    assert report.binary_ratio <= 1 / 25
    assert report.packed_total == packed.packed_bytes() < report.float_total


class Custom(Module):
    def forward(self, x):
        return x


def test_errors_name_the_problem():
    with pytest.raises(deploy.FreezeError, match="expected a Sequential model.*_ResNet"):
        deploy.freeze(models.bireal_resnet(image_size=8, channels=(4,), convs_per_stage=1), (3, 8, 8))
    with pytest.raises(deploy.FreezeError, match=r"layer 1 \(Custom\) is not supported"):
        deploy.freeze(Sequential(Linear(4, 3), Custom()), (4,))
    with pytest.raises(deploy.FreezeError, match="must be float32"):
        deploy.freeze(models.bnn_mlp(in_features=8, hidden_units=8, dtype=np.float64), (8,))
    with pytest.raises(ValueError, match="input_shape must be the shape of one sample"):
        deploy.freeze(models.bnn_mlp(in_features=8, hidden_units=8), 8)
    with pytest.raises(deploy.FreezeError, match="is input_shape=.*right"):
        deploy.freeze(models.bnn_mlp(in_features=8, hidden_units=8), (9,))
    with pytest.raises(deploy.FreezeError, match=r"layer 2 \(QuantConv2d\) pads with 0.5"):
        deploy.freeze(models.vgg_small(image_size=8, width=1 / 16, fc_units=(8,), pad_values=0.5), (3, 8, 8))
    heaviside = models.bnn_mlp(in_features=8, hidden_units=8, input_quantizer="ste_heaviside")
    with pytest.raises(deploy.FreezeError, match="input quantizer of layer 3"):
        deploy.freeze(heaviside, (8,))
    packed = deploy.freeze(models.bnn_mlp(in_features=8, hidden_units=8), (8,))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 8\)"):
        packed(np.zeros((2, 9), np.float32))


def test_nan_follows_the_models_input_quantizer(tmp_path):
    """A NaN input gives whatever the model's sign gives: +1 with minibnn's quantizers (the convention of
    minibnn.xnor.packing, bit = x < 0) or -1 with a custom sign computed as x >= 0; the packed model records
    which (PackSigns.nan_plus, saved and loaded)."""
    from minibnn import Tensor

    class SignNanMinus(Module):                      # sign with NaN -> -1: x >= 0
        name, precision = "sign_nan_minus", 1

        def forward(self, t):
            return Tensor(np.where(t.data >= 0, 1.0, -1.0).astype(t.data.dtype))

    for nan_plus in (False, True):
        rng = np.random.default_rng(8)
        model = randomize_norms(models.vgg_small(image_size=8, width=1 / 8, fc_units=(40,), rng=rng), rng)
        if not nan_plus:
            for m in model.modules():
                if isinstance(m, (QuantConv2d, QuantLinear)) and m.input_quantizer is not None:
                    m.input_quantizer = SignNanMinus()
        packed = deploy.freeze(model, (3, 8, 8))
        assert [s.nan_plus for s in packed.stages if isinstance(s, deploy.PackSigns)] == [nan_plus]
        x = rng.standard_normal((6, 3, 8, 8)).astype(np.float32)
        x[0, :, 2, 3] = np.nan
        x[3] = np.nan
        np.testing.assert_array_equal(packed(x), float_logits(model, x))
        packed.save(tmp_path / "m.npz")
        np.testing.assert_array_equal(deploy.load(tmp_path / "m.npz")(x), float_logits(model, x))


def test_freeze_refuses_same_padding_naming_the_layer():
    from minibnn.nn import Conv2d, Flatten, Linear, Sequential
    model = Sequential(Conv2d(1, 2, 3, padding="same"), Flatten(), Linear(2 * 5 * 5, 3))
    with pytest.raises(deploy.FreezeError, match=r"layer 0 \(Conv2d\) pads 'same'.*padding=k // 2"):
        deploy.freeze(model, (1, 5, 5))
