"""Tests of minibnn.models: every builder builds and runs forward and backward at a tiny size with every
normalisation; the layout (full-precision first and last layers, binary hidden layers, widths, the norms'
constants, Bi-Real shortcuts); option errors; and one epoch of training a binary LeNet-5 and a binary vgg-small
on a small synthetic image set, end to end."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from minibnn import Tensor, manual_seed
from minibnn.bop import Bop, CaseOptimizer, is_binary_kernel
from minibnn.constraints import apply_constraints
from minibnn.data import ArrayDataset, DataLoader
from minibnn.layers import AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Identity, Linear, MaxPool2d
from minibnn.losses import CrossEntropyLoss
from minibnn.metrics import FlipRatio
from minibnn.models import (BiRealBlock, bireal_resnet, bnn_mlp, get, lenet5, names, two_layer_mlp, vgg7,
                            vgg_small)
from minibnn.normalization import CentredNorm, FixedScaleNorm, fan_in, fan_out
from minibnn.optim import Adam
from minibnn.quantized import QuantConv2d, QuantLinear
from minibnn.quantizers import ApproxSign, MagnitudeAwareSign
from minibnn import summary
from minibnn.training import evaluate, fit

# builder, its tiny arguments, and an input batch shape
TINY = {
    "bnn_mlp": (bnn_mlp, dict(in_features=12, num_classes=3, hidden_units=8, num_hidden=3), (4, 12)),
    "two_layer_mlp": (two_layer_mlp, dict(in_features=12, num_classes=3, hidden_units=6), (4, 12)),
    "lenet5": (lenet5, dict(in_channels=1, num_classes=3, image_size=12, width=0.5), (4, 1, 12, 12)),
    "vgg_small": (vgg_small, dict(in_channels=2, num_classes=3, image_size=8, width=1 / 16, fc_units=(16, 16)),
                  (4, 2, 8, 8)),
    "vgg7": (vgg7, dict(in_channels=2, num_classes=3, image_size=8, width=1 / 32), (4, 2, 8, 8)),
    "bireal_resnet": (bireal_resnet, dict(in_channels=2, num_classes=3, image_size=8, channels=(4, 6),
                                          convs_per_stage=2), (4, 2, 8, 8)),
}


def mac_layers(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (Linear, Conv2d))]


@pytest.mark.parametrize("norm", ["batchnorm", "centred", "fixed", "glorot", "none"])
@pytest.mark.parametrize("name", sorted(TINY))
def test_every_builder_runs_forward_and_backward(name, norm):
    builder, kwargs, shape = TINY[name]
    model = builder(**kwargs, norm=norm, rng=np.random.default_rng(0))
    x = Tensor(np.random.default_rng(1).normal(size=shape).astype(np.float32), requires_grad=True)
    out = model(x)
    assert out.shape == (shape[0], 3) and np.all(np.isfinite(out.data))
    CrossEntropyLoss()(out, np.arange(shape[0]) % 3).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing and x.grad is not None
    assert all(p.grad.shape == p.shape and p.grad.dtype == np.float32 for p in model.parameters())
    model.eval()
    assert model(x).shape == (shape[0], 3)


@pytest.mark.parametrize("name", sorted(TINY))
def test_first_and_last_layers_are_full_precision_by_default(name):
    builder, kwargs, _ = TINY[name]
    layers = [(n, m) for n, m in mac_layers(builder(**kwargs)) if "shortcut" not in n]
    (_, first), (_, last) = layers[0], layers[-1]
    assert type(first) in (Linear, Conv2d) and type(last) is Linear
    for n, m in layers[1:-1]:
        assert isinstance(m, (QuantLinear, QuantConv2d)) and m.is_binary, n
        assert m.kernel_constraint is not None and m.bias is None, n  # a norm follows: no bias
        if isinstance(m, QuantConv2d):
            assert m.pad_values == 1.0
    binary = mac_layers(builder(**kwargs, first_full_precision=False, last_full_precision=False))
    binary = [m for n, m in binary if "shortcut" not in n]
    first, last = binary[0], binary[-1]
    assert first.kernel_precision == 1 and first.input_precision is None  # the raw input stays real
    assert last.is_binary and last.bias is not None
    if isinstance(first, QuantConv2d):
        assert first.pad_values == 0.0  # a real-valued input is zero padded


def test_the_architectures_at_full_width():
    """VGG-7 and LeNet-5 at width 1 have the papers' layer shapes (built, not run)."""
    shapes = [m.weight.shape for _, m in mac_layers(vgg7())]
    assert shapes == [(128, 3, 3, 3), (128, 128, 3, 3), (256, 128, 3, 3), (256, 256, 3, 3), (512, 256, 3, 3),
                      (512, 512, 3, 3), (1024, 512 * 4 * 4), (1024, 1024), (10, 1024)]
    shapes = [m.weight.shape for _, m in mac_layers(lenet5())]
    assert shapes == [(6, 1, 5, 5), (16, 6, 5, 5), (120, 400), (84, 120), (10, 84)]
    shapes = [m.weight.shape for _, m in mac_layers(vgg_small(image_size=32))]
    assert shapes == [(64, 3, 3, 3), (64, 64, 3, 3), (128, 64, 3, 3), (128, 128, 3, 3), (512, 128 * 8 * 8),
                      (512, 512), (10, 512)]
    widths = [m.weight.shape[0] for _, m in mac_layers(bnn_mlp(width=1 / 64))]
    assert widths == [64, 64, 64, 10]
    assert [m.weight.shape for _, m in mac_layers(two_layer_mlp(in_features=64))] == [(512, 64), (512, 512),
                                                                                      (10, 512)]


