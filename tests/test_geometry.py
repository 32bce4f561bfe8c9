"""Tests for minibnn.theory.geometry: hand-built arrangements with known answers, invariances, boundary conventions,
and Monte-Carlo agreement with closed forms derived here.

Closed forms (x ~ N(0, I_d) points, hyperplanes w_j, biases b_j; A_ij the activation pattern):

* ReLU, zero bias, any symmetric w law: given x, w·x is symmetric about 0, so P(A_ij = 1 | x_i) = 1/2 exactly,
  and entries of A sharing a point or a unit are uncorrelated. The mean share Ā of n x m entries has
  Var(Ā) = 1 / (4 n m).
* htanh, zero bias, w ~ N(0, σ² I_d): given x with r = ||x||, w·x ~ N(0, σ² r²), so
  P(x) = P(A = 1 | x) = 2 Φ(1 / (σ r)) - 1 and p = E P(x) = ∫ (2 Φ(1/(σ r)) - 1) χ_d(r) dr (1-D quadrature).
  By the w <-> x symmetry, a unit's share given w is the same function of ||w|| / σ. Two entries sharing a point
  (or a unit) have covariance c = E P² - p²; others are independent, so Var(Ā) = (p(1-p) + (m-1)c + (n-1)c)/(nm).
  Check of the quadrature: for d = 2, w·x is Laplace(0, σ) and p = 1 - exp(-1/σ).
* htanh, ||w|| = 1, b ~ U[-λ, λ] with λ >= ||x|| + 1: unit j is active iff b_j ∈ [-1 - w·x, 1 - w·x], an
  interval of length 2 inside [-λ, λ], so P = 1/λ whatever x and w (Li & Partovi Nia 2020, Sec. 4: "data
  equality can be achieved"), and each point's count is Binomial(m, 1/λ).
* A unit with ||w|| = 1 and bias b over x ~ N(0, I): share Φ(b) (ReLU), Φ(1 - b) - Φ(-1 - b) (htanh).

Tolerances are Z = 5 standard errors of the estimate (two-sided false-failure probability 5.7e-7 per check);
all random tests use fixed seeds, so a checkout always passes or always fails.
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import integrate, stats

import minibnn.theory.geometry as geometry
from minibnn.theory.geometry import (activation_pattern, data_equality, format_geometry, gini, hyperplane_equality,
                              layer_geometry, linear_layers, model_geometry, pre_activations, region_diversity)
from minibnn import Sequential, Tensor
from minibnn.layers import Hardtanh, Linear, ReLU
from strategies import CHEAP, COSTLY, MEDIUM, arrays

Z = 5.0
STAT = settings(max_examples=COSTLY, deadline=None, derandomize=True)


# ------------------------------------------------------------------------------------------ hand-built cases
def vertical_lines():
    """Units x = 0, 1, 2 (w = e1, b = -c) and a 4 x 3 grid of points at x in {-0.5, 0.5, 1.5, 2.5}."""
    W = np.array([[1.0, 0.0]] * 3)
    b = -np.array([0.0, 1.0, 2.0])
    x = np.array([[u, v] for u in (-0.5, 0.5, 1.5, 2.5) for v in (0.0, 1.0, 2.0)])
    return W, b, x


def test_vertical_lines_relu():
    W, b, x = vertical_lines()
    g = layer_geometry((W, b), x, "relu")
    # x > c: a staircase, 0..3 active units, three points per step.
    assert g.data.counts.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    assert g.hyperplanes.counts.tolist() == [9, 6, 3]
    assert g.data.gini == pytest.approx(5 / 12)           # values 0,1,2,3: mean |diff| 5/4 over 2 * mean 3/2
    assert g.data.mean == pytest.approx(0.5) and g.data.zero_fraction == 0.25 and g.data.full_fraction == 0.25
    assert g.hyperplanes.mean == pytest.approx(0.5)
    assert g.hyperplanes.cv == pytest.approx(np.std([9, 6, 3]) / 6)
    assert g.regions.n_regions == 4 and g.regions.region_sizes.tolist() == [3, 3, 3, 3]
    assert g.regions.entropy == pytest.approx(2.0)
    # Nested point sets {x>0} ⊃ {x>1} ⊃ {x>2}: Jaccard distances 1/3, 2/3, 1/2.
    assert g.regions.mean_jaccard_distance == pytest.approx(0.5)
    assert g.data.histogram().tolist() == [3, 3, 3, 3]


def test_vertical_lines_htanh():
    W, b, x = vertical_lines()
    g = layer_geometry((W, b), x, "htanh")
    # |x - c| <= 1: x=-0.5 -> {0}, 0.5 -> {0,1}, 1.5 -> {1,2}, 2.5 -> {2}.
    assert g.data.counts.tolist() == [1] * 3 + [2] * 6 + [1] * 3
    assert g.hyperplanes.counts.tolist() == [6, 6, 6]
    assert g.hyperplanes.cv == 0.0 and g.hyperplanes.gini == 0.0
    assert g.regions.n_regions == 4 and g.regions.entropy == pytest.approx(2.0)
    # S0 = {-0.5, 0.5}, S1 = {0.5, 1.5}, S2 = {1.5, 2.5} columns: distances 2/3, 2/3, 1.
    assert g.regions.mean_jaccard_distance == pytest.approx(7 / 9)
    assert g.data.histogram().tolist() == [0, 6, 6, 0]


def test_quadrants():
    x = np.array([[1.0, 2.0], [-1.0, 2.0], [-1.0, -2.0], [1.0, -2.0]] * 5)
    g = layer_geometry((np.eye(2), np.zeros(2)), x, "relu")
    assert g.data.counts.tolist() == [2, 1, 0, 1] * 5
    assert g.regions.n_regions == 4 and g.regions.entropy == pytest.approx(2.0)
    assert g.regions.mean_jaccard_distance == pytest.approx(2 / 3)    # {++, +-} vs {++, -+}: 1 shared of 3


@settings(max_examples=MEDIUM, deadline=None)
@given(st.integers(0, 4), st.integers(0, 4), st.sampled_from(["relu", "htanh"]))
def test_axis_aligned_grid_region_count(k, l, activation):
    """k vertical and l horizontal units 3 apart make (k+1)(l+1) cells: ReLU steps, or htanh bands that do not
    overlap (each coordinate is in one band or in none); a fine grid puts points in every cell."""
    if k + l == 0:
        l = 1
    W = np.array([[1.0, 0.0]] * k + [[0.0, 1.0]] * l).reshape(-1, 2)
    b = -3.0 * np.concatenate([np.arange(k), np.arange(l)])
    axis = np.arange(-2.0, 3.0 * max(k, l) + 2.0, 0.5) + 0.25    # never on a line, never on a band edge
    gx, gy = np.meshgrid(axis, axis)
    x = np.stack([gx.ravel(), gy.ravel()], axis=1)
    r = region_diversity(activation_pattern(pre_activations((W, b), x), activation))
    assert r.n_regions == (k + 1) * (l + 1)
    assert r.region_sizes.sum() == len(x)
    p = r.region_sizes / len(x)
    assert r.entropy == pytest.approx(-np.sum(p * np.log2(p)))


def test_boundary_conventions():
    """htanh is active on the closed band |z| <= 1; ReLU is inactive at z = 0 (as the engine's gradients)."""
    z = np.array([-np.nextafter(1.0, 2.0), -1.0, -0.5, 0.0, np.nextafter(0.0, 1.0), 1.0, np.nextafter(1.0, 2.0)])
    assert activation_pattern(z, "htanh").tolist() == [False, True, True, True, True, True, False]
    assert activation_pattern(z, "relu").tolist() == [False, False, False, False, True, True, True]
    # Same through a layer: w = 1, b = 0 at x = -1, 0, 1.
    A = activation_pattern(pre_activations((np.array([[1.0]]), np.zeros(1)), np.array([[-1.0], [0.0], [1.0]])),
                           "htanh")
    assert A[:, 0].tolist() == [True, True, True]


def test_conventions_match_engine_gradients():
    """The pattern is exactly where minibnn's ReLU and Hardtanh pass gradient, edges included."""
    z = np.array([[-2.0, -1.0, -0.25, 0.0, 0.25, 1.0, 2.0]])
    for module, activation in ((ReLU(), "relu"), (Hardtanh(), "htanh")):
        t = Tensor(z, requires_grad=True)
        module(t).sum().backward()
        assert (t.grad != 0).tolist() == activation_pattern(z, activation).tolist()


def test_gini_known_values():
    assert gini([3, 3, 3]) == 0.0
    assert gini([0, 0, 0, 8]) == pytest.approx(0.75)
    assert gini([1, 2]) == pytest.approx(1 / 6)
    assert math.isnan(gini([0, 0]))
    with pytest.raises(ValueError, match="non-negative"):
        gini([1, -1])


@settings(max_examples=CHEAP, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=30), st.integers(1, 5))
def test_gini_matches_pairwise_definition(counts, scale):
    c = np.array(counts, dtype=float)
    if c.sum() == 0:
        assert math.isnan(gini(c))
        return
    pairwise = np.abs(c[:, None] - c[None, :]).sum() / (2 * c.size ** 2 * c.mean())
    assert gini(c) == pytest.approx(pairwise, abs=1e-12)
    assert gini(scale * c) == pytest.approx(gini(c), abs=1e-12)
    assert gini(c[::-1]) == pytest.approx(gini(c), abs=1e-12)


