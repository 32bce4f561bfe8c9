"""Tests for minibnn.init: every initializer against its paper formula, by Monte-Carlo and by exact checks.

Statistical checks (``moment_problems`` and ``ks_pvalue``), for n iid draws x_1..x_n of a law with mean mu,
variance s2 and fourth central moment mu4 (uniform: mu4 = 9/5 s2^2, normal: mu4 = 3 s2^2):

* mean:     |mean(x) - mu| <= Z * sqrt(s2 / n)                                  (CLT, Z = 5 standard errors)
* variance: |var(x, ddof=1) - s2| <= Z * sqrt(mu4 / n - s2^2 (n - 3) / (n (n - 1)))   (the exact standard
            error of the sample variance, Z = 5)
* shape:    scipy.stats.kstest against the exact CDF; reject when p < ALPHA = 1e-6.

Each check falsely fails with probability below 1e-6 (two-sided 5-sigma tail is 5.7e-7); the statistical tests
run about 500 checks, so a correct implementation fails a run with probability below 1e-3. They also use a
fixed seed and ``derandomize=True``, so a given checkout either always passes or always fails: no flakes.
n is at least min(N_MIN, 2000 * size) = 20000 draws (fewer only for weights with fewer than 10 entries).
``test_checks_reject_*`` prove the same checks fail on a wrong formula.
"""
from __future__ import annotations

import ast
import math
import pathlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

import minibnn.init as init

Z = 5.0
ALPHA = 1e-6
N_MIN = 20_000
SEED = 20240601
STAT = settings(max_examples=8, deadline=None, derandomize=True)
FAST = settings(max_examples=30, deadline=None)


# ------------------------------------------------------------------------------------------------ helpers
def weight_shapes(min_dim: int = 1, max_dim: int = 48):
    """Bias (n,), Linear (out, in), Conv1d (out, in, k) and Conv2d (out, in, kh, kw) weight shapes."""
    d, k = st.integers(min_dim, max_dim), st.integers(1, 4)
    return st.one_of(st.tuples(d), st.tuples(d, d), st.tuples(d, d, k), st.tuples(d, d, k, k))