def test_pooling_comes_before_the_norm_and_can_be_average():
    model = vgg_small(image_size=8, width=1 / 16)
    kinds = [type(m).__name__ for m in model]
    assert kinds[:5] == ["Conv2d", "BatchNorm2d", "QuantConv2d", "MaxPool2d", "BatchNorm2d"]
    avg = vgg_small(image_size=8, width=1 / 16, pool="avg")
    assert any(isinstance(m, AvgPool2d) for m in avg) and not any(isinstance(m, MaxPool2d) for m in avg)


def test_norm_constants_follow_the_layers():
    model = bnn_mlp(in_features=10, hidden_units=6, num_hidden=3, num_classes=4, norm="fixed", norm_multiplier=2.0)
    layers = [m for _, m in mac_layers(model)]
    norms = [m for m in model if isinstance(m, FixedScaleNorm)]
    assert [n.variance for n in norms] == [2.0 * fan_in(l) for l in layers[:-1]] == [20.0, 12.0, 12.0]
    model = bnn_mlp(in_features=10, hidden_units=6, num_hidden=3, num_classes=4, norm="glorot")
    layers = [m for _, m in mac_layers(model)]
    assert [m.variance for m in model if isinstance(m, FixedScaleNorm)] == [fan_out(l) for l in layers[1:]]
    assert all(isinstance(m, CentredNorm) for m in lenet5(image_size=12, norm="centred") if
               isinstance(m, FixedScaleNorm))
    convs = lenet5(image_size=12)
    assert sum(isinstance(m, BatchNorm2d) for m in convs) == 2 and sum(isinstance(m, BatchNorm1d)
                                                                        for m in convs) == 2
    no_norm = bnn_mlp(in_features=10, hidden_units=6, num_hidden=2, norm="none")
    assert all(m.bias is not None for _, m in mac_layers(no_norm))  # without a norm, layers keep a bias
    assert sum(isinstance(m, Identity) for m in no_norm) == 2


def test_quantizer_and_scale_options_reach_the_binary_layers():
    model = lenet5(image_size=12, input_quantizer="approx_sign", kernel_quantizer="magnitude_aware_sign",
                   weight_scale=None, weight_init="he_normal")
    binary = [m for _, m in mac_layers(model) if isinstance(m, (QuantLinear, QuantConv2d))]
    assert binary and all(isinstance(m.input_quantizer, ApproxSign) for m in binary)
    assert all(isinstance(m.kernel_quantizer, MagnitudeAwareSign) for m in binary)
    assert len({id(m.input_quantizer) for m in binary}) == len(binary)  # a fresh quantizer per layer
    scaled = bnn_mlp(in_features=8, hidden_units=4, weight_scale="trainable")
    assert sum(1 for n, _ in scaled.named_parameters() if n.endswith("alpha")) == 2
    wide = bnn_mlp(in_features=8, hidden_units=4, dtype=np.float64)
    assert all(p.dtype == np.float64 for p in wide.parameters())
    assert wide(Tensor(np.zeros((2, 8)))).dtype == np.float64