# ------------------------------------------------------------------------------------------ invariances
@st.composite
def layer_and_data(draw):
    m, d, n = draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 12))
    # no subnormals: the scale-invariance property multiplies by 0.25, which would round one to zero
    W = draw(arrays((m, d), -2.0, 2.0, allow_subnormal=False))
    b = draw(arrays((m,), -2.0, 2.0, allow_subnormal=False))
    x = draw(arrays((n, d), -3.0, 3.0, allow_subnormal=False))
    return W, b, x


@settings(max_examples=MEDIUM, deadline=None)
@given(layer_and_data(), st.sampled_from(["relu", "htanh"]), st.randoms(use_true_random=False))
def test_permutation_invariance(case, activation, random):
    W, b, x = case
    units = np.array(random.sample(range(len(W)), len(W)))
    points = np.array(random.sample(range(len(x)), len(x)))
    g = layer_geometry((W, b), x, activation)
    gu = layer_geometry((W[units], b[units]), x, activation)
    gp = layer_geometry((W, b), x[points], activation)
    assert gu.data.counts.tolist() == g.data.counts.tolist()
    assert gu.hyperplanes.counts.tolist() == g.hyperplanes.counts[units].tolist()
    assert gp.data.counts.tolist() == g.data.counts[points].tolist()
    assert gp.hyperplanes.counts.tolist() == g.hyperplanes.counts.tolist()
    for other in (gu, gp):
        assert other.regions.n_regions == g.regions.n_regions
        assert other.regions.region_sizes.tolist() == g.regions.region_sizes.tolist()
        assert other.regions.entropy == pytest.approx(g.regions.entropy, abs=1e-12)
        assert other.data.gini == pytest.approx(g.data.gini, abs=1e-12, nan_ok=True)
        assert other.hyperplanes.cv == pytest.approx(g.hyperplanes.cv, abs=1e-12, nan_ok=True)
        assert other.regions.mean_jaccard_distance == pytest.approx(g.regions.mean_jaccard_distance, abs=1e-12,
                                                                    nan_ok=True)