def draw_iid(initializer, shape, seed: int = SEED) -> np.ndarray:
    """Call ``initializer(shape, rng)`` enough times for about N_MIN iid draws; all draws as float64."""
    rng = np.random.default_rng(seed)
    size = math.prod(shape)
    calls = min(2000, -(-N_MIN // size))
    out = [initializer(shape, rng) for _ in range(calls)]
    assert all(w.shape == tuple(shape) and w.dtype == np.float32 for w in out)
    return np.concatenate([w.ravel() for w in out]).astype(np.float64)


def moment_problems(x: np.ndarray, law) -> list:
    """Mean and variance of the sample ``x`` against the frozen scipy ``law``; [] when both are within Z SEs."""
    n = x.size
    mu, s2 = float(law.mean()), float(law.var())
    mu4 = (float(law.stats(moments="k")) + 3.0) * s2 ** 2       # kurtosis k is excess: mu4 = (k + 3) s2^2
    se_mean = math.sqrt(s2 / n)
    se_var = math.sqrt(mu4 / n - s2 ** 2 * (n - 3) / (n * (n - 1)))
    problems = []
    if abs(x.mean() - mu) > Z * se_mean:
        problems.append(f"mean {x.mean():.6g} vs {mu:.6g}: {abs(x.mean() - mu) / se_mean:.1f} SE (n={n})")
    if abs(x.var(ddof=1) - s2) > Z * se_var:
        problems.append(f"variance {x.var(ddof=1):.6g} vs {s2:.6g}: {abs(x.var(ddof=1) - s2) / se_var:.1f} SE "
                        f"(n={n})")
    return problems


def ks_pvalue(x: np.ndarray, law) -> float:
    return float(stats.kstest(x, law.cdf).pvalue)


def U(a: float):
    """The exact law U[-a, a] as a frozen scipy distribution."""
    return stats.uniform(loc=-a, scale=2 * a)


def N(s: float):
    """The exact law N(0, s^2) as a frozen scipy distribution."""
    return stats.norm(loc=0.0, scale=s)


# ------------------------------------------------------------------------------- the reference formula table
# Each case draws its hyper-parameters and returns (initializer, shape -> exact law, written from the paper).
gains = st.floats(0.1, 5.0)
variances = st.one_of(st.sampled_from([1e-1, 1e-2, 1e-3, 1e-4]), st.floats(1e-6, 10.0))
modes = st.sampled_from(["fan_in", "fan_out"])


def _fan(shape, mode):
    fan_in, fan_out = init.fans(shape)
    return fan_in if mode == "fan_in" else fan_out


def case_uniform(draw):
    low = draw(st.floats(-3.0, 3.0))
    high = low + draw(st.floats(1e-3, 5.0))
    return init.Uniform(low, high), lambda shape: stats.uniform(loc=low, scale=high - low)


def case_normal(draw):
    mean, std = draw(st.floats(-3.0, 3.0)), draw(st.floats(1e-3, 5.0))
    return init.Normal(mean, std), lambda shape: stats.norm(loc=mean, scale=std)


def case_glorot_uniform(draw):  # Glorot & Bengio 2010, eq. 16
    g = draw(gains)
    return init.GlorotUniform(gain=g), lambda shape: U(g * math.sqrt(6.0 / sum(init.fans(shape))))


def case_glorot_normal(draw):
    g = draw(gains)
    return init.GlorotNormal(gain=g), lambda shape: N(g * math.sqrt(2.0 / sum(init.fans(shape))))


def case_he_uniform_relu(draw):  # He et al. 2015: a = sqrt(6 / fan)
    mode = draw(modes)
    return init.HeUniform(mode=mode), lambda shape: U(math.sqrt(6.0 / _fan(shape, mode)))


def case_he_normal_relu(draw):  # std = sqrt(2 / fan)
    mode = draw(modes)
    return init.HeNormal(mode=mode), lambda shape: N(math.sqrt(2.0 / _fan(shape, mode)))


def case_he_normal_leaky(draw):  # std = sqrt(2 / ((1 + s^2) fan))
    mode, s = draw(modes), draw(st.floats(0.0, 1.0))
    return (init.HeNormal(mode=mode, nonlinearity="leaky_relu", negative_slope=s),
            lambda shape: N(math.sqrt(2.0 / ((1.0 + s * s) * _fan(shape, mode)))))


def case_he_uniform_gain(draw):  # a = gain * sqrt(3 / fan)
    mode, g = draw(modes), draw(gains)
    return init.HeUniform(mode=mode, gain=g), lambda shape: U(g * math.sqrt(3.0 / _fan(shape, mode)))


def case_lecun_uniform(draw):  # LeCun et al. 1998: variance 1 / fan_in
    return init.LeCunUniform(), lambda shape: U(math.sqrt(3.0 / init.fans(shape)[0]))


def case_lecun_normal(draw):
    return init.LeCunNormal(), lambda shape: N(math.sqrt(1.0 / init.fans(shape)[0]))


def case_constant_variance_uniform(draw):  # Sari et al. 2019: the same variance whatever the shape
    v = draw(variances)
    return init.ConstantVariance(variance=v), lambda shape: U(math.sqrt(3.0 * v))


def case_constant_variance_normal(draw):
    v = draw(variances)
    return init.ConstantVariance(variance=v, distribution="normal"), lambda shape: N(math.sqrt(v))


def case_random_bias(draw):  # Li & Partovi Nia: U[-lam, lam]
    lam = draw(st.one_of(st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0]), st.floats(1e-3, 10.0)))
    return init.RandomBias(lam=lam), lambda shape: U(lam)