def test_bireal_block_is_a_real_shortcut_around_one_binary_conv():
    net = bireal_resnet(in_channels=2, image_size=8, channels=(3, 5), convs_per_stage=2,
                        rng=np.random.default_rng(0))
    blocks = list(net.blocks)
    assert [type(b.shortcut).__name__ for b in blocks] == ["Identity", "Identity", "Sequential", "Identity"]
    assert [type(m).__name__ for m in blocks[2].shortcut] == ["AvgPool2d", "Conv2d", "BatchNorm2d"]
    block = blocks[1]
    assert isinstance(block, BiRealBlock) and block.conv.is_binary
    x = Tensor(np.random.default_rng(2).normal(size=(2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    out = block(x)
    np.testing.assert_allclose(out.data, block.norm(block.conv(x)).data + x.data, rtol=1e-6, atol=1e-6)
    g = np.random.default_rng(3).normal(size=out.shape).astype(np.float32)
    out.backward(g)
    through_conv = Tensor(x.data, requires_grad=True)
    block.norm(block.conv(through_conv)).backward(g)
    np.testing.assert_allclose(x.grad, through_conv.grad + g, rtol=1e-5, atol=1e-6)  # the identity adds g


def test_registry_and_option_errors():
    assert names() == ["bireal_resnet", "bnn_mlp", "lenet5", "two_layer_mlp", "vgg7", "vgg_small"]
    assert get("two_layer_mlp", in_features=4, hidden_units=3)(np.zeros((2, 4))).shape == (2, 10)
    with pytest.raises(ValueError, match="unknown model 'resnet18'"):
        get("resnet18")
    with pytest.raises(TypeError, match=r"lenet5: unknown options \['widht'\]"):
        lenet5(widht=0.5)
    with pytest.raises(ValueError, match="width must be a number > 0, got 0"):
        bnn_mlp(width=0)
    with pytest.raises(ValueError, match="image_size=8 is too small: the feature maps vanish after convolution 2"):
        lenet5(image_size=8)
    with pytest.raises(ValueError, match="image_size=6 must be divisible by 4"):
        bireal_resnet(image_size=6)
    with pytest.raises(ValueError, match="pool must be 'max' or 'avg'"):
        vgg7(pool="min")
    with pytest.raises(ValueError, match="kind must be one of"):
        bnn_mlp(in_features=4, hidden_units=2, norm="layernorm")


# --------------------------------------------------------------------------------------------------------------
# End to end: one epoch of training on a small synthetic image set
# --------------------------------------------------------------------------------------------------------------
def stripes(n: int, classes: int = 3, size: int = 12, seed: int = 0):
    """Images whose class is the horizontal band that is bright, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(0.0, 0.3, (n, 1, size, size)).astype(np.float32)
    band = size // classes
    for i, k in enumerate(y):
        x[i, 0, k * band:(k + 1) * band] += 1.0
    return x, y


def test_one_epoch_of_binary_lenet5_with_clipping():
    x, y = stripes(240)
    manual_seed(0)
    model = lenet5(in_channels=1, num_classes=3, image_size=12, rng=np.random.default_rng(0))
    opt = Adam(model.parameters(), lr=0.01)
    flips = FlipRatio(model)
    loss_fn = CrossEntropyLoss()
    loader = DataLoader(ArrayDataset(x, y), batch_size=24, shuffle=True, seed=0)
    losses = []
    for xb, yb in loader:  # one epoch: the training step, then the constraint
        loss = loss_fn(model(Tensor(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        apply_constraints(model)
        flips.update()
        losses.append(loss.item())
    assert len(losses) == 10 and np.all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert len(flips.names) == 3 and max(flips.history) > 0  # binary weights did flip
    for name, layer in mac_layers(model):
        if isinstance(layer, (QuantLinear, QuantConv2d)):
            assert np.abs(layer.weight.data).max() <= 1.0, name  # the latent weights stayed in the STE window
    _, accuracy = evaluate(model, [(x, y)], loss_fn)
    assert accuracy > 0.6  # chance is 1/3
    s = summary(model, (1, 12, 12), print_fn=None)
    assert s.params_by_bits[1] == 6 * 16 * 25 + 16 * 120 + 120 * 84


def test_one_epoch_of_binary_vgg_small_with_bop_through_fit():
    x, y = stripes(160, size=8)
    manual_seed(0)
    model = vgg_small(in_channels=1, num_classes=3, image_size=8, width=1 / 8, fc_units=(32, 32),
                      rng=np.random.default_rng(0))
    opt = CaseOptimizer(model, (is_binary_kernel, functools.partial(Bop, gamma=1e-2, threshold=1e-5)),
                        default=lambda ps: Adam(ps, lr=0.01))
    loader = DataLoader(ArrayDataset(x, y), batch_size=16, shuffle=True, seed=0)
    flips = FlipRatio(model)
    history = fit(model, loader, CrossEntropyLoss(), opt, 1, val_loader=[(x, y)], progress=False, verbose=False,
                  seed=0)
    assert len(history) == 1 and np.isfinite(history.train_loss[0])
    assert history.val_acc[0] > 0.6
    assert history.lr[0] == [0.01]  # Bop's group has no learning rate
    assert flips.update() > 0
    for _, layer in mac_layers(model):
        if isinstance(layer, (QuantLinear, QuantConv2d)):
            assert set(np.unique(layer.weight.data)) <= {-1.0, 1.0}  # Bop keeps its weights binary