@settings(max_examples=MEDIUM, deadline=None)
@given(layer_and_data(), st.sampled_from([0.25, 0.5, 2.0, 8.0]))
def test_relu_scale_invariance_htanh_sign_symmetry(case, scale):
    """Scaling (w, b) by s > 0 keeps a half-space (exactly, for powers of 2); negating it keeps a band."""
    W, b, x = case
    z = pre_activations((W, b), x)
    assert np.array_equal(activation_pattern(pre_activations((scale * W, scale * b), x), "relu"),
                          activation_pattern(z, "relu"))
    assert np.array_equal(activation_pattern(pre_activations((-W, -b), x), "htanh"),
                          activation_pattern(z, "htanh"))
    # ReLU of the flipped units is active exactly on the other open side.
    flipped = activation_pattern(pre_activations((-W, -b), x), "relu")
    assert np.array_equal(flipped | activation_pattern(z, "relu"), z != 0)


@settings(max_examples=MEDIUM, deadline=None)
@given(layer_and_data(), st.sampled_from(["relu", "htanh"]))
def test_measures_agree_with_pattern(case, activation):
    W, b, x = case
    g = layer_geometry((W, b), x, activation)
    A = g.pattern
    assert A.shape == (len(x), len(W)) and A.dtype == np.bool_
    assert g.data.mean == pytest.approx(A.mean()) and g.hyperplanes.mean == pytest.approx(A.mean())
    assert g.data.histogram().sum() == len(x) and g.hyperplanes.histogram().sum() == len(W)
    assert g.regions.n_regions == len({tuple(row) for row in A})
    assert 0.0 <= g.regions.entropy <= math.log2(len(x)) + 1e-12
    assert g.data.zero_fraction == pytest.approx(np.mean(~A.any(axis=1)))
    assert g.hyperplanes.full_fraction == pytest.approx(np.mean(A.all(axis=0)))