def case_registry_default_random_bias(draw):  # get("random_bias") is lam = 2
    return init.get("random_bias"), lambda shape: U(2.0)


def case_registry_kaiming_normal(draw):
    return init.get("kaiming_normal", mode="fan_out"), lambda shape: N(math.sqrt(2.0 / init.fans(shape)[1]))


CASES = {f.__name__[len("case_"):]: f for f in [
    case_uniform, case_normal, case_glorot_uniform, case_glorot_normal, case_he_uniform_relu,
    case_he_normal_relu, case_he_normal_leaky, case_he_uniform_gain, case_lecun_uniform, case_lecun_normal,
    case_constant_variance_uniform, case_constant_variance_normal, case_random_bias,
    case_registry_default_random_bias, case_registry_kaiming_normal,
]}


# ------------------------------------------------------------------------------------- Monte-Carlo checks
@pytest.mark.parametrize("case", sorted(CASES))
@STAT
@given(data=st.data(), shape=weight_shapes())
def test_samples_follow_the_formula(case, data, shape):
    initializer, reference = CASES[case](data.draw)
    law = reference(shape)
    mean, var = initializer.moments(shape)
    assert mean == pytest.approx(law.mean(), rel=1e-12, abs=1e-15)
    assert var == pytest.approx(law.var(), rel=1e-12)
    x = draw_iid(initializer, shape)
    assert moment_problems(x, law) == [], f"{initializer} on {shape}"
    p = ks_pvalue(x, law)
    assert p >= ALPHA, f"{initializer} on {shape}: KS p = {p:.2e} < {ALPHA}"
    lo, hi = law.support()
    if np.isfinite(hi):  # a uniform: every draw inside [low, high], up to float32 rounding
        tol = 1e-6 * max(abs(lo), abs(hi))
        assert lo - tol <= x.min() and x.max() <= hi + tol


@STAT
@given(shape=weight_shapes(min_dim=4))
def test_checks_reject_a_wrong_glorot_formula(shape):
    # A classic slip: a = sqrt(3 / (fan_in + fan_out)), forgetting the 2 of the variance 2 / (fan_in + fan_out).
    x = draw_iid(init.GlorotUniform(), shape)
    wrong = U(math.sqrt(3.0 / sum(init.fans(shape))))
    assert any("variance" in p for p in moment_problems(x, wrong))
    assert ks_pvalue(x, wrong) < ALPHA


@STAT
@given(shape=weight_shapes(min_dim=2).filter(lambda s: len(s) >= 2))
def test_checks_reject_a_wrong_fan(shape):
    fan_in, fan_out = init.fans(shape)
    assume(max(fan_in, fan_out) >= 2 * min(fan_in, fan_out))
    x = draw_iid(init.HeNormal(mode="fan_in"), shape)
    wrong = N(math.sqrt(2.0 / fan_out))
    assert any("variance" in p for p in moment_problems(x, wrong))
    assert ks_pvalue(x, wrong) < ALPHA


@STAT
@given(shape=weight_shapes(min_dim=4))
def test_checks_reject_right_variance_wrong_family(shape):
    # Moments alone cannot tell a normal from a uniform of the same variance; the KS test can.
    x = draw_iid(init.HeNormal(), shape)
    same_variance_uniform = U(math.sqrt(3.0 * 2.0 / init.fans(shape)[0]))
    assert ks_pvalue(x, same_variance_uniform) < ALPHA


# ------------------------------------------------------------------------------------------ exact checks
float_dtypes = st.sampled_from([np.float16, np.float32, np.float64])


