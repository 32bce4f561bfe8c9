"""The bit convention of minibnn.xnor.packing: which bit, which word, which padding, and the reference helpers.

The kernels themselves (every path, the references included) are checked against float arithmetic in
test_xnor_kernels.py; this file pins down the layout they all share.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from minibnn.xnor import packing

SIGNED = [np.float32, np.float64, np.int8, np.int16, np.int32, np.int64]


def test_bit_positions_and_word_order():
    # element k -> bit k % 64 of word k // 64, a set bit meaning -1
    for k in (0, 1, 5, 63, 64, 65, 127, 130):
        x = np.ones(131)
        x[k] = -1
        words = packing.pack(x)
        expected = np.zeros(3, dtype=np.uint64)
        expected[k // 64] = np.uint64(1) << np.uint64(k % 64)
        np.testing.assert_array_equal(words, expected)


def test_sign_of_zero_is_plus_one():
    x = np.array([0.0, -0.0, np.nan, -1e-30, 1e-30, -np.inf, np.inf], dtype=np.float64)
    # bits: only -1e-30 (index 3) and -inf (index 5) are negative
    assert int(packing.pack(x)[0]) == (1 << 3) | (1 << 5)
    assert int(packing.pack(np.array([0, -1, 1], dtype=np.int8))[0]) == 0b010


def test_padding_bits_are_zero_and_widths():
    for k in (1, 63, 64, 65, 200):
        words = packing.pack(-np.ones((2, k)))
        assert words.shape == (2, packing.packed_width(k)) and words.dtype == np.uint64
        assert np.all(np.bitwise_count(words).sum(axis=-1) == k)   # exactly k bits set, the padding clear
        np.testing.assert_array_equal(words[0], packing.valid_bits(k))


@settings(max_examples=40)
@given(data=st.data())
def test_unpack_inverts_pack_on_plus_minus_one(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=70))
    dtype = data.draw(st.sampled_from(SIGNED))
    signs = data.draw(hnp.arrays(np.int8, shape, elements=st.sampled_from([-1, 1]))).astype(dtype)
    words = packing.pack(signs)
    assert words.shape == shape[:-1] + (packing.packed_width(shape[-1]),)
    np.testing.assert_array_equal(packing.unpack(words, shape[-1], dtype=dtype), signs)


@settings(max_examples=40)
@given(x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=2, max_side=100),
                    elements=st.floats(-2, 2, width=32)))
def test_pack_of_reals_is_pack_of_their_signs(x):
    np.testing.assert_array_equal(packing.pack(x), packing.pack(np.where(x < 0, -1, 1).astype(np.int8)))


def test_xor_popcount_is_the_dot_product():
    rng = np.random.default_rng(0)
    for k in (1, 63, 64, 65, 1000):
        a, b = rng.choice([-1, 1], size=(2, k))
        disagreements = int(np.bitwise_count(packing.pack(a) ^ packing.pack(b)).sum())
        assert k - 2 * disagreements == int(a @ b)


def test_output_transform_and_threshold_bits():
    acc = np.array([[-3, -1, 1, 3]], dtype=np.int32)
    assert packing.output_transform(acc) is acc
    scale = np.array([0.5, 2, -1, 1], dtype=np.float32)
    bias = np.array([1, 0, 0.25, -3], dtype=np.float32)
    np.testing.assert_array_equal(packing.output_transform(acc, scale=scale, bias=bias),
                                  np.array([[-0.5, -2, -0.75, 0]], dtype=np.float32))
    threshold = np.array([-3, 0, 2, 4], dtype=np.int32)
    direction = np.array([1, 1, -1, 1], dtype=np.int8)
    # +1 where acc >= t (acc <= t for direction -1): [+1, -1, +1, -1] -> bits 1 and 3
    bits = packing.output_transform(acc, threshold=threshold, direction=direction)
    assert bits.shape == (1, 1) and int(bits[0, 0]) == 0b1010
    assert int(packing.threshold_bits(acc, threshold)[0, 0]) == 0b1110


def test_reference_errors_name_the_argument():
    with pytest.raises(TypeError, match="real array"):
        packing.pack(np.array([True, False]))
    with pytest.raises(ValueError, match="non-empty last axis"):
        packing.pack(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="k=65 needs 2 words"):
        packing.unpack(np.zeros((2, 1), dtype=np.uint64), 65)
    with pytest.raises(TypeError, match="uint64"):
        packing.unpack(np.zeros(1, dtype=np.int64), 3)
