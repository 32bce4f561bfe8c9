"""The graders: one function per exercise, registered under the exercise's id with its points.

A grader gets the submission's definitions (a module made by :func:`minibnn.course.grading.load_definitions`)
and raises an ``AssertionError`` whose first line is the feedback a student sees; returning means full points.
Each grader checks its exercise against minibnn's own implementation or a closed form, on fixed, seeded cases
that include the edge values where mistakes hide (exact zeros, clip edges, padding bits). While it runs, the
library functions that implement the answer are traps for the submission (:mod:`minibnn.course.guard`); the
grader's own calls to them go through.

Example:
    >>> GRADERS["2.1 ClippedSteSign.forward"].points
    2
    >>> sum(g.points for g in GRADERS.values()) >= 50
    True
"""
from __future__ import annotations

import math
from typing import Callable, Dict, NamedTuple

import numpy as np

from scipy import stats

from .. import Sequential, Tensor, gradcheck, theory
from ..xnor import packing
from ..constraints import apply_constraints
from ..theory.geometry import gini
from ..layers import BatchNorm1d
from ..losses import CrossEntropyLoss
from ..optim import SGD
from ..quantized import BinaryLinear
from ..quantizers import ste_sign

__all__ = ["Grader", "GRADERS", "grader"]


class Grader(NamedTuple):
    """An exercise's grader: its id ("2.1 ClippedSteSign.forward"), points, and the checking function."""

    id: str
    points: int
    check: Callable[[object], None]


#: exercise id -> its Grader, in the order of the lessons
GRADERS: Dict[str, Grader] = {}


def grader(exercise_id: str, points: int) -> Callable:
    """Register the decorated function as the grader of ``exercise_id``, worth ``points``."""
    def register(check: Callable[[object], None]) -> Callable[[object], None]:
        if exercise_id in GRADERS:
            raise ValueError(f"grader: {exercise_id!r} has two graders")
        GRADERS[exercise_id] = Grader(exercise_id, int(points), check)
        return check
    return register


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _close(got, want, what: str, rtol: float = 1e-7, atol: float = 1e-10) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    bad = ~np.isclose(got, want, rtol=rtol, atol=atol)
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise AssertionError(f"{what}: element {i} is {got[i]!r}, expected {want[i]!r} "
                             f"({int(bad.sum())} of {bad.size} differ)")