@FAST
@given(shape=weight_shapes(), dtype=float_dtypes, value=st.floats(-1e3, 1e3))
def test_constants_are_exact(shape, dtype, value):
    expected = {
        init.zeros: 0.0, init.ones: 1.0, init.get("zeros"): 0.0, init.get("ones"): 1.0,
        init.Constant(value): value, init.get("constant", value=value): value,
        init.SmallConstant(): 0.01, init.get("small_constant", value=value): value, init.RandomBias(lam=0.0): 0.0,
    }
    rng = np.random.default_rng(SEED)
    state = rng.bit_generator.state
    for initializer, v in expected.items():
        for r in (rng, None):  # a constant needs no rng, and does not consume one
            w = initializer(shape, r, dtype=dtype)
            assert w.dtype == dtype and w.shape == shape
            assert np.array_equal(w, np.full(shape, v, dtype=dtype)), initializer
        assert initializer.moments(shape) == (v, 0.0)
    assert rng.bit_generator.state == state


def test_small_constant_default_and_zeros_ones_values():
    assert init.SmallConstant().value == 0.01
    assert init.zeros((2, 3)).tolist() == [[0.0] * 3] * 2
    assert init.ones((4,), dtype=np.float64).tolist() == [1.0] * 4


@FAST
@given(shape=weight_shapes(), case=st.sampled_from(sorted(CASES)), data=st.data())
def test_same_seed_same_values_and_float32_is_rounded_float64(shape, case, data):
    initializer, _ = CASES[case](data.draw)
    a = initializer(shape, np.random.default_rng(7), dtype=np.float64)
    b = initializer(shape, np.random.default_rng(7), dtype=np.float64)
    c = initializer(shape, np.random.default_rng(7))
    assert a.dtype == np.float64 and c.dtype == np.float32
    assert np.array_equal(a, b)
    assert np.array_equal(c, a.astype(np.float32))
    rng = np.random.default_rng(7)
    if math.prod(shape) > 1:  # successive calls advance the generator
        assert not np.array_equal(initializer(shape, rng), initializer(shape, rng))


@FAST
@given(a=weight_shapes(), b=weight_shapes(), v=variances)
def test_constant_variance_ignores_the_shape(a, b, v):
    for dist in ("uniform", "normal"):
        ci = init.ConstantVariance(v, distribution=dist)
        assert ci.moments(a) == ci.moments(b) == (0.0, v)


# ----------------------------------------------------------------------------------------- fans and gains
@pytest.mark.parametrize("shape, expected", [
    ((10,), (10, 10)),                 # bias
    ((10, 784), (784, 10)),            # Linear(784 -> 10): (out, in)
    ((64, 3, 3, 3), (27, 576)),        # Conv2d(3 -> 64, 3x3)
    ((16, 8, 5), (40, 80)),            # Conv1d(8 -> 16, k=5)
    ((2, 3, 4, 5, 6), (360, 240)),     # Conv3d(3 -> 2, 4x5x6)
    ([5, np.int64(7)], (7, 5)),        # lists and NumPy ints are accepted
])
def test_fans_table(shape, expected):
    assert init.fans(shape) == expected


@FAST
@given(shape=weight_shapes())
def test_fans_rule(shape):
    fan_in, fan_out = init.fans(shape)
    if len(shape) == 1:
        assert fan_in == fan_out == shape[0]
    else:
        assert fan_in * shape[0] == fan_out * shape[1] == math.prod(shape)


def test_gains():
    assert init.gain_for("linear") == 1.0
    assert init.gain_for("relu") == math.sqrt(2.0)
    assert init.gain_for("leaky_relu", 0.0) == math.sqrt(2.0)
    assert init.gain_for("leaky_relu", negative_slope=0.2) == pytest.approx(math.sqrt(2.0 / 1.04), rel=1e-15)
    assert init.HeNormal().gain == math.sqrt(2.0)
    assert init.HeNormal(nonlinearity="linear").moments((3, 7)) == init.LeCunNormal().moments((3, 7))


