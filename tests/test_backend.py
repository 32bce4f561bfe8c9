"""minibnn.xnor.backend: binary layers with the forward on the XNOR-popcount kernels give the float path's numbers.

For every kernel path (AVX-512, AVX2, NEON, scalar, the NumPy fallback), on generated shapes (K not a multiple
of 64, odd images, strides, paddings +1 / -1 / 0): forward outputs and every gradient equal, bit for bit, those
of the same layer with the kernels off; with a weight scale α the gradients are still bit-identical and the
outputs equal to float32 rounding. Operands that are not ±1 fall back to the float product. Each test also
checks that the kernel really ran (a spy counts the calls), so a silent fallback cannot pass for a success.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Tensor, models, no_grad, xnor
from minibnn.xnor import backend
from minibnn.xnor import packing
from minibnn import functional as F
from minibnn.constraints import apply_constraints
from minibnn.optim import Adam
from minibnn.quantized import BinaryConv2d, BinaryLinear, QuantConv2d, QuantLinear

KERNEL_PATHS = [p for p in ("avx512", "avx2", "neon", "scalar", "numpy") if p in xnor.available_paths()]


@contextlib.contextmanager
def spy(monkeypatch, name):
    """Count the calls of xnor.<name> made through minibnn.xnor.backend."""
    calls = []
    original = getattr(xnor, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(backend.xnor, name, counted)
    yield calls
    monkeypatch.setattr(backend.xnor, name, original)


def run(layer, x, upstream, use_kernel):
    """(output, dL/dx, {name: dL/dparam}) of one forward/backward of `layer` with L = Σ upstream · y."""
    layer.use_kernel = use_kernel
    layer.zero_grad()
    xt = Tensor(x, requires_grad=True)
    y = layer(xt)
    (y * Tensor(upstream.astype(y.dtype))).sum().backward()
    grads = {name: p.grad.copy() for name, p in layer.named_parameters() if p.grad is not None}
    return y.data.copy(), xt.grad.copy(), grads


def assert_every_path_matches(layer, x, g, reference, kernel: str):
    """On every kernel path, the layer's run with kernels equals ``reference`` and really called ``xnor.kernel``."""
    for path in KERNEL_PATHS:
        with xnor.use_path(path), pytest.MonkeyPatch.context() as mp, spy(mp, kernel) as calls:
            assert_same_run(run(layer, x, g, use_kernel=True), reference)
            assert calls, f"the kernel did not run on path {path}"


def assert_same_run(a, b, exact_output=True):
    out_a, dx_a, g_a = a
    out_b, dx_b, g_b = b
    if exact_output:
        np.testing.assert_array_equal(out_a, out_b)
    else:
        np.testing.assert_allclose(out_a, out_b, rtol=1e-5, atol=1e-5 * np.abs(out_b).max())
    np.testing.assert_array_equal(dx_a, dx_b)
    assert sorted(g_a) == sorted(g_b)
    for name in g_a:
        np.testing.assert_array_equal(g_a[name], g_b[name], err_msg=f"gradient of {name}")