def _equal(got, want, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    bad = got != want
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise AssertionError(f"{what}: element {i} is {got[i]!r}, expected {want[i]!r} "
                             f"({int(bad.sum())} of {bad.size} differ)")


# ---- 1 autograd ----------------------------------------------------------------------------------------------
@grader("1.1 Softplus.backward", points=2)
def _softplus(sub):
    for seed, shape in enumerate([(5,), (3, 4), (2, 3, 2)]):
        x = _rng(seed).normal(size=shape) * 6
        assert gradcheck(sub.Softplus.apply, x)
        t = Tensor(x, requires_grad=True)
        upstream = np.linspace(-2.0, 2.0, x.size).reshape(shape)
        sub.Softplus.apply(t).backward(upstream)
        _close(t.grad, upstream / (1 + np.exp(-x)), "dL/dx", rtol=1e-10)


@grader("1.2 Hypot.backward", points=2)
def _hypot(sub):
    for seed, (sa, sb) in enumerate([((4, 3), (3,)), ((2, 1, 3), (4, 1)), ((5,), (5,))]):
        rng = _rng(seed)
        a, b = (np.where(v >= 0, v + 0.2, v - 0.2) for v in (rng.normal(size=sa), rng.normal(size=sb)))
        assert gradcheck(sub.Hypot.apply, a, b)


# ---- 2 quantizers --------------------------------------------------------------------------------------------
_CLIP_CASES = [1.0, 0.5, 2.0, None]


def _ste_inputs(clip, dtype=np.float64):
    edge = 1.0 if clip is None else clip
    specials = [0.0, -0.0, edge, -edge, edge + 1e-9, -edge - 1e-9, 3.0, -3.0]
    return np.concatenate([specials, _rng(7).normal(size=24) * 2]).astype(dtype).reshape(4, 8)


@grader("2.1 ClippedSteSign.forward", points=2)
def _ste_forward(sub):
    for clip in _CLIP_CASES:
        for dtype in (np.float32, np.float64):
            x = _ste_inputs(clip, dtype)
            out = sub.ClippedSteSign.apply(Tensor(x), clip_value=clip)
            assert out.dtype == dtype, f"the output's dtype is {out.dtype}, expected the input's ({dtype.__name__})"
            _equal(out.data, np.where(x >= 0, 1, -1).astype(dtype), f"sign(x) with clip_value={clip}")


@grader("2.2 ClippedSteSign.backward", points=2)
def _ste_backward(sub):
    for clip in _CLIP_CASES:
        x = _ste_inputs(clip)
        upstream = _rng(3).normal(size=x.shape)
        mine, reference = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
        sub.ClippedSteSign.apply(mine, clip_value=clip).backward(upstream)
        ste_sign(reference, clip_value=clip).backward(upstream)
        _equal(mine.grad, reference.grad, f"dL/dx with clip_value={clip} (1 on |x| <= clip, edges included)")


@grader("2.3 signswish_derivative", points=2)
def _signswish_derivative(sub):
    x = np.concatenate([np.linspace(-4.0, 4.0, 161), [0.0, 80.0, -80.0, 500.0]])
    for beta in (1.0, 2.5, 5.0, 10.0):
        _close(sub.signswish_derivative(x, beta), theory.signswish_grad(x, beta), f"dSS/dx at β={beta}",
               rtol=1e-9, atol=1e-12)


# ---- 3 binary MLP --------------------------------------------------------------------------------------------
def _binary_net(seed: int):
    rng = _rng(seed)
    model = Sequential(BinaryLinear(6, 5, bias=False, rng=rng), BatchNorm1d(5), BinaryLinear(5, 3, rng=rng))
    for layer in (model[0], model[2]):
        layer.weight.data[...] = rng.uniform(-1.0, 1.0, layer.weight.shape).astype(np.float32)
    return model


@grader("3.1 train_step", points=3)
def _train_step(sub):
    for seed in (0, 1):
        rng = _rng(100 + seed)
        batches = [(rng.normal(size=(8, 6)).astype(np.float32), rng.integers(0, 3, size=8)) for _ in range(3)]
        mine, reference = _binary_net(seed), _binary_net(seed)
        opt_mine, opt_ref = SGD(mine.parameters(), lr=2.0), SGD(reference.parameters(), lr=2.0)
        loss_fn = CrossEntropyLoss()
        for x, y in batches:        # three steps: gradients left over from a previous step would show
            got = sub.train_step(mine, opt_mine, loss_fn, x, y)
            out = loss_fn(reference(Tensor(x)), y)
            opt_ref.zero_grad()
            out.backward()
            opt_ref.step()
            apply_constraints(reference)
            assert isinstance(got, float), f"train_step must return a Python float, got {type(got).__name__}"
            assert math.isclose(got, out.item(), rel_tol=1e-5), f"returned loss {got}, expected {out.item()}"
        for (name, p), (_, q) in zip(mine.named_parameters(), reference.named_parameters()):
            _close(p.data, q.data, f"parameter {name} after three steps", rtol=1e-5, atol=1e-6)
        for layer in (mine[0], mine[2]):
            assert np.all(np.abs(layer.weight.data) <= 1.0), "latent weights must be clipped back to [-1, 1]"


@grader("3.2 flip_ratio", points=2)
def _flip_ratio(sub):
    rng = _rng(5)
    before = rng.normal(size=(7, 9)).astype(np.float32)
    before[0, :3] = [0.0, -0.0, 1e-8]
    after = before + rng.normal(scale=0.3, size=before.shape).astype(np.float32)
    after[0, :3] = [-0.0, 0.0, -1e-8]                 # sign(±0) = +1: only the third one flips
    want = np.mean(np.where(before >= 0, 1, -1) != np.where(after >= 0, 1, -1))
    got = sub.flip_ratio(before, after)
    assert isinstance(got, float), f"flip_ratio must return a Python float, got {type(got).__name__}"
    assert math.isclose(got, want, rel_tol=1e-12), f"flip_ratio gave {got}, expected {want}"
    assert sub.flip_ratio(before, before) == 0.0, "no weight changed sign: the ratio must be 0"


# ---- 4 XNOR-popcount -----------------------------------------------------------------------------------------
@grader("4.1 pack_rows", points=2)
def _pack_rows(sub):
    for seed, shape in enumerate([(1,), (3, 63), (2, 64), (5, 65), (2, 3, 130), (200,)]):
        x = _rng(seed).normal(size=shape)
        x.flat[:3] = [0.0, -0.0, -1.0][:x.size]
        packed = sub.pack_rows(x)
        assert packed.dtype == np.uint64, f"pack_rows must return uint64 words, got {packed.dtype}"
        _equal(packed, packing.pack(x), f"pack_rows of shape {shape}")
        signs = np.where(x < 0, -1, 1).astype(np.int8)
        _equal(sub.pack_rows(signs), packing.pack(signs), f"pack_rows of int8 signs, shape {shape}")


@grader("4.2 xnor_matmul", points=2)
def _xnor_matmul(sub):
    for seed, (m, n, k) in enumerate([(1, 1, 1), (3, 4, 5), (2, 5, 63), (4, 2, 64), (3, 3, 65), (6, 1, 191)]):
        rng = _rng(seed)
        a, b = (np.where(rng.random(shape) < 0.5, -1.0, 1.0) for shape in ((m, k), (n, k)))
        got = np.asarray(sub.xnor_matmul(packing.pack(a), packing.pack(b), k))
        _equal(got, (a @ b.T).astype(np.int64), f"xnor_matmul with m={m}, n={n}, k={k}")


# ---- 5 theory ------------------------------------------------------------------------------------------------
@grader("5.1 transformed_bernoulli_variance", points=1)
def _bernoulli_variance(sub):
    for p in np.linspace(0.0, 1.0, 21):
        _close(sub.transformed_bernoulli_variance(p), 4 * p * (1 - p), f"V at p={p:.2f}", atol=1e-12)


@grader("5.2 binary_dot_variance", points=2)
def _binary_dot_variance(sub):
    for k, p_w, p_x in [(1, 0.5, 0.5), (64, 0.9, 0.9), (33, 0.2, 0.65), (4096, 0.0, 0.3), (7, 1.0, 1.0)]:
        _close(sub.binary_dot_variance(k, p_w, p_x), theory.binary_dot_variance(k, p_w, p_x),
               f"V(s) with K={k}, p_w={p_w}, p_x={p_x}", rtol=1e-9, atol=1e-9)


# ---- 6 binary CNN --------------------------------------------------------------------------------------------
@grader("6.1 conv_output_size", points=1)
def _conv_output_size(sub):
    for size, kernel, stride, padding in [(8, 3, 1, 1), (8, 3, 1, 0), (7, 2, 2, 0), (32, 5, 2, 2), (5, 5, 1, 0),
                                          (9, 3, 3, 1), (6, 4, 3, 0)]:
        want = (size + 2 * padding - kernel) // stride + 1
        got = sub.conv_output_size(size, kernel, stride, padding)
        assert got == want, f"conv_output_size({size}, {kernel}, {stride}, {padding}) = {got}, expected {want}"


@grader("6.2 max_pool2d", points=2)
def _max_pool2d(sub):
    for seed, shape in enumerate([(1, 1, 4, 4), (2, 3, 6, 8), (2, 2, 5, 7)]):
        x = _rng(seed).normal(size=shape).astype(np.float32)
        n, c, h, w = shape
        want = x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
        _equal(np.asarray(sub.max_pool2d(x)), want, f"2x2 max-pool of shape {shape}")


@grader("6.3 shifted_sign_fraction", points=2)
def _shifted_sign_fraction(sub):
    for t, mu, sigma in [(0.0, 0.0, 1.0), (0.5, 0.0, 1.0), (-1.2, 0.3, 2.0), (3.0, 1.0, 0.5)]:
        _close(sub.shifted_sign_fraction(t, mu, sigma), theory.shifted_sign_fraction(t, mu, sigma),
               f"P(sign(x - t) = +1) with t={t}, μ={mu}, σ={sigma}", rtol=1e-9)


# ---- 7 initialization and BatchNorm --------------------------------------------------------------------------
@grader("7.1 preactivation_variance", points=2)
def _preactivation_variance(sub):
    for widths, weight_var, input_var in [((4, 8, 2), 1.0, 1.0), ((16, 32, 32, 8), 0.01, 2.0),
                                          ((3, 5, 7, 9), [1.0, 0.5, 0.25], 1.0)]:
        _close(sub.preactivation_variance(widths, weight_var, input_var),
               theory.preactivation_variance(widths, weight_var, input_var),
               f"V(s^l) for widths {widths}, V(w) = {weight_var}", rtol=1e-12)


@grader("7.2 centred_norm", points=2)
def _centred_norm(sub):
    rng = _rng(11)
    x = rng.normal(loc=3.0, size=(16, 5))
    gamma, beta = rng.normal(size=5), rng.normal(size=5)
    _close(sub.centred_norm(x, gamma, beta), gamma * (x - x.mean(axis=0)) + beta, "γ·(x - μ_B) + β", rtol=1e-12)


@grader("7.3 fold_bn_sign", points=3)
def _fold_bn_sign(sub):
    rng = _rng(12)
    gamma = np.array([2.0, -1.0, 0.5, -0.25, 1.0, 3.0])
    beta = np.array([-0.5, 0.5, 0.0, 1.0, 0.3, -1.0])
    mean = np.array([1.0, 0.0, 2.5, -3.0, 0.0, 10.0])
    std = np.array([2.0, 1.0, 1.0, 4.0, 0.3, 5.0])
    threshold, direction = sub.fold_bn_sign(gamma, beta, mean, std)
    want = theory.fold_bn_sign(gamma, beta, mean, std)
    _equal(np.asarray(direction), want.direction, "direction (+1: s >= threshold; -1: s <= threshold)")
    _equal(np.asarray(threshold), want.threshold, "integer threshold")
    s = rng.integers(-20, 21, size=(50, 6))
    bn = gamma * (s - mean) / std + beta
    folded = np.where(np.asarray(direction) > 0, s >= np.asarray(threshold), s <= np.asarray(threshold))
    _equal(np.where(folded, 1, -1), np.where(bn >= 0, 1, -1), "sign(BN(s)) from the folded threshold")


# ---- 8 BNN+ --------------------------------------------------------------------------------------------------
@grader("8.1 signswish", points=2)
def _signswish(sub):
    x = np.concatenate([np.linspace(-3.0, 3.0, 121), [0.0, 50.0, -50.0]])
    for beta in (1.0, 5.0, 10.0):
        _close(sub.signswish(x, beta), theory.signswish(x, beta), f"SS_β(x) at β={beta}", rtol=1e-9, atol=1e-12)


@grader("8.2 bnn_plus_regularizer", points=2)
def _regularizer(sub):
    rng = _rng(13)
    for shape in [(4, 6), (3, 2, 3, 3)]:
        w = rng.normal(size=shape)
        alpha = np.abs(rng.normal(size=shape[0])) + 0.1
        for kind in ("r1", "r2"):
            want = theory.regularizer(alpha, w, kind, channel_axis=0).sum()
            _close(sub.bnn_plus_regularizer(w, alpha, kind), want, f"{kind.upper()} of weights {shape}", rtol=1e-10)


@grader("8.3 initial_alpha", points=2)
def _initial_alpha(sub):
    rng = _rng(14)
    for shape in [(5, 7), (4, 6), (3, 2, 3, 3)]:
        w = rng.normal(size=shape)
        for kind in ("r1", "r2"):
            _close(sub.initial_alpha(w, kind), theory.optimal_scale(w, kind, channel_axis=0),
                   f"α for {kind.upper()}, weights {shape}", rtol=1e-12)


# ---- 9 the geometry of random bias ---------------------------------------------------------------------------
@grader("9.1 activation_pattern", points=1)
def _activation_pattern(sub):
    z = np.array([[-1.5, -1.0, -0.0, 0.0, 1e-9], [0.5, 1.0, 1.0 + 1e-9, 2.0, -0.5]])
    _equal(np.asarray(sub.activation_pattern(z, "relu"), dtype=bool), z > 0, "ReLU pattern (active iff z > 0)")
    _equal(np.asarray(sub.activation_pattern(z, "htanh"), dtype=bool), np.abs(z) <= 1,
           "htanh pattern (active iff |z| <= 1)")


@grader("9.2 gini", points=2)
def _gini(sub):
    cases = [[3, 3, 3], [0, 0, 0, 8], [1, 2, 3, 4, 5], [5, 1, 0, 2], list(_rng(15).integers(0, 50, size=40))]
    for counts in cases:
        _close(sub.gini(np.array(counts)), gini(counts), f"gini({list(counts)[:6]}...)", rtol=1e-10, atol=1e-12)


# ---- 10 deployment -------------------------------------------------------------------------------------------
@grader("10.1 binary_dense", points=3)
def _binary_dense(sub):
    for seed, (m, n, k) in enumerate([(2, 3, 5), (4, 6, 64), (3, 5, 100), (1, 2, 130)]):
        rng = _rng(seed)
        a, b = (np.where(rng.random(shape) < 0.5, -1.0, 1.0) for shape in ((m, k), (n, k)))
        threshold = rng.integers(-k // 2, k // 2 + 1, size=n)
        want = np.where((a @ b.T) >= threshold, 1, -1)
        got = np.asarray(sub.binary_dense(packing.pack(a), packing.pack(b), k, threshold))
        _equal(got, want, f"±1 outputs with m={m}, n={n}, k={k}")


@grader("10.2 packed_bytes", points=1)
def _packed_bytes(sub):
    for shape in [(10, 64), (10, 65), (1, 1), (16, 3, 3, 3), (32, 70, 3, 3)]:
        want = shape[0] * (-(-int(np.prod(shape[1:])) // 64)) * 8
        got = sub.packed_bytes(shape)
        assert got == want, f"packed_bytes({shape}) = {got}, expected {want}"


# ---- 11 running a study --------------------------------------------------------------------------------------
def _t_ci(values):
    v = np.asarray(values, dtype=np.float64)
    return v.mean(), stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)


@grader("11.1 mean_ci", points=2)
def _mean_ci(sub):
    for values in ([90.1, 91.5, 89.7], [10.0, 12.0], [50.0, 52.5, 51.0, 49.0, 53.5]):
        mean, half = sub.mean_ci(values)
        want_mean, want_half = _t_ci(values)
        _close(mean, want_mean, f"mean of {values}", rtol=1e-12)
        _close(half, want_half, f"95% half-width of {values} (Student's t, n-1 degrees of freedom)", rtol=1e-9)


@grader("11.2 paired_difference", points=2)
def _paired_difference(sub):
    for a, b in [([90.1, 91.5, 89.7], [88.0, 90.0, 88.9]), ([1.0, 2.0, 3.0, 4.0], [1.5, 2.1, 3.9, 4.2])]:
        diff, half = sub.paired_difference(a, b)
        want_diff, want_half = _t_ci(np.subtract(a, b))
        _close(diff, want_diff, "mean of a - b", rtol=1e-12)
        _close(half, want_half, "95% half-width of the paired differences", rtol=1e-9)