# ------------------------------------------------------------------------------------- registry and repr
EXPECTED_CLASSES = {
    "zeros": init.Zeros, "ones": init.Ones, "small_constant": init.SmallConstant,
    "glorot_uniform": init.GlorotUniform, "xavier_uniform": init.GlorotUniform,
    "glorot_normal": init.GlorotNormal, "xavier_normal": init.GlorotNormal,
    "he_uniform": init.HeUniform, "kaiming_uniform": init.HeUniform,
    "he_normal": init.HeNormal, "kaiming_normal": init.HeNormal,
    "lecun_uniform": init.LeCunUniform, "lecun_normal": init.LeCunNormal,
    "constant_variance": init.ConstantVariance, "random_bias": init.RandomBias,
}


def same(a, b) -> bool:
    """The same initializer: the same class with the same options (an initializer is a plain object)."""
    return type(a) is type(b) and vars(a) == vars(b)


def test_get_resolves_every_name():
    assert set(init.names()) == set(EXPECTED_CLASSES) | {"constant", "uniform", "normal"}
    for name, cls in EXPECTED_CLASSES.items():
        assert type(init.get(name)) is cls, name
    assert same(init.get("constant", value=0.5), init.Constant(0.5))
    assert same(init.get("uniform", low=-1, high=2), init.Uniform(-1.0, 2.0))
    assert same(init.get("normal", mean=0, std=0.1), init.Normal(0.0, 0.1))
    assert same(init.get("xavier_uniform", gain=2.0), init.GlorotUniform(2.0))
    assert same(init.get("glorot_uniform", gain=2.0), init.GlorotUniform(2.0))
    assert same(init.get("constant_variance", variance=1e-3, distribution="normal"),
                init.ConstantVariance(1e-3, "normal"))
    assert init.get("random_bias").lam == 2.0 and init.get("constant_variance").variance == 1e-2


def test_get_passes_callables_through_and_builds_classes():
    def my_init(shape, rng, dtype=np.float32):
        return np.full(shape, 3.0, dtype)

    assert init.get(my_init) is my_init
    assert init.get(init.zeros) is init.zeros
    assert same(init.get(init.RandomBias, lam=1.5), init.RandomBias(1.5))


def test_get_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"'glorot'.*known names: .*glorot_uniform.*random_bias"):
        init.get("glorot")
    with pytest.raises(TypeError, match=r"got int 3"):
        init.get(3)
    with pytest.raises(TypeError, match=r"\['gain'\].*Zeros\(\)"):
        init.get(init.zeros, gain=2.0)


def test_reprs_are_readable():
    assert repr(init.GlorotUniform()) == "GlorotUniform(gain=1.0)"
    assert repr(init.ConstantVariance()) == "ConstantVariance(variance=0.01, distribution_kind='uniform')"
    assert repr(init.RandomBias()) == "RandomBias(lam=2.0)"
    assert repr(init.HeNormal()) == f"HeNormal(mode='fan_in', nonlinearity='relu', gain={math.sqrt(2.0)!r})"
    assert repr(init.HeNormal(gain=1.0)) == "HeNormal(mode='fan_in', gain=1.0)"
    assert repr(init.zeros) == "Zeros()" and repr(init.SmallConstant()) == "SmallConstant(value=0.01)"
    assert not same(init.GlorotUniform(1.0), init.GlorotNormal(1.0)) and not same(init.zeros, init.Constant(0.0))