# ------------------------------------------------------------------------------------------ layers and models
def test_module_and_pair_agree():
    layer = Linear(3, 4, bias_init="random_bias", dtype=np.float64, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((10, 3))
    z = pre_activations(layer, x)
    assert np.allclose(z, layer(Tensor(x)).data)
    assert np.array_equal(z, pre_activations((layer.weight.data, layer.bias.data), x))
    no_bias = Linear(3, 4, bias=False, dtype=np.float64)
    assert np.allclose(pre_activations(no_bias, x), x @ no_bias.weight.data.T)


def test_model_geometry_matches_manual_forward():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(2, 6, dtype=np.float64, rng=rng), Hardtanh(),
                       Linear(6, 5, dtype=np.float64, rng=rng, bias_init="random_bias"), ReLU(),
                       Linear(5, 1, dtype=np.float64, rng=rng))
    x = rng.standard_normal((40, 2))
    assert list(linear_layers(model)) == ["0", "2", "4"]
    geo = model_geometry(model, x, {"0": "htanh", "2": "relu", "4": "relu"})
    l0, l2 = model[0], model[2]
    z0 = x @ l0.weight.data.T + l0.bias.data
    z2 = np.clip(z0, -1, 1) @ l2.weight.data.T + l2.bias.data
    assert list(geo) == ["0", "2", "4"]
    assert np.array_equal(geo["0"].pattern, np.abs(z0) <= 1)
    assert np.array_equal(geo["2"].pattern, z2 > 0)
    assert geo["2"].data.counts.tolist() == (z2 > 0).sum(axis=1).tolist()
    assert model[0]._forward_hooks == [] and model[4]._forward_hooks == []
    assert all(p.grad is None for p in model.parameters())
    table = format_geometry(geo)
    assert table.splitlines()[0].startswith("layer") and len(table.splitlines()) == 4
    # Measuring the ReLU module's input instead is the same as measuring layer "2"; float32 input is converted.
    assert np.array_equal(model_geometry(model, x.astype(np.float32), "relu", layers=["2"])["2"].pattern,
                          geo["2"].pattern)