def inputs(rng, shape, dtype=np.float32):
    """Real inputs with exact zeros and the STE's clip edges ±1 among them."""
    x = rng.uniform(-2, 2, size=shape)
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size, size=max(1, flat.size // 8))] = rng.choice([0.0, -0.0, 1.0, -1.0])
    return x.astype(dtype)


# --------------------------------------------------------------------------------------------------------------
# The two kernel entry points the backend (and the fused benchmarks) rely on, against the NumPy reference
# --------------------------------------------------------------------------------------------------------------
@settings(max_examples=15)
@given(rows=st.integers(1, 9), k=st.one_of(st.sampled_from([1, 63, 64, 65, 127, 128, 129, 576]), st.integers(1, 300)),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_pack_scaled_matches_reference_on_every_path(rows, k, dtype, seed):
    rng = np.random.default_rng(seed)
    scale = rng.choice([1.0, 0.25, 3.0, 0.0], size=(rows, 1))
    x = (np.where(rng.random((rows, k)) < 0.5, -1.0, 1.0) * scale).astype(dtype)
    x[rng.random((rows, k)) < 0.05] *= -0.0 if k > 1 else 1.0       # -0.0 and +0.0 keep the magnitude 0
    if rows > 1:
        x[1, rng.integers(k)] = 0.5 if scale[1, 0] != 0.5 else 2.0    # one element off: not a scaled sign row
        x[-1, rng.integers(k)] = np.nan
    ref_bits, ref_mag = packing.pack_scaled(x)
    np.testing.assert_array_equal(ref_bits, packing.pack(x))
    for path in KERNEL_PATHS:
        with xnor.use_path(path):
            bits, mag = xnor.pack_scaled(x)
            np.testing.assert_array_equal(bits, ref_bits, err_msg=path)
            np.testing.assert_array_equal(mag, ref_mag, err_msg=path)
            assert mag.dtype == x.dtype


@settings(max_examples=15)
@given(m=st.integers(1, 40), n=st.integers(1, 70),
       k=st.one_of(st.sampled_from([1, 63, 64, 65, 576, 1000]), st.integers(1, 300)),
       dtype=st.sampled_from([np.float32, np.float64, np.int8]), mode=st.sampled_from(["int", "float", "bits"]),
       seed=st.integers(0, 2**16))
def test_gemm_packs_real_activations_on_the_fly(m, n, k, dtype, mode, seed):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((m, k)) * 3).astype(dtype)
    a[rng.random((m, k)) < 0.1] = 0                         # zeros pack as +1
    b = xnor.pack(rng.standard_normal((n, k)))
    scale, bias = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    transform = {"int": {}, "float": {"scale": scale, "bias": bias},
                 "bits": dict(zip(("threshold", "direction"), xnor.fold_threshold(scale, bias, k)))}[mode]
    reference = packing.gemm(packing.pack(a), b, k, **transform)
    for path in KERNEL_PATHS:
        with xnor.use_path(path):
            np.testing.assert_array_equal(xnor.gemm(a, b, k, **transform), reference, err_msg=path)
    with pytest.raises(ValueError, match="k must be"):
        xnor.gemm(a, b, k + 1)


# --------------------------------------------------------------------------------------------------------------
# Linear
# --------------------------------------------------------------------------------------------------------------
@settings(max_examples=12)
@given(batch=st.integers(1, 9), k=st.one_of(st.sampled_from([1, 63, 64, 65, 130]), st.integers(1, 200)),
       n=st.integers(1, 70), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_binary_linear_matches_float_path_on_every_kernel_path(batch, k, n, bias, seed):
    rng = np.random.default_rng(seed)
    layer = BinaryLinear(k, n, bias=bias, bias_init="random_bias" if bias else "zeros", rng=rng)
    x, g = inputs(rng, (batch, k)), rng.standard_normal((batch, n))
    reference = run(layer, x, g, use_kernel=False)
    np.testing.assert_array_equal(reference[0], np.where(x >= 0, 1, -1).astype(np.float32)
                                  @ layer.quantized_weight().T + (layer.bias.data if bias else 0))
    assert_every_path_matches(layer, x, g, reference, "gemm")


def test_binary_linear_on_leading_axes_and_float64():
    rng = np.random.default_rng(1)
    layer = BinaryLinear(70, 5, rng=rng, dtype=np.float64)
    layer.bias.data[:] = rng.standard_normal(5)
    x, g = inputs(rng, (2, 3, 70), np.float64), rng.standard_normal((2, 3, 5))
    with pytest.MonkeyPatch.context() as mp, spy(mp, "gemm") as calls:
        assert_same_run(run(layer, x, g, use_kernel=True), run(layer, x, g, use_kernel=False))
        assert calls


@pytest.mark.parametrize("weight_scale", ["xnor", "trainable"])
def test_weight_scale_gives_same_gradients_and_rounding_close_outputs(weight_scale):
    rng = np.random.default_rng(2)
    layer = QuantLinear(150, 40, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                        weight_scale=weight_scale, rng=rng)
    if weight_scale == "trainable":
        layer.alpha.data[::3] *= -1          # a negative α is still a scaled sign row
    x, g = inputs(rng, (7, 150)), rng.standard_normal((7, 40))
    with pytest.MonkeyPatch.context() as mp, spy(mp, "gemm") as calls:
        on = run(layer, x, g, use_kernel=True)
        assert calls
    off = run(layer, x, g, use_kernel=False)
    assert_same_run(on, off, exact_output=False)
    # the kernel's output is acc · |α| rounded once, acc the ±1 product with the signs of α·q_w(W)
    w_eff = layer.effective_weight()
    acc = np.where(x >= 0, 1, -1) @ np.where(w_eff >= 0, 1, -1).T
    alpha = np.abs(w_eff[:, 0])
    np.testing.assert_array_equal(on[0], (acc.astype(np.float32) * alpha.astype(np.float32)))


def test_magnitude_aware_weights_run_on_the_kernel():
    rng = np.random.default_rng(3)
    layer = QuantLinear(100, 12, input_quantizer="ste_sign", kernel_quantizer="magnitude_aware_sign", rng=rng)
    x, g = inputs(rng, (5, 100)), rng.standard_normal((5, 12))
    with pytest.MonkeyPatch.context() as mp, spy(mp, "gemm") as calls:
        on = run(layer, x, g, use_kernel=True)
        assert calls
    assert_same_run(on, run(layer, x, g, use_kernel=False), exact_output=False)


@pytest.mark.parametrize("input_quantizer", ["ste_heaviside", None])
def test_operands_that_are_not_pm1_fall_back_to_the_float_product(input_quantizer):
    rng = np.random.default_rng(4)
    layer = QuantLinear(20, 6, input_quantizer=input_quantizer, kernel_quantizer="ste_sign", rng=rng)
    x = inputs(rng, (4, 20))
    with pytest.MonkeyPatch.context() as mp, spy(mp, "gemm") as calls:
        on = F.linear(layer.input_operand(Tensor(x)), layer.weight_operand(), use_kernel=True)
        assert not calls       # x was not ±1: the kernel never ran
    np.testing.assert_array_equal(on.data, F.linear(layer.input_operand(Tensor(x)), layer.weight_operand()).data)
    x_nan = np.where(rng.random((4, 20)) < 0.5, -1.0, 1.0).astype(np.float32)
    x_nan[1, 3] = np.nan
    assert np.isnan(F.linear(x_nan, layer.weight_operand(), use_kernel=True).data[1]).all()


# --------------------------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------------------------
@settings(max_examples=10)
@given(batch=st.integers(1, 3), c=st.sampled_from([1, 3, 64, 70]), o=st.integers(1, 9),
       size=st.tuples(st.integers(3, 7), st.integers(3, 7)), kernel=st.sampled_from([1, 2, 3, (3, 2)]),
       stride=st.sampled_from([1, 2, (1, 2)]), padding=st.sampled_from([0, 1, (1, 0)]),
       pad_value=st.sampled_from([1.0, -1.0, 0.0]), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_binary_conv_matches_float_path_on_every_kernel_path(batch, c, o, size, kernel, stride, padding, pad_value,
                                                            bias, seed):
    rng = np.random.default_rng(seed)
    layer = BinaryConv2d(c, o, kernel, stride=stride, padding=padding, pad_values=pad_value, bias=bias,
                         bias_init="random_bias" if bias else "zeros", rng=rng)
    x = inputs(rng, (batch, c) + size)
    with no_grad():
        out_shape = layer(x).shape
    g = rng.standard_normal(out_shape)
    reference = run(layer, x, g, use_kernel=False)
    assert_every_path_matches(layer, x, g, reference, "conv2d")


def test_binary_conv_float64_scaled_and_unusual_padding():
    rng = np.random.default_rng(5)
    layer = QuantConv2d(5, 4, 3, padding=1, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                        weight_scale="xnor", pad_values=1.0, rng=rng, dtype=np.float64)
    x, g = inputs(rng, (2, 5, 6, 6), np.float64), rng.standard_normal((2, 4, 6, 6))
    with pytest.MonkeyPatch.context() as mp, spy(mp, "conv2d") as calls:
        on = run(layer, x, g, use_kernel=True)
        assert calls
    assert_same_run(on, run(layer, x, g, use_kernel=False), exact_output=False)
    half = QuantConv2d(5, 4, 3, padding=1, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                       pad_values=0.5, rng=rng)
    x32 = x.astype(np.float32)
    with pytest.MonkeyPatch.context() as mp, spy(mp, "conv2d") as calls:
        on = run(half, x32, g, use_kernel=True)
        assert not calls       # a border of 0.5 is not a ±1 (or exact zero) padding: the float convolution runs
    assert_same_run(on, run(half, x32, g, use_kernel=False))


def test_frozen_weights_skip_the_im2col_copy():
    rng = np.random.default_rng(6)
    layer = BinaryConv2d(3, 4, 3, padding=1, rng=rng)
    layer.weight.requires_grad = False
    xt = Tensor(inputs(rng, (2, 3, 5, 5)), requires_grad=True)
    layer.use_kernel = True
    y = layer(xt)
    assert not hasattr(y._ctx, "cols")
    y.sum().backward()
    xt2 = Tensor(xt.data, requires_grad=True)
    layer.use_kernel = False
    layer(xt2).sum().backward()
    np.testing.assert_array_equal(xt.grad, xt2.grad)


# --------------------------------------------------------------------------------------------------------------
# Training and the switch
# --------------------------------------------------------------------------------------------------------------
def train_two_steps(model_fn, x, y, use_kernels):
    model = model_fn()
    opt = Adam(model.parameters(), lr=0.01)
    with backend.use_kernels(use_kernels):
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            apply_constraints(model)
    return model.state_dict()


@pytest.mark.parametrize("builder", ["bnn_mlp", "vgg_small"])
def test_two_training_steps_give_identical_weights_with_and_without_kernels(builder, monkeypatch):
    rng = np.random.default_rng(7)
    if builder == "bnn_mlp":
        make = lambda: models.bnn_mlp(in_features=30, num_classes=4, hidden_units=70, num_hidden=3,  # noqa: E731
                                      rng=np.random.default_rng(0))
        x = rng.standard_normal((16, 30)).astype(np.float32)
    else:
        make = lambda: models.vgg_small(in_channels=3, num_classes=4, image_size=8, width=1 / 8,  # noqa: E731
                                        fc_units=(20,), rng=np.random.default_rng(0))
        x = rng.standard_normal((6, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, size=len(x))
    with spy(monkeypatch, "gemm") as gemm_calls, spy(monkeypatch, "conv2d") as conv_calls:
        with_kernels = train_two_steps(make, x, y, True)
        assert gemm_calls and (builder == "bnn_mlp" or conv_calls)
    without = train_two_steps(make, x, y, False)
    assert list(with_kernels) == list(without)
    for name in with_kernels:
        np.testing.assert_array_equal(with_kernels[name], without[name], err_msg=name)


def test_switch_global_context_and_per_layer(monkeypatch):
    layer = BinaryLinear(8, 3)
    with backend.use_kernels(False):
        assert not backend.kernels_enabled() and not layer.kernel_active
        with backend.use_kernels(True):
            assert backend.kernels_enabled() and layer.kernel_active
        assert not backend.kernels_enabled()
        layer.use_kernel = True
        assert layer.kernel_active                 # the layer's explicit choice wins
    layer.use_kernel = False
    assert not layer.kernel_active
    assert not QuantLinear(8, 3, kernel_quantizer="ste_sign").kernel_active   # full-precision input: not binary
    assert "use_kernel=False" in repr(BinaryLinear(8, 3, use_kernel=False))
    with pytest.raises(TypeError, match="use_kernel must be True, False or None"):
        BinaryLinear(8, 3, use_kernel="yes")
    with pytest.raises(TypeError, match="use_kernels"):
        backend.use_kernels("off")
    monkeypatch.setenv(backend.ENV_VAR, "0")
    with backend.use_kernels(None):                # automatic: re-reads the environment
        assert not backend.kernels_enabled()
    monkeypatch.setenv(backend.ENV_VAR, "maybe")
    with pytest.raises(ValueError, match="MINIBNN_USE_KERNELS must be 0 or 1"):
        backend.use_kernels(None)


def test_environment_variable_turns_kernels_off_at_import():
    code = ("from minibnn.xnor import backend; from minibnn.quantized import BinaryLinear; "
            "print(backend.kernels_enabled(), BinaryLinear(4, 2).kernel_active)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, MINIBNN_USE_KERNELS="0", PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