# ------------------------------------------------------------------------------------------------ bad input
BAD = [
    # (what to call, exception, fragments the message must contain: argument, value seen, what is expected)
    (lambda: init.ConstantVariance(variance=-0.1), ValueError, ["variance", "-0.1", "> 0"]),
    (lambda: init.ConstantVariance(variance=0.0), ValueError, ["variance", "0.0", "> 0"]),
    (lambda: init.ConstantVariance(variance=float("nan")), ValueError, ["variance", "nan", "finite"]),
    (lambda: init.ConstantVariance(1e-2, distribution="laplace"), ValueError, ["distribution", "laplace",
                                                                              "'uniform', 'normal'"]),
    (lambda: init.RandomBias(lam=-1.0), ValueError, ["lam", "-1.0", ">= 0"]),
    (lambda: init.RandomBias(lam="2"), TypeError, ["lam", "'2'", "number"]),
    (lambda: init.RandomBias(lam=True), TypeError, ["lam", "True", "number"]),
    (lambda: init.Uniform(1.0, 1.0), ValueError, ["high", "1.0", "> low"]),
    (lambda: init.Normal(0.0, -1.0), ValueError, ["std", "-1.0", "> 0"]),
    (lambda: init.Constant(float("inf")), ValueError, ["value", "inf", "finite"]),
    (lambda: init.GlorotUniform(gain=0.0), ValueError, ["gain", "0.0", "> 0"]),
    (lambda: init.HeNormal(mode="fan_avg"), ValueError, ["mode", "fan_avg", "'fan_in', 'fan_out'"]),
    (lambda: init.HeNormal(nonlinearity="tanh"), ValueError, ["nonlinearity", "tanh", "'relu'"]),
    (lambda: init.HeNormal(negative_slope=0.1), ValueError, ["negative_slope", "0.1", "leaky_relu"]),
    (lambda: init.HeNormal(gain=1.0, nonlinearity="relu"), ValueError, ["gain", "nonlinearity", "not both"]),
    (lambda: init.gain_for("sigmoid"), ValueError, ["nonlinearity", "sigmoid", "'linear'"]),
    (lambda: init.fans(()), ValueError, ["shape", "()", "non-empty"]),
    (lambda: init.fans((3, 0)), ValueError, ["shape", "(3, 0)", "positive"]),
    (lambda: init.fans((3, -2)), ValueError, ["shape", "(3, -2)", "positive"]),
    (lambda: init.fans(5), TypeError, ["shape", "5", "tuple"]),
    (lambda: init.fans((2.5, 3)), TypeError, ["shape", "2.5", "ints"]),
    (lambda: init.GlorotUniform()((), np.random.default_rng(0)), ValueError, ["GlorotUniform", "shape", "()"]),
    (lambda: init.GlorotUniform()((4, 0), np.random.default_rng(0)), ValueError, ["shape", "(4, 0)"]),
    (lambda: init.zeros((4,), dtype=np.int32), TypeError, ["dtype", "int32", "floating"]),
    (lambda: init.GlorotUniform()((4, 3), 0), TypeError, ["rng", "0", "numpy.random.Generator"]),
    (lambda: init.GlorotUniform()((4, 3)), TypeError, ["rng", "None", "numpy.random.Generator"]),
    (lambda: init.Constant(1e6)((3,), dtype=np.float16), OverflowError, ["float16", "1000000.0", "wider"]),
]


@pytest.mark.parametrize("call, exc, fragments", BAD)
def test_bad_input_gets_a_clear_error(call, exc, fragments):
    with pytest.raises(exc) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


# ---------------------------------------------------------------------------------------------- the module
def test_every_public_initializer_documents_formula_moments_paper_and_example():
    papers = {"Glorot": "Glorot & Bengio 2010", "He": "He et al. 2015", "LeCun": "LeCun et al. 1998",
              "ConstantVariance": "Sari et al. 2019", "RandomBias": "Li & Partovi Nia", "SmallConstant": "Li et al."}
    for name in init.__all__:
        obj = getattr(init, name)
        if isinstance(obj, type) and issubclass(obj, init.Initializer) and obj is not init.Initializer:
            doc = obj.__doc__
            assert "Mean" in doc and "variance" in doc and ">>>" in doc, name
            for prefix, paper in papers.items():
                if name.startswith(prefix):
                    assert paper in doc, (name, paper)


def test_module_is_pure_numpy():  # the siblings it uses, the registry and the checks, are plain Python
    tree = ast.parse(pathlib.Path(init.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or node.names[0].name).split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "abc", "math", "numbers", "typing", "numpy", "registry", "_checks"}, imported
