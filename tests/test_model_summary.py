"""Tests of minibnn.summary (minibnn/model_summary.py): the numbers of a tiny model counted by hand (parameters per bit width, memory,
MACs per precision, compression ratio), the MAC precision rule for mixed layers, the printed table, and that
summarising leaves the model as it was."""
from __future__ import annotations


import numpy as np
import pytest

from minibnn import Sequential
from minibnn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d
from minibnn.models import bireal_resnet
from minibnn.quantized import BinaryConv2d, BinaryLinear, QuantLinear
from minibnn import summary
from minibnn.model_summary import Summary


def tiny_cnn():
    return Sequential(Conv2d(1, 2, 3, padding=1), BatchNorm2d(2), BinaryConv2d(2, 4, 3, padding=1, bias=False),
                      MaxPool2d(2), BatchNorm2d(4), Flatten(), BinaryLinear(16, 3))


def test_tiny_cnn_by_hand():
    s = summary(tiny_cnn(), (1, 4, 4), print_fn=None)
    rows = {r.name: r for r in s.layers}
    assert list(rows) == ["0", "1", "2", "4", "6"]  # layers without numbers or MACs (pool, flatten) are left out
    # Conv2d(1 -> 2, 3x3) with bias: 18 + 2 float numbers; output (2, 4, 4) = 32 elements x fan_in 9 = 288 MACs
    assert (rows["0"].numbers, rows["0"].macs, rows["0"].output_shape) == ({32: 20}, {32: 288}, (2, 4, 4))
    # BatchNorm2d(2): γ, β and the two running statistics, all 32-bit, no MACs
    assert (rows["1"].numbers, rows["1"].macs, rows["1"].kind) == ({32: 8}, {}, "BatchNorm2d")
    # BinaryConv2d(2 -> 4, 3x3), no bias: 72 one-bit latent weights; (4, 4, 4) = 64 outputs x fan_in 18 binary MACs
    assert (rows["2"].numbers, rows["2"].macs) == ({1: 72}, {1: 1152})
    assert (rows["2"].input_bits, rows["2"].kernel_bits, rows["2"].output_shape) == (1, 1, (4, 4, 4))
    assert rows["4"].numbers == {32: 16}
    # BinaryLinear(16 -> 3): 48 one-bit weights, 3 float biases; 3 outputs x 16 = 48 binary MACs
    assert (rows["6"].numbers, rows["6"].macs, rows["6"].output_shape) == ({1: 48, 32: 3}, {1: 48}, (3,))
    assert s.params_by_bits == {1: 120, 32: 47} and s.total_params == 167
    assert s.macs_by_bits == {1: 1200, 32: 288} and s.total_macs == 1488
    assert s.float32_bytes == 167 * 4
    assert s.packed_bytes == (120 * 1 + 47 * 32) / 8 == 203
    assert s.compression_ratio == pytest.approx(668 / 203)
    assert s.binary_mac_fraction == pytest.approx(1200 / 1488)
    assert rows["2"].packed_bits == 72 and rows["6"].float32_bytes == 51 * 4


def test_mac_precision_is_the_wider_operand():
    model = Sequential(QuantLinear(4, 3, kernel_quantizer="ste_sign", bias=False),          # 1-bit W, float x
                       QuantLinear(3, 2, input_quantizer="ste_sign", kernel_quantizer="ste_tern", bias=False))
    s = summary(model, (4,), print_fn=None)
    assert s.macs_by_bits == {2: 6, 32: 12}
    assert s.params_by_bits == {1: 12, 2: 6}
    assert s.packed_bytes == (12 + 12) / 8


def test_scales_and_quantizer_parameters_are_counted_with_their_layer():
    layer = QuantLinear(5, 4, bias=False, input_quantizer="ss_t", kernel_quantizer="ste_sign",
                        weight_scale="trainable")
    s = summary(Sequential(layer), (5,), print_fn=None)
    assert [r.name for r in s.layers] == ["0"]  # the quantizer's β is folded into the layer's row
    assert s.layers[0].numbers == {1: 20, 32: 4 + 1}  # α (one per filter) and β are 32-bit
    assert s.macs_by_bits == {1: 20}


def test_full_precision_model_and_batch_shapes():
    s = summary(Sequential(Linear(6, 5), BatchNorm1d(5), Linear(5, 2)), (6,), print_fn=None)
    assert s.params_by_bits == {32: 35 + 20 + 12} and s.compression_ratio == 1.0
    assert s.macs_by_bits == {32: 30 + 10}
    assert "Low-bit numbers are latent" not in s.table()
    # a Linear applied to a sequence counts one product per position
    assert summary(Sequential(Linear(3, 2, bias=False)), (5, 3), print_fn=None).macs_by_bits == {32: 5 * 2 * 3}


def test_table_text_and_print_fn():
    printed = []
    s = summary(tiny_cnn(), (1, 4, 4), print_fn=printed.append)
    assert isinstance(s, Summary) and printed == [s.table()] and str(s) == s.table()
    text = s.table()
    header = text.splitlines()[0].split()
    assert header[:5] == ["Layer", "Type", "In", "bits", "W"]
    assert "1-bit" in header and "32-bit" in header and "MACs" in header
    assert "BinaryConv2d" in text and "1,152" in text
    assert "Numbers (parameters and buffers): 167 (1-bit 120, 32-bit 47)" in text
    assert "Memory: 668 B as float32, 203 B packed (compression ratio 3.29x)" in text
    assert "MACs per sample: 1,488 (1-bit 1,200, 32-bit 288); binary fraction 0.8065" in text
    assert "latent float weights (layer.weight, trained as float32)" in text and "quantized_weight()" in text


def test_summary_leaves_the_model_as_it_was():
    model = tiny_cnn()
    model.train()
    model[1].eval()
    state = {k: v.copy() for k, v in model.state_dict().items()}
    summary(model, (1, 4, 4), print_fn=None)
    assert model.training and not model[1].training and model[4].training
    assert all(not m._forward_hooks for m in model.modules())
    for k, v in model.state_dict().items():  # evaluation mode: running statistics untouched
        np.testing.assert_array_equal(v, state[k])
    assert all(p.grad is None for p in model.parameters())


def test_summary_of_a_residual_model():
    net = bireal_resnet(image_size=8, channels=(4, 8), convs_per_stage=1, rng=np.random.default_rng(0))
    s = summary(net, (3, 8, 8), print_fn=None)
    binary = [r for r in s.layers if r.kernel_bits == 1]
    assert [r.name for r in binary] == ["blocks.0.conv", "blocks.1.conv"]
    # blocks.0.conv: 4 -> 4, 3x3, output (4, 8, 8): 256 x 36 MACs; blocks.1.conv: 4 -> 8, stride 2: (8, 4, 4) x 36
    assert s.macs_by_bits[1] == 256 * 36 + 128 * 36


def test_summary_errors():
    with pytest.raises(ValueError, match=r"input_shape must be the non-empty shape of one sample .* got 784"):
        summary(Linear(784, 2), 784)
    with pytest.raises(ValueError, match="got \\(\\)"):
        summary(Linear(784, 2), ())
    with pytest.raises(TypeError, match="model must be a minibnn Module"):
        summary([Linear(3, 2)], (3,))