def test_errors_name_the_problem():
    W = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"x has shape \(4, 3\), expected \(n, 2\)"):
        pre_activations((W,), np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        pre_activations((W, np.ones(2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="activation must be one of"):
        activation_pattern(np.ones(3), "tanh")
    with pytest.raises(ValueError, match="boolean array"):
        data_equality(np.ones((2, 2)))
    with pytest.raises(TypeError, match="layer must be"):
        pre_activations(42, np.ones((1, 1)))
    model = Sequential(ReLU())
    with pytest.raises(ValueError, match="no Linear-like layer"):
        model_geometry(model, np.ones((2, 2)), "relu")
    with pytest.raises(KeyError, match="no entry for layer"):
        model_geometry(Sequential(Linear(2, 2)), np.ones((2, 2)), {"x": "relu"})


# ------------------------------------------------------------------------------------------ Monte-Carlo
def htanh_moments(sigma: float, d: int):
    """p = E P(x) and c = Var P(x), P(x) = 2 Φ(1/(σ||x||)) - 1, x ~ N(0, I_d), by 1-D quadrature over ||x||."""
    def P(r):
        return 2.0 * stats.norm.cdf(1.0 / (sigma * r)) - 1.0 if r > 0 else 1.0
    f = stats.chi(d).pdf
    p = integrate.quad(lambda r: P(r) * f(r), 0, np.inf, epsabs=1e-12)[0]
    q = integrate.quad(lambda r: P(r) ** 2 * f(r), 0, np.inf, epsabs=1e-12)[0]
    return p, q - p * p


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
def test_htanh_quadrature_matches_laplace_in_2d(sigma):
    assert htanh_moments(sigma, 2)[0] == pytest.approx(1.0 - math.exp(-1.0 / sigma), abs=1e-9)


@STAT
@given(st.integers(0, 10_000), st.integers(1, 8))
def test_relu_share_is_one_half(seed, d):
    rng = np.random.default_rng(seed)
    n, m = 1200, 1000
    A = activation_pattern(pre_activations((rng.standard_normal((m, d)),), rng.standard_normal((n, d))), "relu")
    assert abs(data_equality(A).mean - 0.5) <= Z * math.sqrt(1.0 / (4 * n * m))


@STAT
@given(st.integers(0, 10_000), st.integers(1, 8), st.floats(0.2, 3.0))
def test_htanh_share_matches_closed_form(seed, d, sigma):
    rng = np.random.default_rng(seed)
    n, m = 1200, 1000
    W, x = sigma * rng.standard_normal((m, d)), rng.standard_normal((n, d))
    A = activation_pattern(pre_activations((W,), x), "htanh")
    p, c = htanh_moments(sigma, d)
    se = math.sqrt((p * (1 - p) + (m - 1) * c + (n - 1) * c) / (n * m))
    assert abs(data_equality(A).mean - p) <= Z * se
    assert hyperplane_equality(A).mean == pytest.approx(data_equality(A).mean)


def test_htanh_point_share_falls_with_radius():
    """Per point: share 2 Φ(1/(σ r)) - 1 (the paper's "points closer to the origin activate more hyper-planes")."""
    rng = np.random.default_rng(7)
    d, m, sigma = 3, 20_000, 1.0
    direction = rng.standard_normal(d)
    radii = np.array([0.05, 0.5, 1.0, 2.0, 4.0])
    x = radii[:, None] * direction / np.linalg.norm(direction)
    shares = data_equality(activation_pattern(pre_activations((sigma * rng.standard_normal((m, d)),), x),
                                              "htanh")).counts / m
    expected = 2 * stats.norm.cdf(1 / (sigma * radii)) - 1
    assert np.all(np.abs(shares - expected) <= Z * np.sqrt(expected * (1 - expected) / m) + 1e-12)
    assert np.all(np.diff(shares) < 0)


def test_random_bias_equalises_points():
    """||w|| = 1, b ~ U[-λ, λ], λ >= max ||x|| + 1: every point's count is Binomial(m, 1/λ)."""
    rng = np.random.default_rng(3)
    d, m = 2, 20_000
    x = np.array([[0.0, 0.0], [0.3, -0.2], [1.0, 1.0], [-2.0, 0.5], [0.0, 3.0]])
    lam = np.linalg.norm(x, axis=1).max() + 1.0
    W = rng.standard_normal((m, d))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    b = rng.uniform(-lam, lam, m)
    shares = data_equality(activation_pattern(pre_activations((W, b), x), "htanh")).counts / m
    p = 1.0 / lam
    assert np.all(np.abs(shares - p) <= Z * math.sqrt(p * (1 - p) / m))


def test_unit_share_depends_on_bias():
    """||w|| = 1 over N(0, I) data: share Φ(b) for ReLU, Φ(1-b) - Φ(-1-b) for htanh (larger |b|, less data)."""
    rng = np.random.default_rng(5)
    n, d = 40_000, 4
    w = rng.standard_normal((1, d))
    w /= np.linalg.norm(w)
    biases = np.array([-1.5, 0.0, 0.7, 2.5])
    W = np.repeat(w, len(biases), axis=0)
    x = rng.standard_normal((n, d))
    z = pre_activations((W, biases), x)
    for activation, q in (("relu", stats.norm.cdf(biases)),
                          ("htanh", stats.norm.cdf(1 - biases) - stats.norm.cdf(-1 - biases))):
        shares = hyperplane_equality(activation_pattern(z, activation)).counts / n
        assert np.all(np.abs(shares - q) <= Z * np.sqrt(q * (1 - q) / n))


def test_bias_trades_hyperplane_equality_for_data_equality():
    """Li & Partovi Nia 2020, Sec. 4, in 2-D: random biases make htanh's points more equal, its units less."""
    rng = np.random.default_rng(11)
    m, n = 400, 2000
    W = rng.standard_normal((m, 2))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    x = rng.standard_normal((n, 2))
    lam = np.linalg.norm(x, axis=1).max() + 1.0
    zero = layer_geometry((W, np.zeros(m)), x, "htanh")
    random = layer_geometry((W, rng.uniform(-lam, lam, m)), x, "htanh")
    assert random.data.cv < 0.5 * zero.data.cv
    assert random.hyperplanes.cv > 2.0 * zero.hyperplanes.cv
    # ReLU with zero bias: every point near half the units (Binomial(m, 1/2) / m has sd 0.025 here).
    relu = layer_geometry((W, np.zeros(m)), x, "relu")
    assert relu.data.gini < zero.data.gini
    assert relu.regions.mean_jaccard_distance > zero.regions.mean_jaccard_distance


# ------------------------------------------------------------------------------------------ plots
def test_plots_write_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    layer = (rng.standard_normal((5, 2)), rng.uniform(-1, 1, 5))
    for activation in ("relu", "htanh"):
        path = tmp_path / f"{activation}.png"
        fig = geometry.plot_active_regions(layer, activation, x=rng.standard_normal((50, 2)), resolution=60,
                                           path=path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(fig.axes) == 2                                 # the plane and its colour bar
    path = tmp_path / "figure.png"
    fig = geometry.plot_relu_vs_htanh(n_units=4, n_points=40, resolution=40, path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and len(fig.axes) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png", "htanh.png", "relu.png"]  # no temp left
    with pytest.raises(ValueError, match=r"weight of shape \(m, 2\)"):
        geometry.plot_active_regions((np.ones((2, 3)),), "relu")


def test_plot_without_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        geometry.plot_active_regions((np.eye(2),), "relu")
